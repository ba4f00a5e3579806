#!/usr/bin/python3
"""Call set-up through a masquerading router, one call after another (issue 17, item 4):

  kernel-helper   the kernel's nf_conntrack_pptp with its NAT module
  pptp-alg        pptp-alg (every control segment goes through its queue)
  baseline        another pptp-alg binary (--baseline, e.g. main's build), same flags
  routing         the masquerade alone (no PPTP awareness: the floor)
  queue-floor     the masquerade, TCP/1723 queued both ways (iptables' NFQUEUE target, as this
                  kernel needs) to bench/queue_floor: the daemon's queue socket accepting
                  every packet unread, no gateway. What any consumer of the queue pays: the
                  two trips through user space per round trip (--queue-floor BINARY)

For each mode and repeat a fresh lab (tests/e2e/pptplab, RFC 5737 addresses) is built, the
PNS (bench/control_peer.py pns --sequential) opens --connections control connections and
then places --calls calls, round robin over them, each Outgoing-Call-Request waiting for its
Outgoing-Call-Reply before the next (RFC 2637 section 2.7/2.8). Every round trip is timed
at the PNS. The modes are interleaved (A, B, A, B, ...) --repeats times; the table gives
each figure's median over the repeats with its min-max, and the ratio to the kernel helper
per repeat (median and min-max); with --baseline also the ratio to the baseline. Each
repeat's order is rotated (A, B, C; B, C, A; ...). The 1-minute load average is printed with every trial: on a
shared machine a trial under load is not comparable.

    bench/setup_bench.py --pptp-alg build/release/alg/pptp-alg [--calls 2000 --connections 4 --repeats 5]
        [--baseline /work/main/build/release/alg/pptp-alg] [--syscalls] [--modes kernel-helper,queue-floor,pptp-alg]

--syscalls attaches `strace -c -f` to each daemon for the calls and prints its system calls
per queued packet (the daemon's "stopped packets=" count); strace slows every system call,
so that run's times are not the daemon's: count in one run, time in another.

Needs root. Every namespace and process it makes is removed, also on failure.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "e2e"))
from pptplab.lab import CLIENTS, SERVER2, Lab  # noqa: E402

from bench_lab import PYTHON, progress  # noqa: E402
from run_bench import bench_daemon_flags  # noqa: E402

MODES = ["kernel-helper", "baseline", "pptp-alg", "routing", "queue-floor"]
DAEMON_MODES = ("baseline", "pptp-alg")
FIGURES = ["calls_per_second", "rtt_median_ms", "rtt_p90_ms", "rtt_p99_ms"]


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def trial(args, mode):
    """One lab, one mode: the sequential set-ups' summary (control_peer.round_trip_summary)."""
    binary = args.baseline if mode == "baseline" else args.pptp_alg
    lab = Lab(daemon=os.path.abspath(binary),
              mode={"routing": "none", "queue-floor": "none", "kernel-helper": "kernel-helper"}.get(mode, "pptp-alg"))
    lab.log_level = "info"  # the lab waits for the "ready" line; no line per packet
    with lab:
        strace = None
        if mode == "queue-floor":
            start_queue_floor(lab, args.queue_floor)
        if mode in DAEMON_MODES:
            lab.start_daemon(bench_daemon_flags(binary, args.daemon_flag))
            if args.syscalls:
                strace = start_strace(lab)
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
        if mode in DAEMON_MODES:
            result["daemon_cpu_seconds"] = daemon_cpu_seconds(lab)
        if strace is not None:
            result["syscalls_per_packet"] = stop_strace(strace, lab)
        return result


