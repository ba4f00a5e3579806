"""Enhanced GRE (RFC 2637 section 4.1) over a raw socket, for the scripted peers."""
import socket
import struct

IPPROTO_GRE = 47


def build(call_id, payload, seq=None, ack=None):
    flags = 0x2001  # K bit, version 1
    if seq is not None:
        flags |= 0x1000
    if ack is not None:
        flags |= 0x0080
    out = struct.pack("!HHHH", flags, 0x880B, len(payload), call_id)
    if seq is not None:
        out += struct.pack("!I", seq)
    if ack is not None:
        out += struct.pack("!I", ack)
    return out + payload


def parse(ip_packet):
    """(source, destination, call_id, payload) of a received IPv4 GRE packet, or None."""
    if len(ip_packet) < 28:
        return None
    ihl = (ip_packet[0] & 0x0F) * 4
    src, dst = socket.inet_ntoa(ip_packet[12:16]), socket.inet_ntoa(ip_packet[16:20])
    g = ip_packet[ihl:]
    if len(g) < 8:
        return None
    flags, proto, length, call_id = struct.unpack("!HHHH", g[:8])
    if flags & 0x7 != 1 or proto != 0x880B:
        return None
    off = 8 + (4 if flags & 0x1000 else 0) + (4 if flags & 0x0080 else 0)
    return src, dst, call_id, g[off:off + length]


def open_socket(local_address):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_GRE)
    s.bind((local_address, 0))
    s.settimeout(0.2)
    return s
