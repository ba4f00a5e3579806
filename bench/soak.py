#!/usr/bin/python3
"""Churn soak (issue 13, docs/reliability.md "Churn soak"): calls opened and closed without
pause through pptp-alg in the namespace lab (tests/e2e/pptplab), five clients at a time,
each with its own Call ID (two of them colliding, so translation churns too). Samples the
daemon's resident memory and open file descriptors after every round and checks that every
good call echoed its frames and that, after warm-up, memory and descriptors stay flat.
Prints one JSON line and exits 1 if a check failed. Needs root.

Each call's data phase starts at the server's first LCP frame (pptpd starts its PPP program
late on a loaded machine; its GRE is read only once that program spoke). A call that never
gets that frame within the client's wait (10 s), while the daemon saw no GRE at all from the
server for it and not all of the round's PPP programs had started by then, is a
"server_not_ready" call: the lab's fault, listed apart, not a lost call.
Every other call that echoed too little is lost; for each the soak prints its Call IDs and
the daemon's log lines about its control connection (the log is kept with --keep DIR).

    sudo python3 bench/soak.py --minutes 30 --pptp-alg build/release/alg/pptp-alg
"""
import argparse
import json
import os
import re
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "e2e"))
from pptplab.lab import CLIENTS, Lab  # noqa: E402
from test_flood_e2e import rss_kib  # noqa: E402

RSS_GROWTH_KIB = 2 * 1024  # flat: after warm-up, at most this above the warm-up's highest
FD_GROWTH = 0               # descriptors: none more than at warm-up's highest


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def echoed(result, minimum):
    calls = result.get("calls") or [result]
    return bool(result.get("ok")) and all(
        c["echoed"] >= minimum and c["echoed"] >= c["sent"] - 3 and c["foreign"] == 0 for c in calls)


def daemon_lines(log_chunk, local, call):
    """The daemon's lines about the control connection that carried `call` (its client's
    address and both Call IDs, within the round's part of the log)."""
    pattern = re.compile(r"call_established connection=(\d+) pns=%s:\d+ .*pns_call_id=%d pac_call_id=%d " % (
        re.escape(local), call.get("my_call_id", -1), call.get("peer_call_id", -1)))
    found = pattern.search(log_chunk)
    if found is None:
        return []
    tag = "connection=%s " % found.group(1)
    return [line for line in log_chunk.splitlines() if tag in line]


def programs_started(lab, since):
    """When pptpd's PPP programs (ppp_echo_server.py) started since `since` (wall clock): each
    writes its pid file just before it first speaks."""
    times = []
    for name in os.listdir(lab.piddir):
        try:
            t = os.path.getmtime(os.path.join(lab.piddir, name))
        except OSError:
            continue
        if name.startswith("ppp-") and t >= since:
            times.append(t)
    return times


def server_not_ready(result, lines, started, calls_up):
    """The server's PPP program never spoke on the call within the client's wait, the daemon
    counted no GRE from the server for it, and by the end of that wait fewer of pptpd's PPP
    programs had started than the round had calls: a program was late, nothing was there to
    lose. (If every program had started, the frame was lost on the way: a lost call.)"""
    calls = result.get("calls") or []
    closed = [line for line in lines if "call_closed " in line]
    if not calls or len(closed) != len(calls) or not all(" gre_to_pns=0" in line for line in closed):
        return False
    return all(c.get("server_lcp") is False and
               sum(t <= c["lcp_wait_ended_at"] for t in started) < calls_up for c in calls)


def judge_round(lab, rnd, specs, results, began, log_offset, minimum):
    """The round's calls that failed: (lost, server_not_ready), each with its Call IDs and
    the daemon's lines about it."""
    lost, not_ready = [], []
    chunk, started = None, None
    calls_up = sum(c.get("result") == 1 for r in results for c in r.get("calls") or [])
    for (_, kw), result in zip(specs, results):
        if echoed(result, minimum):
            continue
        if chunk is None:
            chunk = lab.read_daemon_log()[log_offset:]
            started = programs_started(lab, began)
        lines = [l for c in (result.get("calls") or []) for l in daemon_lines(chunk, kw["local"], c)]
        entry = {"round": rnd, "client": kw["local"], "result": result, "daemon_lines": lines,
                 "server_programs_started": sorted(round(t - began, 2) for t in started)}
        (not_ready if server_not_ready(result, lines, started, calls_up) else lost).append(entry)
    return lost, not_ready


