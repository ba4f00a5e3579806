#!/usr/bin/python3
"""GRE forwarding through a masquerading router, side by side in one run (docs/performance.md):

  routing         plain routing, no NAT for the GRE (the machine's limit)
  kernel-helper   the kernel's nf_conntrack_pptp with its NAT module
  pptp-alg-queue  pptp-alg with every GRE packet through the queue (--no-fast-path)
  pptp-alg-fast   pptp-alg with the fast path (nftables maps once a call is up)
  pptp-alg-netdev pptp-alg with --fast-path netdev (the calls' GRE taken at ingress by table
                  netdev pptp_alg_fast, the daemon's own; docs/packet-path.md)
  netdev-prototype  a measurement prototype, not the product: pptp-alg-fast, then a netdev
                  ingress table built by the bench from the daemon's elements rewrites the
                  offloaded GRE and `fwd`s it past the IP hooks (bench/netdev_prototype.py,
                  docs/performance.md "s9"); --check-prototype also checks what arrives

With --baseline-pptp-alg B, pptp-alg-queue and pptp-alg-fast also run with binary B (rows
"pptp-alg-fast@baseline"), and the table gives current/baseline.

For each, a lab of network namespaces (RFC 5737 addresses) is built, control connections
are set up through the router (bench/control_peer.py), and a C++ sender (gre_flood,
sendmmsg on a raw socket) floods the calls' GRE for --seconds, in both directions one after
the other: the server's toward the public address (s2c, the Keys the server was told) and
the client's toward the server (c2s, the Keys the server gave). The receiving namespace
counts what arrives. Busy time of all cores comes from /proc/stat over the run: on a 2-core
machine the sender is the bottleneck, so packets forwarded per CPU-second is the figure to
compare. Every mode runs --repeats times, interleaved (A, B, A, B, ...), and the table gives
the median with its min-max, so that a ratio near 1.0 can be told from noise.

    bench/run_bench.py --pptp-alg build/alg/pptp-alg --gre-flood build/bench/gre_flood [--svg chart.svg]

Needs root. Every namespace, process and rule it makes is removed, also on failure.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "e2e"))
from pptplab.lab import CLIENTS, PUBLIC, SERVER2, Lab  # noqa: E402

import bench_report  # noqa: E402
import bench_svg  # noqa: E402
import netdev_prototype  # noqa: E402
from bench_lab import (COUNTER, FIRST_CALL_ID, MAX_CALLS_PER_CONNECTION, OwnCpu, cpu_busy_seconds,  # noqa: E402
                       daemon_rss_kib, flood, fresh_status, progress, received, set_up_calls, start_pac, start_pns, wait_for)

PRODUCT_MODES = ["routing", "kernel-helper", "pptp-alg-queue", "pptp-alg-fast", "pptp-alg-netdev"]  # the default
MODES = PRODUCT_MODES + ["netdev-prototype"]  # a measurement prototype: only when asked for
BASELINE_MODES = ["pptp-alg-queue", "pptp-alg-fast"]  # run with --baseline-pptp-alg too (older builds lack netdev)
MODE_FLAGS = {"pptp-alg-queue": ["--no-fast-path"], "pptp-alg-netdev": ["--fast-path", "netdev"]}
def directions(lab, mode, calls, told):
    """Per GRE direction: the namespace that sends, its address, where to, the Keys, and the
    namespace that counts. Routing sends without NAT in both directions (the client's GRE
    is kept out of the masquerade); every other mode goes through the public address."""
    if mode == "routing":
        lab.netns("srv", "ip", "route", "add", "192.0.2.0/24", "via", PUBLIC)
        lab.netns("rtr", "nft", "insert", "rule", "ip", "pptplab_nat", "postrouting", "ip", "protocol", "gre", "accept")
        s2c = (CLIENTS[0], list(range(1000, 1000 + calls)))
    else:
        s2c = (PUBLIC, [pns for pns, _ in told])
    # The client's GRE carries the PAC's Call ID as its Key (RFC 2637 section 4.1).
    return {"s2c": ("srv", SERVER2, s2c[0], s2c[1], "lan"),
            "c2s": ("lan", CLIENTS[0], SERVER2, [pac for _, pac in told], "srv")}


def with_daemon(mode):
    return mode.startswith("pptp-alg") or mode == "netdev-prototype"


def write_keys(lab, direction, keys):
    key_file = os.path.join(lab.tmp, "keys-" + direction)
    with open(key_file, "w") as f:
        f.write("\n".join(str(k) for k in keys) + "\n")
    return key_file


def measure(lab, args, side, source, target, key_file, payload, counter, daemon):
    """One flood of --seconds: what arrived, what the whole machine spent, and what the
    sender, the softirq threads and the daemon spent (bench_lab.OwnCpu)."""
    before, (cpu_before, softirq_before) = received(lab, counter), cpu_busy_seconds()
    own = OwnCpu(daemon)
    sent = flood(lab, args, side, source, target, key_file, payload, args.seconds)
    time.sleep(0.3)  # the last packets in flight
    sender, softirq_threads, daemon_cpu = own.spent()
    cpu_after, softirq_after = cpu_busy_seconds()
    return {"sent": sent["sent"], "received": received(lab, counter) - before, "seconds": sent["seconds"],
            "busy_cpu_seconds": round(cpu_after - cpu_before, 3),
            "softirq_cpu_seconds": round(softirq_after - softirq_before, 3),
            "daemon_cpu_seconds": daemon_cpu, "sender_cpu_seconds": sender, "ksoftirqd_cpu_seconds": softirq_threads,
            "own_cpu_seconds": round(sender + softirq_threads + daemon_cpu, 3)}


# The benchmark's load comes from one client address by design (thousands of connections and
# calls, set up as fast as they go): the per-source rate limits and budgets that guard a
# router against one host (docs/reliability.md) are lifted, where the binary has them (a
# baseline build may predate them).
BENCH_LIMITS = {"--syn-limit": "0", "--queued-gre-limit": "0", "--source-connections": "1000000",
                "--source-half-open": "1000000", "--source-calls": "1000000", "--memory-budget": "4096"}


def bench_daemon_flags(binary, extra=()):
    help_text = subprocess.run([binary, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True).stdout
    return list(extra) + [a for flag, value in BENCH_LIMITS.items() if flag in help_text for a in (flag, value)]


def start_lab(instance):
    mode = instance["mode"]
    lab = Lab(daemon=os.path.abspath(instance["binary"]),
              mode={"routing": "none", "kernel-helper": "kernel-helper"}.get(mode, "pptp-alg"))
    lab.log_level = "info"  # the lab waits for the "ready" line
    return lab


def set_up_prototype(lab, args, paths, keys, told):
    """The netdev prototype's table from the daemon's elements; with --check-prototype, what
    arrives is checked first (bench/netdev_prototype.py) and any fault ends the trial."""
    netdev_prototype.install(lab)
    if not args.check_prototype:
        return
    expected = {"s2c": (SERVER2, CLIENTS[0], FIRST_CALL_ID), "c2s": (PUBLIC, SERVER2, told[0][1])}
    problems = netdev_prototype.check(
        lab, lambda d: flood(lab, args, paths[d][0], paths[d][1], paths[d][2], keys[d], 64, CHECK_FLOOD_SECONDS),
        paths, expected, lambda ns: received(lab, ns))
    for p in problems:
        progress("  netdev-prototype check: " + p)
    if problems:
        raise RuntimeError("netdev-prototype check failed: %s" % problems[0])
    progress("  netdev-prototype check: both directions rewritten, TTL -1, checksums good; LCP the normal way")


CHECK_FLOOD_SECONDS = 0.2  # a short burst while tshark captures
# Calls below which KiB/call is not given: the daemon's own growth or trimming after its start
# (status writes, the allocator giving back its start-up pages) is a megabyte either way, more
# than a hundred calls hold (s24: -996 KiB "per call" with one call).
MIN_CALLS_FOR_MEMORY = 100


def kib_per_call(rss, rss_before, calls):
    """The daemon's resident KiB per call, or None: not read, or too few calls to tell."""
    if rss is None or rss_before is None or calls < MIN_CALLS_FOR_MEMORY:
        return None
    return (rss - rss_before) / calls


