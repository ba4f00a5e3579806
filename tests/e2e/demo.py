#!/usr/bin/python3
"""The demo lab (the README's main command): clients behind a masquerading Linux router
talk to a real PPTP server (Poptop's pptpd) outside. First without pptp-alg, then with it.
Three scripted clients all use Call ID 7 (pptp-linux picks random IDs, so they are made to
collide on purpose) and two run pptp-linux. Each client sends tagged PPP frames through
its tunnel; the server echoes them. A client counts as working when its own frames come
back and nobody else's do. Everything is removed at the end."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pptplab.lab import CLIENTS, PUBLIC, SERVER, Lab  # noqa: E402

DAEMON = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/release/alg/pptp-alg")
DURATION = 6.0


def clients():
    specs = [("pns", dict(local=CLIENTS[i], tag="scripted-%d" % (i + 1), call_ids=[7], duration=DURATION))
             for i in range(3)]
    specs += [("pptp-linux", dict(local=CLIENTS[3 + i], tag="pptp-linux-%d" % (i + 1), duration=DURATION))
              for i in range(2)]
    return specs


def report(results):
    ok = 0
    print("  %-14s %-11s %-9s %6s %8s %14s" % ("client", "address", "Call ID", "sent", "echoed", "others' data"))
    for (kind, spec), r in zip(clients(), results):
        calls = r.get("calls") or [r]
        c = calls[0]
        cid = str(c.get("my_call_id", "random")) if kind == "pns" else "random"
        works = r.get("ok") and c.get("echoed", 0) > 0 and c.get("foreign", 0) == 0
        ok += bool(works)
        print("  %-14s %-11s %-9s %6s %8s %14s   %s" % (spec["tag"], spec["local"], cid, c.get("sent", 0),
                                                         c.get("echoed", 0), c.get("foreign", 0),
                                                         "works" if works else "BROKEN"))
    return ok


def main():
    if os.geteuid() != 0:
        sys.exit("demo: run as root (it creates network namespaces)")
    print("Lab: 5 clients 192.0.2.11-15 -> router (masquerade to %s) -> pptpd at %s\n" % (PUBLIC, SERVER))
    print("1. Without pptp-alg (plain masquerade):")
    with Lab(mode="none") as lab:
        lab.start_server()
        results = lab.run_clients([(k, dict(s, duration=3.0)) for k, s in clients()])
        ok = report(results)
    print("  -> %d of 5 clients work: the server's GRE matches no conntrack entry.\n" % ok)

    print("2. With pptp-alg on the router:")
    with Lab(daemon=DAEMON) as lab:
        lab.start_daemon()
        lab.start_server()
        procs = [lab.start_client(kind, **spec) for kind, spec in clients()]
        time.sleep(DURATION / 2)
        print("\n$ pptp-alg status --file %s   (while the calls are up)" % lab.status_file)
        sys.stdout.flush()
        subprocess.run([DAEMON, "status", "--file", lab.status_file])
        results = [lab.result(p) for p in procs]
        print()
        ok = report(results)
        print("  -> %d of 5 clients work.\n" % ok)
        print("What pptp-alg logged (grep-able key=value lines):")
        for line in lab.read_daemon_log().splitlines():
            if any(k in line for k in ("call_id_translated", "call_established", "call_offloaded", "rules_")):
                print("  " + line)
        lab.stop_daemon()
    print("\nLab removed (namespaces, processes, rules).")
    return 0 if ok == 5 else 1


if __name__ == "__main__":
    sys.exit(main())
