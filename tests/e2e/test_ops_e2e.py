#!/usr/bin/python3
"""End-to-end tests of operating pptp-alg (issue 15): the control socket (`pptp-alg ctl`
calls, kill, reload, metrics), the metrics HTTP listener, and the daemon putting its rules
back after the firewall's own reload (`nft flush ruleset`). Run as root; each test builds
and removes its own namespaces (RFC 5737 addresses only), processes and rules.

    PPTP_ALG=build/alg/pptp-alg /usr/bin/python3 tests/e2e/test_ops_e2e.py -v
"""
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pptplab.lab import CLIENTS, run  # noqa: E402
from test_nat_e2e import LabTest  # noqa: E402

ALICE, BOB = CLIENTS[0], CLIENTS[1]
METRICS_PORT = 9816  # inside the router's own namespace
MASQUERADE = """table ip pptplab_nat {
 chain postrouting {
  type nat hook postrouting priority srcnat; policy accept;
  oifname "outside" masquerade
 }
}
"""


def poll(predicate, timeout=15.0, every=0.2):
    """Bounded wait (a loaded machine is slow); the predicate's last value."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = predicate()
    return value


class OpsTest(LabTest):
    policy = "default: allow\n"

    def daemon_arguments(self):
        self.socket = os.path.join(self.lab.tmp, "control")
        return ["--control-socket", self.socket, "--policy", self.lab.write_policy(self.policy),
                "--metrics-listen", "127.0.0.1:%d" % METRICS_PORT]

    def ctl(self, *args):
        r = run([self.lab.daemon_binary, "ctl", "--socket", self.socket] + list(args), check=False)
        return r.returncode, r.stdout

    def metric(self, text, name):
        m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
        return float(m.group(1)) if m else None

    def assertCallWorked(self, result, lost=3):
        self.assertTrue(result.get("ok"), result)
        self.assertGreaterEqual(result["echoed"], 5, result)
        self.assertGreaterEqual(result["echoed"], result["sent"] - lost, result)


class ControlSocket(OpsTest):
    def test_kill_a_user_ends_that_call_only_and_metrics_show_it(self):
        self.lab.start_server()
        alice = self.lab.start_client("pptp-linux", local=ALICE, tag="alice", user="alice", duration=14)
        bob = self.lab.start_client("pptp-linux", local=BOB, tag="bob", user="bob", duration=14)

        def both_up():
            rc, out = self.ctl("calls", "--json")
            calls = json.loads(out)["calls"] if rc == 0 else []
            users = {c["user"] for c in calls if c["state"] == "established"}
            return calls if {"alice", "bob"} <= users else None
        calls = poll(both_up)
        self.assertTrue(calls, self.ctl("calls"))
        rc, text = self.ctl("metrics")
        self.assertEqual(self.metric(text, 'pptp_alg_calls_by_state{state="established"}'), 2, text)
        rc, table = self.ctl("calls")
        self.assertEqual(rc, 0, table)
        self.assertIn("alice", table)
        time.sleep(2)

        rc, out = self.ctl("kill", "--user", "alice")
        self.assertEqual(rc, 0, out)
        self.assertIn("ended 1 call(s)", out)
        alice, bob = self.lab.result(alice), self.lab.result(bob)
        self.assertCallWorked(bob)
        # Alice's data flowed until the kill, then stopped.
        self.assertGreater(alice.get("echoed", 0), 5, alice)
        self.assertLess(alice.get("echoed", 0), alice.get("sent", 0) - 15, alice)
        self.assertIn("call_killed", self.lab.read_daemon_log())

        # The same counters on the socket and over HTTP.
        rc, text = self.ctl("metrics")
        self.assertEqual(rc, 0, text)
        self.assertGreater(self.metric(text, "pptp_alg_packets_killed_dropped_total") or 0, 0, text)
        self.assertIn("# TYPE pptp_alg_calls gauge", text)
        # Every packet these calls queued got its verdict timed.
        timed = self.metric(text, "pptp_alg_verdict_latency_seconds_count") or 0
        self.assertGreater(timed, 0, text)
        self.assertEqual(self.metric(text, 'pptp_alg_verdict_latency_seconds_bucket{le="+Inf"}'), timed, text)
        fetch = "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:%d/metrics').read().decode())"
        http = self.lab.netns("rtr", sys.executable, "-c", fetch % METRICS_PORT).stdout
        self.assertGreater(self.metric(http, "pptp_alg_packets_gre_to_pns_total") or 0, 0, http)
        # The table's named counters (drops before the queue, forged GRE), as nft counts them
        # (the daemon's worker reads them at each tick: equal within a few seconds).
        names = ("invalid_dropped", "syn_limited", "gre_limited", "gre_spoofed", "control_spoofed", "control_stray")
        deadline = time.monotonic() + 5
        while True:
            kernel, shown = {}, {}
            rc, status = self.ctl("status", "--json")
            http = self.lab.netns("rtr", sys.executable, "-c", fetch % METRICS_PORT).stdout
            for name in names:
                listed = json.loads(self.lab.netns("rtr", "nft", "-j", "list", "counter", "ip", "pptp_alg",
                                                   name).stdout)
                kernel[name] = [o["counter"]["packets"] for o in listed["nftables"] if "counter" in o][0]
                shown[name] = (json.loads(status)["rules"][name]["packets"],
                               self.metric(http, "pptp_alg_rules_%s_packets_total" % name))
            if all(shown[n] == (kernel[n], kernel[n]) for n in names) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        for name in names:
            self.assertEqual(shown[name], (kernel[name], kernel[name]), (name, status, http))

    def test_reload_answers_with_the_result_or_the_error_position(self):
        self.expected_errors = ("policy_reload_rejected",)
        rc, out = self.ctl("reload")
        self.assertEqual(rc, 0, out)
        self.assertIn("policy reloaded", out)
        self.lab.write_policy("default: alow\n")
        rc, out = self.ctl("reload")
        self.assertEqual(rc, 2, out)
        self.assertIn("rules.yaml:1:", out)

    def test_the_socket_refuses_other_users(self):
        mode = os.stat(self.socket).st_mode & 0o777
        self.assertEqual(mode, 0o660)
        r = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", self.lab.daemon_binary, "ctl",
                 "--socket", self.socket, "calls"], check=False)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("Permission denied", r.stdout)


class FirewallReload(OpsTest):
    def offloaded_calls(self):
        try:
            return self.lab.status(wait=0.5)["fast_path"]["calls"] == 1
        except (OSError, ValueError):  # not written yet
            return False

    def reload_firewall_during_a_call(self):
        """A call on the fast path, then what `systemctl reload nftables` does with Debian's
        nftables.conf: `nft -f` of a file that starts with `flush ruleset` and then has the
        router's own rules (one transaction: the masquerade stays, our table goes)."""
        self.lab.start_server()
        # A scripted client: 10 frames a second each way, offloaded after its first packets.
        client = self.lab.start_client("pns", local=ALICE, tag="a", call_ids=[7], duration=16)
        self.assertTrue(poll(self.offloaded_calls), "never offloaded")
        run(["ip", "netns", "exec", self.lab.ns["rtr"], "nft", "-f", "-"], input="flush ruleset\n" + MASQUERADE)
        return client

    def test_flush_ruleset_puts_the_table_and_the_elements_back(self):
        client = self.reload_firewall_during_a_call()
        self.assertTrue(poll(lambda: "rules_repaired" in self.lab.read_daemon_log()), "no repair logged")
        # Heard from nf_tables at once, not found by the backstop check ten seconds later.
        self.assertIn("noticed_by=netlink_monitor", self.lab.read_daemon_log())
        listed = self.lab.netns("rtr", "nft", "list", "table", "ip", "pptp_alg").stdout
        # fast_in carries the server's GRE rule too (forward too with the nft backend).
        self.assertIn("chain fast_in", listed)
        self.assertIn("fib daddr type local notrack", listed)
        # The offloaded call's elements are armed again.
        self.assertIn("192.0.2.11 . 198.51.100.2", self.lab.netns("rtr", "nft", "list", "set", "ip", "pptp_alg",
                                                                   "fast_out").stdout)
        rc, text = self.ctl("metrics")
        self.assertGreaterEqual(self.metric(text, "pptp_alg_daemon_rules_repaired_total") or 0, 1, text)
        self.lab.result(client)

    def test_the_call_keeps_working_after_the_repair(self):
        # While the table is gone the server's GRE is addressed to the router itself; without
        # the daemon's raw GRE socket (nftables/gre_sink.hpp) the router answered ICMP
        # protocol unreachable and pptpd closed the call at once.
        client = self.reload_firewall_during_a_call()
        result = self.lab.result(client)
        calls = result.get("calls") or [result]
        self.assertTrue(result.get("ok"), result)
        # Frames lost while the rules were gone, none after: 10 a second, so 2 frames in the
        # lab (repair_ms 245-278 at load 14 with the table loaded in-process; 16-17 frames
        # when nft and iptables ran as processes). The bound: working again within
        # two seconds (20 frames); a call that ended loses over a hundred.
        self.assertGreaterEqual(calls[0]["echoed"], calls[0]["sent"] - 20, result)