def run_trial(args, instance, calls, repeat):
    """One lab for one mode and number of calls: set the calls up, warm both directions up,
    then measure every payload in both directions. Returns one sample per measurement."""
    mode, label = instance["mode"], instance["label"]
    samples = []
    with start_lab(instance) as lab:
        for ns in ("lan", "srv"):
            subprocess.run(["ip", "netns", "exec", lab.ns[ns], "nft", "-f", "-"], input=COUNTER, text=True,
                           check=True)
        if with_daemon(mode):
            lab.start_daemon(bench_daemon_flags(instance["binary"], MODE_FLAGS.get(mode, [])))
        rss_before = daemon_rss_kib(lab)
        # The kernel helper follows one call per control connection.
        told, placed = set_up_calls(lab, calls, 1 if mode == "kernel-helper" else args.calls_per_connection)
        paths = {d: p for d, p in directions(lab, mode, calls, told).items() if d in args.directions}
        keys = {d: write_keys(lab, d, p[3]) for d, p in paths.items()}
        # Warm-up: every call's first packets (pptp-alg reads them before the fast path).
        for d, (side, source, target, _, _) in paths.items():
            flood(lab, args, side, source, target, keys[d], 64, max(1.0, calls * 64 / 50000.0))
        time.sleep(1.5)
        if mode == "netdev-prototype":
            set_up_prototype(lab, args, paths, keys, told)
        rss = daemon_rss_kib(lab)
        per_call = kib_per_call(rss, rss_before, calls)
        daemon = getattr(lab, "daemon_proc", None)
        for payload in args.payloads:
            for d, (side, source, target, _, counter) in paths.items():
                sample = measure(lab, args, side, source, target, keys[d], payload, counter, daemon)
                sample.update({"label": label, "mode": mode, "build": instance["build"], "calls": calls,
                               "payload": payload, "direction": d, "repeat": repeat,
                               "setup_seconds": placed["seconds"], "rtt_median_ms": placed["rtt_median_ms"],
                               "rtt_p99_ms": placed["rtt_p99_ms"], "daemon_rss_kib": rss,
                               "kib_per_call": round(per_call, 3) if per_call is not None else None})
                if mode == "netdev-prototype":
                    sample["prototype_forwarded"] = netdev_prototype.forwarded(lab)
                samples.append(sample)
                progress("  %-24s %5d calls %5d bytes %s: sent %d, received %d, busy %.2f CPU-s (softirq %.2f); "
                         "own %.2f CPU-s (sender %.2f, ksoftirqd %.2f, pptp-alg %.2f)"
                         % (label, calls, payload, d, sample["sent"], sample["received"], sample["busy_cpu_seconds"],
                            sample["softirq_cpu_seconds"], sample["own_cpu_seconds"], sample["sender_cpu_seconds"],
                            sample["ksoftirqd_cpu_seconds"], sample["daemon_cpu_seconds"]))
        if with_daemon(mode) and repeat == 0:
            status = fresh_status(lab)
            samples[-1]["daemon"] = {"fast_path": status.get("fast_path"), "queue": status.get("queue"),
                                     "housekeeping": status.get("housekeeping"),
                                     "status_file_bytes": os.path.getsize(lab.status_file)}
    return samples


