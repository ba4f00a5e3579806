#!/usr/bin/python3
"""A scripted PPTP peer, run inside a lab namespace; prints one JSON result line.

  pns: connects to a server, places --calls outgoing calls with the Call IDs it is told
       (so that clients collide on purpose: pptp-linux picks random ones), or with
       --incoming answers one call the server places. It sends tagged IP frames in GRE for
       --duration seconds and counts the echoes: its own, and any that are not its own.
  pac: listens, places one incoming call (Incoming-Call-Request/Reply/Connected), and
       echoes the GRE it receives, as ppp_echo_server does for pptpd. With --windows-cdn
       its Call-Disconnect-Notify carries the client's Call ID (as this PAC knows it)
       instead of its own, as Windows servers do.
Every wait is bounded."""
import argparse
import json
import os
import select
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pptplab import gre, hdlc, messages as m  # noqa: E402
from pptplab.lab import ECHO_DRAIN_SECONDS, TIME_SCALE  # noqa: E402

STEP_TIMEOUT = 10.0 * TIME_SCALE  # one message or frame awaited (a slow machine's server is late)


def split_pause(msg, pause):
    """--split-pause: the time between the two parts of an Outgoing-Call-Request (a slow or
    lossy link); every other message keeps a short one."""
    return pause if pause is not None and m.u16(msg, 8) == m.OCRQ else 0.02


class Control:
    def __init__(self, sock, split=0):
        self.sock = sock
        self.split = split  # send each message in two TCP segments, cut at this byte
        self.split_pause = None  # seconds between an Outgoing-Call-Request's two parts (--split-pause)
        self.reader = m.Reader()
        self.pending = []
        self.log = []

    def send(self, msg):
        if 0 < self.split < len(msg):
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.sendall(msg[:self.split])
            time.sleep(split_pause(msg, self.split_pause))
            self.sock.sendall(msg[self.split:])
        else:
            self.sock.sendall(msg)

    def expect(self, kinds, timeout=STEP_TIMEOUT):
        """Next message of one of `kinds`; Echo-Requests are answered on the way."""
        deadline = time.monotonic() + timeout
        while True:
            while self.pending:
                kind, msg = self.pending.pop(0)
                self.log.append(kind)
                if kind == m.ECHORQ:
                    self.send(m.echorp(m.u32(msg, 12)))
                    continue
                if kind in kinds:
                    return kind, msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message of type %s (saw %s)" % (kinds, self.log))
            self.sock.settimeout(left)
            data = self.sock.recv(4096)
            if not data:
                raise EOFError("control connection closed (saw %s)" % self.log)
            self.pending += self.reader.feed(data)

    def poll(self):
        """Messages that arrived, without waiting."""
        self.sock.setblocking(False)
        try:
            while True:
                data = self.sock.recv(4096)
                if not data:
                    break
                self.pending += self.reader.feed(data)
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)
        out = [(k, msg) for k, msg in self.pending if k != m.ECHORQ]
        for k, msg in self.pending:
            if k == m.ECHORQ:
                self.send(m.echorp(m.u32(msg, 12)))
        self.pending = []
        self.log += [k for k, _ in out]
        return out


