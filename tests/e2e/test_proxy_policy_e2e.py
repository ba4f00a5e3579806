#!/usr/bin/python3
"""End-to-end tests of proxy mode's policy, operations and limits (`pptp-alg --proxy`,
docs/proxy.md "Policy", "Operations"): real RFC 2637 answers to refused hosts, calls and
PPP names, `ctl`, reload, the privilege drop (the limits: test_proxy_limits_e2e.py). Split from test_proxy_e2e.py (its ProxyTest lab), so that the two run side
by side. Run as root:

    PPTP_ALG=build/release/alg/pptp-alg /usr/bin/python3 tests/e2e/test_proxy_policy_e2e.py -v
"""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pptplab.lab import PUBLIC, PYTHON, SERVER, SERVER2  # noqa: E402
from test_proxy_e2e import ALICE, BOB, CAROL, METRICS_PORT, ProxyTest  # noqa: E402


class ProxyPolicyTest(ProxyTest):
    """The per-user policy in proxy mode (docs/proxy.md, "Policy"): real RFC 2637 answers."""
    policy = "default: allow\n"

    def daemon_arguments(self):
        self.socket = os.path.join(self.lab.tmp, "control")
        return ["--proxy", "--policy", self.lab.write_policy(self.policy), "--control-socket", self.socket]

    def ctl(self, *args):
        r = subprocess.run([self.lab.daemon_binary, "ctl", "--socket", self.socket] + list(args),
                           capture_output=True, text=True, check=False)
        return r.returncode, r.stdout

    def assertCallEchoed(self, call, minimum=5):
        self.assertEqual(call["result"], 1, call)
        self.assertGreaterEqual(call["echoed"], minimum, call)
        self.assertEqual(call["foreign"], 0, call)


class Refusals(ProxyPolicyTest):
    policy = """
on_deny: refuse
users:
  alice: {addresses: %s}
  bob: {addresses: %s, limits: {calls: 1}}
groups:
  staff: [alice, bob]
rules:
  - {name: staff, from: {group: staff}, action: allow}
""" % (ALICE, BOB)

    def test_a_denied_host_and_a_denied_call_get_their_result_codes_and_the_server_never_sees_them(self):
        pac = self.lab.start_pac(connections=2, duration=4)
        alice, bob, carol = self.lab.run_clients([
            ("pns", dict(local=ALICE, server=SERVER2, tag="alice", call_ids=[7], duration=3)),
            ("pns", dict(local=BOB, server=SERVER2, tag="bob", call_ids=[7, 8], duration=3)),
            ("pns", dict(local=CAROL, server=SERVER2, tag="carol", call_ids=[7], duration=1)),
        ])
        # carol's host is outside the rules: Start-Control-Connection-Reply result 4
        # ("requester not authorized", RFC 2637 2.2), then the proxy closes.
        self.assertEqual(carol.get("start_result"), 4, carol)
        # bob may hold one call: his second gets Outgoing-Call-Reply result 7 ("do not
        # accept", 2.8); his first, and alice's, work.
        self.assertEchoed(alice)
        self.assertCallEchoed(bob["calls"][0])
        self.assertEqual(bob["calls"][1]["result"], 7, bob)
        served = self.lab.result(pac)
        self.assertEqual((served["connections"], served["outgoing"]), (2, 2),
                         "the server saw a refused host or call: %s" % served)
        status = self.lab.status()
        self.assertEqual(status["relay"]["connections_refused"], 1, status)
        self.assertEqual(status["relay"]["calls_refused"], 1, status)
        self.assertEqual(status["policy"]["connections_denied"], 1, status)
        self.assertEqual(status["call_ids_in_use"], 0, status)
        log = self.lab.read_daemon_log()
        self.assertIn("proxy_answered scope=connection client=%s" % CAROL, log)
        self.assertIn("Start-Control-Connection-Reply result 4", log)
        self.assertIn("Outgoing-Call-Reply result 7", log)