CALL_ID_SPACE = 65536  # Call IDs toward one server from one public address (nat/call_id_translator.hpp)


def exhaustion(args):
    """Every Call ID toward the server from the router's public address taken, then more
    set-ups: what the PNS sees, what the daemon counts, whether the calls that are up keep
    their GRE, and how soon set-ups work again once calls end."""
    report = {}
    with Lab(daemon=os.path.abspath(args.pptp_alg), mode="pptp-alg") as lab:
        lab.log_level = "info"
        subprocess.run(["ip", "netns", "exec", lab.ns["lan"], "nft", "-f", "-"], input=COUNTER, text=True, check=True)
        lab.start_daemon(bench_daemon_flags(args.pptp_alg))
        told = start_pac(lab)
        # 1,000 calls per connection, 1,000 more than there are Call IDs: Call IDs from 1000
        # on wrap past 65535, so the last ones collide and need a translation that cannot be.
        per = MAX_CALLS_PER_CONNECTION
        connections = (CALL_ID_SPACE + per) // per + 1
        progress("exhaustion: %d calls on %d control connections (waiting 3 s for an answer)"
                 % (connections * per, connections))
        full, placed = start_pns(lab, connections, per, answer_wait=3)
        wait_for(told, placed["calls"])
        status = fresh_status(lab)
        report["attempted"] = connections * per
        report["answered"] = placed["calls"]
        report["unanswered"] = placed["unanswered"]
        report["setup_seconds"] = placed["seconds"]
        report["nat"] = status.get("nat")
        report["calls_refused"] = status.get("packets", {}).get("calls_refused")
        report["daemon_rss_kib"] = daemon_rss_kib(lab)
        # The calls that are up keep their GRE (fast path once their first packets are seen):
        # 1,000 of them, spread over all.
        sample = sorted(pns for pns, _ in told)[::max(1, len(told) // 1000)]
        report["gre_calls"] = len(sample)
        key_file = os.path.join(lab.tmp, "keys")
        with open(key_file, "w") as f:
            f.write("\n".join(str(k) for k in sample) + "\n")
        flood(lab, args, "srv", SERVER2, PUBLIC, key_file, 64, max(1.0, len(sample) * 64 / 50000.0))
        time.sleep(1.5)
        before = received(lab)
        sent = flood(lab, args, "srv", SERVER2, PUBLIC, key_file, 64, 2)
        time.sleep(0.3)
        report["gre_sent"], report["gre_received"] = sent["sent"], received(lab) - before
        # One more client connection while every Call ID is taken.
        _, late = start_pns(lab, 1, 10, first_call_id=20000, answer_wait=3)
        report["while_full"] = {"answered": late["calls"], "unanswered": late["unanswered"]}
        # End the first PNS's control connections; their calls end with them (FIN) and free
        # their Call IDs. How soon does a new set-up get through?
        ended = time.monotonic()
        lab._stop(full)
        progress("exhaustion: the first client's connections closed; placing 10 calls again")
        again = None
        for _ in range(20):
            _, attempt = start_pns(lab, 1, 10, first_call_id=30000, answer_wait=2)
            if attempt["calls"] == 10:
                again = time.monotonic() - ended
                break
        report["after_close"] = {"seconds_to_first_working_setup": round(again, 2) if again is not None else None}
        report["status_after"] = fresh_status(lab).get("nat")
    return report


def print_exhaustion(r):
    nat = r.get("nat") or {}
    print("\nCall-ID exhaustion (one public address, one server, %d Call IDs):" % CALL_ID_SPACE)
    # One client address: it meets the reserve kept for others (nat.reserve_refused) before
    # the space's end (docs/reliability.md).
    print("  %d call set-ups attempted in %.1f s: %d answered, %d unanswered (nat.exhausted %s, reserve_refused %s, "
          "calls_refused %s)" % (r["attempted"], r["setup_seconds"], r["answered"], r["unanswered"],
                                 nat.get("exhausted"), nat.get("reserve_refused"), r["calls_refused"]))
    print("  pptp-alg resident memory with %s calls mapped: %s KiB" % (nat.get("mapped"), r["daemon_rss_kib"]))
    lost = 1 - r["gre_received"] / r["gre_sent"] if r["gre_sent"] else 0
    print("  GRE of %d of the calls that are up, while full: sent %d, received %d (%.1f%% lost)"
          % (r["gre_calls"], r["gre_sent"], r["gre_received"], 100 * lost))
    print("  a new control connection's 10 set-ups while full: %d answered, %d unanswered"
          % (r["while_full"]["answered"], r["while_full"]["unanswered"]))
    after = r["after_close"]["seconds_to_first_working_setup"]
    print("  after the first client closed its connections: %s; then %s Call IDs mapped"
          % ("10 of 10 set-ups answered %.1f s later" % after if after is not None else "no set-up answered",
             (r.get("status_after") or {}).get("mapped")))


def instances(args):
    """What runs in each repeat, in order: every mode, each pptp-alg mode followed by the
    same mode with the baseline binary when there is one (A, B, A, B, ...)."""
    out = []
    for mode in args.modes:
        out.append({"mode": mode, "label": mode, "build": "current", "binary": args.pptp_alg})
        if args.baseline_pptp_alg and mode in BASELINE_MODES:
            out.append({"mode": mode, "label": mode + bench_report.BASELINE_SUFFIX, "build": "baseline",
                        "binary": args.baseline_pptp_alg})
    return out


def run_all(args):
    """Every repeat of every mode, interleaved: per number of calls, repeat 1 of every mode,
    then repeat 2 of every mode, and so on, so that a slow minute of the machine hits all
    modes alike rather than one."""
    samples, failed = [], []
    for calls in args.calls:
        for repeat in range(args.repeats):
            for instance in instances(args):
                progress("%s, %d call(s), repeat %d of %d" % (instance["label"], calls, repeat + 1, args.repeats))
                try:
                    samples += run_trial(args, instance, calls, repeat)
                except (RuntimeError, OSError, ValueError, subprocess.CalledProcessError) as e:
                    progress("  failed: %s" % e)
                    failed.append("%s with %d calls, repeat %d: %s" % (instance["label"], calls, repeat + 1,
                                                                       str(e).splitlines()[0] if str(e) else e))
    return samples, failed


def report(args, samples):
    rows = bench_report.summary_rows(samples, args.cpu_basis)
    repeats = max(r["repeats"] for r in rows)
    print(bench_report.table(rows, args.markdown))
    print("\n" + bench_report.legend(repeats, args.cpu_basis))
    setups = bench_report.setup_lines(samples, args.payloads[0])
    if setups:
        print("\ncall set-up through the router (control connections one after another, %d call(s) each"
              " except the kernel helper's 1; medians over the repeats):" % args.calls_per_connection)
        print("\n".join(setups))
    memory = bench_report.memory_lines(rows)
    if memory:
        print("\npptp-alg resident memory with the calls up (medians over the repeats):")
        print("\n".join(memory))
    if args.svg:
        title = ("GRE forwarded per %s CPU-second (median, min-max of %d repeats); solid: s2c, dashed: c2s"
                 % (args.cpu_basis, repeats))
        with open(args.svg, "w") as f:
            f.write(bench_svg.chart(rows, title))
    return rows


def comma_list(kind):
    return lambda s: [kind(x) for x in s.split(",") if x]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pptp-alg", default=os.path.join(os.path.dirname(HERE), "build", "alg", "pptp-alg"))
    p.add_argument("--baseline-pptp-alg",
                   help="a second pptp-alg binary: %s also run with it, interleaved with the first, and the "
                        "table shows current/baseline" % " and ".join(BASELINE_MODES))
    p.add_argument("--gre-flood", default=os.path.join(os.path.dirname(HERE), "build", "bench", "gre_flood"))
    p.add_argument("--seconds", type=float, default=5.0, help="per measurement (default 5)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats of every mode (default 5)")
    p.add_argument("--payloads", type=comma_list(int), default=[64, 1400])
    p.add_argument("--directions", type=comma_list(str), default=list(bench_report.DIRECTIONS),
                   help="GRE directions, comma-separated: s2c (server to client), c2s (client to server); "
                        "default both")
    p.add_argument("--calls", type=comma_list(int), default=[1], help="calls up at once, comma-separated (e.g. 1,1000)")
    p.add_argument("--modes", type=comma_list(str), default=PRODUCT_MODES,
                   help="comma-separated, of: %s (default: all but netdev-prototype; empty: none, e.g. with "
                        "--exhaustion)" % ",".join(MODES))
    p.add_argument("--calls-per-connection", type=int, default=1,
                   help="calls on each control connection for the modes other than kernel-helper (up to 1000; "
                        "one client address has about 28,000 source ports, so 60,000 calls need 3 or more)")
    p.add_argument("--exhaustion", action="store_true",
                   help="also take every Call ID toward the server (65,536 calls) and report what happens")
    p.add_argument("--check-prototype", action="store_true",
                   help="netdev-prototype: before measuring, capture what arrives (tshark) and check addresses, "
                        "Key, checksum, TTL, and that an LCP frame goes the normal way")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--json", help="also write every measurement and every row here")
    p.add_argument("--svg", help="draw the scaling chart (per CPU-second against calls up) into this SVG file")
    p.add_argument("--cpu-basis", choices=sorted(bench_report.CPU_BASES), default="machine",
                   help="what a CPU-second is in the table and chart: machine (all cores' busy time, default) or "
                        "own (the sender, the softirq threads and pptp-alg only: for a machine shared with other work)")
    p.add_argument("--from-json", help="measure nothing: print the table (and --svg) of a run's --json file")
    a = p.parse_args()
    if a.from_json:
        return a
    if os.geteuid() != 0:
        sys.exit("run_bench: needs root (network namespaces)")
    for binary in (a.pptp_alg, a.gre_flood, a.baseline_pptp_alg):
        if binary is not None and not os.access(binary, os.X_OK):
            sys.exit("run_bench: %s is not built (cmake --build build)" % binary)
    unknown = [m for m in a.modes if m not in MODES] + [d for d in a.directions if d not in bench_report.DIRECTIONS]
    if unknown:
        sys.exit("run_bench: unknown mode(s) or direction(s) %s; modes: %s; directions: %s"
                 % (",".join(unknown), ",".join(MODES), ",".join(bench_report.DIRECTIONS)))
    if a.repeats < 1:
        sys.exit("run_bench: --repeats must be 1 or more")
    return a


def main():
    a = parse_args()
    if a.from_json:
        with open(a.from_json) as f:
            report(a, json.load(f)["samples"])
        return
    samples, failed = run_all(a)
    rows = report(a, samples) if samples else []
    out = {"samples": samples, "rows": rows}
    if a.exhaustion:
        try:
            ex = exhaustion(a)
            print_exhaustion(ex)
            out["exhaustion"] = ex
        except (RuntimeError, OSError, ValueError, subprocess.CalledProcessError) as e:
            failed.append("Call-ID exhaustion: %s" % (str(e).splitlines()[0] if str(e) else e))
    for f in failed:
        print("not measured: " + f)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