def exchange(raw, local, peer, calls, tag, duration, echo_mode=False, seq=0):
    """Sends tagged frames on every call for `duration` seconds and counts what returns.
    calls: list of dicts with my_call_id (receive key) and peer_call_id (send key). GRE
    sequence numbers start at `seq` (servers discard old ones); the next is left in each
    call's "next_seq"."""
    by_key = {c["my_call_id"]: c for c in calls}
    for c in calls:
        c.update(sent=0, echoed=0, foreign=0, lcp=0, received=0)
    started = time.monotonic()
    deadline = started + duration
    next_send = 0.0
    while True:
        now = time.monotonic()
        if now >= deadline and (echo_mode or now >= deadline + ECHO_DRAIN_SECONDS
                                or all(c["echoed"] >= c["sent"] for c in calls)):
            break
        if now >= next_send and now < deadline and not echo_mode:
            for c in calls:
                payload = ("%s/%d/%d" % (tag, c["my_call_id"], c["sent"])).encode()
                frame = bytes([0xFF, 0x03, 0x00, 0x21]) + payload
                raw.sendto(gre.build(c["peer_call_id"], frame, seq=seq), (peer, 0))
                seq += 1
                c["sent"] += 1
            next_send = now + 0.1
        r, _, _ = select.select([raw], [], [], 0.05)
        if not r:
            continue
        packet = raw.recv(65535)
        parsed = gre.parse(packet)
        if parsed is None:
            continue
        src, dst, key, payload = parsed
        if dst != local or src != peer:
            continue
        c = by_key.get(key)
        if c is None or not payload:
            continue
        c["received"] += 1
        body = payload[2:] if payload[:2] == b"\xff\x03" else payload
        proto, info = (body[0] << 8) | body[1], body[2:]
        if proto == hdlc.PROTO_LCP:
            c["lcp"] += 1
        elif echo_mode and proto == hdlc.PROTO_IP:
            frame = bytes([0xFF, 0x03, 0x00, 0x21]) + b"echo:" + info
            raw.sendto(gre.build(c["peer_call_id"], frame, seq=seq), (peer, 0))
            seq += 1
            c["echoed"] += 1
        elif proto == hdlc.PROTO_IP and info.startswith(b"echo:"):
            mine = ("%s/%d/" % (tag, c["my_call_id"])).encode()
            if info[5:].startswith(mine):
                c["echoed"] += 1
                c.setdefault("first_echo_after", round(time.monotonic() - started, 2))
            else:
                c["foreign"] += 1
    for c in calls:
        c["next_seq"] = seq
    return calls


def ppp(protocol, info):
    return bytes([0xFF, 0x03, protocol >> 8, protocol & 0xFF]) + bytes(info)


def pap_request(identifier, name, password=b"secret"):
    """RFC 1334 2.2.1: Authenticate-Request, Peer-ID and Password in the clear."""
    body = bytes([len(name)]) + name + bytes([len(password)]) + password
    return ppp(hdlc.PROTO_PAP, bytes([1, identifier]) + (4 + len(body)).to_bytes(2, "big") + body)


def chap_response(identifier, name):
    """RFC 1994 4.1: a CHAP Response (code 2) with a 16-byte Value and the Name."""
    body = bytes([16]) + b"\x5a" * 16 + name
    return ppp(hdlc.PROTO_CHAP, bytes([2, identifier]) + (4 + len(body)).to_bytes(2, "big") + body)


def await_ppp(raw, local, peer, call, want, timeout):
    """The first PPP frame of `call` from the peer for which want(protocol, info) holds, or
    None after `timeout` seconds; other frames are discarded (LCP counted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([raw], [], [], 0.05)
        if not r:
            continue
        parsed = gre.parse(raw.recv(65535))
        if parsed is None or parsed[0] != peer or parsed[1] != local or parsed[2] != call["my_call_id"]:
            continue
        body = parsed[3][2:] if parsed[3][:2] == b"\xff\x03" else parsed[3]
        if len(body) < 2:
            continue
        proto, info = (body[0] << 8) | body[1], body[2:]
        call["lcp_seen"] = call.get("lcp_seen", 0) + (proto == hdlc.PROTO_LCP)
        if want(proto, info):
            return proto, info
    return None


def send_ppp(raw, a, call, frame):
    """One PPP frame on `call`, with the call's next GRE sequence number."""
    seq = call.get("next_seq", 0)
    raw.sendto(gre.build(call["peer_call_id"], frame, seq=seq), (a.server, 0))
    call["next_seq"] = seq + 1


def pap(raw, a, call, identifier, name):
    """Sends a PAP Authenticate-Request and waits (bounded) for the server's answer with
    its Identifier: "ack", "nak" or None (the gateway may drop a denied user's Ack)."""
    send_ppp(raw, a, call, pap_request(identifier, name.encode()))
    got = await_ppp(raw, a.local, a.server, call,
                    lambda p, i: p == hdlc.PROTO_PAP and len(i) >= 2 and i[0] in (2, 3) and i[1] == identifier,
                    a.auth_timeout)
    return None if got is None else ("ack" if got[1][0] == 2 else "nak")


