"""The benchmark's lab helpers (bench/run_bench.py): the control connections through the
router, the GRE sender, and what the machine and the daemon spent (CPU, memory, status).
"""
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "e2e"))
from pptplab.lab import CLIENTS, SERVER2  # noqa: E402

PYTHON = "/usr/bin/python3"
MAX_CALLS_PER_CONNECTION = 1000  # pptp-alg follows up to 1024 per connection
FIRST_CALL_ID = 1000  # the PNS's first Call ID (its own, before any translation)
COUNTER = """table ip bench {
 chain pre {
  type filter hook prerouting priority -400; policy accept;
  ip protocol gre counter drop
 }
}
"""


def cpu_busy_seconds():
    """Busy seconds of all cores, and of those the time in softirq (where forwarding runs)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - idle) / tick, fields[6] / tick


def process_cpu_seconds(proc):
    """User plus system time of one process (the daemon), 0 when it is not running."""
    return pid_cpu_seconds(proc.pid) if proc is not None else 0.0


def pid_cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def ksoftirqd_pids():
    """The kernel's softirq threads: forwarding that does not fit in the sender's own system
    calls runs there."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/comm" % entry) as f:
                if f.read().startswith("ksoftirqd/"):
                    pids.append(int(entry))
        except (OSError, ValueError):
            pass
    return pids


class OwnCpu:
    """CPU time of what moves the packets, and nothing else on a shared machine: the sender
    (a child of this process, with the softirq forwarding that runs in its system calls),
    the softirq threads and the daemon. Other developers' compilers do not count."""

    def __init__(self, daemon):
        self.daemon, self.softirq_threads = daemon, ksoftirqd_pids()
        self.start = self.read()

    def read(self):
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (children.ru_utime + children.ru_stime, sum(pid_cpu_seconds(p) for p in self.softirq_threads),
                process_cpu_seconds(self.daemon))

    def spent(self):
        """(sender, softirq threads, daemon) CPU-seconds since this object was made."""
        return tuple(round(after - before, 3) for after, before in zip(self.read(), self.start))


def received(lab, ns="lan"):
    """GRE packets counted (and dropped) on arrival in one namespace."""
    out = lab.netns(ns, "nft", "list", "table", "ip", "bench").stdout
    found = re.search(r"counter packets (\d+)", out)
    return int(found.group(1)) if found else 0


def daemon_rss_kib(lab):
    try:
        with open("/proc/%d/status" % lab.daemon_proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, AttributeError):
        pass
    return None


def fresh_status(lab, seconds=70):
    """The daemon's status written after this call: with many calls the daemon writes it
    less often (up to once a minute, docs/daemon.md), so wait for the next one."""
    asked = time.time()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if os.path.getmtime(lab.status_file) > asked:
                return lab.status(wait=0)
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("pptp-alg wrote no status for %d s" % seconds)


def progress(text):
    print(text, file=sys.stderr, flush=True)


def start_pns(lab, connections, per_connection, first_call_id=FIRST_CALL_ID, answer_wait=0.0):
    """The PNS side: control connections from the first client; returns the process and its
    report ({"calls": answered, "unanswered": n, "seconds": s, ...})."""
    cmd = [PYTHON, os.path.join(HERE, "control_peer.py"), "pns", "--server", SERVER2, "--local", CLIENTS[0],
           "--call-id", str(first_call_id), "--connections", str(connections), "--calls", str(per_connection)]
    if answer_wait:
        cmd += ["--answer-wait", str(answer_wait)]
    pns = subprocess.Popen(["ip", "netns", "exec", lab.ns["lan"]] + cmd, stdout=subprocess.PIPE, text=True,
                           start_new_session=True)
    lab.procs.append(pns)
    line = pns.stdout.readline()
    if not line:
        raise RuntimeError("the control connections could not be set up")
    return pns, json.loads(line)


def start_pac(lab):
    """The PAC side; returns the list that fills with (the Call ID the server was told, the
    PAC's own Call ID) per call: the Keys of the server's GRE and of the client's."""
    pac = subprocess.Popen(["ip", "netns", "exec", lab.ns["srv"], PYTHON, os.path.join(HERE, "control_peer.py"),
                            "pac", "--local", SERVER2, "--call-id", "300"],
                           stdout=subprocess.PIPE, text=True, start_new_session=True)
    lab.procs.append(pac)
    pac.stdout.readline()  # listening
    told = []

    def read():  # as it comes: a full pipe would stall the PAC
        for line in pac.stdout:
            call = json.loads(line)
            told.append((call["peer_call_id"], call["call_id"]))
    threading.Thread(target=read, daemon=True).start()
    return told


def wait_for(told, count, seconds=10):
    deadline = time.monotonic() + seconds
    while len(told) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def set_up_calls(lab, calls, per_connection=1):
    """Control connections through the router, one call each as pptp-linux places them (or
    `per_connection` each); returns the calls' (PNS Call ID as the server was told it, PAC
    Call ID) and the PNS's timings."""
    told = start_pac(lab)
    _, placed = start_pns(lab, (calls + per_connection - 1) // per_connection, per_connection)
    wait_for(told, placed["calls"])
    return sorted(told), placed


def flood(lab, args, side, source, target, key_file, payload, seconds):
    out = lab.netns(side, args.gre_flood, "--source", source, "--destination", target, "--key-file", key_file,
                    "--payload", str(payload), "--seconds", str(seconds)).stdout
    return json.loads(out.strip().splitlines()[-1])