class FirewallOwnsTheTable(FirewallReload):
    """The table loaded from the firewall's own file (`pptp-alg rules --format nft`, included
    after `flush ruleset`), the daemon without --install-rules. With the compat backend the
    file's chain to_queue holds only its placeholder (drop): the daemon puts the NFQUEUE
    target before it at start, and again when a reload of that file brings the table back."""

    def daemon_arguments(self):
        include = run([self.lab.daemon_binary, "rules", "--format", "nft"]).stdout
        self.firewall = "flush ruleset\n" + MASQUERADE + include
        run(["ip", "netns", "exec", self.lab.ns["rtr"], "nft", "-f", "-"], input=self.firewall)
        self.lab.install_rules = False
        return super().daemon_arguments()

    def queue_rules(self):
        listed = self.lab.netns("rtr", "nft", "list", "chain", "ip", "pptp_alg", "to_queue", check=False).stdout
        return listed.count("queue num 0")

    def test_the_daemon_arms_the_files_queue_rule_and_again_after_the_files_reload(self):
        if "backend=compat" not in self.lab.read_daemon_log():
            self.skipTest("the compat backend only (this kernel's probe chose another)")
        self.assertEqual(self.queue_rules(), 1)
        self.lab.start_server()
        client = self.lab.start_client("pns", local=ALICE, tag="a", call_ids=[7], duration=16)
        self.assertTrue(poll(self.offloaded_calls), "never offloaded: the control connection was not queued")
        # systemctl reload nftables: the same file again, the table comes back with the placeholder.
        run(["ip", "netns", "exec", self.lab.ns["rtr"], "nft", "-f", "-"], input=self.firewall)
        self.assertTrue(poll(lambda: "reinstalled=false" in self.lab.read_daemon_log()), "no repair logged")
        self.assertEqual(self.queue_rules(), 1)
        result = self.lab.result(client)
        calls = result.get("calls") or [result]
        self.assertTrue(result.get("ok"), result)
        self.assertGreaterEqual(calls[0]["echoed"], calls[0]["sent"] - 20, result)

    def tearDown(self):
        # The firewall's table is the firewall's: the daemon leaves it; the test takes it out.
        self.lab.netns("rtr", "nft", "delete", "table", "ip", "pptp_alg", check=False)
        super().tearDown()

    # The inherited tests reload with `flush ruleset` and the masquerade only: without
    # --install-rules nothing puts the table back, as documented.
    test_flush_ruleset_puts_the_table_and_the_elements_back = None
    test_the_call_keeps_working_after_the_repair = None


if __name__ == "__main__":
    unittest.main()
