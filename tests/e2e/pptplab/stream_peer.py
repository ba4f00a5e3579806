#!/usr/bin/python3
"""A PPTP peer that streams sequence-numbered GRE frames at a fixed rate, for measuring a
failover (tests/e2e/test_ha_e2e.py). Run inside a lab namespace; one select loop, every
wait bounded; prints JSON lines: {"event": ...} as things happen, the result last.

  pns: one control connection, --calls outgoing calls (1) from the Call ID it is told. Commands on
       standard input, one a line: "echo" (an Echo-Request, RFC 2637 2.4), "call" (one more
       Outgoing-Call-Request, 2.7, with the next Call ID; an "up" event when answered), "clear" (a
       Call-Clear-Request, 2.11, for the first call not cleared yet: the PAC answers with
       Call-Disconnect-Notify), "clear-head N" and "clear-tail" (that request in two segments,
       its first N bytes then the rest), "stop".
  pac: answers any number of control connections and outgoing calls; answers Echo-Request
       and Call-Clear-Request; "stop" on standard input (or its end) ends it. --windows: a
       Call-Clear-Request is answered as Windows servers do, naming the client's Call ID as
       the PAC knows it (docs/protocol-notes.md): a WAN-Error-Notify, then the
       Call-Disconnect-Notify (not the PAC's own Call ID, RFC 2637 2.13).
       "wen-head N" writes only the first N bytes of a WAN-Error-Notify (2.14) naming its
       first call's PNS Call ID, "wen-tail" the rest: one message split across two TCP
       segments at a time the test chooses (a failover between them); "wen" all of it.
Both stream on every call: payload b"seq:" + sequence (4 bytes) + send time (monotonic, 8
bytes, a double: the namespaces share the host's clock), and keep what they received as
[sequence, send time, receive time], so the test reads frames lost and gaps per direction."""
import argparse
import json
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pptplab import gre, messages as m  # noqa: E402

PPP_IP = bytes([0xFF, 0x03, 0x00, 0x21])
TAG = b"seq:"


def emit(obj):
    print(json.dumps(obj), flush=True)


class StdinLines:
    """Commands on standard input, every complete line one read brought. Not
    sys.stdin.readline() after select(): two lines written together arrive in one read, and
    the second would wait in Python's buffer, which select() on the descriptor never
    reports (an "echo" then "stop" lost its "stop" under load)."""

    def __init__(self):
        self.partial = b""

    def read(self):
        """The lines now complete, stripped; an empty one last at the input's end."""
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            rest, self.partial = self.partial.strip(), b""
            return ([rest.decode(errors="replace")] if rest else []) + [""]
        *lines, self.partial = (self.partial + data).split(b"\n")
        return [line.decode(errors="replace").strip() for line in lines]


def echorq(identifier):
    return m.message(m.ECHORQ, struct.pack("!I", identifier))


class Stream:
    """One call's two directions: what we send (key: the peer's Call ID) and receive."""

    def __init__(self, send_key, recv_key, peer):
        self.send_key, self.recv_key, self.peer = send_key, recv_key, peer
        self.sent = 0
        self.received = []  # [sequence, sent at, received at]
        self.active = True

    def send(self, raw):
        payload = PPP_IP + TAG + struct.pack("!Id", self.sent, time.monotonic())
        raw.sendto(gre.build(self.send_key, payload, seq=self.sent), (self.peer, 0))
        self.sent += 1

    def take(self, payload):
        body = payload[4:] if payload[:4] == PPP_IP else b""
        if body[:4] == TAG and len(body) >= 16:
            seq, sent_at = struct.unpack("!Id", body[4:16])
            self.received.append([seq, round(sent_at, 4), round(time.monotonic(), 4)])

    def summary(self):
        return {"send_key": self.send_key, "recv_key": self.recv_key, "sent": self.sent, "received": self.received}


class Connection:
    """A control connection's socket and its message reader."""

    def __init__(self, sock):
        self.sock = sock
        self.reader = m.Reader()
        self.closed = False

    def messages(self):
        try:
            data = self.sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return []
        return self.reader.feed(data)

    def send(self, msg):
        try:
            self.sock.sendall(msg)
        except OSError:
            self.closed = True


def pump(raw, streams, local, period, next_send):
    """Sends a frame on every active stream when due; returns the next due time."""
    now = time.monotonic()
    if now >= next_send:
        for s in streams:
            if s.active:
                s.send(raw)
        next_send = max(next_send + period, now - period)
    return next_send


def take_gre(raw, streams, local):
    parsed = gre.parse(raw.recv(65535))
    if parsed is None or parsed[1] != local:
        return
    for s in streams:
        if s.recv_key == parsed[2] and s.peer == parsed[0]:
            s.take(parsed[3])