def soak(lab, seconds, call_seconds, warmup_fraction):
    pid = lab.daemon_proc.pid
    samples, failed, not_ready, waits, calls = [], [], [], [], 0
    started = time.monotonic()
    rnd = 0
    while time.monotonic() - started < seconds:
        specs = [("pns", {"local": a, "tag": "soak%d-%d" % (rnd, i), "call_ids": [7 if i < 2 else 100 + i],
                          "duration": call_seconds, "await_server_lcp": True}) for i, a in enumerate(CLIENTS)]
        log_offset, began = len(lab.read_daemon_log()), time.time()
        results = lab.run_clients(specs, timeout=60 + 4 * call_seconds)
        calls += len(results)
        # How late the server's PPP program spoke: past call_seconds, the old soak (data
        # phase counted from the Outgoing-Call-Reply) saw such a call echo nothing.
        waits += [c["server_lcp_after"] for r in results for c in r.get("calls") or [] if c.get("server_lcp")]
        lost, late = judge_round(lab, rnd, specs, results, began, log_offset, minimum=int(2 * call_seconds))
        failed += lost
        not_ready += late
        samples.append({"t": round(time.monotonic() - started, 1), "rss_kib": rss_kib(pid), "fds": open_fds(pid)})
        rnd += 1
    warm = max(1, int(len(samples) * warmup_fraction))
    before, after = samples[:warm], samples[warm:] or samples[-1:]
    summary = {
        "seconds": round(time.monotonic() - started, 1), "rounds": rnd, "calls": calls, "failed_calls": len(failed),
        "server_not_ready_calls": len(not_ready),
        "server_lcp_after_max": max(waits, default=None),
        "server_lcp_after_over_call_seconds": sum(w > call_seconds for w in waits),
        "rss_kib_start": samples[0]["rss_kib"], "rss_kib_warm": max(s["rss_kib"] for s in before),
        "rss_kib_after_max": max(s["rss_kib"] for s in after), "rss_kib_end": samples[-1]["rss_kib"],
        "fds_warm": max(s["fds"] for s in before), "fds_after_max": max(s["fds"] for s in after),
        "fds_end": samples[-1]["fds"],
    }
    summary["rss_flat"] = summary["rss_kib_after_max"] - summary["rss_kib_warm"] <= RSS_GROWTH_KIB
    summary["fds_flat"] = summary["fds_after_max"] - summary["fds_warm"] <= FD_GROWTH
    # Calls the lab could not serve prove nothing either way: too many and the run says so.
    summary["enough_served"] = len(not_ready) <= max(1, calls // 100)
    summary["ok"] = not failed and summary["rss_flat"] and summary["fds_flat"] and summary["enough_served"]
    return summary, failed, not_ready, samples


def keep_logs(lab, directory):
    os.makedirs(directory, exist_ok=True)
    for name in ("pptp-alg.log", "pptpd.log"):
        path = os.path.join(lab.tmp, name)
        if os.path.exists(path):
            shutil.copy(path, os.path.join(directory, name))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--call-seconds", type=float, default=2.0, help="how long each call exchanges frames")
    p.add_argument("--warmup", type=float, default=0.25, help="fraction of the rounds taken as warm-up")
    p.add_argument("--pptp-alg", default=os.environ.get("PPTP_ALG", "build/release/alg/pptp-alg"))
    p.add_argument("--samples", help="write every sample (JSON) to this file")
    p.add_argument("--keep", metavar="DIR", help="copy the daemon's and pptpd's logs into DIR at the end")
    a = p.parse_args()
    if os.geteuid() != 0:
        print(json.dumps({"ok": True, "skipped": "needs root (network namespaces)"}))
        return 0
    with Lab(daemon=os.path.abspath(a.pptp_alg)) as lab:
        lab.log_level = "info"
        lab.start_daemon()
        lab.start_server()
        summary, failed, not_ready, samples = soak(lab, a.minutes * 60, a.call_seconds, a.warmup)
        alive = lab.daemon_alive()
        summary["daemon_survived"] = alive and lab.stop_daemon() == 0
        summary["ok"] = summary["ok"] and summary["daemon_survived"]
        if a.keep:
            keep_logs(lab, a.keep)
    if a.samples:
        with open(a.samples, "w") as f:
            json.dump(samples, f)
    for f in failed[:10]:
        print("lost call: %s" % json.dumps(f), file=sys.stderr)
    for f in not_ready[:10]:
        print("server not ready (not counted as lost): %s" % json.dumps(f), file=sys.stderr)
    print(json.dumps(summary), flush=True)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
