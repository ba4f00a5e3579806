#!/usr/bin/python3
"""bench/control_peer.py's sequential set-ups and bench/setup_bench.py's table, without
root and without judging any timing: a PAC and a PNS on loopback, and the table's ratios
from made-up samples."""
import json
import os
import socket
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEER = os.path.join(ROOT, "bench", "control_peer.py")
sys.path.insert(0, os.path.join(ROOT, "bench"))
import run_bench  # noqa: E402
import setup_bench  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SequentialSetUps(unittest.TestCase):
    def test_every_call_is_answered_and_timed(self):
        port = free_port()
        pac = subprocess.Popen([sys.executable, PEER, "pac", "--local", "127.0.0.1", "--port", str(port), "--quiet"],
                               stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(json.loads(pac.stdout.readline()), {"listening": True})
            out = subprocess.run([sys.executable, PEER, "pns", "--sequential", "--local", "127.0.0.1", "--server",
                                  "127.0.0.1", "--port", str(port), "--connections", "3", "--calls", "7"],
                                 stdout=subprocess.PIPE, text=True, timeout=60, check=True).stdout
        finally:
            pac.kill()
            rest = pac.communicate()[0]
        result = json.loads(out.strip().splitlines()[-1])
        self.assertEqual(result["calls"], 21)
        self.assertGreater(result["calls_per_second"], 0)
        self.assertLessEqual(result["rtt_median_ms"], result["rtt_p90_ms"])
        self.assertLessEqual(result["rtt_p90_ms"], result["rtt_p99_ms"])
        self.assertEqual(rest, "", "--quiet: the PAC prints no line per call")


def mode_samples(mode, *repeats):
    """One sample of `mode` per repeat (0, 1, ...) from its figures (setup_bench.FIGURES order)."""
    return [dict(zip(setup_bench.FIGURES, figures), repeat=i, mode=mode) for i, figures in enumerate(repeats)]


class Table(unittest.TestCase):
    SAMPLES = [
        {"repeat": 0, "mode": "kernel-helper", "calls_per_second": 1000.0, "rtt_median_ms": 0.05, "rtt_p90_ms": 0.06,
         "rtt_p99_ms": 0.2},
        {"repeat": 0, "mode": "pptp-alg", "calls_per_second": 800.0, "rtt_median_ms": 0.08, "rtt_p90_ms": 0.09,
         "rtt_p99_ms": 0.3},
        {"repeat": 1, "mode": "kernel-helper", "calls_per_second": 500.0, "rtt_median_ms": 0.1, "rtt_p90_ms": 0.1,
         "rtt_p99_ms": 0.4},
        {"repeat": 1, "mode": "pptp-alg", "calls_per_second": 450.0, "rtt_median_ms": 0.12, "rtt_p90_ms": 0.2,
         "rtt_p99_ms": 0.5},
    ]

    def test_ratios_pair_the_modes_of_one_repeat(self):
        self.assertEqual(sorted(setup_bench.ratios(self.SAMPLES, "pptp-alg", "calls_per_second")), [0.8, 0.9])

    def test_the_table_gives_the_rate_ratio_and_the_added_round_trip(self):
        lines = setup_bench.table(self.SAMPLES, ["kernel-helper", "pptp-alg"])
        rate = [l for l in lines if l.startswith("| pptp-alg | calls_per_second")]
        self.assertEqual(rate, ["| pptp-alg | calls_per_second | 625.0 | 450.0-800.0 | 0.85 (0.80-0.90) |"])
        added = [l for l in lines if "added ms" in l]
        self.assertEqual(len(added), 1)
        self.assertIn("0.0250; 0.1000", added[0])  # medians of (0.03, 0.02) and (0.1, 0.1)

    def test_a_baseline_binary_is_compared_per_repeat(self):
        samples = self.SAMPLES + mode_samples("baseline", (400.0, 0.1, 0.1, 0.3), (300.0, 0.1, 0.1, 0.5))
        lines = setup_bench.table(samples, ["kernel-helper", "baseline", "pptp-alg"])
        vs = [l for l in lines if l.startswith("| pptp-alg | calls_per_second vs baseline")]
        self.assertEqual(vs, ["| pptp-alg | calls_per_second vs baseline (median, min-max) | 1.75 | 1.50-2.00 | |"])
        self.assertEqual(len([l for l in lines if "added ms" in l]), 2)  # baseline's and pptp-alg's

    def test_the_queue_floor_is_what_pptp_alg_is_compared_with_beside_the_helper(self):
        samples = self.SAMPLES + mode_samples("queue-floor", (900.0, 0.07, 0.08, 0.25), (500.0, 0.11, 0.15, 0.45))
        lines = setup_bench.table(samples, ["kernel-helper", "queue-floor", "pptp-alg"])
        vs = [l for l in lines if l.startswith("| pptp-alg | calls_per_second vs queue-floor")]
        self.assertEqual(vs, ["| pptp-alg | calls_per_second vs queue-floor (median, min-max) | 0.89 | 0.89-0.90 | |"])
        self.assertEqual([l for l in lines if "vs baseline" in l], [])


class Order(unittest.TestCase):
    def test_each_repeat_starts_with_another_mode(self):
        modes = ["kernel-helper", "baseline", "pptp-alg"]
        self.assertEqual([setup_bench.trial_order(modes, r)[0] for r in range(4)],
                         ["kernel-helper", "baseline", "pptp-alg", "kernel-helper"])
        self.assertEqual(sorted(setup_bench.trial_order(modes, 2)), sorted(modes))


class Syscalls(unittest.TestCase):
    SUMMARY = """% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 40.00    0.004000           4      1000           sendto
 30.00    0.003000           1      2000      1000 recvmsg
 30.00    0.003000           3      1000           epoll_wait
------ ----------- ----------- --------- --------- ----------------
100.00    0.010000           2      4000      1000 total
"""

    def test_strace_counts_per_queued_packet(self):
        r = setup_bench.syscalls_per_packet(self.SUMMARY, 1000)
        self.assertEqual(r["packets"], 1000)
        self.assertEqual(r["per_packet"], {"epoll_wait": [1.0, 0.0], "recvmsg": [2.0, 1.0], "sendto": [1.0, 0.0]})


class MemoryPerCall(unittest.TestCase):
    def test_given_only_with_enough_calls_to_outweigh_the_daemons_own_growth(self):
        self.assertIsNone(run_bench.kib_per_call(12496, 13492, 1))  # s24: one call, RSS fell 996 KiB
        self.assertIsNone(run_bench.kib_per_call(None, 13492, 10000))
        self.assertIsNone(run_bench.kib_per_call(12496, None, 10000))
        self.assertEqual(run_bench.kib_per_call(13000 + 740, 13000, 1000), 0.74)


if __name__ == "__main__":
    unittest.main()
