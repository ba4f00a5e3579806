#!/usr/bin/python3
"""keepalived's notify script for an HA pair (scripts/ha/pptp-alg-ha-notify, docs/ha.md):
what each transition tells the daemon, and the check that keeps a node without the peer's
snapshot from becoming master. pptp-alg is a stub that answers a given status and logs the
commands it was given; conntrackd is kept off the PATH.

    /usr/bin/python3 tests/scripts/test_ha_notify.py -v
"""
import json
import os
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
NOTIFY = os.path.join(HERE, "..", "..", "scripts", "ha", "pptp-alg-ha-notify")

STUB = """#!/bin/sh
echo "$*" >> "{log}"
case "$*" in
  *status*) [ -f "{status}" ] || exit 1; cat "{status}" ;;
  *promote*) exit {promote_rc} ;;
esac
exit 0
"""


class Notify(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        d = self.dir.name
        self.log, self.status_file = os.path.join(d, "ctl.log"), os.path.join(d, "status.json")
        self.stub = os.path.join(d, "pptp-alg")
        self.write_stub(0)

    def write_stub(self, promote_rc):
        with open(self.stub, "w") as f:
            f.write(STUB.format(log=self.log, status=self.status_file, promote_rc=promote_rc))
        os.chmod(self.stub, 0o755)

    def status(self, role="standby", synced=False):
        with open(self.status_file, "w") as f:  # indented as the daemon's nlohmann::json dump
            json.dump({"daemon": {"uptime_seconds": 30.5}, "ha": {"role": role, "synced": synced}}, f, indent=2)

    def run_notify(self, *args):
        env = {"PATH": "/usr/bin:/bin"}  # no conntrackd (/usr/sbin)
        return subprocess.run(["/bin/sh", NOTIFY, *args, "--socket", "/x/ctl", "--pptp-alg", self.stub], env=env,
                              capture_output=True, text=True, timeout=30)

    def commands(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [line.split("ctl --socket /x/ctl ", 1)[-1].strip() for line in f]

    def test_master_promotes_and_backup_fault_demote(self):
        for state, command in (("master", "promote"), ("backup", "demote"), ("fault", "demote")):
            out = self.run_notify(state)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertEqual(self.commands()[-1], command)

    def test_a_refused_promotion_is_the_scripts_exit_status(self):
        self.write_stub(2)  # not synced: `ctl promote` refuses
        self.assertEqual(self.run_notify("master").returncode, 2)

    def test_the_check_passes_an_active_or_synced_daemon_and_fails_one_that_is_neither(self):
        for role, synced, rc in (("active", False, 0), ("standby", True, 0), ("standby", False, 1)):
            self.status(role, synced)
            self.assertEqual(self.run_notify("check").returncode, rc, (role, synced))
        self.assertEqual(self.commands(), ["status --json"] * 3)  # the check changes nothing

    def test_a_daemon_that_does_not_answer_passes_the_check(self):
        # Its death on the active node is no failover: the fast path forwards on.
        self.assertEqual(self.run_notify("check").returncode, 0)

    def test_an_unknown_state_or_option_is_a_usage_error(self):
        self.assertEqual(self.run_notify("sideways").returncode, 64)
        self.assertEqual(subprocess.run(["/bin/sh", NOTIFY, "check", "--bogus", "1"], capture_output=True,
                                        timeout=30).returncode, 64)


if __name__ == "__main__":
    unittest.main()
