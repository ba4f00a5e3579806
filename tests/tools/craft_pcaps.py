#!/usr/bin/env python3
"""Crafts the captures no public trace has (scapy), deterministically:

crafted-lifecycle.pcap: one control connection carrying two outgoing calls and one incoming
  call at once; messages split across segments and coalesced in one; Echo, Set-Link-Info,
  WAN-Error-Notify, Call-Clear-Request / Call-Disconnect-Notify, Stop-Control-Connection;
  GRE both ways with a PAP user name and a CHAP (MS-CHAPv2) user name.
crafted-hostile.pcap: retransmitted, overlapping and out-of-order control segments, a bad
  magic cookie mid-stream (lost sync), a lying length, an unknown message type, GRE with
  unknown Call IDs, GRE version 0, a truncated GRE header.

usage: craft_pcaps.py OUTDIR
Addresses are RFC 5737 documentation addresses only.
"""
import os
import struct
import sys

from scapy.all import Ether, IP, TCP, Raw, wrpcap  # noqa: E402

COOKIE = 0x1A2B3C4D
PNS = "192.0.2.21"
PNS2 = "192.0.2.22"
PAC = "198.51.100.2"


def msg(mtype, body):
    length = 12 + len(body)
    return struct.pack("!HHIHH", length, 1, COOKIE, mtype, 0) + body


def text(s, n=64):
    return s.encode().ljust(n, b"\0")


def sccrq(host):
    return msg(1, struct.pack("!HHIIHH", 0x0100, 0, 1, 1, 0, 1) + text(host) + text("crafted"))


def sccrp(result=1):
    return msg(2, struct.pack("!HBBIIHH", 0x0100, result, 0, 1, 1, 0, 1) + text("pac") + text("crafted"))


def stopccrq(reason=1):
    return msg(3, struct.pack("!BBH", reason, 0, 0))


def stopccrp(result=1):
    return msg(4, struct.pack("!BBH", result, 0, 0))


def echo_rq(ident):
    return msg(5, struct.pack("!I", ident))


def echo_rp(ident, result=1):
    return msg(6, struct.pack("!IBBH", ident, result, 0, 0))


def ocrq(call_id, serial):
    return msg(7, struct.pack("!HHIIIIHHHH", call_id, serial, 300, 100000000, 3, 3, 64, 0, 3, 0)
               + text("555") + text(""))


def ocrp(call_id, peer, result=1, cause=0):
    return msg(8, struct.pack("!HHBBHIHHI", call_id, peer, result, 0, cause, 100000000, 64, 0, 0))


def icrq(call_id, serial):
    return msg(9, struct.pack("!HHIIHH", call_id, serial, 1, 0, 3, 4) + text("123") + text("4567") + text(""))


def icrp(call_id, peer, result=1):
    return msg(10, struct.pack("!HHBBHHH", call_id, peer, result, 0, 64, 0, 0))


def iccn(peer):
    return msg(11, struct.pack("!HHIHHI", peer, 0, 100000000, 64, 0, 3))


def ccrq(call_id):
    return msg(12, struct.pack("!HH", call_id, 0))


def cdn(call_id, result=3):
    return msg(13, struct.pack("!HBBHH", call_id, result, 0, 0, 0) + text("stats", 128))


def wen(peer):
    return msg(14, struct.pack("!HHIIIIII", peer, 0, 1, 2, 3, 4, 5, 6))


def sli(peer):
    return msg(15, struct.pack("!HHII", peer, 0, 0xFFFFFFFF, 0xFFFFFFFF))


def gre(key, seq=None, ack=None, payload=b"", version=1, protocol=0x880B):
    flags0 = 0x20 | (0x10 if seq is not None else 0)
    flags1 = (0x80 if ack is not None else 0) | version
    h = struct.pack("!BBHHH", flags0, flags1, protocol, len(payload), key)
    if seq is not None:
        h += struct.pack("!I", seq)
    if ack is not None:
        h += struct.pack("!I", ack)
    return h + payload


def ppp(protocol, info):
    return b"\xff\x03" + struct.pack("!H", protocol) + info


def pap_request(user, password):
    body = bytes([len(user)]) + user.encode() + bytes([len(password)]) + password.encode()
    return struct.pack("!BBH", 1, 1, 4 + len(body)) + body


def chap_response_v2(user):
    value = bytes(range(16)) + bytes(8) + bytes(range(24)) + b"\0"
    body = bytes([len(value)]) + value + user.encode()
    return struct.pack("!BBH", 2, 1, 4 + len(body)) + body


class Capture:
    def __init__(self):
        self.packets = []
        self.t = 1700000000.0

    def add(self, pkt):
        self.t += 0.001
        p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / pkt
        p.time = self.t
        self.packets.append(p)


