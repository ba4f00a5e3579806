#!/usr/bin/python3
"""The flood suite (issue 13, docs/reliability.md "Floods"): one inside host attacks the
gateway while good tunnels run beside it. What a user would notice is asserted: the good
calls keep echoing, a new good call still sets up, the daemon's resident memory stays under
a stated bound (flat under SYN/RST churn), and the refusals are counted in the status file.
Run as root; each test builds and removes its own namespaces (RFC 5737 addresses only).

    PPTP_ALG=build/alg/pptp-alg /usr/bin/python3 tests/e2e/test_flood_e2e.py -v

Rate limits in the kernel before the queue (--syn-limit, --queued-gre-limit, where the
binary has them) are switched off: this suite measures the daemon's own budgets.
"""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pptplab.lab import CLIENTS, PYTHON, SERVER2  # noqa: E402
from test_nat_e2e import DAEMON, LabTest  # noqa: E402

GOOD = CLIENTS[:3]
# One attacking host per kind of flood, beside the good clients on the inside network: a
# host at one budget does not keep another from its own.
CHURNER, FLOODER, REORDERER = "192.0.2.66", "192.0.2.67", "192.0.2.68"
NOWHERE = "198.51.100.9"  # routed through the router, answered by no one
RSS_BOUND_KIB = 48 * 1024  # the daemon's resident memory during every flood (budget 16 MiB)
CHURN_GROWTH_KIB = 3 * 1024  # from 2,000 to 20,000 SYN/RST cycles on one 4-tuple


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def sanitized(binary):
    """An AddressSanitizer build: its shadow memory and quarantine of freed blocks make the
    resident size say nothing about the daemon's own state (CI runs this test in both)."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def kernel_limits_off():
    """The flags that switch off rate limits before the queue, if this binary has them."""
    help_text = subprocess.run([DAEMON, "--help"], stdout=subprocess.PIPE, text=True).stdout
    return [arg for flag in ("--syn-limit", "--queued-gre-limit") if flag in help_text for arg in (flag, "0")]


class Floods(LabTest):
    def daemon_arguments(self):
        return ["--memory-budget", "16", "--source-calls", "100"] + kernel_limits_off()

    def rss(self):
        return rss_kib(self.lab.daemon_proc.pid)

    def packets(self):
        return self.lab.status()["packets"]

    def good_tunnels(self, duration):
        return [self.lab.start_client("pns", local=a, tag="good%d" % i, call_ids=[7 + i], duration=duration)
                for i, a in enumerate(GOOD)]

    def test_floods_beside_good_tunnels(self):
        for a in (CHURNER, FLOODER, REORDERER):
            self.lab.netns("lan", "ip", "addr", "add", a + "/24", "dev", "eth0")
        self.lab.start_server()
        sink = self.lab.spawn("srv", [PYTHON, os.path.join(os.path.dirname(__file__), "pptplab", "hostile.py"),
                                      "sink", "--local", SERVER2, "--target", SERVER2, "--count", "40"])
        self.lab.wait_listening("srv", SERVER2)
        good = self.good_tunnels(duration=22)
        time.sleep(2)
        rss = {"start": self.rss()}
        self.lab.hostile("syn-rst-churn", CHURNER, NOWHERE, count=2000)
        rss["churn_2000"] = self.rss()
        self.lab.hostile("syn-rst-churn", CHURNER, NOWHERE, count=18000)
        rss["churn_20000"] = self.rss()
        flood = self.lab.hostile("syn-flood", FLOODER, NOWHERE, count=2000)
        rss["syn_flood"] = self.rss()
        ooo = self.lab.hostile("ooo-data", REORDERER, SERVER2, count=20, extra=["--segments", "30"])
        rss["ooo_data"] = self.rss()
        # The churner's connections are all closed: it may still open one, and flood it.
        ocrq = self.lab.hostile("ocrq-flood", CHURNER, SERVER2, count=300)
        rss["ocrq_flood"] = self.rss()
        # The status file is written once a second (and a sanitized daemon is slow): wait,
        # bounded, until what the floods did is in it.
        deadline = time.monotonic() + 20
        counters = self.packets()
        while time.monotonic() < deadline and not all(
                counters.get(k, 0) > 0 for k in ("budget_half_open_refused", "budget_calls_refused",
                                                 "budget_reassembly_refused")):
            time.sleep(0.5)
            counters = self.packets()
        print("\nflood results: rss_kib=%s syn_flood=%s ooo=%s ocrq=%s budget counters=%s" % (
            rss, flood, ooo, ocrq, {k: v for k, v in counters.items() if k.startswith("budget_")}), file=sys.stderr)

        # A new good call still sets up and echoes while the attacker's connections are held.
        late = self.lab.start_client("pns", local=CLIENTS[3], tag="late", call_ids=[40], duration=3)
        self.assertEchoed(self.lab.result(late))
        for p in good:
            self.assertEchoed(self.lab.result(p, timeout=60), minimum=50)
        if not sanitized(DAEMON):
            self.assertLess(max(rss.values()), RSS_BOUND_KIB, rss)
            self.assertLess(rss["churn_20000"] - rss["churn_2000"], CHURN_GROWTH_KIB, rss)
        self.assertGreater(counters["budget_half_open_refused"], 0, counters)
        self.assertGreater(counters["budget_calls_refused"], 0, counters)
        self.assertTrue(ooo["ok"] and ooo["connections"] == 20, ooo)
        self.assertGreater(counters["budget_reassembly_refused"], 0, counters)
        log = self.lab.read_daemon_log()
        for attacker in (FLOODER, REORDERER, CHURNER):  # each has its own lines
            self.assertIn("kind=budget_refused source=%s" % attacker, log)
        self.lab._stop(sink)


if __name__ == "__main__":
    unittest.main()
