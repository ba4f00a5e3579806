#!/usr/bin/python3
"""Real PPP end to end (issue 19, item 2): pptp-linux under pppd on the clients, Poptop's
pptpd with pppd on the server, real PAP, CHAP-MD5 and MS-CHAPv2 (with MPPE) against
/etc/ppp/pap-secrets and chap-secrets, two clients behind the masquerading router where
pptp-alg judges the per-user policy on the PPP names in the clear. Needs a kernel with PPP
(Debian's standard flavour: ppp_generic, ppp_async, ppp_mppe): run it in the test VM,
which it changes (/etc/ppp):

    bash scripts/vm/run.sh -- env PPTP_ALG=build/release/alg/pptp-alg \\
        /usr/bin/python3 tests/vm/test_real_ppp.py -v
"""
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from pptplab.lab import CLIENTS, SERVER, Lab, run  # noqa: E402

DAEMON = os.path.abspath(os.environ.get("PPTP_ALG", os.path.join(HERE, "../../build/release/alg/pptp-alg")))
ALICE, MALLORY = CLIENTS[0], CLIENTS[1]
TUNNEL_SERVER = "203.0.113.1"  # the server's end of every tunnel (RFC 5737)
SECRETS = {"alice": "alice-secret", "mallory": "mallory-secret"}
# alice may reach the server; mallory, whom the server knows too, may not (the default).
POLICY = """version: 1
default: deny
users:
  alice: {names: [alice]}
rules:
  - {name: alice-to-server, from: {user: alice}, to: %s, action: allow}
authentication: {max_packets: 32}
""" % SERVER
RECHALLENGE_SECONDS = 5
PPP_EXIT_AUTH_REFUSED = (19, 16)  # pppd(8): we failed to authenticate ourselves; the link hung up


def kernel_has_ppp():
    try:
        return run(["modprobe", "-a", "ppp_generic", "ppp_async", "ppp_mppe"], check=False).returncode == 0
    except OSError:  # no modprobe: no modules either
        return os.path.exists("/dev/ppp")


