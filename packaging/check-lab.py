#!/usr/bin/python3
"""The demo lab, trimmed, with the INSTALLED package (run by check-package.sh as root):
/usr/sbin/pptp-alg started the way pptp-alg.service starts it (user pptp-alg, CAP_NET_ADMIN
and CAP_NET_RAW, --config /etc/pptp-alg/pptp-alg.conf and nothing else) on the lab's router.
A scripted client and a pptp-linux client call pptpd through it; while the calls are up the
firewall is reloaded (`flush ruleset`, then the router's masquerade), and both calls must
go on. `pptp-alg ctl calls` and `status` find the daemon with no flags. Everything the lab
made is removed, also on failure.

    check-lab.py SOURCE_DIR
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(sys.argv[1] if len(sys.argv) > 1 else ".", "tests", "e2e"))
from pptplab.lab import CLIENTS, Lab, run  # noqa: E402

BINARY = "/usr/sbin/pptp-alg"
CONF = "/etc/pptp-alg/pptp-alg.conf"
DURATION = 8.0
MASQUERADE = 'table ip pptplab_nat {\n chain postrouting {\n  type nat hook postrouting priority srcnat; ' \
             'policy accept;\n  oifname "outside" masquerade\n }\n}\n'


class InstalledLab(Lab):
    """The lab's router runs the installed daemon as the unit would, with its config file."""

    def start_daemon(self, extra=()):
        self.status_file = "/run/pptp-alg/status.json"  # the config file's
        cmd = ["ip", "netns", "exec", self.ns["rtr"], "setpriv", "--reuid=pptp-alg", "--regid=pptp-alg",
               "--init-groups", "--inh-caps=-all,+net_admin,+net_raw", "--ambient-caps=-all,+net_admin,+net_raw",
               "--bounding-set=-all,+net_admin,+net_raw", "--", BINARY, "--config", CONF]
        with open(self.daemon_log, "ab") as log:
            self.daemon_proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 15
        while " ready " not in self.read_daemon_log():
            if self.daemon_proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the installed pptp-alg did not start:\n" + self.read_daemon_log())
            time.sleep(0.1)


def lost(result):
    calls = result.get("calls") or [result]
    c = calls[0]
    return c.get("sent", 0) - c.get("echoed", 0) if result.get("ok") and c.get("echoed", 0) > 5 else None


def main():
    failures = []
    with InstalledLab(daemon=BINARY) as lab:
        lab.start_daemon()
        lab.start_server()
        scripted = lab.start_client("pns", local=CLIENTS[0], tag="scripted", call_ids=[7], duration=DURATION)
        linux = lab.start_client("pptp-linux", local=CLIENTS[3], tag="pptp-linux", duration=DURATION)
        deadline = time.monotonic() + 20
        calls = []
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
            r = run([BINARY, "ctl", "calls", "--json"], check=False)
            calls = [c for c in json.loads(r.stdout)["calls"] if c.get("state") == "established"] if r.returncode == 0 else []
        if len(calls) < 2:
            failures.append("pptp-alg ctl calls (no flags) did not show both calls: %s" % calls)
        run(["ip", "netns", "exec", lab.ns["rtr"], "nft", "-f", "-"], input="flush ruleset\n" + MASQUERADE)
        if run([BINARY, "status"], check=False).returncode != 0:
            failures.append("pptp-alg status (no flags) failed")
        for name, p in (("scripted", scripted), ("pptp-linux", linux)):
            result = lab.result(p)
            n = lost(result)
            print("check-lab: %s client: %s frames lost across the firewall reload" % (name, n))
            if n is None or n > 30:
                failures.append("%s client: %s" % (name, result))
        log = lab.read_daemon_log()
        if "rules_repaired" not in log:
            failures.append("no rules_repaired in the daemon's log")
        if "gre_sink_unavailable" in log:
            failures.append("the installed daemon had no raw GRE socket")
        lab.stop_daemon()
        if failures:
            print(log[-3000:])
    for f in failures:
        print("check-lab: FAIL: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
