#!/usr/bin/python3
"""keepalived's notify script for an HA pair (scripts/ha/pptp-alg-ha-notify, docs/ha.md):
the state it records, and its check's promotion of a standby daemon on a node keepalived left
master (the active daemon restarted). pptp-alg is a stub that answers a given status and
logs the commands it was given; conntrackd is kept off the PATH.

    /usr/bin/python3 tests/scripts/test_ha_notify.py -v
"""
import json
import os
import stat
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
NOTIFY = os.path.join(HERE, "..", "..", "scripts", "ha", "pptp-alg-ha-notify")

STUB = """#!/bin/sh
echo "$*" >> "{log}"
case "$*" in
  *status*) [ -f "{status}" ] || exit 1; cat "{status}" ;;
esac
exit 0
"""


class Notify(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        d = self.dir.name
        self.log, self.status_file = os.path.join(d, "ctl.log"), os.path.join(d, "status.json")
        self.state_file = os.path.join(d, "run", "vrrp-state")
        self.stub = os.path.join(d, "pptp-alg")
        with open(self.stub, "w") as f:
            f.write(STUB.format(log=self.log, status=self.status_file))
        os.chmod(self.stub, 0o755)

    def status(self, role="standby", synced=False, peer_alive=True, uptime=30.5):
        with open(self.status_file, "w") as f:
            json.dump({"daemon": {"uptime_seconds": uptime},
                       "ha": {"role": role, "synced": synced, "peer_alive": peer_alive}}, f, indent=2)

    def run_notify(self, state):
        env = {"PATH": "/usr/bin:/bin"}  # no conntrackd (/usr/sbin)
        return subprocess.run(["/bin/sh", NOTIFY, state, "--socket", "/x/ctl", "--pptp-alg", self.stub,
                               "--state-file", self.state_file], env=env, capture_output=True, text=True,
                              timeout=30)

    def commands(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [line.split("ctl --socket /x/ctl ", 1)[-1].strip() for line in f]

    def recorded(self):
        with open(self.state_file) as f:
            return f.read().strip()

    def test_each_transition_is_recorded_readable_by_all_before_the_daemon_is_told(self):
        for state, command in (("master", "promote"), ("backup", "demote"), ("fault", "demote"), ("stop", "demote")):
            out = self.run_notify(state)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertEqual(self.recorded(), state)
            self.assertEqual(stat.S_IMODE(os.stat(self.state_file).st_mode), 0o644)
            self.assertEqual(self.commands()[-1], command)

    def check(self, recorded, **status):
        if recorded:
            os.makedirs(os.path.dirname(self.state_file), exist_ok=True)
            with open(self.state_file, "w") as f:
                f.write(recorded + "\n")
        self.status(**status)
        out = self.run_notify("check")
        return out.returncode, [c for c in self.commands() if c != "status --json"]

    def test_a_standby_daemon_on_a_master_node_is_promoted_with_its_snapshot(self):
        self.assertEqual(self.check("master", synced=True), (0, ["promote"]))

    def test_alone_it_is_forced_once_the_peer_is_unheard_five_seconds_after_the_start(self):
        self.assertEqual(self.check("master", peer_alive=False, uptime=12.0), (0, ["promote --force"]))

    def test_not_forced_while_the_peer_may_still_answer_and_the_node_stays_master_meanwhile(self):
        # Failing the check would take the addresses away (keepalived's fall 3 comes before
        # the 5 s): the check passes on a master node, whatever the daemon's state.
        self.assertEqual(self.check("master", peer_alive=False, uptime=2.0), (0, []))
        self.assertEqual(self.check("master", peer_alive=True, uptime=60.0), (0, []))

    def test_nothing_is_promoted_on_a_backup_node_or_without_a_record_or_when_active(self):
        self.assertEqual(self.check("backup", synced=True), (0, []))
        self.assertEqual(self.check("fault", peer_alive=False, uptime=60.0), (1, []))
        os.remove(self.state_file)
        self.assertEqual(self.check(None, synced=True), (0, []))
        self.assertEqual(self.check("master", role="active"), (0, []))

    def test_a_daemon_that_does_not_answer_passes_and_is_not_promoted(self):
        out = self.run_notify("check")  # no status file: the stub fails as a dead daemon would
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(self.commands(), ["status --json"])


if __name__ == "__main__":
    unittest.main()