def open_calls(ctl, sock, a):
    """Outgoing calls with Call IDs call_id, call_id + 1, ... once the control connection is
    up (RFC 2637 2.2); an "up" event (with its time) for each as its reply comes."""
    streams = []
    deadline = time.monotonic() + 15 + a.calls * 0.2
    while len(streams) < a.calls and time.monotonic() < deadline and not ctl.closed:
        if select.select([sock], [], [], 0.5)[0]:
            for kind, msg in ctl.messages():
                if kind == m.SCCRP:
                    for n in range(a.calls):
                        ctl.send(m.ocrq(a.call_id + n))
                elif kind == m.OCRP:
                    streams.append(Stream(m.u16(msg, 12), m.u16(msg, 14), a.server))
                    emit({"event": "up", "my_call_id": m.u16(msg, 14), "peer_call_id": m.u16(msg, 12),
                          "result_code": msg[16], "at": round(time.monotonic(), 4)})
    return streams


def run_pns(a):
    raw = gre.open_socket(a.local)
    sock = socket.create_connection((a.server, 1723), timeout=10, source_address=(a.local, 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ctl = Connection(sock)
    ctl.send(m.sccrq("stream"))
    result = {"role": "pns", "ok": False, "echo_replies": [], "disconnect": None, "events": []}
    streams = open_calls(ctl, sock, a)
    if len(streams) < a.calls:
        result["error"] = "no Outgoing-Call-Reply"
        emit(result)
        return 1
    stream = streams[0]  # the result's "stream" (the one a single "clear" hangs up)
    period, next_send, echo_id, cleared, placed, split = 1.0 / a.rate, 0.0, 0, [], 0, b""
    stdin_open, end = True, time.monotonic() + a.max_duration
    commands = StdinLines()
    while time.monotonic() < end:
        next_send = pump(raw, streams, a.local, period, next_send)
        wait = [raw] + ([sock] if not ctl.closed else []) + ([sys.stdin] if stdin_open else [])
        for r in select.select(wait, [], [], max(0.0, min(period, next_send - time.monotonic())))[0]:
            if r is raw:
                take_gre(raw, streams, a.local)
            elif r is sock:
                for kind, msg in ctl.messages():
                    if kind == m.ECHORQ:
                        ctl.send(m.echorp(m.u32(msg, 12)))
                    elif kind == m.ECHORP:
                        result["echo_replies"].append([m.u32(msg, 12), round(time.monotonic(), 4)])
                        emit({"event": "echo_reply", "id": m.u32(msg, 12)})
                    elif kind == m.OCRP:  # a call placed with "call"
                        streams.append(Stream(m.u16(msg, 12), m.u16(msg, 14), a.server))
                        emit({"event": "up", "my_call_id": m.u16(msg, 14), "peer_call_id": m.u16(msg, 12),
                              "result_code": msg[16], "at": round(time.monotonic(), 4)})
                    elif kind == m.WEN:
                        result.setdefault("wan_errors", []).append(m.u16(msg, 12))
                        emit({"event": "wan_error", "call_id": m.u16(msg, 12)})
                    elif kind == m.CDN:
                        for s in streams:  # named by the client's or (RFC 2637 2.13) the server's Call ID
                            if m.u16(msg, 12) in (s.recv_key, s.send_key):
                                s.active = False
                        result["disconnect"] = {"call_id": m.u16(msg, 12), "at": round(time.monotonic(), 4)}
                        emit({"event": "disconnect", "call_id": m.u16(msg, 12)})
            else:
                for line in commands.read():
                    stdin_open = bool(line)  # an empty line or the input's end
                    if not stdin_open:
                        break
                    result["events"].append([line, round(time.monotonic(), 4)])
                    if line == "echo":
                        echo_id += 1
                        ctl.send(echorq(echo_id))
                    elif line == "call":  # one more outgoing call on this connection
                        placed += 1
                        ctl.send(m.ocrq(a.call_id + a.calls + placed - 1))
                    elif line == "clear" or line.startswith("clear-head ") or line == "clear-tail":
                        split = clear_call(ctl, streams, cleared, line, split)
                    elif line == "stop":
                        end = 0
    ctl.send(m.stopccrq())
    result.update(ok=True, connection_closed=ctl.closed, stream=stream.summary(),
                  streams=[s.summary() for s in streams])
    emit(result)
    sock.close()
    raw.close()
    return 0


def clear_call(ctl, streams, cleared, line, split):
    """"clear": a Call-Clear-Request (RFC 2637 2.11) for the first call not cleared yet;
    "clear-head N" writes only its first N bytes, "clear-tail" the rest (TCP_NODELAY: each
    part leaves as its own segment, a failover between them). Returns what is left to write."""
    if line == "clear-tail":
        ctl.send(split)
        emit({"event": "clear-tail", "bytes": len(split), "at": round(time.monotonic(), 4)})
        return b""
    live = [s for s in streams if s.active and s.recv_key not in cleared]
    if not live:
        return split
    cleared.append(live[0].recv_key)
    msg = m.ccrq(live[0].recv_key)
    at = int(line.split()[1]) if line.startswith("clear-head ") else len(msg)
    ctl.send(msg[:at])
    if at < len(msg):
        emit({"event": "clear-head", "bytes": at, "call_id": live[0].recv_key, "at": round(time.monotonic(), 4)})
    return msg[at:]


def pac_message(pac, conn, kind, msg, peer):
    """The PAC's answer to one control message."""
    if kind == m.SCCRQ:
        conn.send(m.sccrp())
    elif kind == m.OCRQ:
        my_id = pac["next_id"]
        pac["next_id"] += 1
        pac["calls"][my_id] = (conn, Stream(m.u16(msg, 12), my_id, peer))
        conn.send(m.ocrp(my_id, m.u16(msg, 12)))
        emit({"event": "call", "my_call_id": my_id, "peer_call_id": m.u16(msg, 12), "peer": peer})
    elif kind == m.ECHORQ:
        pac["echo_requests"] += 1
        conn.send(m.echorp(m.u32(msg, 12)))
    elif kind == m.CCRQ:
        named = m.u16(msg, 12)
        pac["clears"].append(named)
        for my_id, (c, s) in pac["calls"].items():
            if c is conn and s.send_key == named and s.active:
                s.active = False
                if pac["windows"]:
                    conn.send(m.wen(named))
                conn.send(m.cdn(named if pac["windows"] else my_id))
    elif kind == m.STOPCCRQ:
        conn.send(m.stopccrp())


def split_message(pac, line):
    """"wen-head N" / "wen-tail": a WAN-Error-Notify on the first call, written in two parts
    (TCP_NODELAY: each part leaves as its own segment when written); "wen": in one."""
    words = line.split()
    if not words or words[0] not in ("wen", "wen-head", "wen-tail") or not pac["calls"]:
        return
    conn, s = pac["calls"][min(pac["calls"])]
    if words[0] in ("wen", "wen-head"):
        pac["split"] = m.wen(s.send_key)
        at = int(words[1]) if len(words) > 1 else len(pac["split"])
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        part, pac["split"] = pac["split"][:at], pac["split"][at:]
    else:
        part, pac["split"] = pac.get("split", b""), b""
    conn.send(part)
    emit({"event": words[0], "bytes": len(part), "call_id": s.send_key, "at": round(time.monotonic(), 4)})


def run_pac(a):
    raw = gre.open_socket(a.local)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((a.local, 1723))
    listener.listen(16)
    emit({"event": "listening"})
    pac = {"next_id": a.first_call_id, "calls": {}, "echo_requests": 0, "clears": [], "windows": a.windows}
    conns = {}
    period, next_send = 1.0 / a.rate, 0.0
    stdin_open, end = True, time.monotonic() + a.max_duration
    commands = StdinLines()
    while time.monotonic() < end and stdin_open:
        streams = [s for _, s in pac["calls"].values()]
        next_send = pump(raw, streams, a.local, period, next_send)
        wait = [raw, listener] + [c.sock for c in conns.values() if not c.closed] + [sys.stdin]
        for r in select.select(wait, [], [], max(0.0, min(period, next_send - time.monotonic())))[0]:
            if r is raw:
                take_gre(raw, streams, a.local)
            elif r is listener:
                sock, peer = listener.accept()
                conns[sock] = Connection(sock)
                conns[sock].peer = peer[0]
            elif r is sys.stdin:
                for line in commands.read():
                    stdin_open = line not in ("stop", "")
                    if not stdin_open:
                        break
                    split_message(pac, line)
            else:
                conn = conns[r]
                for kind, msg in conn.messages():
                    pac_message(pac, conn, kind, msg, conn.peer)
    result = {"role": "pac", "ok": True, "echo_requests": pac["echo_requests"], "clears": pac["clears"],
              "connections": len(conns),
              "calls": {str(k): dict(s.summary(), active=s.active) for k, (_, s) in pac["calls"].items()}}
    emit(result)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("role", choices=["pns", "pac"])
    p.add_argument("--local", required=True)
    p.add_argument("--server", help="pns: the PAC's address")
    p.add_argument("--call-id", type=int, default=7, help="pns: the Call ID of its (first) call")
    p.add_argument("--calls", type=int, default=1, help="pns: how many calls on its control connection")
    p.add_argument("--first-call-id", type=int, default=500, help="pac: its first Call ID")
    p.add_argument("--windows", action="store_true", help="pac: clears answered as Windows servers do")
    p.add_argument("--rate", type=float, default=50.0, help="frames per second per call and direction")
    p.add_argument("--max-duration", type=float, default=120.0)
    a = p.parse_args()
    return run_pns(a) if a.role == "pns" else run_pac(a)


if __name__ == "__main__":
    sys.exit(main())
