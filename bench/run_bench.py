#!/usr/bin/python3
"""GRE forwarding through a masquerading router, side by side in one run (docs/performance.md):

  routing         plain routing, no NAT for the GRE (the machine's limit)
  kernel-helper   the kernel's nf_conntrack_pptp with its NAT module
  pptp-alg-queue  pptp-alg with every GRE packet through the queue (--no-fast-path)
  pptp-alg-fast   pptp-alg with the fast path (nftables maps once a call is up)

For each, a lab of network namespaces (RFC 5737 addresses) is built, control connections
are set up through the router (bench/control_peer.py, the calls' Call IDs as the server was
told them), and a C++ sender (gre_flood, sendmmsg on a raw socket) floods the server's GRE
for those calls toward the clients for --seconds. The clients' namespace counts what
arrives. Busy time of all cores comes from /proc/stat over the run: on a 2-core machine the
sender is the bottleneck, so packets forwarded per CPU-second is the figure to compare.

    bench/run_bench.py --pptp-alg build/alg/pptp-alg --gre-flood build/bench/gre_flood

Needs root. Every namespace, process and rule it makes is removed, also on failure.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "e2e"))
from pptplab.lab import CLIENTS, PUBLIC, SERVER2, Lab  # noqa: E402

PYTHON = "/usr/bin/python3"
MODES = ["routing", "kernel-helper", "pptp-alg-queue", "pptp-alg-fast"]
MAX_CALLS_PER_CONNECTION = 1000  # pptp-alg follows up to 1024 per connection
COUNTER = """table ip bench {
 chain pre {
  type filter hook prerouting priority -400; policy accept;
  ip protocol gre counter drop
 }
}
"""


def cpu_busy_seconds():
    """Busy seconds of all cores, and of those the time in softirq (where forwarding runs)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - idle) / tick, fields[6] / tick


def process_cpu_seconds(proc):
    """User plus system time of one process (the daemon), 0 when it is not running."""
    try:
        with open("/proc/%d/stat" % proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, IndexError, ValueError):
        return 0.0


def received(lab):
    out = lab.netns("lan", "nft", "list", "table", "ip", "bench").stdout
    found = re.search(r"counter packets (\d+)", out)
    return int(found.group(1)) if found else 0


def daemon_rss_kib(lab):
    try:
        with open("/proc/%d/status" % lab.daemon_proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, AttributeError):
        pass
    return None


def fresh_status(lab, seconds=70):
    """The daemon's status written after this call: with many calls the daemon writes it
    less often (up to once a minute, docs/daemon.md), so wait for the next one."""
    asked = time.time()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if os.path.getmtime(lab.status_file) > asked:
                return lab.status(wait=0)
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("pptp-alg wrote no status for %d s" % seconds)


def progress(text):
    print(text, file=sys.stderr, flush=True)


def start_pns(lab, connections, per_connection, first_call_id=1000, answer_wait=0.0):
    """The PNS side: control connections from the first client; returns the process and its
    report ({"calls": answered, "unanswered": n, "seconds": s, ...})."""
    cmd = [PYTHON, os.path.join(HERE, "control_peer.py"), "pns", "--server", SERVER2, "--local", CLIENTS[0],
           "--call-id", str(first_call_id), "--connections", str(connections), "--calls", str(per_connection)]
    if answer_wait:
        cmd += ["--answer-wait", str(answer_wait)]
    pns = subprocess.Popen(["ip", "netns", "exec", lab.ns["lan"]] + cmd, stdout=subprocess.PIPE, text=True,
                           start_new_session=True)
    lab.procs.append(pns)
    line = pns.stdout.readline()
    if not line:
        raise RuntimeError("the control connections could not be set up")
    return pns, json.loads(line)


def start_pac(lab):
    """The PAC side; returns the list that fills with the Call IDs the server was told."""
    pac = subprocess.Popen(["ip", "netns", "exec", lab.ns["srv"], PYTHON, os.path.join(HERE, "control_peer.py"),
                            "pac", "--local", SERVER2, "--call-id", "300"],
                           stdout=subprocess.PIPE, text=True, start_new_session=True)
    lab.procs.append(pac)
    pac.stdout.readline()  # listening
    told = []
    # Read as it comes: a full pipe would stall the PAC.
    reader = threading.Thread(target=lambda: told.extend(json.loads(line)["peer_call_id"] for line in pac.stdout),
                              daemon=True)
    reader.start()
    return told


