# The s18 review's overlap as a fuzz_gateway input: tests/fuzz/regressions/gateway/overlap-first-bytes-left.
# A client pipelines its start and a request's first 12 bytes (they leave), then the whole
# request (refused: not deferred), then, after the start reply, Echo messages at its bytes.
# Usage: python3 tests/tools/make_overlap_input.py > FILE
import struct, sys
C, S = bytes([192,0,2,12]), bytes([198,51,100,2])
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b)//2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def pkt(src, dst, sport, dport, seq, ack, flags, data=b''):
    tcp = struct.pack('!HHIIBBHHH', sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + data
    ph = src + dst + struct.pack('!BBH', 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack('!H', csum(ph + tcp)) + tcp[18:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    return ip + tcp
def msg(ctype, body):
    return struct.pack('!HHIHH', 12 + len(body), 1, 0x1a2b3c4d, ctype, 0) + body
sccrq = msg(1, struct.pack('!HHIIHH', 0x0100, 0, 1, 1, 1, 0) + b'h'.ljust(64, b'\0') + b'v'.ljust(64, b'\0'))
sccrp = msg(2, struct.pack('!HBBIIHH', 0x0100, 1, 0, 1, 1, 1, 0) + b'h'.ljust(64, b'\0') + b'v'.ljust(64, b'\0'))
def ocrq(call_id):
    return msg(7, struct.pack('!HHIIIIHHHH', call_id, 1, 300, 100000000, 3, 3, 64, 0, 0, 0) + bytes(128))
def echoes_with_id_at_12(i):
    out = msg(5, struct.pack('!I', i << 16))
    out += msg(5, struct.pack('!I', 0)) * 2
    out += msg(6, struct.pack('!IBBH', 0, 1, 0, 0)) * 6
    return out
A, P, F, SYN, ACK = 0x10, 0x08, 0x01, 0x02, 0x10
cs, ss = 1000, 5000
recs = [pkt(C, S, 40002, 1723, cs, 0, SYN), pkt(S, C, 1723, 40002, ss, cs + 1, SYN | ACK),
        pkt(C, S, 40002, 1723, cs + 1, ss + 1, ACK), pkt(C, S, 40002, 1723, cs + 1, ss + 1, ACK | P, sccrq)]
req, at = ocrq(300), cs + 1 + len(sccrq)
recs += [pkt(C, S, 40002, 1723, at, ss + 1, ACK | P, req[:12]),   # the header leaves
         pkt(C, S, 40002, 1723, at, ss + 1, ACK | P, req),        # the whole copy: refused, not deferred
         pkt(S, C, 1723, 40002, ss + 1, at, ACK | P, sccrp),
         pkt(C, S, 40002, 1723, at, ss + 1 + len(sccrp), ACK | P, echoes_with_id_at_12(9))]
out = b''.join(bytes([1]) + struct.pack('!H', len(r)) + r for r in recs)
while len(out) % 2 or len(out) % 5 == 0: out += b'\0\0\0'  # no policy; checksums not verified
sys.stdout.buffer.write(out)