def start_queue_floor(lab, binary):
    """bench/queue_floor on queue 0 in the router, and the rules that queue TCP/1723 both
    ways as it is forwarded (the namespace's removal takes them)."""
    floor = subprocess.Popen(["ip", "netns", "exec", lab.ns["rtr"], os.path.abspath(binary), "--queue", "0"],
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
    lab.procs.append(floor)
    if not floor.stdout.readline().startswith("ready"):
        raise RuntimeError("queue_floor did not bind queue 0")
    for port in ("--dport", "--sport"):
        lab.netns("rtr", "iptables", "-t", "mangle", "-A", "FORWARD", "-p", "tcp", port, "1723", "-j", "NFQUEUE",
                  "--queue-num", "0")


def start_strace(lab):
    out = os.path.join(lab.tmp, "strace-c")
    proc = subprocess.Popen(["strace", "-c", "-f", "-q", "-o", out, "-p", str(lab.daemon_proc.pid)],
                            stderr=subprocess.DEVNULL, start_new_session=True)
    lab.procs.append(proc)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not attached(lab.daemon_proc.pid):
        time.sleep(0.05)
    return proc, out


def attached(pid):
    with open("/proc/%d/status" % pid) as f:
        return any(line.startswith("TracerPid:") and line.split()[1] != "0" for line in f)


def stop_strace(strace, lab):
    """The daemon's system calls during the calls, per packet it read from the queue."""
    proc, out = strace
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    lab.stop_daemon()
    found = re.findall(r"stopped packets=(\d+)", lab.read_daemon_log())
    with open(out) as f:
        return syscalls_per_packet(f.read(), int(found[-1]) if found else 0)


def syscalls_per_packet(strace_summary, packets):
    """strace -c's table ("% time seconds usecs/call calls [errors] syscall") per packet:
    {"packets": n, "per_packet": {syscall: [calls, errors]}}."""
    counts = {}
    for line in strace_summary.splitlines():
        fields = line.split()
        if len(fields) in (5, 6) and fields[3].isdigit() and fields[-1] != "total":
            counts[fields[-1]] = (int(fields[3]), int(fields[4]) if len(fields) == 6 else 0)
    return {"packets": packets, "per_packet": {name: [round(calls / max(packets, 1), 3),
                                                      round(errors / max(packets, 1), 3)]
                                               for name, (calls, errors) in sorted(counts.items())}}


def daemon_cpu_seconds(lab):
    with open("/proc/%d/stat" % lab.daemon_proc.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 3)


def trial_order(modes, repeat):
    """The modes of one repeat, rotated by the repeat: no mode always runs first (or just
    after another that leaves the machine busy)."""
    k = repeat % len(modes)
    return modes[k:] + modes[:k]


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
        for base in ("baseline", "queue-floor"):
            if mode != "pptp-alg" or base not in modes:
                continue
            for figure in FIGURES:
                r = ratios(samples, mode, figure, base=base)
                if r:
                    lines.append("| pptp-alg | %s vs %s (median, min-max) | %.2f | %.2f-%.2f | |" % (
                        figure, base, median(r), min(r), max(r)))
        if added and mode != "kernel-helper":
            lines.append("| %s | added ms (median; p99) over the helper | %.4f; %.4f | %.4f-%.4f; %.4f-%.4f | |" % (
                mode, median(added), median(added99), min(added), max(added), min(added99), max(added99)))
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pptp-alg", required=True)
    p.add_argument("--baseline", help="another pptp-alg binary, interleaved as mode 'baseline' (added to "
                   "--modes after kernel-helper unless --modes names it)")
    p.add_argument("--syscalls", action="store_true", help="count each daemon's system calls per queued packet "
                   "(strace -c; times of this run are strace's)")
    p.add_argument("--modes", default="kernel-helper,pptp-alg")
    p.add_argument("--queue-floor", help="bench/queue_floor for mode queue-floor (default: beside --pptp-alg's "
                   "build, BUILD/bench/queue_floor)")
    p.add_argument("--calls", type=int, default=2000, help="calls per trial, over all connections")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--daemon-flag", action="append", default=[], help="an extra flag for pptp-alg (repeatable)")
    p.add_argument("--json", help="write every sample here")
    args = p.parse_args()
    modes = args.modes.split(",")
    if args.baseline and "baseline" not in modes:
        modes.insert(modes.index("kernel-helper") + 1 if "kernel-helper" in modes else 0, "baseline")
    if "baseline" in modes and not args.baseline:
        p.error("mode baseline needs --baseline BINARY")
    if args.queue_floor is None:
        args.queue_floor = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(args.pptp_alg))), "bench",
                                        "queue_floor")
    if "queue-floor" in modes and not os.access(args.queue_floor, os.X_OK):
        p.error("mode queue-floor needs %s (cmake --build BUILD --target queue_floor, or --queue-floor)"
                % args.queue_floor)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        p.error("unknown mode(s): %s" % ", ".join(unknown))
    if os.geteuid() != 0:
        print("setup_bench: needs root (network namespaces)", file=sys.stderr)
        return 77
    samples = []
    for repeat in range(args.repeats):
        for mode in trial_order(modes, repeat):
            s = trial(args, mode)
            s["repeat"] = repeat
            samples.append(s)
            progress("  repeat %d %-14s %5d calls: %7.1f per s, round trip median %.4f ms, p90 %.4f, p99 %.4f "
                     "(load %.2f -> %.2f)" % (repeat, mode, s["calls"], s["calls_per_second"], s["rtt_median_ms"],
                                             s["rtt_p90_ms"], s["rtt_p99_ms"], s["load_before"], s["load_after"]))
            if "syscalls_per_packet" in s:
                sc = s["syscalls_per_packet"]
                progress("    %d queued packets; system calls per packet (errors): %s" % (sc["packets"], ", ".join(
                    "%s %.2f (%.2f)" % (name, v[0], v[1]) for name, v in sc["per_packet"].items() if v[0] >= 0.01)))
    print("sequential call set-up, %d calls on %d connection(s) per trial, %d interleaved repeats"
          % (args.calls, args.connections, args.repeats))
    print("\n".join(table(samples, modes)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(samples, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