# pptp-linux says why it was refused only through syslog(3), to /dev/log, which this machine
# does not have: the client runs in a mount namespace of its own whose /dev is a tmpfs with
# /dev/null and a /dev/log socket this script reads, and /var/run/pptp private (as
# pptplab/pptp_linux_client.py does). Prints pptp's syslog lines.
SYSLOG_PPTP = r"""
import ctypes, os, socket, subprocess, sys, time
local, server, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
if ctypes.CDLL(None, use_errno=True).unshare(0x00020000) != 0:
    raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
subprocess.run(["mount", "--make-rprivate", "/"], check=True)
os.makedirs("/var/run/pptp", mode=0o750, exist_ok=True)  # made by pptp's first run otherwise
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "pptplab", "/var/run/pptp"], check=True)
open("/var/run/pptp/null", "w").close()
subprocess.run(["mount", "--bind", "/dev/null", "/var/run/pptp/null"], check=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "pptplabdev", "/dev"], check=True)
open("/dev/null", "w").close()
subprocess.run(["mount", "--bind", "/var/run/pptp/null", "/dev/null"], check=True)
log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
log.bind("/dev/log")
log.settimeout(0.2)
pptp = subprocess.Popen(["pptp", server, "--nolaunchpppd", "--localbind", local, "--nohostroute", "--loglevel", "1"],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        start_new_session=True)
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        print(log.recv(4096).decode(errors="replace"), flush=True)
    except socket.timeout:
        pass
os.killpg(pptp.pid, 9)
"""


class RefusedPptpLinux(ProxyPolicyTest):
    """pptp-linux as the refused client (docs/proxy.md, "Policy"): what it logs."""
    policy = Refusals.policy

    def test_pptp_linux_logs_the_start_refusal_with_result_code_4(self):
        self.lab.start_server()
        log = self.lab.netns("lan", PYTHON, "-c", SYSLOG_PPTP, CAROL, SERVER, "8").stdout
        # RFC 2637 2.2: Start-Control-Connection-Reply result 4, "requester not authorized".
        self.assertIn("Negative reply received to our Start Control Connection Request", log)
        self.assertIn("Reply result code is 4 'Requester is not Authorized'", log)
        self.assertIn("proxy_answered scope=connection client=%s" % CAROL, self.lab.read_daemon_log())


class RefusedCallPptpLinux(ProxyPolicyTest):
    """pptp-linux's call refused (Outgoing-Call-Reply result 7) while its host is allowed:
    what pptp-linux itself logs (docs/proxy.md, "What pptp-linux says when refused")."""
    policy = """
on_deny: refuse
users:
  carol: {addresses: %s, limits: {calls: 1}}
rules:
  - {name: carol, from: {user: carol}, action: allow}
""" % CAROL

    def test_pptp_linux_logs_the_call_refusal_with_result_code_7(self):
        self.lab.start_server()
        holder = self.lab.start_client("pns", local=CAROL, tag="holder", call_ids=[7], duration=12)
        self.wait_status(lambda s: s["relay"]["calls_connected"] == 1)  # carol's one call is taken
        log = self.lab.netns("lan", PYTHON, "-c", SYSLOG_PPTP, CAROL, SERVER, "6").stdout
        # RFC 2637 2.8: Outgoing-Call-Reply result 7, "do not accept", to a host that may start.
        self.assertNotIn("Negative reply received to our Start Control Connection Request", log)
        self.assertIn("has not been accepted", log)
        self.assertIn("Result code is 7 'Not Accepted, Call is administratively prohibited'", log)
        self.assertEchoed(self.lab.result(holder))
        status = self.lab.status()
        self.assertGreaterEqual(status["relay"]["calls_refused"], 1, status)
        self.assertEqual(status["relay"]["calls_connected"], 1, "the refused call never reached the server")
        self.assertIn("Outgoing-Call-Reply result 7", self.lab.read_daemon_log())


class DeniedPppName(ProxyPolicyTest):
    policy = """
on_deny: refuse
users:
  alice: {names: [alice]}
rules:
  - {name: alice-only, from: {user: alice}, action: allow}
"""

    def test_a_user_the_server_accepts_but_the_policy_denies_gets_call_disconnect_notify(self):
        self.lab.start_server()
        alice, mallory = self.lab.run_clients([
            ("pns", dict(local=ALICE, tag="alice", call_ids=[7], duration=3, pap="alice")),
            ("pns", dict(local=BOB, tag="mallory", call_ids=[7], duration=3, pap="mallory")),
        ])
        self.assertEchoed(alice)
        # (Poptop then closes its connection for the cleared call, and the proxy the
        # client's: mallory's own Stop-Control-Connection-Request finds it closed.)
        self.assertTrue(mallory.get("calls"), mallory)
        call = mallory["calls"][0]
        self.assertEqual(call["echoed"], 0, mallory)
        # The proxy ended the call itself, as the PAC the client knows (RFC 2637 2.13):
        # administrative shutdown, with the reason in the Call Statistics field.
        self.assertEqual(call.get("ended_by"), "call_disconnect_notify", mallory)
        self.assertEqual(call["disconnect_call_id"], call["peer_call_id"], mallory)
        self.assertEqual(call["disconnect_result"], 3, mallory)
        self.assertIn("not authorized", call["disconnect_text"], mallory)
        status = self.lab.status()
        self.assertEqual(status["relay"]["calls_cut"], 1, status)
        self.assertEqual(status["policy"]["calls_cut"], 1, status)
        log = self.lab.read_daemon_log()
        self.assertIn('scope=call_user verdict=deny', log)
        self.assertIn('ppp_name="mallory"', log)


