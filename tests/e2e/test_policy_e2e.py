#!/usr/bin/python3
"""End-to-end tests of the per-user policy (docs/policy.md) with real peers: pptp-linux
clients through the masquerading router to Poptop's pptpd. Run as root; each test builds
and removes its own namespaces (RFC 5737 addresses only), processes and rules.

    PPTP_ALG=build/alg/pptp-alg /usr/bin/python3 tests/e2e/test_policy_e2e.py -v
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pptplab.lab import CLIENTS, SERVER  # noqa: E402
from test_nat_e2e import LabTest  # noqa: E402

ALICE, BOB, CAROL, FLOODER = CLIENTS[0], CLIENTS[1], CLIENTS[2], CLIENTS[3]


def decisions(log, **fields):
    """The policy_decision lines whose key=value fields include all of `fields`."""
    out = []
    for line in log.splitlines():
        if " policy_decision " not in line:
            continue
        if all(('%s=%s' % (k, v)) in line for k, v in fields.items()):
            out.append(line)
    return out


class PolicyTest(LabTest):
    policy = "default: allow\n"

    def daemon_arguments(self):
        return ["--policy", self.lab.write_policy(self.policy)]

    def assertWorks(self, result):
        self.assertTrue(result.get("ok"), result)
        self.assertGreaterEqual(result["echoed"], 5, result)
        self.assertGreaterEqual(result["echoed"], result["sent"] - 3, result)
        self.assertEqual(result["foreign"], 0, result)


class UsersByAddress(PolicyTest):
    policy = """
users:
  alice: {addresses: %s}
  bob: {addresses: %s}
groups:
  staff: [alice, bob]
rules:
  - {name: staff-to-server, from: {group: staff}, to: %s, action: allow}
""" % (ALICE, BOB, SERVER)

    def test_an_allowed_users_tunnel_works_and_a_user_outside_the_rules_is_refused(self):
        self.lab.start_server()
        alice, carol = self.lab.run_clients([
            ("pptp-linux", dict(local=ALICE, tag="alice", duration=3)),
            ("pptp-linux", dict(local=CAROL, tag="carol", duration=3)),
        ])
        self.assertWorks(alice)
        # carol's SYN never reaches the server: pptp-linux gets no call, no PPP.
        self.assertFalse(carol.get("ok"), carol)
        self.assertEqual(carol["lcp"], 0, carol)
        status = self.lab.status()
        self.assertGreaterEqual(status["policy"]["connections_denied"], 1, status["policy"])
        log = self.lab.read_daemon_log()
        self.assertTrue(decisions(log, scope="connection", verdict="deny", source=CAROL), log[-2000:])
        self.assertTrue(decisions(log, scope="call", verdict="allow", user="alice", rule='"staff-to-server"'),
                        log[-2000:])


class UsersByPppName(PolicyTest):
    policy = """
users:
  alice: {names: [alice]}
rules:
  - {name: alice-only, from: {user: alice}, action: allow}
authentication: {max_packets: 32}
"""

    def test_a_user_whose_ppp_name_is_not_allowed_loses_the_calls_gre(self):
        self.lab.start_server()
        alice, mallory = self.lab.run_clients([
            ("pptp-linux", dict(local=ALICE, tag="alice", user="alice", duration=3)),
            ("pptp-linux", dict(local=BOB, tag="mallory", user="mallory", duration=3)),
        ])
        self.assertWorks(alice)
        # mallory's call came up (the server's LCP passed while the name was awaited) and
        # died at the PAP request: none of its data got through.
        self.assertGreater(mallory["lcp"], 0, mallory)
        self.assertGreater(mallory["sent"], 10, mallory)
        self.assertEqual(mallory["echoed"], 0, mallory)
        status = self.lab.status()
        self.assertEqual(status["policy"]["calls_cut"], 1, status["policy"])
        self.assertGreater(status["policy"]["gre_dropped"], 10, status["policy"])
        log = self.lab.read_daemon_log()
        self.assertTrue(decisions(log, scope="call_user", verdict="deny", ppp_name='"mallory"'), log[-2000:])
        self.assertTrue(decisions(log, scope="call_user", verdict="allow", user="alice"), log[-2000:])


class SetUpFlood(PolicyTest):
    policy = """