def wait_for(told, count, seconds=10):
    deadline = time.monotonic() + seconds
    while len(told) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def set_up_calls(lab, calls, per_connection=1):
    """Control connections through the router, one call each as pptp-linux places them (or
    `per_connection` each); returns the Call IDs the server was told and the PNS's timings."""
    told = start_pac(lab)
    _, placed = start_pns(lab, (calls + per_connection - 1) // per_connection, per_connection)
    wait_for(told, placed["calls"])
    return sorted(told), placed


def flood(lab, args, key_file, payload, seconds, target):
    out = lab.netns("srv", args.gre_flood, "--source", SERVER2, "--destination", target, "--key-file", key_file,
                    "--payload", str(payload), "--seconds", str(seconds)).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_mode(args, mode, calls):
    lab_mode = {"routing": "none", "kernel-helper": "kernel-helper"}.get(mode, "pptp-alg")
    rows = []
    with Lab(daemon=os.path.abspath(args.pptp_alg), mode=lab_mode) as lab:
        lab.log_level = "info"  # the lab waits for the "ready" line
        subprocess.run(["ip", "netns", "exec", lab.ns["lan"], "nft", "-f", "-"], input=COUNTER, text=True, check=True)
        if mode.startswith("pptp-alg"):
            lab.start_daemon(["--no-fast-path"] if mode == "pptp-alg-queue" else [])
        # The kernel helper follows one call per control connection.
        per = 1 if mode == "kernel-helper" else args.calls_per_connection
        told, placed = set_up_calls(lab, calls, per)
        if mode == "routing":
            # The control connections only time the control path; the GRE goes to the client
            # directly, no NAT.
            lab.netns("srv", "ip", "route", "add", "192.0.2.0/24", "via", PUBLIC)
            target, keys = CLIENTS[0], list(range(1000, 1000 + calls))
        else:
            target, keys = PUBLIC, told
        key_file = os.path.join(lab.tmp, "keys")
        with open(key_file, "w") as f:
            f.write("\n".join(str(k) for k in keys) + "\n")
        # Warm-up: every call's first packets (pptp-alg reads them before the fast path).
        flood(lab, args, key_file, 64, max(1.0, len(keys) * 64 / 50000.0), target)
        time.sleep(1.5)
        rss = daemon_rss_kib(lab) if mode.startswith("pptp-alg") else None
        for payload in args.payloads:
            daemon = getattr(lab, "daemon_proc", None)
            before, (cpu_before, softirq_before) = received(lab), cpu_busy_seconds()
            daemon_before = process_cpu_seconds(daemon)
            sent = flood(lab, args, key_file, payload, args.seconds, target)
            time.sleep(0.3)  # the last packets in flight
            cpu_after, softirq_after = cpu_busy_seconds()
            got, busy = received(lab) - before, cpu_after - cpu_before
            daemon_cpu = process_cpu_seconds(daemon) - daemon_before
            rows.append({"mode": mode, "calls": calls, "payload": payload, "sent": sent["sent"], "received": got,
                         "seconds": sent["seconds"], "busy_cpu_seconds": round(busy, 3),
                         "softirq_cpu_seconds": round(softirq_after - softirq_before, 3),
                         "daemon_cpu_seconds": round(daemon_cpu, 3),
                         "setup_seconds": placed["seconds"], "rtt_median_ms": placed["rtt_median_ms"],
                         "rtt_p99_ms": placed["rtt_p99_ms"], "daemon_rss_kib": rss})
            progress("  %-15s %5d calls %5d bytes: sent %d, received %d, busy %.2f CPU-s (softirq %.2f, "
                     "pptp-alg %.2f)" % (mode, calls, payload, sent["sent"], got, busy,
                                         softirq_after - softirq_before, daemon_cpu))
        if mode.startswith("pptp-alg"):
            status = fresh_status(lab)
            rows[-1]["daemon"] = {"fast_path": status.get("fast_path"), "queue": status.get("queue"),
                                  "housekeeping": status.get("housekeeping"),
                                  "status_file_bytes": os.path.getsize(lab.status_file)}
    return rows


CALL_ID_SPACE = 65536  # Call IDs toward one server from one public address (nat/call_id_translator.hpp)


def exhaustion(args):
    """Every Call ID toward the server from the router's public address taken, then more
    set-ups: what the PNS sees, what the daemon counts, whether the calls that are up keep
    their GRE, and how soon set-ups work again once calls end."""
    report = {}
    with Lab(daemon=os.path.abspath(args.pptp_alg), mode="pptp-alg") as lab:
        lab.log_level = "info"
        subprocess.run(["ip", "netns", "exec", lab.ns["lan"], "nft", "-f", "-"], input=COUNTER, text=True, check=True)
        lab.start_daemon([])
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
        sample = sorted(told)[::max(1, len(told) // 1000)]
        report["gre_calls"] = len(sample)
        key_file = os.path.join(lab.tmp, "keys")
        with open(key_file, "w") as f:
            f.write("\n".join(str(k) for k in sample) + "\n")
        flood(lab, args, key_file, 64, max(1.0, len(sample) * 64 / 50000.0), PUBLIC)
        time.sleep(1.5)
        before = received(lab)
        sent = flood(lab, args, key_file, 64, 2, PUBLIC)
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
    print("  %d call set-ups attempted in %.1f s: %d answered, %d unanswered (nat.exhausted %s, calls_refused %s)"
          % (r["attempted"], r["setup_seconds"], r["answered"], r["unanswered"], nat.get("exhausted"),
             r["calls_refused"]))
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


def table(rows, markdown):
    by = {(r["mode"], r["calls"], r["payload"]): r for r in rows}
    head = ["mode", "calls", "payload", "received pps", "lost", "pkts per CPU-s", "vs kernel helper", "vs routing",
            "busy CPU-s", "softirq", "pptp-alg"]
    lines = []
    for r in rows:
        per_cpu = r["received"] / r["busy_cpu_seconds"] if r["busy_cpu_seconds"] > 0 else 0
        r["per_cpu_second"] = per_cpu

    def ratio(r, mode):
        other = by.get((mode, r["calls"], r["payload"]))
        if other is None or not other.get("per_cpu_second"):
            return "-"
        return "%.2f" % (r["per_cpu_second"] / other["per_cpu_second"])

    for r in rows:
        lost = 1 - r["received"] / r["sent"] if r["sent"] else 0
        lines.append([r["mode"], str(r["calls"]), str(r["payload"]), "%.0f" % (r["received"] / r["seconds"]),
                      "%.1f%%" % (100 * lost), "%.0f" % r["per_cpu_second"], ratio(r, "kernel-helper"),
                      ratio(r, "routing"), "%.2f" % r["busy_cpu_seconds"], "%.2f" % r["softirq_cpu_seconds"],
                      "%.2f" % r["daemon_cpu_seconds"] if r["mode"].startswith("pptp-alg") else "-"])
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
    else:
        widths = [max(len(x) for x in col) for col in zip(head, *lines)]
        out = ["  ".join(x.ljust(w) for x, w in zip(line, widths)) for line in [head] + lines]
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pptp-alg", default=os.path.join(os.path.dirname(HERE), "build", "alg", "pptp-alg"))
    p.add_argument("--gre-flood", default=os.path.join(os.path.dirname(HERE), "build", "bench", "gre_flood"))
    p.add_argument("--seconds", type=float, default=5.0, help="per measurement (default 5)")
    p.add_argument("--payloads", type=lambda s: [int(x) for x in s.split(",")], default=[64, 1400])
    p.add_argument("--calls", type=lambda s: [int(x) for x in s.split(",")], default=[1],
                   help="calls up at once, comma-separated (e.g. 1,1000)")
    p.add_argument("--modes", type=lambda s: [m for m in s.split(",") if m], default=MODES,
                   help="comma-separated, of: %s (empty: none, e.g. with --exhaustion)" % ",".join(MODES))
    p.add_argument("--calls-per-connection", type=int, default=1,
                   help="calls on each control connection for the modes other than kernel-helper (up to 1000; "
                        "one client address has about 28,000 source ports, so 60,000 calls need 3 or more)")
    p.add_argument("--exhaustion", action="store_true",
                   help="also take every Call ID toward the server (65,536 calls) and report what happens")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--json", help="also write every measurement here")
    a = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("run_bench: needs root (network namespaces)")
    for binary in (a.pptp_alg, a.gre_flood):
        if not os.access(binary, os.X_OK):
            sys.exit("run_bench: %s is not built (cmake --build build)" % binary)
    unknown = [m for m in a.modes if m not in MODES]
    if unknown:
        sys.exit("run_bench: unknown mode(s) %s; choose from %s" % (",".join(unknown), ",".join(MODES)))
    rows, failed = [], []
    for calls in a.calls:
        for mode in a.modes:
            progress("%s, %d call(s)" % (mode, calls))
            try:
                rows += run_mode(a, mode, calls)
            except (RuntimeError, OSError, ValueError, subprocess.CalledProcessError) as e:
                progress("  failed: %s" % e)
                failed.append("%s with %d calls: %s" % (mode, calls, str(e).splitlines()[0] if str(e) else e))
    if rows:
        print(table(rows, a.markdown))
    setups = [r for r in rows if r.get("setup_seconds") and r["payload"] == a.payloads[0]]
    if setups:
        print("\ncall set-up through the router (control connections one after another, %d call(s) each"
              " except the kernel helper's 1):" % a.calls_per_connection)
        for r in setups:
            print("  %-15s %6d calls in %6.2f s: %6.0f calls/s; Outgoing-Call-Request to reply: median %.3f ms,"
                  " p99 %.3f ms" % (r["mode"], r["calls"], r["setup_seconds"], r["calls"] / r["setup_seconds"],
                                   r["rtt_median_ms"], r["rtt_p99_ms"]))
    memory = [r for r in rows if r.get("daemon_rss_kib") and r["payload"] == a.payloads[0]]
    if memory:
        print("\npptp-alg resident memory with the calls up:")
        for r in memory:
            print("  %-15s %6d calls: %d KiB" % (r["mode"], r["calls"], r["daemon_rss_kib"]))
    if a.exhaustion:
        try:
            ex = exhaustion(a)
            print_exhaustion(ex)
            rows.append({"exhaustion": ex})
        except (RuntimeError, OSError, ValueError, subprocess.CalledProcessError) as e:
            failed.append("Call-ID exhaustion: %s" % (str(e).splitlines()[0] if str(e) else e))
    for f in failed:
        print("not measured: " + f)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