class PppLab:
    """The lab with pppd on both ends; the subclasses choose the server's options."""
    require = ()  # pppd options of the server
    client_options = ()  # and of the clients

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (network namespaces, /etc/ppp)")
        if not kernel_has_ppp():
            self.skipTest("this kernel has no PPP modules (run it in the VM: scripts/vm/run.sh)")
        with open("/etc/ppp/pap-secrets", "w") as f:  # client, server, secret, addresses
            f.writelines('%s * "%s" *\n' % kv for kv in SECRETS.items())
        with open("/etc/ppp/chap-secrets", "w") as f:
            f.writelines('%s pptpd "%s" *\n' % kv for kv in SECRETS.items())
        self.lab = Lab(daemon=DAEMON)
        self.lab.__enter__()
        self.addCleanup(self.lab.__exit__, None, None, None)
        self.lab.start_daemon(["--policy", self.lab.write_policy(POLICY)])
        self.start_pptpd()

    def start_pptpd(self):
        tmp = self.lab.tmp
        options = os.path.join(tmp, "pptpd-options")
        with open(options, "w") as f:
            f.write("\n".join(("name pptpd", "auth") + self.require +
                              ("nodetach", "nobsdcomp", "nodeflate", "novj", "nodefaultroute", "debug",
                               "logfile " + os.path.join(tmp, "pppd-server.log"))) + "\n")
        conf = os.path.join(tmp, "pptpd.conf")
        with open(conf, "w") as f:
            f.write("option %s\nlocalip %s\nremoteip 203.0.113.10-19\n" % (options, TUNNEL_SERVER))
        self.lab.spawn("srv", ["pptpd", "--fg", "-c", conf, "-l", SERVER, "-p", os.path.join(tmp, "pptpd.pid")],
                       log=os.path.join(tmp, "pptpd.log"))
        self.lab.wait_listening("srv", SERVER)

    def dial(self, user, local, password=None):
        """pppd with pptp-linux as its pty (as `pon` would run it); its interface is ppp-USER."""
        pty = "pptp %s --nolaunchpppd --localbind %s --loglevel 1" % (SERVER, local)
        log = os.path.join(self.lab.tmp, "pppd-%s.log" % user)
        return self.lab.spawn("lan", [
            "pppd", "nodetach", "pty", pty, "name", user, "password", password or SECRETS[user],
            "remotename", "pptpd", "ifname", "ppp-" + user, "noauth", "nodefaultroute", "noipdefault",
            "nobsdcomp", "nodeflate", "novj", "maxfail", "1", "debug", "logfile", log, *self.client_options], log=log)

    def tunnel_up(self, user, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.lab.netns("lan", "ip", "-4", "-o", "addr", "show", "dev", "ppp-" + user, check=False)
            if " inet " in out.stdout:
                return True
            time.sleep(0.5)
        return False

    def ping(self, user):
        return self.lab.netns("lan", "ping", "-c", "3", "-W", "5", "-I", "ppp-" + user, TUNNEL_SERVER,
                              check=False).returncode == 0

    def pppd_log(self, user):
        with open(os.path.join(self.lab.tmp, "pppd-%s.log" % user), errors="replace") as f:
            return f.read()

    def decisions(self, verdict, name):
        return [line for line in self.lab.read_daemon_log().splitlines()
                if " policy_decision " in line and "verdict=" + verdict in line and 'ppp_name="%s"' % name in line]

    def call_status(self):
        calls = [call for c in self.lab.status(wait=0)["connections"] for call in c["calls"]]
        return calls[0] if calls else {}


class RealPpp(PppLab):
    """One server authentication method; the subclasses are the tests."""

    def test_allowed_user_pings_through_the_tunnel_and_a_denied_one_is_cut(self):
        alice = self.dial("alice", ALICE)
        mallory = self.dial("mallory", MALLORY)
        self.assertTrue(self.tunnel_up("alice"), self.pppd_log("alice")[-1500:])
        self.assertTrue(self.ping("alice"), self.pppd_log("alice")[-1500:])
        self.check_encryption()
        # mallory's call is cut at its name: no tunnel, whatever the server would have said.
        self.assertFalse(self.tunnel_up("mallory", timeout=20), self.pppd_log("mallory")[-1500:])
        self.assertTrue(self.decisions("allow", "alice"), self.lab.read_daemon_log()[-2000:])
        self.assertTrue(self.decisions("deny", "mallory"), self.lab.read_daemon_log()[-2000:])
        for p in (alice, mallory):
            self.lab._stop(p)

    def test_a_wrong_password_fails_at_the_server(self):
        alice = self.dial("alice", ALICE, password="not-alice-secret")
        try:
            rc = alice.wait(timeout=90)
        except subprocess.TimeoutExpired:
            rc = None
        # pppd exits 19 (peer refused us), or 16 (hangup) when the server's Terminate-Request
        # overtakes it (PAP: Nak and Terminate-Request back to back); its log says which.
        self.assertIn(rc, PPP_EXIT_AUTH_REFUSED, self.pppd_log("alice")[-1500:])
        self.assertRegex(self.pppd_log("alice"), r"(PAP|CHAP) authentication failed")
        # The gateway saw the server refuse (and judged no name: only an accepted one counts).
        log = self.lab.read_daemon_log()
        self.assertRegex(log, r"call_auth .* success=false", log[-2000:])
        self.assertFalse(self.decisions("allow", "alice"), log[-2000:])
        self.assertFalse(self.tunnel_up("alice", timeout=1))

    def check_encryption(self):
        pass


class Pap(RealPpp, unittest.TestCase):
    require = ("require-pap",)


class ChapMd5(RealPpp, unittest.TestCase):
    require = ("require-chap",)


class MsChapV2WithMppe(RealPpp, unittest.TestCase):
    require = ("require-mschap-v2", "require-mppe-128")
    client_options = ("require-mppe-128",)  # pppd refuses the server's MPPE offer without it

    def check_encryption(self):
        self.assertIn("MPPE 128-bit stateless compression enabled", self.pppd_log("alice"))


class ChapRechallenge(PppLab, unittest.TestCase):
    """Re-authentication with real pppd: the server rechallenges every few seconds
    (pppd's chap-interval; RFC 1994 section 2: CHAP may challenge again at any time) and
    alice answers each time. Her call is on the fast path by then, whose rules hand
    authentication frames back to the queue (docs/packet-path.md): every rechallenge must
    still reach her, her answer the server, and the tunnel keep carrying data."""
    require = ("require-chap", "chap-interval %d" % RECHALLENGE_SECONDS)

    def successes(self):
        with open(os.path.join(self.lab.tmp, "pppd-server.log"), errors="replace") as f:
            return f.read().count("sent [CHAP Success")

    def test_rechallenges_pass_the_gateway_and_the_tunnel_keeps_working(self):
        alice = self.dial("alice", ALICE)
        self.assertTrue(self.tunnel_up("alice"), self.pppd_log("alice")[-1500:])
        deadline = time.monotonic() + 60
        while not self.call_status().get("fast_path") and time.monotonic() < deadline:
            time.sleep(0.5)
        self.assertTrue(self.call_status().get("fast_path"), self.lab.read_daemon_log()[-2000:])
        first = self.successes()
        deadline = time.monotonic() + 6 * RECHALLENGE_SECONDS
        while self.successes() < first + 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        self.assertGreaterEqual(self.successes(), first + 2, self.pppd_log("alice")[-1500:])
        self.assertTrue(self.ping("alice"), self.pppd_log("alice")[-1500:])
        self.assertIsNone(alice.poll(), "pppd ended: " + self.pppd_log("alice")[-1500:])
        call = self.call_status()
        self.assertEqual((call.get("user"), call.get("policy", {}).get("verdict")), ("alice", "allow"), call)
        self.assertFalse(self.decisions("deny", "alice"), self.lab.read_daemon_log()[-2000:])
        self.lab._stop(alice)


if __name__ == "__main__":
    unittest.main()
