#!/usr/bin/python3
"""The queue when no daemon reads it (docs/packet-path.md, "Verdicts, overload and
failure"): with --fail-open the rules carry `bypass` (nft) or `--queue-bypass` (xtables'
NFQUEUE) and PPTP passes unjudged; without it, packets are dropped. The daemon is killed
(SIGKILL), so its rules stay in the kernel with nobody on the queue. The backend is
PPTP_ALG_BACKEND (default nft, which needs a kernel with the nft `queue` statement:
Debian 12's 6.1, run it in the test VM, scripts/vm/run.sh; xtables needs iptables; compat,
iptables' NFQUEUE target in pptp-alg's own table through nft_compat, runs on any kernel
with nft_compat and is ctest e2e_fail_open_compat).

    PPTP_ALG=build/release/alg/pptp-alg /usr/bin/python3 tests/vm/test_fail_open.py -v
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from pptplab.lab import CLIENTS, PYTHON, SERVER, Lab  # noqa: E402

DAEMON = os.path.abspath(os.environ.get("PPTP_ALG", os.path.join(HERE, "../../build/release/alg/pptp-alg")))
BACKEND = os.environ.get("PPTP_ALG_BACKEND", "nft")


def kernel_has_nft_queue():
    """The daemon's own probe (`pptp-alg rules` picks the backend this kernel supports)."""
    out = subprocess.run([DAEMON, "rules"], stdout=subprocess.PIPE, text=True, check=True).stdout
    return "backend nft" in out.splitlines()[1]


class QueueWithoutDaemon(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (network namespaces)")
        if BACKEND == "nft" and not kernel_has_nft_queue():
            self.skipTest("this kernel has no nft queue statement (run it in the VM: scripts/vm/run.sh)")
        if BACKEND == "xtables" and shutil.which("iptables") is None:
            self.skipTest("no iptables for the xtables backend")
        self.lab = Lab(daemon=DAEMON)
        self.lab.__enter__()
        self.addCleanup(self.lab.__exit__, None, None, None)
        self.lab.start_server()

    def status(self, limit=20.0):
        """The first status file, which a daemon under emulation may write late (bounded)."""
        deadline = time.monotonic() + limit
        while not os.path.exists(self.lab.status_file) and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.lab.status(wait=0.2)

    def handshake(self, local):
        out = self.lab.netns("lan", PYTHON, os.path.join(HERE, "sccrq_probe.py"), "--local", local,
                             "--server", SERVER).stdout
        return out.strip().splitlines()[-1]

    def queue_rules(self):
        """The rules that send packets to the queue, in the backend's own listing."""
        if BACKEND == "compat":  # nft lists the target, not its flags: chain to_queue whole
            return self.lab.netns("rtr", "nft", "list", "chain", "ip", "pptp_alg", "to_queue").stdout
        if BACKEND == "xtables":
            return "\n".join(line for line in self.lab.netns("rtr", "iptables-save").stdout.splitlines()
                             if "NFQUEUE" in line)
        return self.lab.netns("rtr", "nft", "list", "table", "ip", "pptp_alg").stdout

    def kill_daemon(self):
        """SIGKILL: no clean-up, the rules stay and nobody reads the queue."""
        proc = self.lab.daemon_proc
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        self.lab.daemon_proc = None
        # (nft 1.0.6 lists the statement as "queue to 0" or "queue flags bypass to 0"; iptables'
        # target through nft_compat lists as `xt target "NFQUEUE"`, or, where nft was built with
        # libxtables, translated as "queue num 0 [bypass]")
        expected = {"nft": r"\squeue (flags|to)",
                    "compat": r'xt target "NFQUEUE"|queue num \d+'}.get(BACKEND, r"-j NFQUEUE")
        self.assertRegex(self.queue_rules(), expected)

    def assert_bypass(self, bypass):
        """The rules say what the queue does unheard. Compat: an nft without libxtables cannot
        list the target's bypass flag, so the placeholder after it (what runs before the daemon
        armed the target) stands for it; the handshake after the kill tests the flag itself."""
        rules = self.queue_rules()
        if BACKEND == "compat":
            queue = re.search(r"queue num \d+( bypass)?", rules)
            if queue:  # translated: the flag itself, and the placeholder beside it
                self.assertEqual(queue.group(1) is not None, bypass, rules)
                self.assertRegex(rules, r"queue num \d+( bypass)?\s*\n\s*" + ("accept" if bypass else "drop"))
                return
            self.assertRegex(rules, r'xt target "NFQUEUE"\s*\n\s*' + ("accept" if bypass else "drop"))
        elif bypass:
            self.assertIn("bypass", rules)
        else:
            self.assertNotIn("bypass", rules)

    def start(self, *extra):
        self.lab.start_daemon(["--backend", BACKEND] + list(extra))
        self.assertEqual(self.status()["daemon"]["backend"], BACKEND)
        self.assertEqual(self.handshake(CLIENTS[0]), "reply", "no control connection through a running daemon")

    def test_fail_open_passes_control_connections_when_the_daemon_is_gone(self):
        self.start("--fail-open")
        self.assert_bypass(True)
        self.kill_daemon()
        self.assertEqual(self.handshake(CLIENTS[1]), "reply")

    def test_fail_closed_drops_them(self):
        self.start()
        self.assert_bypass(False)
        self.kill_daemon()
        self.assertEqual(self.handshake(CLIENTS[1]), "no reply")


if __name__ == "__main__":
    unittest.main()
