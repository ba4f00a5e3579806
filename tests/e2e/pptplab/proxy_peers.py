#!/usr/bin/python3
"""Hostile PPTP peers for the proxy's limits (tests/e2e/test_proxy_limits_e2e.py), run inside
a lab namespace; each prints one JSON line. Every wait is bounded.

  incoming-placer: a server (PAC) on --local:1723: accepts one control connection within
                 --seconds, answers its Start-Control-Connection-Request, places --count
                 incoming calls at once (Incoming-Call-Requests with Call IDs --first-call-id
                 and up) and for --hold seconds collects the Incoming-Call-Replies it gets
                 (peer Call ID, result code), answering Echo-Requests;
  incoming-ignorer: a client (PNS) toward --target:1723 that starts its control connection
                 and for --seconds counts the Incoming-Call-Requests it is offered, answering
                 none of them (Echo-Requests it answers);
  deaf-server:   a server on --local:1723: accepts one control connection, answers its start,
                 places one incoming call (Call ID --first-call-id) and then reads nothing for
                 up to --seconds; prints how its connection ended: "reset" (a TCP RST came),
                 "fin" (the peer closed in order), or null (still up at the end), when, and
                 how many bytes it left unread;
  many-calls:    a client toward --target:1723 that starts, asks --count outgoing calls in one
                 write and then, for up to --seconds, counts what comes (Outgoing-Call-Replies,
                 Call-Disconnect-Notifies) until its connection ends: "fin" or "reset";
  half-close:    a client that starts, writes --count Echo-Requests in one write, shuts its
                 sending side (SHUT_WR) and counts the Echo-Replies until the connection ends;
  clear-flood:   a client toward --target:1723 that starts, answers the incoming call the
                 server places (its own Call ID --key) and then, for --seconds, writes
                 Call-Clear-Requests for that call as fast as TCP takes them (the proxy relays
                 each to the server); then, with --reset, ends the connection with a RST
                 (SO_LINGER 0), else closes it in order. Prints the bytes TCP took and when
                 its writes last moved.
"""
import argparse
import fcntl
import json
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pptplab import messages as m  # noqa: E402

TCP_CLOSE, TCP_CLOSE_WAIT = 7, 8  # include/net/tcp_states.h
SIOCINQ = 0x541B  # FIONREAD: bytes received and not read


def tcp_state(s):
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def unread_bytes(s):
    return struct.unpack("i", fcntl.ioctl(s.fileno(), SIOCINQ, b"\0" * 4))[0]


class Stream:
    """Control messages read from a socket, each wait bounded; Echo-Requests answered."""

    def __init__(self, sock):
        self.sock = sock
        self.reader = m.Reader()
        self.pending = []
        self.closed = False
        self.ended = None  # how: "fin" or "reset"

    def next(self, deadline):
        """The next message (kind, bytes) before `deadline`, or None (time up or closed)."""
        while not self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return None
            except OSError:
                self.closed, self.ended = True, "reset"
                return None
            if not data:
                self.closed, self.ended = True, "fin"
                return None
            self.pending += self.reader.feed(data)
        kind, msg = self.pending.pop(0)
        if kind == m.ECHORQ:
            self.sock.sendall(m.echorp(m.u32(msg, 12)))
        return kind, msg

    def until(self, deadline):
        """Every message (kind, bytes) that comes before `deadline`."""
        while True:
            got = self.next(deadline)
            if got is None:
                return
            yield got

    def expect(self, kind, timeout):
        deadline = time.monotonic() + timeout
        while True:
            got = self.next(deadline)
            if got is None:
                raise OSError("no message of type %d within %g s" % (kind, timeout))
            if got[0] == kind:
                return got[1]


def accept_one(a):
    listener = socket.create_server((a.local, 1723))
    listener.settimeout(a.seconds)
    print("listening", flush=True)
    try:
        return listener.accept()[0]
    finally:
        listener.close()


def incoming_placer(a):
    sock = accept_one(a)
    stream = Stream(sock)
    try:
        stream.expect(m.SCCRQ, 10)
        sock.sendall(m.sccrp())
        sock.sendall(b"".join(m.icrq(a.first_call_id + i, i + 1) for i in range(a.count)))
        replies = [[m.u16(msg, 14), msg[16]]  # 2.10: Call ID, Peer's Call ID (ours), Result Code
                   for kind, msg in stream.until(time.monotonic() + a.hold) if kind == m.ICRP]
        return {"placed": a.count, "replies": replies, "closed": stream.closed}
    finally:
        sock.close()


def started_client(a, host):
    """A client's control connection to --target, started: (socket, stream, the server's
    Start-Control-Connection-Reply)."""
    sock = socket.create_connection((a.target, 1723), timeout=5, source_address=(a.local, 0))
    stream = Stream(sock)
    try:
        sock.sendall(m.sccrq(host))
        return sock, stream, stream.expect(m.SCCRP, 10)
    except OSError:
        sock.close()
        raise