class Conn:
    """A TCP control connection; tracks sequence numbers per side."""

    def __init__(self, cap, pns, sport, pac=PAC):
        self.cap, self.pns, self.sport, self.pac = cap, pns, sport, pac
        self.seq = {"pns": 1000, "pac": 90000}

    def tcp(self, side, flags, data=b"", seq=None):
        if side == "pns":
            ip = IP(src=self.pns, dst=self.pac, id=1)
            t = TCP(sport=self.sport, dport=1723, flags=flags, seq=self.seq["pns"] if seq is None else seq,
                    ack=self.seq["pac"], window=65535)
        else:
            ip = IP(src=self.pac, dst=self.pns, id=1)
            t = TCP(sport=1723, dport=self.sport, flags=flags, seq=self.seq["pac"] if seq is None else seq,
                    ack=self.seq["pns"], window=65535)
        self.cap.add(ip / t / Raw(data) if data else ip / t)

    def handshake(self):
        self.tcp("pns", "S")
        self.seq["pns"] += 1
        self.tcp("pac", "SA")
        self.seq["pac"] += 1
        self.tcp("pns", "A")

    def send(self, side, data, split=None):
        """Sends data as one segment, or split at the given offsets."""
        cuts = [0] + (split or []) + [len(data)]
        for a, b in zip(cuts, cuts[1:]):
            self.tcp(side, "PA", data[a:b])
            self.seq[side] += b - a

    def gre(self, side, key, seq=None, ack=None, payload=b""):
        src, dst = (self.pns, self.pac) if side == "pns" else (self.pac, self.pns)
        self.cap.add(IP(src=src, dst=dst, proto=47, id=1) / Raw(gre(key, seq, ack, payload)))

    def close(self):
        self.tcp("pns", "FA")
        self.seq["pns"] += 1
        self.tcp("pac", "FA")
        self.seq["pac"] += 1
        self.tcp("pns", "A")


def lifecycle(path):
    cap = Capture()
    c = Conn(cap, PNS, 40001)
    c.handshake()
    c.send("pns", sccrq("crafted-pns"), split=[1, 11, 100])  # split inside the header
    c.send("pac", sccrp())
    # Two Outgoing-Call-Requests coalesced in one segment, both replies in another.
    c.send("pns", ocrq(7, 1) + ocrq(8, 2))
    c.send("pac", ocrp(0, 7) + ocrp(128, 8))
    c.send("pns", sli(0) + sli(128))
    # GRE of call 1 (PNS 7 / PAC 0): PAP user name in the clear, then data both ways.
    c.gre("pns", 0, seq=0, payload=ppp(0xC021, bytes([1, 1, 0, 4])))
    c.gre("pns", 0, seq=1, payload=ppp(0xC023, pap_request("alice", "not-logged")))
    c.gre("pac", 7, seq=0, ack=1, payload=ppp(0xC023, bytes([2, 1, 0, 5, 0])))
    # Call 2 (PNS 8 / PAC 128): MS-CHAPv2, ack-only GRE too.
    c.gre("pns", 128, seq=0, payload=ppp(0xC223, chap_response_v2("bob")))
    c.gre("pac", 8, seq=0, ack=0, payload=ppp(0xC223, bytes([3, 1, 0, 4])))
    c.gre("pns", 128, ack=0)
    # The PAC places an incoming call (ICRQ split mid-message, ICRP and ICCN coalesced with Echo).
    c.send("pac", icrq(256, 3), split=[100])
    c.send("pns", icrp(9, 256) + echo_rq(0x1234))
    c.send("pac", iccn(9) + echo_rp(0x1234))
    c.gre("pns", 256, seq=0, payload=ppp(0x0021, bytes(20)))
    c.gre("pac", 9, seq=0, payload=ppp(0x0021, bytes(20)))
    c.send("pac", wen(7))
    # The PNS clears call 1; the PAC confirms with Call-Disconnect-Notify; its GRE is now stray.
    c.send("pns", ccrq(7))
    c.send("pac", cdn(0))
    c.gre("pns", 0, seq=2, payload=ppp(0x0021, bytes(20)))
    # Stop-Control-Connection ends the remaining calls.
    c.send("pns", stopccrq())
    c.send("pac", stopccrp())
    c.close()
    wrpcap(path, cap.packets)


def hostile(path):
    cap = Capture()
    c = Conn(cap, PNS2, 40002)
    c.handshake()
    first = sccrq("hostile")
    c.send("pns", first[:50])
    c.tcp("pns", "PA", first[:50], seq=c.seq["pns"] - 50)            # retransmission
    c.tcp("pns", "PA", first[100:], seq=c.seq["pns"] + 50)           # out of order
    c.tcp("pns", "PA", first[30:110], seq=c.seq["pns"] - 20)         # overlaps both sides
    c.seq["pns"] += len(first) - 50
    c.send("pac", sccrp())
    c.send("pns", ocrq(7, 1))
    c.send("pac", ocrp(5, 7))
    c.gre("pns", 5, seq=0, payload=ppp(0x0021, bytes(8)))
    c.gre("pns", 4242, seq=0, payload=ppp(0x0021, bytes(8)))          # unknown Call ID
    cap.add(IP(src=PNS2, dst=PAC, proto=47, id=1) / Raw(gre(5, 1, version=0, protocol=0x0800)))
    cap.add(IP(src=PNS2, dst=PAC, proto=47, id=1) / Raw(b"\x30\x01\x88\x0b\x00"))  # truncated
    c.send("pac", ocrp(6, 99))                                        # reply for no request
    bad = bytearray(echo_rq(1))
    bad[4:8] = b"\x1a\x2b\x3c\x4e"
    c.send("pns", bytes(bad))                                         # bad cookie: lost sync
    c.send("pns", echo_rq(2))                                         # ignored after that
    # A second connection: a lying length, split across segments.
    d = Conn(cap, PNS2, 40003)
    d.handshake()
    lie = bytearray(echo_rq(3))
    lie[0:2] = struct.pack("!H", 200)
    d.send("pns", bytes(lie), split=[5])
    # A third: an unknown message type.
    e = Conn(cap, PNS2, 40004)
    e.handshake()
    unknown = bytearray(echo_rq(4))
    unknown[8:10] = struct.pack("!H", 16)
    e.send("pns", bytes(unknown))
    e.tcp("pac", "RA")
    wrpcap(path, cap.packets)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    lifecycle(os.path.join(out, "crafted-lifecycle.pcap"))
    hostile(os.path.join(out, "crafted-hostile.pcap"))


if __name__ == "__main__":
    main()
