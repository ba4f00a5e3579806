#!/usr/bin/python3
"""Hostile traffic for the lab, from inside a namespace; prints one JSON line.

  control-junk: a control connection whose messages are malformed (bad Magic Cookie, a
                false Length, an unknown type) and split across TCP segments;
  gre-junk:     enhanced GRE with Call IDs that belong to no call, and truncated GRE;
  ocrq-flood:   one control connection sending --count Outgoing-Call-Requests."""
import argparse
import json
import os
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


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("kind", choices=["control-junk", "gre-junk", "ocrq-flood"])
    p.add_argument("--local", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--count", type=int, default=50)
    a = p.parse_args()
    fn = {"control-junk": control_junk, "gre-junk": gre_junk, "ocrq-flood": ocrq_flood}[a.kind]
    try:
        result = fn(a)
        result["ok"] = True
    except OSError as e:
        result = {"ok": False, "error": str(e)}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
