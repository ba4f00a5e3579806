#!/usr/bin/python3
"""Churn soak (issue 13, docs/reliability.md "Churn soak"): calls opened and closed without
pause through pptp-alg in the namespace lab (tests/e2e/pptplab), five clients at a time,
each with its own Call ID (two of them colliding, so translation churns too). Samples the
daemon's resident memory and open file descriptors after every round and checks that every
good call echoed its frames and that, after warm-up, memory and descriptors stay flat.
Prints one JSON line and exits 1 if a check failed. Needs root.

    sudo python3 bench/soak.py --minutes 30 --pptp-alg build/release/alg/pptp-alg
"""
import argparse
import json
import os
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


def soak(lab, seconds, call_seconds, warmup_fraction):
    pid = lab.daemon_proc.pid
    samples, failed, calls = [], [], 0
    started = time.monotonic()
    rnd = 0
    while time.monotonic() - started < seconds:
        specs = [("pns", {"local": a, "tag": "soak%d-%d" % (rnd, i), "call_ids": [7 if i < 2 else 100 + i],
                          "duration": call_seconds}) for i, a in enumerate(CLIENTS)]
        for (_, kw), result in zip(specs, lab.run_clients(specs, timeout=60 + 4 * call_seconds)):
            calls += 1
            if not echoed(result, minimum=int(2 * call_seconds)):
                failed.append({"round": rnd, "client": kw["local"], "result": result})
        samples.append({"t": round(time.monotonic() - started, 1), "rss_kib": rss_kib(pid), "fds": open_fds(pid)})
        rnd += 1
    warm = max(1, int(len(samples) * warmup_fraction))
    before, after = samples[:warm], samples[warm:] or samples[-1:]
    summary = {
        "seconds": round(time.monotonic() - started, 1), "rounds": rnd, "calls": calls, "failed_calls": len(failed),
        "rss_kib_start": samples[0]["rss_kib"], "rss_kib_warm": max(s["rss_kib"] for s in before),
        "rss_kib_after_max": max(s["rss_kib"] for s in after), "rss_kib_end": samples[-1]["rss_kib"],
        "fds_warm": max(s["fds"] for s in before), "fds_after_max": max(s["fds"] for s in after),
        "fds_end": samples[-1]["fds"],
    }
    summary["rss_flat"] = summary["rss_kib_after_max"] - summary["rss_kib_warm"] <= RSS_GROWTH_KIB
    summary["fds_flat"] = summary["fds_after_max"] - summary["fds_warm"] <= FD_GROWTH
    summary["ok"] = not failed and summary["rss_flat"] and summary["fds_flat"]
    return summary, failed, samples


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--call-seconds", type=float, default=2.0, help="how long each call exchanges frames")
    p.add_argument("--warmup", type=float, default=0.25, help="fraction of the rounds taken as warm-up")
    p.add_argument("--pptp-alg", default=os.environ.get("PPTP_ALG", "build/release/alg/pptp-alg"))
    p.add_argument("--samples", help="write every sample (JSON) to this file")
    a = p.parse_args()
    if os.geteuid() != 0:
        print(json.dumps({"ok": True, "skipped": "needs root (network namespaces)"}))
        return 0
    with Lab(daemon=os.path.abspath(a.pptp_alg)) as lab:
        lab.log_level = "info"
        lab.start_daemon()
        lab.start_server()
        summary, failed, samples = soak(lab, a.minutes * 60, a.call_seconds, a.warmup)
        alive = lab.daemon_alive()
        summary["daemon_survived"] = alive and lab.stop_daemon() == 0
        summary["ok"] = summary["ok"] and summary["daemon_survived"]
    if a.samples:
        with open(a.samples, "w") as f:
            json.dump(samples, f)
    for f in failed[:5]:
        print("failed call: %s" % json.dumps(f), file=sys.stderr)
    print(json.dumps(summary), flush=True)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
