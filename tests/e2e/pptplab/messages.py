"""PPTP control messages (RFC 2637 section 2) for the scripted peers: build and read."""
import struct

MAGIC = 0x1A2B3C4D
SCCRQ, SCCRP, STOPCCRQ, STOPCCRP, ECHORQ, ECHORP = 1, 2, 3, 4, 5, 6
OCRQ, OCRP, ICRQ, ICRP, ICCN, CCRQ, CDN, WEN, SLI = 7, 8, 9, 10, 11, 12, 13, 14, 15
LENGTHS = {SCCRQ: 156, SCCRP: 156, STOPCCRQ: 16, STOPCCRP: 16, ECHORQ: 16, ECHORP: 20, OCRQ: 168,
           OCRP: 32, ICRQ: 220, ICRP: 24, ICCN: 28, CCRQ: 16, CDN: 148, WEN: 40, SLI: 24}


def message(kind, body):
    length = LENGTHS[kind]
    body = bytes(body).ljust(length - 12, b"\0")
    return struct.pack("!HHIHH", length, 1, MAGIC, kind, 0) + body


def text64(s):
    return s.encode().ljust(64, b"\0")


def sccrq(host="scripted"):
    return message(SCCRQ, struct.pack("!HHIIHH", 0x0100, 0, 3, 3, 0, 1) + text64(host) + text64("pptplab"))


def sccrp(result=1):
    return message(SCCRP, struct.pack("!HBBIIHH", 0x0100, result, 0, 3, 3, 0, 1) + text64("pac") + text64("pptplab"))


def ocrq(call_id, serial=1):
    return message(OCRQ, struct.pack("!HHIIIIHHHH", call_id, serial, 300, 100000000, 3, 3, 64, 0, 0, 0))


def ocrp(call_id, peer_call_id, result=1):
    return message(OCRP, struct.pack("!HHBBHIHHI", call_id, peer_call_id, result, 0, 0, 100000000, 64, 0, 0))


def icrq(call_id, serial=1):
    return message(ICRQ, struct.pack("!HHIIHH", call_id, serial, 3, 0, 0, 0))


def icrp(call_id, peer_call_id, result=1):
    return message(ICRP, struct.pack("!HHBBHHH", call_id, peer_call_id, result, 0, 64, 0, 0))


def iccn(peer_call_id):
    return message(ICCN, struct.pack("!HHIHHI", peer_call_id, 0, 100000000, 64, 0, 3))


def ccrq(call_id):
    return message(CCRQ, struct.pack("!HH", call_id, 0))


def cdn(call_id, result=3):
    return message(CDN, struct.pack("!HBBHH", call_id, result, 0, 0, 0))


def wen(peer_call_id, crc_errors=1):
    """WAN-Error-Notify (RFC 2637 2.14): the PAC names the PNS's Call ID."""
    return message(WEN, struct.pack("!HHIIIIII", peer_call_id, 0, crc_errors, 0, 0, 0, 0, 0))


def stopccrq():
    return message(STOPCCRQ, struct.pack("!BBH", 1, 0, 0))


def stopccrp():
    return message(STOPCCRP, struct.pack("!BBH", 1, 0, 0))


def echorq(identifier):
    return message(ECHORQ, struct.pack("!I", identifier))


def echorp(identifier):
    return message(ECHORP, struct.pack("!IBBH", identifier, 1, 0, 0))


class Reader:
    """Frames messages out of a TCP byte stream."""

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= 12:
            length = struct.unpack("!H", self.buf[:2])[0]
            if length < 12 or length > 1024:
                raise ValueError("bad PPTP length %d" % length)
            if len(self.buf) < length:
                break
            msg, self.buf = self.buf[:length], self.buf[length:]
            out.append((struct.unpack("!H", msg[8:10])[0], msg))
        return out


def u16(msg, offset):
    return struct.unpack("!H", msg[offset:offset + 2])[0]


def u32(msg, offset):
    return struct.unpack("!I", msg[offset:offset + 4])[0]