default: allow
limits:
  per_source: {calls: 4, setup_rate: 2, setup_burst: 4}
"""

    def test_a_call_id_flood_from_one_host_hits_its_limit_and_another_host_still_connects(self):
        self.lab.start_server()
        flood = self.lab.hostile("ocrq-flood", FLOODER, SERVER, count=300)
        self.assertTrue(flood["ok"], flood)
        good = self.lab.run_clients([("pptp-linux", dict(local=ALICE, tag="good", duration=3))])[0]
        self.assertWorks(good)
        status = self.lab.status()
        self.assertGreaterEqual(status["policy"]["calls_denied"], 1, status["policy"])
        log = self.lab.read_daemon_log()
        admitted = decisions(log, scope="call", verdict="allow", source=FLOODER)
        self.assertLessEqual(len(admitted), 4, admitted)
        self.assertTrue(decisions(log, scope="call", verdict="deny", source=FLOODER), log[-2000:])
        self.assertIn("limit per_source", "\n".join(decisions(log, source=FLOODER)))


class Reload(PolicyTest):
    policy = """
users:
  alice: {addresses: %s}
  bob: {addresses: %s}
rules:
  - {name: alice, from: {user: alice}, action: allow}
  - {name: bob, from: {user: bob}, action: allow}
on_reload: rejudge
""" % (ALICE, BOB)

    def test_a_reload_with_a_broken_file_changes_nothing(self):
        self.expected_errors = ("policy_reload_rejected",)
        self.lab.start_server()
        alice = self.lab.start_client("pptp-linux", local=ALICE, tag="alice", duration=5)
        time.sleep(3)
        good = self.policy
        self.lab.write_policy(good.replace("action: allow", "action: alow", 1))
        rc, out = self.lab.reload(check_first=True)
        self.assertEqual(rc, 2, out)  # `reload --policy` checks first and does not signal
        self.assertIn("rules.yaml:6:", out)
        rc, out = self.lab.reload()  # signalled anyway: the daemon rejects the file
        self.assertEqual(rc, 0, out)
        self.assertWorks(self.lab.result(alice))
        log = self.lab.read_daemon_log()
        self.assertIn("policy_reload_rejected", log)
        self.assertRegex(log, r'policy_reload_rejected error="[^"]*rules.yaml:6:\d+: the action must be allow or deny')
        # The old policy still runs: bob, allowed by it, still connects.
        bob = self.lab.run_clients([("pptp-linux", dict(local=BOB, tag="bob", duration=2))])[0]
        self.assertWorks(bob)

    def test_a_reload_that_revokes_a_user_cuts_that_users_call_and_keeps_the_others(self):
        self.lab.start_server()
        alice = self.lab.start_client("pptp-linux", local=ALICE, tag="alice", duration=8)
        bob = self.lab.start_client("pptp-linux", local=BOB, tag="bob", duration=8)
        time.sleep(4)
        self.lab.write_policy(self.policy.replace("  - {name: bob, from: {user: bob}, action: allow}\n", ""))
        rc, out = self.lab.reload(check_first=True)
        self.assertEqual(rc, 0, out)
        alice, bob = self.lab.result(alice), self.lab.result(bob)
        self.assertWorks(alice)
        # bob's data flowed until the reload, then stopped (on_reload: rejudge).
        self.assertGreater(bob["echoed"], 5, bob)
        self.assertLess(bob["echoed"], bob["sent"] - 15, bob)
        status = self.lab.status()
        self.assertEqual(status["policy"]["calls_cut"], 1, status["policy"])
        log = self.lab.read_daemon_log()
        self.assertIn("policy_reloaded", log)
        self.assertTrue(decisions(log, scope="reload", verdict="deny", user="bob"), log[-2000:])
        self.assertFalse(decisions(log, scope="reload", user="alice"), "alice's call was judged again and changed")
        # And bob cannot open a new tunnel.
        again = self.lab.run_clients([("pptp-linux", dict(local=BOB, tag="bob2", duration=1))])[0]
        self.assertFalse(again.get("ok"), again)


if __name__ == "__main__":
    unittest.main()
