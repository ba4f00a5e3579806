#!/usr/bin/python3
"""Runs Debian's pptp-linux as a real PPTP client (PNS) inside a lab namespace and drives
its PPP stream: `pptp --nolaunchpppd` reads and writes HDLC-framed PPP on fd 0, so it gets
one end of a socketpair. Waits for the server's LCP (the call is up and GRE flows from the
server), sends tagged IP frames for --duration seconds, counts the echoes, then closes the
stream so that pptp hangs up. Prints one JSON result line."""
import argparse
import ctypes
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pptplab import hdlc  # noqa: E402
from pptplab.lab import ECHO_DRAIN_SECONDS, TIME_SCALE  # noqa: E402

# The server's first LCP frame: its PPP program starts late on a slow machine (in the test
# VM under load, more than 13 s after the call was set up).
LCP_WAIT_SECONDS = 15 * TIME_SCALE


def stop_group(pgid, a):
    """The call manager pptp forked stays in our process group; it may linger on SIGTERM
    (waiting for a TCP connect the test's router refuses), and a lingering one would take the
    next client's call on the same (local, server) through its unix socket. So: SIGTERM, a
    bounded wait, SIGKILL, and its socket removed."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:  # pptp-linux's call manager socket, left behind by the SIGKILL (in our tmpfs)
        os.unlink("/var/run/pptp/%s:%s" % (a.local, a.server))
    except OSError:
        pass


def private_socket_dir():
    """pptp-linux's call manager listens on /var/run/pptp/LOCAL:SERVER, a path every lab on
    the machine shares: a client of another lab run at the same time (same addresses) would
    place its call through ours. So this process and its children get their own mount
    namespace, private, with a tmpfs there that only our pptp sees."""
    clone_newns = 0x00020000
    if ctypes.CDLL(None, use_errno=True).unshare(clone_newns) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    # pptp creates the directory on its first run; on a fresh machine it is not there yet.
    os.makedirs("/var/run/pptp", mode=0o750, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0750", "pptplab", "/var/run/pptp"], check=True)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--local", required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--tag", default="pptp-linux")
    p.add_argument("--log", default=os.devnull)
    p.add_argument("--user", help="send a PAP Authenticate-Request with this Peer-ID once the call is up")
    a = p.parse_args()
    result = {"role": "pptp-linux", "tag": a.tag, "local": a.local, "ok": False,
              "sent": 0, "echoed": 0, "foreign": 0, "lcp": 0}
    private_socket_dir()
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with open(a.log, "ab") as log:
        proc = subprocess.Popen(
            ["pptp", a.server, "--nolaunchpppd", "--localbind", a.local, "--nohostroute", "--loglevel", "1",
             "--logstring", a.tag],
            stdin=theirs, stdout=log, stderr=log, start_new_session=True)
    theirs.close()
    decoder = hdlc.Decoder()
    try:
        deadline = time.monotonic() + LCP_WAIT_SECONDS
        while result["lcp"] == 0 and time.monotonic() < deadline:
            r, _, _ = select.select([mine], [], [], 0.2)
            if r:
                for proto, info in decoder.feed(mine.recv(4096)):
                    if proto == hdlc.PROTO_LCP:
                        result["lcp"] += 1
                        if info and info[0] == 1:  # acknowledge the server's Configure-Request
                            mine.sendall(hdlc.encode(proto, bytes([2]) + info[1:]))
        if result["lcp"] == 0:
            result["error"] = "no PPP from the server within %g s" % LCP_WAIT_SECONDS
        else:
            if a.user:
                # PAP (RFC 1334): the name travels in the clear, as the gateway's policy reads it.
                peer_id, password = a.user.encode(), b"secret"
                body = bytes([len(peer_id)]) + peer_id + bytes([len(password)]) + password
                mine.sendall(hdlc.encode(hdlc.PROTO_PAP, bytes([1, 1]) + (4 + len(body)).to_bytes(2, "big") + body))
            end = time.monotonic() + a.duration
            next_send = 0.0
            while True:
                now = time.monotonic()
                if now >= end and (now >= end + ECHO_DRAIN_SECONDS or result["echoed"] >= result["sent"]):
                    break  # the echoes in flight had their time
                if now >= next_send and now < end:
                    payload = ("%s/%d" % (a.tag, result["sent"])).encode()
                    mine.sendall(hdlc.encode(hdlc.PROTO_IP, payload))
                    result["sent"] += 1
                    next_send = now + 0.1
                r, _, _ = select.select([mine], [], [], 0.05)
                if not r:
                    continue
                for proto, info in decoder.feed(mine.recv(4096)):
                    if proto == hdlc.PROTO_IP and info.startswith(b"echo:"):
                        if info[5:].startswith((a.tag + "/").encode()):
                            result["echoed"] += 1
                            result["last_echo"] = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes
                        else:
                            result["foreign"] += 1
            result["ok"] = True
    finally:
        mine.close()  # pptp sees end of stream and hangs up (Call-Clear-Request)
        try:
            proc.wait(timeout=10)
            result["exit"] = proc.returncode
        except subprocess.TimeoutExpired:
            # Seen once under CI load (stop 48): pptp outlived its stream by 10 s and then
            # SIGTERM by 5 s, and this script died without printing its result. Now SIGTERM,
            # a bounded wait, SIGKILL: the result is printed whatever pptp does.
            stop_group(proc.pid, a)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            result["exit"] = "killed"
        stop_group(proc.pid, a)
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
