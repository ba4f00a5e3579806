#!/usr/bin/python3
"""Least privilege (issue 13, docs/reliability.md "Least privilege"): the daemon, started as
root with `--user nobody`, ends with CAP_NET_ADMIN only and no id 0, and still does all of
its work while calls are live: its rules installed, fast-path elements added for a call,
a policy reload (SIGHUP) applied, its files in its private runtime directory mode 0600;
with the ip fast path and with --fast-path netdev.
Run as root; builds and removes its own namespaces (RFC 5737 addresses only).

    PPTP_ALG=build/release/alg/pptp-alg /usr/bin/python3 tests/e2e/test_privilege_e2e.py -v
"""
import os
import pwd
import signal
import stat
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pptplab.lab import CLIENTS  # noqa: E402
from test_nat_e2e import LabTest  # noqa: E402
from test_ops_e2e import poll  # noqa: E402

USER = "nobody"
CAP_NET_ADMIN_ONLY = 1 << 12  # capability(7): CAP_NET_ADMIN is 12


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


class Unprivileged(LabTest):
    def daemon_arguments(self):
        account = pwd.getpwnam(USER)
        # The runtime directory is the daemon's own (as systemd's RuntimeDirectory= makes
        # it); the lab's directory above it is only traversable.
        os.chmod(self.lab.tmp, 0o711)
        self.runtime = os.path.join(self.lab.tmp, "run")
        os.mkdir(self.runtime, 0o700)
        os.chown(self.runtime, account.pw_uid, account.pw_gid)
        self.lab.status_file = os.path.join(self.runtime, "status.json")
        self.lab.pid_file = os.path.join(self.runtime, "pptp-alg.pid")
        policy = self.lab.write_policy("default: allow\n")
        os.chmod(policy, 0o644)
        return ["--user", USER, "--policy", policy, "--control-socket", "none"]

    def test_only_cap_net_admin_and_all_the_work_still_done(self):
        pid = self.lab.daemon_proc.pid
        s = proc_status(pid)
        nobody = pwd.getpwnam(USER)
        self.assertEqual(int(s["CapEff"], 16), CAP_NET_ADMIN_ONLY, s)
        self.assertEqual(int(s["CapPrm"], 16), CAP_NET_ADMIN_ONLY, s)
        self.assertEqual([int(u) for u in s["Uid"].split()], [nobody.pw_uid] * 4, s)
        self.assertEqual([int(g) for g in s["Gid"].split()], [nobody.pw_gid] * 4, s)
        self.assertNotIn("0", s.get("Groups", "").split(), s)
        self.assertNotEqual(self.lab.rules_left(), [], "no rules installed")

        # Written by the daemon as nobody, into its own directory.
        self.assertTrue(poll(lambda: os.path.exists(self.lab.status_file)), self.lab.read_daemon_log()[-1500:])
        self.lab.start_server()
        call = self.lab.start_client("pns", local=CLIENTS[0], tag="live", call_ids=[7], duration=14)
        # Past its first packets the call's GRE goes to the kernel: elements were added.
        offloaded = poll(lambda: self.lab.status(wait=0.5)["fast_path"]["calls"] == 1)
        self.assertTrue(offloaded, self.lab.status(wait=0)["fast_path"])
        self.assertEqual(self.lab.status(wait=0)["fast_path"]["elements"]["errors"], 0)

        # A reload while the call is live: the new policy is read and applied as nobody.
        self.lab.write_policy("default: allow\nusers: {alice: {addresses: 192.0.2.99}}\n")
        os.kill(pid, signal.SIGHUP)
        reloaded = poll(lambda: "policy_reloaded" in self.lab.read_daemon_log())
        self.assertTrue(reloaded, self.lab.read_daemon_log()[-1500:])
        reload_lines = [l for l in self.lab.read_daemon_log().splitlines() if "policy_reload" in l]
        self.assertEqual(self.lab.status(wait=1.5)["policy"]["users"], 1, reload_lines)

        self.assertEchoed(self.lab.result(call), minimum=60)
        files = sorted(os.listdir(self.runtime))
        self.assertIn("status.json", files)
        for name in files:
            mode = stat.S_IMODE(os.lstat(os.path.join(self.runtime, name)).st_mode)
            self.assertEqual(mode, 0o600, "%s is mode %o" % (name, mode))
        self.assertNotIn("status_file_unwritable", self.lab.read_daemon_log())
        # The kernel's counters are read (and elements re-armed) on the worker thread: it must
        # hold CAP_NET_ADMIN too (a thread that existed at the uid change lost it: EPERM).
        log = self.lab.read_daemon_log()
        for failure in ("fast_path_counters_failed", "fast_path_refresh_failed", "fast_path_add_failed",
                        "fast_path_netdev_failed", "nft_counters_unavailable"):
            self.assertNotIn(failure, log)
        # The table's named counters are read as nobody too (CAP_NET_ADMIN).
        self.assertIn("gre_spoofed", self.lab.status(wait=0).get("rules", {}), self.lab.status(wait=0).get("rules"))


class UnprivilegedNetdev(Unprivileged):
    """The same with --fast-path netdev: the route questions, the netdev table's writes and
    reads, on the loop and the worker, as nobody with CAP_NET_ADMIN only."""

    def daemon_arguments(self):
        return super().daemon_arguments() + ["--fast-path", "netdev"]

    def test_only_cap_net_admin_and_all_the_work_still_done(self):
        super().test_only_cap_net_admin_and_all_the_work_still_done()
        netdev = self.lab.status(wait=0)["fast_path_netdev"]
        self.assertEqual((netdev["calls_added"], netdev["errors"]), (1, 0), netdev)
        self.assertGreaterEqual(netdev["route_lookups"], 2, netdev)
        self.assertIn("no_egress", netdev, netdev)


if __name__ == "__main__":
    unittest.main()