PROTO_EAP = 0xC227  # RFC 2284


def eap_identity_response(identifier, name):
    """RFC 3748 5.1: an EAP Response (code 2), type 1 (Identity) naming `name`."""
    body = bytes([2, identifier]) + (5 + len(name)).to_bytes(2, "big") + b"\x01" + name
    return ppp(PROTO_EAP, body)


def before_authentication(raw, a, call):
    """--empty-gre N: N GRE packets without payload (sequence numbers only); --forge-eap
    NAME: an unsolicited EAP Response/Identity naming NAME (a claim the server never
    confirms)."""
    for _ in range(a.empty_gre):
        send_ppp(raw, a, call, b"")
    if a.forge_eap:
        send_ppp(raw, a, call, eap_identity_response(1, a.forge_eap.encode()))


def authenticate(raw, a, call):
    """The PPP authentication options of a PNS (--forge-chap, --pap) on its first call,
    after the server's LCP showed the call is up."""
    call["server_lcp"] = await_ppp(raw, a.local, a.server, call, lambda p, i: p == hdlc.PROTO_LCP,
                                   STEP_TIMEOUT) is not None
    before_authentication(raw, a, call)
    if a.forge_chap:  # unsolicited: no Challenge asked for it (RFC 1994 4.1)
        send_ppp(raw, a, call, chap_response(1, a.forge_chap.encode()))
    if a.pap and a.pap_ambiguous:  # two names under Identifier 1, then a third request
        send_ppp(raw, a, call, pap_request(1, a.pap.encode()))
        send_ppp(raw, a, call, pap_request(1, a.pap_ambiguous.encode()))
        time.sleep(0.3)
        call["pap"] = pap(raw, a, call, 3, a.pap_ambiguous)
    elif a.pap and a.pap_evict:  # the checked request pushed out by four more (kMaxPendingPapRequests)
        send_ppp(raw, a, call, pap_request(1, a.pap.encode()))
        for identifier in (2, 3, 4, 5):
            send_ppp(raw, a, call, pap_request(identifier, a.pap_evict.encode()))
        time.sleep(0.5)
    elif a.pap:
        call["pap"] = pap(raw, a, call, 1, a.pap)


def reauthenticate(raw, a, call):
    """--reauth NAME: asks the server (ppp_echo_server) for a new LCP Configure-Request, as a
    server starting the link again sends, then authenticates by PAP as NAME."""
    send_ppp(raw, a, call, ppp(hdlc.PROTO_IP, b"reauth"))
    got = await_ppp(raw, a.local, a.server, call, lambda p, i: p == hdlc.PROTO_LCP and i[:1] == b"\x01",
                    STEP_TIMEOUT)
    call["reauth_lcp"] = got is not None
    if got is not None:  # Configure-Ack, as a client does
        send_ppp(raw, a, call, ppp(hdlc.PROTO_LCP, b"\x02" + got[1][1:]))
    call["reauth_pap"] = pap(raw, a, call, 2, a.reauth)


def reuse_after_clear(ctl, sock, raw, a, first, calls):
    """--reuse-after-clear: a Call-Clear-Request for the first call and, in the same TCP
    segment (before the PAC's Call-Disconnect-Notify), an Outgoing-Call-Request naming its
    Call ID again (RFC 2637 2.12, 2.13); then frames on the new call. Returns it."""
    sock.sendall(m.ccrq(first["my_call_id"]) + m.ocrq(first["my_call_id"]))
    _, notify = ctl.expect([m.CDN])
    first["ended_by"] = "call_disconnect_notify"
    first["disconnect_call_id"] = m.u16(notify, 12)
    _, reply = ctl.expect([m.OCRP])
    again = {"my_call_id": m.u16(reply, 14), "peer_call_id": m.u16(reply, 12), "result": reply[16],
             "asked_call_id": first["my_call_id"], "reused": True}
    calls.append(again)
    if again["result"] == 1:
        exchange(raw, a.local, a.server, [again], a.tag + "-again", a.duration, seq=first.get("next_seq", 0))
    return again