def incoming_ignorer(a):
    sock, stream, start = started_client(a, "ignorer")
    try:
        offered, seen = [], []
        for kind, msg in stream.until(time.monotonic() + a.seconds):
            seen.append(kind)
            if kind == m.ICRQ:
                offered.append(m.u16(msg, 12))
        return {"start_result": start[14], "offered": offered, "seen": sorted(set(seen)), "closed": stream.closed}
    finally:
        sock.close()


def deaf_server(a):
    sock = accept_one(a)
    try:
        head = b""
        sock.settimeout(10)
        while len(head) < m.LENGTHS[m.SCCRQ]:  # exactly the start, nothing past it
            chunk = sock.recv(m.LENGTHS[m.SCCRQ] - len(head))
            if not chunk:
                return {"accepted": True, "error": "closed before its start"}
            head += chunk
        sock.sendall(m.sccrp() + m.icrq(a.first_call_id))
        started = time.monotonic()
        ended, after = None, None
        while time.monotonic() - started < a.seconds:
            state = tcp_state(sock)
            if state in (TCP_CLOSE, TCP_CLOSE_WAIT):
                ended, after = ("reset" if state == TCP_CLOSE else "fin"), round(time.monotonic() - started, 1)
                break
            time.sleep(0.1)
        return {"accepted": True, "ended": ended, "after": after, "unread": unread_bytes(sock)}
    finally:
        sock.close()


def count_until_closed(stream, seconds):
    """Messages by kind until the connection ends or `seconds` pass."""
    counts = {}
    for kind, _ in stream.until(time.monotonic() + seconds):
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def many_calls(a):
    sock, stream, _ = started_client(a, "many")
    try:
        sock.sendall(b"".join(m.ocrq(1000 + i, i + 1) for i in range(a.count)))
        counts = count_until_closed(stream, a.seconds)
        return {"asked": a.count, "replies": counts.get(m.OCRP, 0), "disconnects": counts.get(m.CDN, 0),
                "ended": stream.ended}
    finally:
        sock.close()


def half_close(a):
    sock, stream, _ = started_client(a, "halfclose")
    try:
        sock.sendall(b"".join(m.echorq(i) for i in range(a.count)))
        sock.shutdown(socket.SHUT_WR)
        counts = count_until_closed(stream, a.seconds)
        return {"sent": a.count, "replies": counts.get(m.ECHORP, 0), "ended": stream.ended}
    finally:
        sock.close()


def clear_flood(a):
    sock, stream, _ = started_client(a, "flood")
    try:
        icrq = stream.expect(m.ICRQ, 10)
        sock.sendall(m.icrp(a.key, m.u16(icrq, 12)))
        block = m.ccrq(a.key) * 1024  # 16 KiB
        sock.setblocking(False)
        started = time.monotonic()
        sent, offset, last_moved = 0, 0, 0.0
        while time.monotonic() - started < a.seconds:
            _, writable, _ = select.select([], [sock], [], 0.2)
            if not writable:
                continue
            try:
                n = sock.send(block[offset:])
            except BlockingIOError:
                continue
            sent += n
            offset = (offset + n) % len(block)
            last_moved = time.monotonic() - started
        if a.reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return {"sent": sent, "messages": sent // m.LENGTHS[m.CCRQ], "last_moved": round(last_moved, 1),
                "ended": "reset" if a.reset else "close"}
    finally:
        sock.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = {"incoming-placer": incoming_placer, "incoming-ignorer": incoming_ignorer, "deaf-server": deaf_server,
             "clear-flood": clear_flood, "many-calls": many_calls, "half-close": half_close}
    p.add_argument("kind", choices=sorted(kinds))
    p.add_argument("--local", required=True)
    p.add_argument("--target", help="the server's address (clients)")
    p.add_argument("--count", type=int, default=12, help="incoming-placer: calls placed")
    p.add_argument("--first-call-id", type=int, default=500, help="servers: the first Call ID they place")
    p.add_argument("--key", type=int, default=7, help="clear-flood: the client's Call ID")
    p.add_argument("--seconds", type=float, default=5.0,
                   help="servers: the wait for a connection (deaf-server: and then its longest silence); "
                   "incoming-ignorer: how long it counts; clear-flood: how long it writes")
    p.add_argument("--hold", type=float, default=3.0, help="incoming-placer: how long it collects replies")
    p.add_argument("--reset", action="store_true", help="clear-flood: end with a RST")
    a = p.parse_args()
    try:
        result = kinds[a.kind](a)
        result["ok"] = True
    except OSError as e:
        result = {"ok": False, "error": str(e)}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
