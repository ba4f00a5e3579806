#!/usr/bin/python3
"""Proxy mode (`pptp-alg --proxy`, docs/proxy.md) beside the transparent mode, in one run
(docs/performance.md, "Proxy mode"):

  transparent-fast   pptp-alg, transparent, with its fast path (bench/run_bench.py's pptp-alg-fast)
  proxy-fast         pptp-alg --proxy: established calls' GRE relayed by the kernel
  proxy-user         pptp-alg --proxy --no-fast-path: every GRE packet through the proxy's sockets

Per mode and number of calls (--calls, e.g. 1,1000): the calls are set up through the router
(bench/control_peer.py: the set-up round trip, median and 99th percentile, and the rate), the
daemon's memory per call is read (VmRSS before and after, over the calls), then gre_flood sends
the calls' GRE for --seconds in each direction, and the receiving namespace counts it. GRE per
CPU-second divides what arrived by the CPU time of what moved it (the sender, the softirq
threads, the daemon: bench_lab.OwnCpu), so that other developers' compilers on a shared machine
do not count. Modes are interleaved --repeats times; the table gives medians and the ratio to
transparent-fast, with the load average at the start and at the end.

    bench/proxy_bench.py --pptp-alg build/release/alg/pptp-alg --gre-flood build/release/bench/gre_flood

Needs root. Every namespace, process and rule it makes is removed, also on failure.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "e2e"))
from pptplab.lab import CLIENTS, PUBLIC, SERVER2, Lab  # noqa: E402

from bench_lab import COUNTER, daemon_rss_kib, flood, progress, set_up_calls  # noqa: E402
from run_bench import bench_daemon_flags, measure, write_keys  # noqa: E402

MODES = ["transparent-fast", "proxy-fast", "proxy-user"]
FLAGS = {"transparent-fast": [], "proxy-fast": ["--proxy"], "proxy-user": ["--proxy", "--no-fast-path"]}


def proxy_keys(lab, calls, seconds=30):
    """The Keys the client's GRE carries in proxy mode: our Call IDs toward it (A), from the
    status file's calls with both legs."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = [c["id"] for c in lab.status(wait=0.5).get("calls", []) if c["state"] == "established"]
        except (OSError, ValueError):
            continue
        if len(found) >= calls:
            return sorted(found)
    raise RuntimeError("the proxy shows %d of %d calls" % (len(found), calls))


def paths(lab, mode, calls, told):
    """Per direction: the sending namespace, its address, where to, the Keys, the counting
    namespace. The server's GRE goes to the router's address with the Key it was told (in
    proxy mode: ours toward it); the client's to the server with the Key it was told (in proxy
    mode ours toward the client, not the server's)."""
    c2s_keys = proxy_keys(lab, calls) if mode.startswith("proxy") else [pac for _, pac in told]
    return {"s2c": ("srv", SERVER2, PUBLIC, [pns for pns, _ in told], "lan"),
            "c2s": ("lan", CLIENTS[0], SERVER2, c2s_keys, "srv")}


def warm_up(lab, args, routes, keys, calls, mode, rounds=10):
    """Every call's first packets go through user space (64 without a PPP name) before the
    kernel takes it; under a flood the proxy's sockets drop many, so in proxy-fast the warm-up
    goes on until the status shows every call in the kernel (at most `rounds` floods)."""
    for _ in range(rounds):
        for d, (side, source, target, _, _) in routes.items():
            flood(lab, args, side, source, target, keys[d], 64, max(1.0, calls * 64 / 50000.0))
        time.sleep(1.5)
        if mode != "proxy-fast" or lab.status(wait=1.2).get("fast_path", {}).get("calls", 0) >= calls:
            return
    progress("  %s: not every call reached the kernel: %s" % (mode, lab.status(wait=0).get("fast_path")))


