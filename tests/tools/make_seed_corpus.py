#!/usr/bin/python3
"""Seed corpora for the fuzzers, cut from the captures (needs python3-scapy).

usage: make_seed_corpus.py OUTDIR CAPTURE...
Writes OUTDIR/{control_message,gre_ppp,reassembler,tracker,gateway,capture}/.
"""
import hashlib
import os
import struct
import sys

from scapy.all import IP, TCP, rdpcap


def put(d, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def main():
    out, captures = sys.argv[1], sys.argv[2:]
    for cap in captures:
        put(os.path.join(out, "capture"), open(cap, "rb").read()[:65536])
        try:
            pkts = rdpcap(cap)
        except Exception as e:  # a capture scapy cannot read still seeds the capture fuzzer
            print(f"skipping {cap}: {e}", file=sys.stderr)
            continue
        records = b""
        gateway = b""  # the same packets for the gateway: [u8 flags][u16 length][packet]
        stream = b""  # the PNS's bytes in order, for the reassembler's record format
        for p in pkts:
            if IP not in p:
                continue
            ip = bytes(p[IP])[: p[IP].len]
            if len(records) < 60000:
                records += struct.pack("!H", len(ip)) + ip
                gateway += struct.pack("!BH", 1, len(ip)) + ip
            if p[IP].proto == 47:
                put(os.path.join(out, "gre_ppp"), bytes(p[IP].payload))
            elif TCP in p and 1723 in (p[TCP].sport, p[TCP].dport):
                payload = bytes(p[TCP].payload)
                if payload:
                    put(os.path.join(out, "control_message"), payload)
                    if p[TCP].dport == 1723:
                        stream += payload
        # [u8 isn][records of u16 offset, u8 length, bytes], in order, 100-byte pieces.
        seed = b"\x00"
        for off in range(0, min(len(stream), 60000), 100):
            piece = stream[off:off + 100]
            seed += struct.pack("!HB", off, len(piece)) + piece
        if len(seed) > 1:
            put(os.path.join(out, "reassembler"), seed)
        put(os.path.join(out, "tracker"), records)
        put(os.path.join(out, "gateway"), gateway)
    return 0


if __name__ == "__main__":
    sys.exit(main())