def run_pns(a):
    result = {"role": "pns", "tag": a.tag, "local": a.local, "ok": False}
    raw = gre.open_socket(a.local)
    sock = socket.create_connection((a.server, 1723), timeout=STEP_TIMEOUT, source_address=(a.local, 0))
    ctl = Control(sock, a.split)
    ctl.split_pause = a.split_pause
    try:
        early = a.no_start or a.pipeline
        if early:  # the first request in a segment of its own, before any reply (RFC 2637 2.1 has the PNS wait)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not a.no_start:
            ctl.send(m.sccrq(a.tag))
        if early:
            ctl.send(m.ocrq(a.call_ids[0]))
        if not a.no_start:
            _, reply = ctl.expect([m.SCCRP])
            result["start_result"] = reply[14]
        calls = []
        result["calls"] = calls  # what happened to each call, even if the connection fails later
        if a.incoming:
            _, req = ctl.expect([m.ICRQ])
            peer = m.u16(req, 12)
            ctl.send(m.icrp(a.call_ids[0], peer))
            ctl.expect([m.ICCN])
            calls.append({"my_call_id": a.call_ids[0], "peer_call_id": peer, "result": 1})
        else:
            if a.coalesce:  # every Outgoing-Call-Request in one TCP segment
                sock.sendall(b"".join(m.ocrq(cid) for cid in a.call_ids))
            for i, cid in enumerate(a.call_ids):
                if not a.coalesce and not (early and i == 0):
                    ctl.send(m.ocrq(cid))
                _, reply = ctl.expect([m.OCRP])
                calls.append({"my_call_id": m.u16(reply, 14), "peer_call_id": m.u16(reply, 12),
                              "result": reply[16], "asked_call_id": cid})
        up = [c for c in calls if c["result"] == 1]
        set_up = time.monotonic()
        if up and (a.pap or a.forge_chap):
            authenticate(raw, a, up[0])
        elif a.await_server_lcp:  # the data phase starts once the server's PPP program runs
            for c in up:
                c["server_lcp"] = await_ppp(raw, a.local, a.server, c, lambda p, i: p == hdlc.PROTO_LCP,
                                            STEP_TIMEOUT) is not None
                c["server_lcp_after"] = round(time.monotonic() - set_up, 2)  # seconds after the reply
                c["lcp_wait_ended_at"] = time.time()  # wall clock, to compare with the server's programs
        exchange(raw, a.local, a.server, up, a.tag, a.duration, seq=up[0].get("next_seq", 0) if up else 0)
        if up and a.pap_unchecked:
            # A PAP request naming another user with no new link establishment: the server
            # acks it unchecked (RFC 1334 2.2.1).
            up[0]["before_reauth"] = {k: up[0][k] for k in ("sent", "echoed", "foreign")}
            up[0]["pap_unchecked"] = pap(raw, a, up[0], 2, a.pap_unchecked)
            exchange(raw, a.local, a.server, up[:1], a.tag + "-after", a.duration, seq=up[0]["next_seq"])
        if up and a.reauth:
            # Counted apart: what came back before the second name, and after it.
            up[0]["before_reauth"] = {k: up[0][k] for k in ("sent", "echoed", "foreign")}
            reauthenticate(raw, a, up[0])
            exchange(raw, a.local, a.server, up[:1], a.tag + "-after", a.duration, seq=up[0]["next_seq"])
        if up and a.reuse_after_clear:
            up = [c for c in [reuse_after_clear(ctl, sock, raw, a, up[0], calls)] if c["result"] == 1]
        linger_end = time.monotonic() + a.linger  # control connection up, no GRE
        while time.monotonic() < linger_end:
            ctl.poll()
            time.sleep(0.1)
        closed = False
        if a.coalesce and a.hangup == "client" and up:  # every Call-Clear-Request in one segment
            sock.sendall(b"".join(m.ccrq(c["my_call_id"]) for c in up))
        for c in up:
            if closed:
                break
            if a.hangup == "client" and a.coalesce:
                pass  # sent above
            elif a.hangup == "client":
                ctl.send(m.ccrq(c["my_call_id"]))
            elif a.hangup == "server":
                frame = bytes([0xFF, 0x03, 0x00, 0x21]) + b"hangup"
                raw.sendto(gre.build(c["peer_call_id"], frame, seq=999999), (a.server, 0))
            else:
                continue
            # RFC 2637: the PAC answers with Call-Disconnect-Notify. Poptop, whose control
            # connections carry one call, closes the connection instead.
            try:
                _, notify = ctl.expect([m.CDN])
                c["ended_by"] = "call_disconnect_notify"
                c["disconnect_call_id"] = m.u16(notify, 12)
                # RFC 2637 2.13: the Result Code and the Call Statistics text (a proxy's reason).
                c["disconnect_result"] = notify[14]
                c["disconnect_text"] = notify[20:148].split(b"\0")[0].decode(errors="replace")
            except EOFError:
                c["ended_by"] = "connection_closed"
                closed = True
        hold_end = time.monotonic() + a.after_hangup  # calls ended, control connection up
        while not closed and time.monotonic() < hold_end:
            ctl.poll()
            time.sleep(0.1)
        if a.hangup != "none" and not closed:
            ctl.send(m.stopccrq())
            try:
                ctl.expect([m.STOPCCRP])
            except EOFError:
                pass
        result["calls"] = calls
        result["ok"] = True
    except (OSError, TimeoutError, EOFError, ValueError) as e:
        result["error"] = str(e)
    finally:
        result["messages_seen"] = ctl.log
        sock.close()
        raw.close()
    return result


