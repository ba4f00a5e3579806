"""Async-HDLC framing of PPP (RFC 1662): 0x7E flags, 0x7D escapes, FCS-16. pptp-linux
and pptpd's pty both speak it."""

FLAG = 0x7E
ESCAPE = 0x7D
PROTO_LCP = 0xC021
PROTO_IP = 0x0021
PROTO_PAP = 0xC023
PROTO_CHAP = 0xC223


def _fcs_table():
    table = []
    for b in range(256):
        v = b
        for _ in range(8):
            v = (v >> 1) ^ 0x8408 if v & 1 else v >> 1
        table.append(v)
    return table


_TABLE = _fcs_table()


def fcs16(data, fcs=0xFFFF):
    for b in data:
        fcs = (fcs >> 8) ^ _TABLE[(fcs ^ b) & 0xFF]
    return fcs


def encode(protocol, info):
    """A PPP frame with address/control, as bytes ready for the wire."""
    body = bytes([0xFF, 0x03, protocol >> 8, protocol & 0xFF]) + bytes(info)
    fcs = fcs16(body) ^ 0xFFFF
    body += bytes([fcs & 0xFF, fcs >> 8])
    out = bytearray([FLAG])
    for b in body:
        if b < 0x20 or b in (FLAG, ESCAPE):
            out += bytes([ESCAPE, b ^ 0x20])
        else:
            out.append(b)
    out.append(FLAG)
    return bytes(out)


class Decoder:
    """Feeds bytes, yields (protocol, info) for every frame whose FCS is right."""

    def __init__(self):
        self.buf = bytearray()
        self.escaped = False
        self.bad_frames = 0

    def feed(self, data):
        frames = []
        for b in data:
            if b == FLAG:
                if self.buf:
                    frame = self._finish(bytes(self.buf))
                    if frame is not None:
                        frames.append(frame)
                self.buf.clear()
                self.escaped = False
            elif b == ESCAPE:
                self.escaped = True
            else:
                self.buf.append(b ^ 0x20 if self.escaped else b)
                self.escaped = False
                if len(self.buf) > 4096:  # no PPP frame here is that long: resynchronise
                    self.buf.clear()
                    self.bad_frames += 1
        return frames

    def _finish(self, raw):
        if len(raw) < 4 or fcs16(raw) != 0xF0B8:
            self.bad_frames += 1
            return None
        body = raw[:-2]
        if body[:2] == b"\xff\x03":
            body = body[2:]
        if not body:
            return None
        if body[0] & 1:  # protocol field compressed to one octet
            return body[0], body[1:]
        if len(body) < 2:
            return None
        return (body[0] << 8) | body[1], body[2:]
