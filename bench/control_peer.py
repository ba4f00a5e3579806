#!/usr/bin/python3
"""The benchmark's control connections, with no GRE of their own (the C sender brings it):

  pac: listens on --local:1723, answers every Start-Control-Connection-Request and
       Outgoing-Call-Request, prints one JSON line per call as it is set up
       ({"peer_call_id": the Call ID the PAC was told, "call_id": its own}), and holds the
       connections until it is killed.
  pns: opens --connections control connections to --server from --local, places --calls
       calls on each (Call IDs from --call-id on), prints {"calls": n, "seconds": s, ...}, and
       holds the connections until it is killed. With --answer-wait S, a connection whose
       replies stop for S seconds counts its remaining calls as unanswered and the next
       connection is placed (how Call-ID exhaustion shows at the PNS).
       With --sequential, each call waits for its reply before the next is placed (one
       after another, as a busy PNS places them when users dial in): it prints the set-up
       rate and every Outgoing-Call-Request to Outgoing-Call-Reply round trip's median,
       p90 and p99 (bench/setup_bench.py).
  --quiet (pac): no line per call (the set-up benchmark does not need the Call IDs, and a
       line per call is work on the PAC's side of every round trip).
"""
import argparse
import json
import os
import resource
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "e2e"))
from pptplab import messages as m  # noqa: E402


def read_message(sock, buffer, deadline=None):
    while True:
        if len(buffer) >= 2:
            length = int.from_bytes(buffer[:2], "big")
            if len(buffer) >= length:
                msg = bytes(buffer[:length])
                del buffer[:length]
                return msg
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer")
            sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no answer") from None
        finally:
            if deadline is not None:
                sock.settimeout(30)
        if not data:
            raise EOFError("connection closed")
        buffer.extend(data)


def run_pac(a):
    # One thread, a selector: thousands of control connections (the kernel helper needs one
    # per call) cost no threads.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((a.local, a.port))
    listener.listen(4096)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    next_id = a.call_id
    print(json.dumps({"listening": True}), flush=True)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                sock, _ = listener.accept()
                sock.setblocking(True)
                sel.register(sock, selectors.EVENT_READ, bytearray())
                continue
            sock, buffer = key.fileobj, key.data
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                sel.unregister(sock)
                sock.close()
                continue
            buffer.extend(data)
            while len(buffer) >= 2 and len(buffer) >= int.from_bytes(buffer[:2], "big"):
                length = int.from_bytes(buffer[:2], "big")
                msg = bytes(buffer[:length])
                del buffer[:length]
                if length < 12:
                    continue
                kind = m.u16(msg, 8)
                if kind == m.SCCRQ:
                    sock.sendall(m.sccrp())
                elif kind == m.OCRQ:
                    peer = m.u16(msg, 12)
                    sock.sendall(m.ocrp(next_id & 0xFFFF, peer))
                    if not a.quiet:
                        print(json.dumps({"peer_call_id": peer, "call_id": next_id & 0xFFFF}), flush=True)
                    next_id += 1
                elif kind == m.ECHORQ:
                    sock.sendall(m.echorp(m.u32(msg, 12)))


def percentile(ordered, fraction):
    """The value below which `fraction` of the sorted samples lie (nearest rank)."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


def round_trip_summary(rtts, calls, seconds):
    ordered = sorted(rtts)
    return {"calls": calls, "seconds": round(seconds, 3), "calls_per_second": round(calls / seconds, 1) if seconds else 0,
            "rtt_median_ms": round(1000 * percentile(ordered, 0.5), 4),
            "rtt_p90_ms": round(1000 * percentile(ordered, 0.9), 4),
            "rtt_p99_ms": round(1000 * percentile(ordered, 0.99), 4)}


def run_pns_sequential(a):
    """Calls one after another: a request, its reply, the next request. The rate counts the
    calls only (the control connections are opened before the clock starts). Exits when done."""
    sockets = []
    for _ in range(a.connections):
        s = socket.create_connection((a.server, a.port), timeout=30, source_address=(a.local, 0))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(m.sccrq("bench"))
        buffer = bytearray()
        read_message(s, buffer)
        sockets.append((s, buffer))
    rtts = []
    start = time.perf_counter()
    for i in range(a.connections * a.calls):
        s, buffer = sockets[i % a.connections]  # round robin: every connection keeps calls
        request = m.ocrq((a.call_id + i) & 0xFFFF, i & 0xFFFF)
        sent_at = time.perf_counter()
        s.sendall(request)
        reply = read_message(s, buffer)
        rtts.append(time.perf_counter() - sent_at)
        if m.u16(reply, 8) != m.OCRP:
            raise RuntimeError("expected an Outgoing-Call-Reply, got message type %d" % m.u16(reply, 8))
    seconds = time.perf_counter() - start
    print(json.dumps(round_trip_summary(rtts, len(rtts), seconds)), flush=True)
    for s, _ in sockets:
        s.close()


def run_pns(a):
    if a.sequential:
        return run_pns_sequential(a)
    start = time.monotonic()
    sockets = []
    placed = unanswered = 0
    rtts = []  # Outgoing-Call-Request to its reply, per connection (one call each)
    for c in range(a.connections):
        s = socket.create_connection((a.server, a.port), timeout=30, source_address=(a.local, 0))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray()
        s.sendall(m.sccrq("bench"))
        read_message(s, buffer)
        # Pipelined: every request first, then every reply.
        first = a.call_id + c * a.calls
        sent_at = time.monotonic()
        requests = b"".join(m.ocrq((first + i) & 0xFFFF, i) for i in range(a.calls))
        if a.answer_wait:
            # A stalled connection stops taking data: what is not sent counts as unanswered.
            s.settimeout(a.answer_wait)
            try:
                s.sendall(requests)
            except socket.timeout:
                pass
            s.settimeout(30)
        else:
            s.sendall(requests)
        answered = 0
        try:
            for _ in range(a.calls):
                deadline = time.monotonic() + a.answer_wait if a.answer_wait else None
                read_message(s, buffer, deadline)
                answered += 1
        except TimeoutError:
            if not a.answer_wait:
                raise
        placed += answered
        unanswered += a.calls - answered
        if answered == a.calls:
            rtts.append(time.monotonic() - sent_at)
        sockets.append(s)
    rtts = sorted(rtts)
    print(json.dumps({"calls": placed, "unanswered": unanswered, "seconds": round(time.monotonic() - start, 3),
                      "rtt_median_ms": round(1000 * percentile(rtts, 0.5), 3),
                      "rtt_p99_ms": round(1000 * percentile(rtts, 0.99), 3)}), flush=True)
    while True:
        time.sleep(3600)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("role", choices=["pac", "pns"])
    p.add_argument("--local", required=True)
    p.add_argument("--server")
    p.add_argument("--call-id", type=int, default=1)
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--calls", type=int, default=1, help="calls per connection")
    p.add_argument("--answer-wait", type=float, default=0,
                   help="seconds without a reply after which a connection's remaining calls count as unanswered")
    p.add_argument("--port", type=int, default=1723, help="the PAC's port (another one for a test on loopback)")
    p.add_argument("--sequential", action="store_true", help="pns: each call waits for its reply")
    p.add_argument("--quiet", action="store_true", help="pac: no line per call")
    a = p.parse_args()
    # One descriptor per control connection: the kernel helper's runs need thousands.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    (run_pac if a.role == "pac" else run_pns)(a)


if __name__ == "__main__":
    main()