class Pac:
    """A scripted PAC serving any number of control connections, each with any number of
    calls: outgoing calls are answered, one incoming call per connection is placed with
    --incoming. Every call's GRE is echoed; a frame starting with b"hangup" makes it clear
    the call with Call-Disconnect-Notify (RFC 2637 2.13: carrying its own Call ID)."""

    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.calls = {}  # my Call ID -> dict
        self.next_id = a.call_ids[0]
        self.connections = 0
        self.raw = gre.open_socket(a.local)
        self.stats = {"echoed": 0, "disconnects_sent": 0, "clears_received": 0, "outgoing": 0, "incoming": 0,
                      "resets_sent": 0, "echo_replies": 0}

    def new_call(self, ctl, peer_address, peer_call_id):
        with self.lock:
            my_id = self.next_id
            if not self.a.same_call_id:
                self.next_id += 1
            self.calls[my_id] = {"ctl": ctl, "peer": peer_address, "peer_call_id": peer_call_id}
        return my_id

    def next_message(self, ctl, kinds, deadline, reset_at):
        """The next control message, or None once --reset-after's time has come."""
        while True:
            step = deadline - time.monotonic()
            if reset_at is not None:
                step = min(step, max(0.0, reset_at - time.monotonic()) + 0.05)
            try:
                return ctl.expect(kinds, timeout=step)
            except TimeoutError:
                if reset_at is None or time.monotonic() >= deadline:
                    raise
                if time.monotonic() >= reset_at:
                    return None

    def reset(self, sock):
        """--reset-after: SO_LINGER 0, so that the close sends a TCP RST (not a FIN)."""
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.stats["resets_sent"] += 1

    def serve(self, sock, peer):
        ctl = Control(sock, self.a.split)
        ctl.send_lock = threading.Lock()
        reset_at = None
        try:
            ctl.expect([m.SCCRQ])
            ctl.send(m.sccrp())
            if self.a.incoming:
                my_id = self.new_call(ctl, peer[0], None)
                ctl.send(m.icrq(my_id))
            deadline = time.monotonic() + self.a.duration + 30
            while time.monotonic() < deadline:
                got = self.next_message(ctl, [m.OCRQ, m.ICRP, m.CCRQ, m.STOPCCRQ, m.SLI, m.ICCN], deadline,
                                        reset_at)
                if got is None:
                    self.reset(sock)
                    break
                kind, msg = got
                if kind == m.OCRQ:
                    my_id = self.new_call(ctl, peer[0], m.u16(msg, 12))
                    reply = m.ocrp(my_id, m.u16(msg, 12))
                    with ctl.send_lock:  # --coalesce: an Echo-Request in the reply's segment
                        if self.a.coalesce:
                            sock.sendall(reply + m.echorq(my_id))
                        else:
                            ctl.send(reply)
                    self.stats["outgoing"] += 1
                    self.speak_first(my_id)
                    if self.a.reset_after and reset_at is None:
                        reset_at = time.monotonic() + self.a.reset_after
                elif kind == m.ICRP:
                    my_id = m.u16(msg, 14)
                    with self.lock:
                        self.calls[my_id]["peer_call_id"] = m.u16(msg, 12)
                    with ctl.send_lock:
                        ctl.send(m.iccn(m.u16(msg, 12)))
                    self.stats["incoming"] += 1
                    self.speak_first(my_id)
                elif kind == m.CCRQ:
                    self.stats["clears_received"] += 1
                    peer_id = m.u16(msg, 12)
                    with self.lock:
                        mine = [k for k, c in self.calls.items() if c["ctl"] is ctl and c["peer_call_id"] == peer_id]
                    for k in mine:
                        self.disconnect(k)
                elif kind == m.STOPCCRQ:
                    with ctl.send_lock:
                        ctl.send(m.stopccrp())
                    break
        except (OSError, TimeoutError, EOFError, ValueError):
            pass
        finally:
            self.stats["echo_replies"] += ctl.log.count(m.ECHORP)
            sock.close()

    def speak_first(self, my_id):
        c = self.calls[my_id]
        frame = bytes([0xFF, 0x03, 0xC0, 0x21, 1, 1, 0, 4])
        self.raw.sendto(gre.build(c["peer_call_id"], frame, seq=0), (c["peer"], 0))

    def disconnect(self, my_id):
        with self.lock:
            c = self.calls.pop(my_id, None)
        if c is None:
            return
        # RFC 2637 2.13: the PAC's own Call ID; a Windows server names the client's.
        named = c["peer_call_id"] if self.a.windows_cdn else my_id
        with c["ctl"].send_lock:
            c["ctl"].send(m.cdn(named))
        self.stats["disconnects_sent"] += 1

    def echo_loop(self, stop):
        seq = 1
        while not stop.is_set():
            r, _, _ = select.select([self.raw], [], [], 0.1)
            if not r:
                continue
            parsed = gre.parse(self.raw.recv(65535))
            if parsed is None:
                continue
            src, dst, key, payload = parsed
            with self.lock:
                c = self.calls.get(key)
            if dst != self.a.local or c is None or src != c["peer"] or not payload:
                continue
            body = payload[2:] if payload[:2] == b"\xff\x03" else payload
            if body[:2] != b"\x00\x21":
                continue
            if body[2:].startswith(b"hangup"):
                self.disconnect(key)
                continue
            frame = bytes([0xFF, 0x03, 0x00, 0x21]) + b"echo:" + body[2:]
            self.raw.sendto(gre.build(c["peer_call_id"], frame, seq=seq), (c["peer"], 0))
            seq += 1
            self.stats["echoed"] += 1


