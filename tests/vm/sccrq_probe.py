#!/usr/bin/python3
"""Opens a PPTP control connection (RFC 2637 2.1: Start-Control-Connection-Request) from
--local to --server and prints "reply" when the Start-Control-Connection-Reply arrives,
"no reply" when nothing does within --timeout seconds (connect or read)."""
import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from pptplab import messages as m  # noqa: E402


def probe(local, server, timeout):
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((server, 1723), timeout=timeout, source_address=(local, 0)) as s:
            s.sendall(m.sccrq("probe"))
            reader = m.Reader()
            while time.monotonic() < deadline:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                data = s.recv(4096)
                if not data:
                    return False
                if any(kind == m.SCCRP for kind, _ in reader.feed(data)):
                    return True
    except OSError:
        return False
    return False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--local", required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--timeout", type=float, default=4.0)
    a = p.parse_args()
    print("reply" if probe(a.local, a.server, a.timeout) else "no reply")


if __name__ == "__main__":
    main()