class OperatorKill(ProxyPolicyTest):
    def daemon_arguments(self):
        return super().daemon_arguments() + ["--metrics-listen", "127.0.0.1:%d" % METRICS_PORT]

    def test_ctl_kill_ends_one_clients_call_on_both_legs_and_ctl_calls_shows_both_legs(self):
        pac = self.lab.start_pac(connections=2, duration=12)
        alice = self.lab.start_client("pns", local=ALICE, server=SERVER2, tag="alice", call_ids=[7], duration=10)
        bob = self.lab.start_client("pns", local=BOB, server=SERVER2, tag="bob", call_ids=[7], duration=10)
        deadline = time.monotonic() + 20
        calls = []
        while time.monotonic() < deadline:
            rc, out = self.ctl("calls", "--json")
            calls = json.loads(out)["calls"] if rc == 0 else []
            if len([c for c in calls if c["state"] == "established"]) == 2:
                break
            time.sleep(0.3)
        self.assertEqual(len(calls), 2, calls)
        for c in calls:  # both legs: the client's own Call ID, ours on each side, the server's
            self.assertEqual(c["path"], "proxy")
            self.assertEqual(c["client_leg"]["client_call_id"], 7, c)
            self.assertEqual(c["client_leg"]["proxy_call_id"], c["id"], c)
            self.assertNotEqual(c["server_leg"]["proxy_call_id"], c["id"], c)
            self.assertGreaterEqual(c["server_leg"]["server_call_id"], 300, c)
        rc, table = self.ctl("calls")
        self.assertEqual(rc, 0, table)
        self.assertIn(ALICE, table)
        # `pptp-alg status`: each call with both legs; `ctl metrics`: the Prometheus text.
        self.lab.status()
        shown = subprocess.run([self.lab.daemon_binary, "status", "--file", self.lab.status_file],
                               capture_output=True, text=True, check=True).stdout
        for c in calls:
            self.assertIn("client %s Call ID 7 <-> ours %d | ours %d <-> server %s Call ID " % (
                c["client"], c["id"], c["server_leg"]["proxy_call_id"], SERVER2), shown)
        rc, metrics = self.ctl("metrics")
        self.assertEqual(rc, 0, metrics)
        self.assertIn("pptp_alg_proxy_relay_calls_connected_total 2", metrics)
        # --metrics-listen: the same text over HTTP, as a Prometheus server scrapes it.
        fetch = "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:%d/metrics').read().decode())"
        scraped = self.lab.netns("rtr", PYTHON, "-c", fetch % METRICS_PORT).stdout
        self.assertIn("pptp_alg_proxy_relay_calls_connected_total 2", scraped)
        self.assertIn("pptp_alg_proxy_fast_path_calls ", scraped)
        # Both calls' GRE runs in the kernel (docs/proxy.md, "Fast path"): the kill must
        # take alice's elements out.
        self.wait_status(lambda s: s["fast_path"]["calls"] == 2, timeout=30)
        rc, out = self.ctl("kill", "--client", ALICE)
        self.assertEqual(rc, 0, out)
        self.assertIn("ended 1 call(s)", out)
        alice, bob = self.lab.result(alice), self.lab.result(bob)
        self.assertEchoed(bob)
        call = alice["calls"][0]
        self.assertLess(call["echoed"], call["sent"] - 10, alice)  # its GRE stopped at the kill
        self.assertEqual(call.get("ended_by"), "call_disconnect_notify", alice)
        self.assertEqual(call["disconnect_result"], 3, alice)
        self.assertIn("operator", call["disconnect_text"], alice)
        served = self.lab.result(pac)
        self.assertEqual(served["clears_received"], 2, served)  # the proxy's for alice, bob's own
        self.assertIn("ctl_kill calls=1", self.lab.read_daemon_log())
        # A server's FIN from port 1723 to a port of the router no socket has: the proxy's
        # table drops it (chain input, docs/packet-path.md) and its status and metrics count it
        # under the transparent daemon's name, read every 5 s (kCountSeconds).
        attack = self.lab.hostile("tcp-spoof", SERVER, PUBLIC, count=2, ns="srv",
                                  extra=["--sport", "1723", "--dport", "40123"])
        self.assertEqual(attack.get("sent"), ["rst", "fin", "syn"] * 2, attack)
        status = self.wait_status(lambda s: s.get("rules", {}).get("control_stray", {}).get("packets") == 2,
                                  timeout=20)
        self.assertEqual(status["rules"]["control_stray"]["packets"], 2, status)
        rc, metrics = self.ctl("metrics")
        self.assertIn("pptp_alg_rules_control_stray_packets_total 2\n", metrics)