def trial(args, mode, calls, repeat):
    samples = []
    lab = Lab(daemon=os.path.abspath(args.pptp_alg), mode="pptp-alg")
    lab.log_level = "info"
    with lab:
        for ns in ("lan", "srv"):
            subprocess.run(["ip", "netns", "exec", lab.ns[ns], "nft", "-f", "-"], input=COUNTER, text=True,
                           check=True)
        # One client address holds every call and connection here: the proxy's per-address
        # limits (calls, and since s29 connections: 64 by default) would refuse the rest.
        extra = FLAGS[mode] + (["--proxy-source-calls", "1000000", "--proxy-source-connections", "1000000"]
                               if mode.startswith("proxy") else [])
        lab.start_daemon(bench_daemon_flags(args.pptp_alg, extra))
        rss_before = daemon_rss_kib(lab)
        told, placed = set_up_calls(lab, calls, args.calls_per_connection)
        routes = paths(lab, mode, calls, told)
        keys = {d: write_keys(lab, d, r[3]) for d, r in routes.items()}
        warm_up(lab, args, routes, keys, calls, mode)
        rss = daemon_rss_kib(lab)
        status = lab.status(wait=1.2)
        for payload in args.payloads:
            for d, (side, source, target, _, counter) in routes.items():
                s = measure(lab, args, side, source, target, keys[d], payload, counter, lab.daemon_proc)
                s.update({"mode": mode, "calls": calls, "payload": payload, "direction": d, "repeat": repeat,
                          "setup_seconds": placed["seconds"], "setup_calls": placed["calls"],
                          "rtt_median_ms": placed["rtt_median_ms"], "rtt_p99_ms": placed["rtt_p99_ms"],
                          "kib_per_call": round((rss - rss_before) / calls, 3) if rss and rss_before else None,
                          "fast_path": status.get("fast_path")})
                samples.append(s)
                progress("  %-17s %5d calls %5d bytes %s: sent %d, received %d, own %.2f CPU-s (pptp-alg %.2f)"
                         % (mode, calls, payload, d, s["sent"], s["received"], s["own_cpu_seconds"],
                            s["daemon_cpu_seconds"]))
    return samples


def per_cpu_second(s):
    return s["received"] / s["own_cpu_seconds"] if s["own_cpu_seconds"] > 0 else 0.0


def report(samples, load_start, load_end):
    """One row per mode, number of calls, payload and direction: medians over the repeats."""
    groups = {}
    for s in samples:
        groups.setdefault((s["calls"], s["payload"], s["direction"], s["mode"]), []).append(s)
    lines = ["load average at start %s, at end %s (2 cores shared)" % (load_start, load_end), "",
             "| calls | payload | direction | mode | GRE/CPU-s | vs transparent | delivered | set-up RTT median / p99 ms "
             "| set-up calls/s | KiB/call |",
             "|---:|---:|---|---|---:|---:|---:|---|---:|---:|"]
    for (calls, payload, d, mode) in sorted(groups, key=lambda k: (k[0], k[1], k[2], MODES.index(k[3]))):
        g = groups[(calls, payload, d, mode)]
        rate = statistics.median(per_cpu_second(s) for s in g)
        base = groups.get((calls, payload, d, "transparent-fast"))
        ratio = rate / statistics.median(per_cpu_second(s) for s in base) if base else None
        delivered = statistics.median(s["received"] / s["sent"] if s["sent"] else 0 for s in g)
        setup = statistics.median(s["setup_calls"] / s["setup_seconds"] if s["setup_seconds"] else 0 for s in g)
        kib = [s["kib_per_call"] for s in g if s["kib_per_call"] is not None]
        lines.append("| %d | %d | %s | %s | %.0f | %s | %.1f%% | %.1f / %.1f | %.0f | %s |"
                     % (calls, payload, d, mode, rate, "%.2f" % ratio if ratio else "-", 100 * delivered,
                        statistics.median(s["rtt_median_ms"] for s in g), statistics.median(s["rtt_p99_ms"] for s in g),
                        setup, "%.2f" % statistics.median(kib) if kib else "-"))
    return "\n".join(lines)


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pptp-alg", default=os.path.join(os.path.dirname(HERE), "build", "alg", "pptp-alg"))
    p.add_argument("--gre-flood", default=os.path.join(os.path.dirname(HERE), "build", "bench", "gre_flood"))
    p.add_argument("--seconds", type=float, default=3.0, help="per measurement (default 3)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats of every mode (default 3)")
    p.add_argument("--payloads", type=lambda t: [int(x) for x in t.split(",")], default=[64])
    p.add_argument("--calls", type=lambda t: [int(x) for x in t.split(",")], default=[1, 1000])
    p.add_argument("--modes", type=lambda t: t.split(","), default=MODES)
    p.add_argument("--calls-per-connection", type=int, default=1)
    p.add_argument("--json", help="also write every measurement here")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("proxy_bench.py needs root (network namespaces)")
    load_start, samples = load_average(), []
    for calls in args.calls:
        for repeat in range(args.repeats):
            for mode in args.modes:
                samples += trial(args, mode, calls, repeat)
    load_end = load_average()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load_start": load_start, "load_end": load_end, "samples": samples}, f, indent=1)
    print(report(samples, load_start, load_end))


if __name__ == "__main__":
    main()
