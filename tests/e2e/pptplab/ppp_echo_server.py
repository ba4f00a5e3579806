#!/usr/bin/python3
"""The program pptpd runs on each call's pty instead of pppd (pptpd --ppp). It speaks
first (an LCP Configure-Request, as pppd would: Poptop reads the call's GRE only after the
pty has spoken), acknowledges LCP, answers LCP Echo, accepts every PAP Authenticate-Request
(RFC 1334 2.2.2: an Ack with the request's Identifier, as pppd does for a known user: the
gateway takes a name only once the server has accepted it), and echoes every IP-protocol frame
back with the prefix b"echo:". A frame starting with b"hangup" makes it exit, so that the
server clears the call; one starting with b"reauth" makes it send a new LCP Configure-Request
(as a server restarting the link does: RFC 1661 3.5, authentication follows again). It exits on end of input and after a bounded lifetime."""
import os
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pptplab import hdlc  # noqa: E402

LIFETIME_SECONDS = 600
RESTART_SECONDS = 3.0
MAX_CONFIGURE = 10


def main():
    fd_in, fd_out = 0, 1
    # A late start on purpose (PPTPLAB_SERVER_DELAY seconds), as a loaded machine starts it:
    # what the lab's clients and bench/soak.py see then. The pid file marks the real start.
    time.sleep(float(os.environ.get("PPTPLAB_SERVER_DELAY", "0")))
    piddir = os.environ.get("PPTPLAB_PIDDIR")
    if piddir and os.path.isdir(piddir):
        with open(os.path.join(piddir, "ppp-%d.pid" % os.getpid()), "w") as f:
            f.write(str(os.getpid()))
    if os.isatty(fd_in):
        import tty
        tty.setraw(fd_in)
    configure_request = hdlc.encode(hdlc.PROTO_LCP, bytes([1, 1, 0, 4]))
    os.write(fd_out, configure_request)
    # pppd's Restart timer (RFC 1661 4.6: 3 s, Max-Configure 10): the request again until
    # the peer is heard, as when a reordering link let the first one reach the router
    # before the call's Outgoing-Call-Reply (tests/e2e/test_link_e2e.py).
    sent, heard, resend_at = 1, False, time.monotonic() + RESTART_SECONDS
    decoder = hdlc.Decoder()
    deadline = time.monotonic() + LIFETIME_SECONDS
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd_in], [], [], 0.5)
        if not ready:
            if not heard and sent < MAX_CONFIGURE and time.monotonic() >= resend_at:
                os.write(fd_out, configure_request)
                sent, resend_at = sent + 1, time.monotonic() + RESTART_SECONDS
            continue
        try:
            data = os.read(fd_in, 4096)
        except OSError:
            return
        if not data:
            return
        frames = decoder.feed(data)
        heard = heard or bool(frames)
        for proto, info in frames:
            if proto == hdlc.PROTO_LCP and len(info) >= 4:
                code, ident = info[0], info[1]
                if code == 1:  # Configure-Request -> Configure-Ack
                    os.write(fd_out, hdlc.encode(proto, bytes([2]) + info[1:]))
                elif code == 9:  # Echo-Request -> Echo-Reply
                    os.write(fd_out, hdlc.encode(proto, bytes([10, ident]) + info[2:4] + b"\0\0\0\0" + info[8:]))
                elif code == 5:  # Terminate-Request -> Terminate-Ack, then go
                    os.write(fd_out, hdlc.encode(proto, bytes([6, ident, 0, 4])))
                    return
            elif proto == hdlc.PROTO_PAP and len(info) >= 4 and info[0] == 1:  # Authenticate-Request
                os.write(fd_out, hdlc.encode(proto, bytes([2, info[1], 0, 5, 0])))
            elif proto == hdlc.PROTO_IP:
                if info.startswith(b"hangup"):
                    return
                if info.startswith(b"reauth"):  # start the link again: authentication follows anew
                    os.write(fd_out, hdlc.encode(hdlc.PROTO_LCP, bytes([1, 2, 0, 4])))
                    continue
                os.write(fd_out, hdlc.encode(proto, b"echo:" + info))


if __name__ == "__main__":
    main()