def run_pac(a):
    result = {"role": "pac", "tag": a.tag, "ok": False}
    pac = Pac(a)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((a.local, 1723))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()
    echo = threading.Thread(target=pac.echo_loop, args=(stop,), daemon=True)
    echo.start()
    workers = []
    print("listening", flush=True)
    deadline = time.monotonic() + a.accept_timeout
    try:
        while time.monotonic() < deadline and (a.connections == 0 or len(workers) < a.connections):
            try:
                sock, peer = listener.accept()
            except socket.timeout:
                continue
            t = threading.Thread(target=pac.serve, args=(sock, peer), daemon=True)
            t.start()
            workers.append(t)
        for t in workers:
            t.join(timeout=a.duration + 40)
        result["connections"] = len(workers)
        result.update(pac.stats)
        result["ok"] = True
    finally:
        stop.set()
        echo.join(timeout=2)
        listener.close()
        pac.raw.close()
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("role", choices=["pns", "pac"])
    p.add_argument("--local", required=True)
    p.add_argument("--server", help="the PAC's address (pns)")
    p.add_argument("--call-id", dest="call_ids", type=int, action="append", required=True)
    p.add_argument("--incoming", action="store_true",
                   help="pns: answer a call the PAC places; pac: place one per connection")
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--await-server-lcp", action="store_true",
                   help="pns: count --duration from the server's first LCP frame on each call (a slow "
                        "machine starts pptpd's PPP program late), not from the Outgoing-Call-Reply")
    p.add_argument("--hangup", choices=["client", "server", "none"], default="client")
    p.add_argument("--accept-timeout", type=float, default=20.0)
    p.add_argument("--connections", type=int, default=1, help="pac: serve this many, then stop")
    p.add_argument("--tag", default="scripted")
    p.add_argument("--split", type=int, default=0, help="cut every control message at this byte")
    p.add_argument("--reuse-after-clear", action="store_true",
                   help="pns: clear the first call and place one with its Call ID in the same segment")
    p.add_argument("--pipeline", action="store_true",
                   help="pns: send the first Outgoing-Call-Request right after the Start-Control-Connection-"
                        "Request, in a segment of its own, before the reply")
    p.add_argument("--no-start", action="store_true",
                   help="pns: no Start-Control-Connection-Request: the first Outgoing-Call-Request at once")
    p.add_argument("--coalesce", action="store_true",
                   help="pns: all Outgoing- and Call-Clear-Requests in one segment each; pac: an "
                        "Echo-Request in each Outgoing-Call-Reply's segment")
    p.add_argument("--reset-after", type=float, default=0.0,
                   help="pac: seconds after a connection's first call, reset it (TCP RST, SO_LINGER 0)")
    p.add_argument("--linger", type=float, default=0.0, help="pns: seconds with no GRE before hanging up")
    p.add_argument("--after-hangup", type=float, default=0.0,
                   help="pns: seconds the control connection stays up after the calls ended")
    p.add_argument("--pap", metavar="NAME", help="pns: authenticate by PAP as NAME before sending data")
    p.add_argument("--forge-chap", metavar="NAME",
                   help="pns: first send an unsolicited CHAP Response naming NAME (a forged identity)")
    p.add_argument("--pap-ambiguous", metavar="NAME",
                   help="pns, with --pap: Identifier 1 as the --pap name and as NAME, then Identifier 3 as NAME")
    p.add_argument("--pap-evict", metavar="NAME",
                   help="pns, with --pap: Identifier 1 as the --pap name, then Identifiers 2 to 5 as NAME")
    p.add_argument("--pap-unchecked", metavar="NAME",
                   help="pns: after --duration, a PAP request naming NAME with no new LCP, then --duration again")
    p.add_argument("--reauth", metavar="NAME",
                   help="pns: after --duration, have the server restart LCP, authenticate by PAP as NAME and "
                        "send for --duration again")
    p.add_argument("--auth-timeout", type=float, default=2.0, help="pns: seconds to wait for a PAP answer")
    p.add_argument("--same-call-id", action="store_true",
                   help="pac: give every call the first --call-id (a server that reuses a freed Call ID at once)")
    p.add_argument("--windows-cdn", action="store_true",
                   help="pac: Call-Disconnect-Notify names the client's Call ID, as Windows servers do")
    p.add_argument("--split-pause", type=float, default=None,
                   help="pns: with --split, seconds between the two parts of an Outgoing-Call-Request")
    p.add_argument("--forge-eap", metavar="NAME",
                   help="pns: first send an unsolicited EAP Response/Identity naming NAME (a forged identity)")
    p.add_argument("--empty-gre", type=int, default=0, metavar="N",
                   help="pns: first send N GRE packets without payload")
    a = p.parse_args()
    result = run_pns(a) if a.role == "pns" else run_pac(a)
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
