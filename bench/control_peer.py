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
    listener.bind((a.local, 1723))
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
                    print(json.dumps({"peer_call_id": peer, "call_id": next_id & 0xFFFF}), flush=True)
                    next_id += 1
                elif kind == m.ECHORQ:
                    sock.sendall(m.echorp(m.u32(msg, 12)))


def run_pns(a):
    start = time.monotonic()
    sockets = []
    placed = unanswered = 0
    rtts = []  # Outgoing-Call-Request to its reply, per connection (one call each)
    for c in range(a.connections):
        s = socket.create_connection((a.server, 1723), timeout=30, source_address=(a.local, 0))
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
    rtts = sorted(rtts) or [0.0]
    print(json.dumps({"calls": placed, "unanswered": unanswered, "seconds": round(time.monotonic() - start, 3),
                      "rtt_median_ms": round(1000 * rtts[len(rtts) // 2], 3),
                      "rtt_p99_ms": round(1000 * rtts[min(len(rtts) - 1, len(rtts) * 99 // 100)], 3)}), flush=True)
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
    a = p.parse_args()
    # One descriptor per control connection: the kernel helper's runs need thousands.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    (run_pac if a.role == "pac" else run_pns)(a)


if __name__ == "__main__":
    main()
