#!/usr/bin/env python3
"""Golden files: a capture in, the expected `pptp-alg inspect --json` out.

usage: golden.py check PPTP_ALG    compare every tests/golden/NAME.json with inspect's output
       golden.py update PPTP_ALG   rewrite them (review the diff before committing)

NAME.json belongs to the capture NAME, looked up in tests/data/pcaps, then in ../shared/pcaps
beside the repository (the GPL/LGPL captures live only there).
"""
import difflib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(REPO, "tests", "golden")
SEARCH = [os.path.join(REPO, "tests", "data", "pcaps"),
          os.path.join(os.path.dirname(REPO), "shared", "pcaps")]
# Captures with a golden file: every one we have, shared ones included.
CAPTURES = [
    "crafted-lifecycle.pcap", "crafted-hostile.pcap", "pptp-linux-poptop-4-calls.pcap",
    "zeek-gre-pptp.pcap", "packetlife-pptp-negotiation.pcap", "tcpdump-pptp.pcap",
    "flowcontainer-pptp-gre.pcap", "suricata-verify-grev0-ppp-frag-synthetic.pcap",
    "pcapplusplus-gre-mixed.pcap", "ndpi-pptp.pcap", "chapcrack-pptp-session.pcap",
    "chapcrack-pptp-chap.pcap", "pptp-vpn-sniffer-connect.pcapng", "ndpi-gre-pptp-1pkt.pcapng",
    "ndpi-2023-gre-sip-pptp.pcapng",
]


def find(name):
    for d in SEARCH:
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return None


def inspect(binary, capture):
    out = subprocess.run([binary, "inspect", "--json", capture], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return json.dumps(json.loads(out.stdout), indent=2, sort_keys=True) + "\n"


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("check", "update"):
        print(__doc__)
        return 2
    mode, binary = sys.argv[1], sys.argv[2]
    passed = failed = skipped = 0
    shared_present = os.path.isdir(SEARCH[1])
    for name in CAPTURES:
        capture = find(name)
        golden = os.path.join(GOLDEN, name + ".json")
        if capture is None and not shared_present:
            # CI has shared/ beside the clone; a clone elsewhere lacks the GPL captures.
            print(f"skipped  {name}: {SEARCH[1]} is not beside the repository")
            skipped += 1
            continue
        if capture is None:
            print(f"FAIL     {name}: capture not found in {SEARCH}")
            failed += 1
            continue
        try:
            got = inspect(binary, capture)
        except RuntimeError as e:
            print(f"FAIL     {name}: inspect failed: {e}")
            failed += 1
            continue
        if mode == "update":
            with open(golden, "w") as f:
                f.write(got)
            print(f"updated  {golden}")
            passed += 1
            continue
        if not os.path.exists(golden):
            print(f"FAIL     {name}: no golden file {golden} (run golden.py update)")
            failed += 1
            continue
        want = open(golden).read()
        if got == want:
            print(f"ok       {name}")
            passed += 1
        else:
            failed += 1
            print(f"FAIL     {name}: inspect output differs from {golden}")
            diff = difflib.unified_diff(want.splitlines(), got.splitlines(), "golden", "inspect", lineterm="", n=2)
            for i, line in enumerate(diff):
                if i > 60:
                    print("         ...")
                    break
                print("         " + line)
    print(f"golden: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
