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


def windows_cdn_seed():
    """The gateway's Windows-CDN property, which random inputs rarely reach: two clients behind
    one public address with the same Call ID, the second translated (the translator walks from
    its cursor, 0); the server's Call-Disconnect-Notify names the first call by its own Call ID
    (RFC 2637 2.13) and the second by the outside Call ID, as Windows servers do
    (docs/protocol-notes.md)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import craft_pcaps as cp

    cap = cp.Capture()
    first, second = cp.Conn(cap, cp.PNS, 40001), cp.Conn(cap, cp.PNS2, 40002)
    for conn, pac_call_id, outside in ((first, 100, 5), (second, 200, 0)):
        conn.handshake()
        conn.send("pns", cp.sccrq("windows-cdn"))
        conn.send("pac", cp.sccrp())
        conn.send("pns", cp.ocrq(5, 1))
        conn.send("pac", cp.ocrp(pac_call_id, outside))
        conn.gre("pns", pac_call_id, seq=0, payload=cp.ppp(0x0021, bytes(8)))
        conn.gre("pac", outside, seq=0, payload=cp.ppp(0x0021, bytes(8)))
    first.send("pac", cp.cdn(100))
    second.send("pac", cp.cdn(0))
    second.gre("pac", 0, seq=1, payload=cp.ppp(0x0021, bytes(8)))  # its call is gone
    seed = b""
    for p in cap.packets:
        ip = bytes(p[IP])[: p[IP].len]
        seed += struct.pack("!BH", 1, len(ip)) + ip
    return seed


def main():
    out, captures = sys.argv[1], sys.argv[2:]
    put(os.path.join(out, "gateway"), windows_cdn_seed())
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
