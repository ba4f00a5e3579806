#!/usr/bin/python3
"""Call set-up through a masquerading router, one call after another (issue 17, item 4):

  kernel-helper   the kernel's nf_conntrack_pptp with its NAT module
  pptp-alg        pptp-alg (every control segment goes through its queue)
  routing         the masquerade alone (no PPTP awareness: the floor)

For each mode and repeat a fresh lab (tests/e2e/pptplab, RFC 5737 addresses) is built, the
PNS (bench/control_peer.py pns --sequential) opens --connections control connections and
then places --calls calls, round robin over them, each Outgoing-Call-Request waiting for its
Outgoing-Call-Reply before the next (RFC 2637 section 2.7/2.8). Every round trip is timed
at the PNS. The modes are interleaved (A, B, A, B, ...) --repeats times; the table gives
each figure's median over the repeats with its min-max, and the ratio to the kernel helper
per repeat (median and min-max). The 1-minute load average is printed with every trial: on a
shared machine a trial under load is not comparable.

    bench/setup_bench.py --pptp-alg build/release/alg/pptp-alg [--calls 2000 --connections 4 --repeats 5]

Needs root. Every namespace and process it makes is removed, also on failure.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "e2e"))
from pptplab.lab import CLIENTS, SERVER2, Lab  # noqa: E402

from bench_lab import PYTHON, progress  # noqa: E402
from run_bench import bench_daemon_flags  # noqa: E402

MODES = ["kernel-helper", "pptp-alg", "routing"]
FIGURES = ["calls_per_second", "rtt_median_ms", "rtt_p90_ms", "rtt_p99_ms"]


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def trial(args, mode):
    """One lab, one mode: the sequential set-ups' summary (control_peer.round_trip_summary)."""
    lab = Lab(daemon=os.path.abspath(args.pptp_alg),
              mode={"routing": "none", "kernel-helper": "kernel-helper"}.get(mode, "pptp-alg"))
    lab.log_level = "info"  # the lab waits for the "ready" line; no line per packet
    with lab:
        if mode == "pptp-alg":
            lab.start_daemon(bench_daemon_flags(args.pptp_alg, args.daemon_flag))
        peer = os.path.join(HERE, "control_peer.py")
        pac = subprocess.Popen(["ip", "netns", "exec", lab.ns["srv"], PYTHON, peer, "pac", "--local", SERVER2,
                                "--quiet"], stdout=subprocess.PIPE, text=True, start_new_session=True)
        lab.procs.append(pac)
        pac.stdout.readline()  # listening
        load = load_average()
        out = lab.netns("lan", PYTHON, peer, "pns", "--sequential", "--server", SERVER2, "--local", CLIENTS[0],
                        "--connections", str(args.connections), "--calls", str(args.calls // args.connections)).stdout
        result = json.loads(out.strip().splitlines()[-1])
        result.update({"mode": mode, "load_before": load, "load_after": load_average()})
        if mode == "pptp-alg":
            result["daemon_cpu_seconds"] = daemon_cpu_seconds(lab)
        return result


def daemon_cpu_seconds(lab):
    with open("/proc/%d/stat" % lab.daemon_proc.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 3)


def median(values):
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def ratios(samples, mode, figure, base="kernel-helper"):
    """Per repeat: this mode's figure over the base mode's in the same repeat."""
    by_repeat = {}
    for s in samples:
        by_repeat.setdefault(s["repeat"], {})[s["mode"]] = s[figure]
    return [r[mode] / r[base] for r in by_repeat.values() if mode in r and r.get(base)]


def table(samples, modes):
    lines = ["| mode | figure | median | min-max | vs kernel helper (median, min-max) |", "|---|---|---|---|---|"]
    for mode in modes:
        own = [s for s in samples if s["mode"] == mode]
        for figure in FIGURES:
            values = [s[figure] for s in own]
            r = ratios(samples, mode, figure) if "kernel-helper" in modes else []
            lines.append("| %s | %s | %s | %s-%s | %s |" % (
                mode, figure, round(median(values), 4), min(values), max(values),
                "%.2f (%.2f-%.2f)" % (median(r), min(r), max(r)) if r else "-"))
        added = [s["rtt_median_ms"] - h["rtt_median_ms"] for s in own for h in samples
                 if h["mode"] == "kernel-helper" and h["repeat"] == s["repeat"]]
        added99 = [s["rtt_p99_ms"] - h["rtt_p99_ms"] for s in own for h in samples
                   if h["mode"] == "kernel-helper" and h["repeat"] == s["repeat"]]
        if added and mode != "kernel-helper":
            lines.append("| %s | added ms (median; p99) over the helper | %.4f; %.4f | %.4f-%.4f; %.4f-%.4f | |" % (
                mode, median(added), median(added99), min(added), max(added), min(added99), max(added99)))
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pptp-alg", required=True)
    p.add_argument("--modes", default="kernel-helper,pptp-alg")
    p.add_argument("--calls", type=int, default=2000, help="calls per trial, over all connections")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--daemon-flag", action="append", default=[], help="an extra flag for pptp-alg (repeatable)")
    p.add_argument("--json", help="write every sample here")
    args = p.parse_args()
    modes = args.modes.split(",")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        p.error("unknown mode(s): %s" % ", ".join(unknown))
    if os.geteuid() != 0:
        print("setup_bench: needs root (network namespaces)", file=sys.stderr)
        return 77
    samples = []
    for repeat in range(args.repeats):
        for mode in modes:
            s = trial(args, mode)
            s["repeat"] = repeat
            samples.append(s)
            progress("  repeat %d %-14s %5d calls: %7.1f per s, round trip median %.4f ms, p90 %.4f, p99 %.4f "
                     "(load %.2f -> %.2f)" % (repeat, mode, s["calls"], s["calls_per_second"], s["rtt_median_ms"],
                                             s["rtt_p90_ms"], s["rtt_p99_ms"], s["load_before"], s["load_after"]))
    print("sequential call set-up, %d calls on %d connection(s) per trial, %d interleaved repeats"
          % (args.calls, args.connections, args.repeats))
    print("\n".join(table(samples, modes)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(samples, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