class ReloadRejudge(ProxyPolicyTest):
    policy = """
on_deny: refuse
on_reload: rejudge
users:
  alice: {addresses: %s}
  bob: {addresses: %s}
rules:
  - {name: alice, from: {user: alice}, action: allow}
  - {name: bob, from: {user: bob}, action: allow}
""" % (ALICE, BOB)

    def test_a_reload_that_revokes_bob_ends_his_live_call_with_a_reason_and_keeps_alices(self):
        pac = self.lab.start_pac(connections=2, duration=12)
        alice = self.lab.start_client("pns", local=ALICE, server=SERVER2, tag="alice", call_ids=[7], duration=8)
        bob = self.lab.start_client("pns", local=BOB, server=SERVER2, tag="bob", call_ids=[7], duration=8)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rc, out = self.ctl("calls", "--json")
            if rc == 0 and len([c for c in json.loads(out)["calls"] if c["state"] == "established"]) == 2:
                break
            time.sleep(0.3)
        self.wait_status(lambda s: s["fast_path"]["calls"] == 2, timeout=30)  # in the kernel
        self.lab.write_policy(self.policy.replace("  - {name: bob, from: {user: bob}, action: allow}\n", ""))
        rc, out = self.lab.reload()
        self.assertEqual(rc, 0, out)
        alice, bob = self.lab.result(alice), self.lab.result(bob)
        self.assertEchoed(alice)
        call = bob["calls"][0]
        self.assertEqual(call.get("ended_by"), "call_disconnect_notify", bob)
        self.assertEqual(call["disconnect_result"], 3, bob)
        self.assertIn("not authorized", call["disconnect_text"], bob)
        self.assertLess(call["echoed"], call["sent"] - 10, bob)
        self.assertTrue(self.lab.result(pac)["ok"])
        log = self.lab.read_daemon_log()
        self.assertIn("policy_reloaded", log)
        self.assertIn("scope=reload verdict=deny", log)


class PrivilegeDrop(ProxyTest):
    def daemon_arguments(self):
        return ["--proxy", "--user", "nobody"]

    def test_the_proxy_runs_as_the_user_offloads_its_call_to_the_kernel_and_still_removes_its_rules(self):
        with open("/proc/%d/status" % self.lab.daemon_proc.pid) as f:
            ids = dict(line.split(":", 1) for line in f if line.startswith(("Uid", "CapEff")))
        self.assertEqual(ids["Uid"].split()[0], "65534", ids)
        self.assertEqual(int(ids["CapEff"].strip(), 16), 1 << 12, "CAP_NET_ADMIN alone: %s" % ids)
        self.lab.start_pac(connections=1, duration=12)
        client = self.lab.start_client("pns", local=ALICE, server=SERVER2, tag="alice", call_ids=[7], duration=10)
        # The call goes to the kernel with CAP_NET_ADMIN alone (the netlink writes of the
        # fast path, docs/proxy.md), and the kernel relays it from then on.
        first = self.wait_status(lambda s: s["fast_path"]["calls"] == 1 and s["fast_path"]["to_server_packets"] > 0
                                 and s["fast_path"]["to_client_packets"] > 0, timeout=30)
        r = self.lab.result(client)
        self.assertEchoed(r, minimum=60)
        done = self.wait_status(lambda s: s["fast_path"]["calls"] == 0)
        self.assertGreater(done["fast_path"]["to_server_packets"], first["fast_path"]["to_server_packets"], done)
        self.assertEqual((done["fast_path"]["offloaded"], done["fast_path"]["withdrawn"]), (1, 1), done)
        self.assertEqual(done["fast_path"]["add_failed"], 0, done)
        log = self.lab.read_daemon_log()
        self.assertIn("privileges_dropped user=nobody", log)
        self.assertIn("call_offloaded mode=proxy", log)
        # tearDown: the rules and the policy route are gone after the proxy (as nobody) exits.


if __name__ == "__main__":
    unittest.main()
