"""The lab: network namespaces on RFC 5737 addresses only, a masquerading router, a real
PPTP server (Poptop's pptpd) and clients. Everything it makes it also removes, by name and
by the PIDs it started, also when a test fails.

    lan (clients 192.0.2.11-.15)  --  router 192.0.2.1 | 198.51.100.1 (masquerade)  --  server 198.51.100.2, .3
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = "198.51.100.2"
SERVER2 = "198.51.100.3"  # the scripted PAC
PUBLIC = "198.51.100.1"
ROUTER_INSIDE = "192.0.2.1"
CLIENTS = ["192.0.2.%d" % i for i in range(11, 16)]
PYTHON = "/usr/bin/python3"
# Slow machines (the test VM's emulated CPUs, tests/vm/suite.sh) stretch the lab's waits.
TIME_SCALE = float(os.environ.get("PPTPLAB_TIME_SCALE", "1"))
# A client that sent its last frame awaits the echoes still in flight this long (the test
# VM's round trip through the queue reaches a second: four frames were lost at the hang-up).
ECHO_DRAIN_SECONDS = 1.0 * TIME_SCALE


def run(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


class Namespaces:
    """Built on entry, torn down on exit, also when the build fails; self.ns maps a part's
    name to its network namespace."""

    def __enter__(self):
        try:
            self.build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc):
        self.teardown()
        return False

    def netns(self, name, *cmd, check=True):
        return run(["ip", "netns", "exec", self.ns[name]] + list(cmd), check=check)


class Lab(Namespaces):
    def __init__(self, daemon=None, mode="pptp-alg", verbose=False):
        """mode: "pptp-alg" (the daemon on the router), "kernel-helper" (nf_conntrack_pptp),
        or "none" (plain masquerade)."""
        self.daemon_binary = daemon
        self.mode = mode
        self.verbose = verbose
        self.prefix = "pptplab%d" % os.getpid()
        self.ns = {k: "%s-%s" % (self.prefix, k) for k in ("lan", "rtr", "srv")}
        self.tmp = tempfile.mkdtemp(prefix="pptplab-")
        self.piddir = os.path.join(self.tmp, "pids")
        os.makedirs(self.piddir)
        self.procs = []
        self.daemon_proc = None
        self.control_socket = None  # the daemon's (pptp-alg ctl), when it has one
        self.status_file = os.path.join(self.tmp, "status.json")
        self.pid_file = os.path.join(self.tmp, "pptp-alg.pid")
        self.policy_file = os.path.join(self.tmp, "rules.yaml")
        self.daemon_log = os.path.join(self.tmp, "pptp-alg.log")
        self.log_level = "debug"

    # -- set-up and tear-down ----------------------------------------------------------
    def add_namespace(self, key):
        """A subclass may give a part an existing namespace (tests/vm: the router is the VM)."""
        run(["ip", "netns", "add", self.ns[key]])

    def build(self):
        for key in self.ns:
            self.add_namespace(key)
        run(["ip", "link", "add", "inside", "netns", self.ns["rtr"], "type", "veth", "peer", "name", "eth0",
             "netns", self.ns["lan"]])
        run(["ip", "link", "add", "outside", "netns", self.ns["rtr"], "type", "veth", "peer", "name", "eth0",
             "netns", self.ns["srv"]])
        for name in self.ns:
            self.netns(name, "ip", "link", "set", "lo", "up")
        self.netns("rtr", "ip", "addr", "add", ROUTER_INSIDE + "/24", "dev", "inside")
        self.netns("rtr", "ip", "addr", "add", PUBLIC + "/24", "dev", "outside")
        self.netns("rtr", "ip", "link", "set", "inside", "up")
        self.netns("rtr", "ip", "link", "set", "outside", "up")
        self.netns("rtr", "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for a in CLIENTS:
            self.netns("lan", "ip", "addr", "add", a + "/24", "dev", "eth0")
        self.netns("lan", "ip", "link", "set", "eth0", "up")
        self.netns("lan", "ip", "route", "add", "198.51.100.0/24", "via", ROUTER_INSIDE)
        for a in (SERVER, SERVER2):
            self.netns("srv", "ip", "addr", "add", a + "/24", "dev", "eth0")
        self.netns("srv", "ip", "link", "set", "eth0", "up")
        nat = ["table ip pptplab_nat {",
               " chain postrouting {",
               "  type nat hook postrouting priority srcnat; policy accept;",
               '  oifname "outside" masquerade',
               " }",
               "}"]
        if self.mode == "kernel-helper":
            # `ct helper "pptp"` loads nf_conntrack_pptp, not its NAT half: on Debian's 6.1
            # nf_nat_pptp stays out (the helper then carries no call behind masquerade) until
            # the router's admin loads it, as this does (6.18 here has it built in).
            if shutil.which("modprobe"):
                subprocess.run(["modprobe", "nf_nat_pptp"], check=False)
            nat += ["table ip pptplab_helper {",
                    ' ct helper pptp { type "pptp" protocol tcp; }',
                    " chain prerouting {",
                    "  type filter hook prerouting priority filter; policy accept;",
                    '  tcp dport 1723 ct helper set "pptp"',
                    " }",
                    "}"]
        subprocess.run(["ip", "netns", "exec", self.ns["rtr"], "nft", "-f", "-"], input="\n".join(nat) + "\n",
                       text=True, check=True)

    def teardown(self):
        for p in reversed(self.procs):
            self._stop(p)
        self.procs.clear()
        self.stop_daemon()
        # The PPP programs pptpd started for us, by the PIDs they wrote, and only if that PID
        # is still our program (PIDs are reused).
        for f in os.listdir(self.piddir) if os.path.isdir(self.piddir) else []:
            try:
                with open(os.path.join(self.piddir, f)) as pidfile:
                    pid = int(pidfile.read())
                with open("/proc/%d/cmdline" % pid, "rb") as cmdline:
                    if b"ppp_echo_server.py" in cmdline.read():
                        os.kill(pid, signal.SIGTERM)
            except (ValueError, OSError):
                pass
        for n in self.ns.values():
            run(["ip", "netns", "del", n], check=False)
        if not self.verbose:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _stop(self, p, sig=signal.SIGTERM):
        if p.poll() is not None:
            return
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=5)

    # -- processes ---------------------------------------------------------------------
    def spawn(self, name, cmd, log=None):
        out = open(log, "ab") if log else subprocess.DEVNULL
        env = dict(os.environ, PPTPLAB_PIDDIR=self.piddir)
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[name]] + cmd, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, env=env)
        if log:
            out.close()  # the child has its own copy
        self.procs.append(p)
        return p

    def start_daemon(self, extra=()):
        if self.mode != "pptp-alg":
            return
        extra = list(extra)
        if "--control-socket" not in extra:
            extra += ["--control-socket", os.path.join(self.tmp, "control")]
        socket_path = extra[extra.index("--control-socket") + 1]
        self.control_socket = None if socket_path == "none" else socket_path
        # install_rules False: the rules are the firewall's own (`pptp-alg rules --format nft`).
        install = ["--install-rules"] if getattr(self, "install_rules", True) else []
        cmd = ["ip", "netns", "exec", self.ns["rtr"], self.daemon_binary] + install + ["--status-file",
               self.status_file, "--pid-file", self.pid_file, "--log-level", self.log_level] + extra
        # The log is appended to across restarts: look for this start's "ready" only.
        offset = os.path.getsize(self.daemon_log) if os.path.exists(self.daemon_log) else 0
        with open(self.daemon_log, "ab") as log:
            self.daemon_proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 15 * TIME_SCALE
        while time.monotonic() < deadline:
            if self.daemon_proc.poll() is not None:
                raise RuntimeError("pptp-alg exited at start:\n" + self.read_daemon_log())
            if " ready " in self.read_daemon_log()[offset:]:
                return
            time.sleep(0.1)
        raise RuntimeError("pptp-alg not ready within %g s:\n" % (15 * TIME_SCALE) + self.read_daemon_log())

    def stop_daemon(self):
        if self.daemon_proc is None:
            return None
        if self.daemon_proc.poll() is None:
            self.daemon_proc.send_signal(signal.SIGTERM)
            try:  # the xtables backend removes its rules one iptables run at a time (slow in the VM)
                self.daemon_proc.wait(timeout=10 * TIME_SCALE)
            except subprocess.TimeoutExpired:
                self.daemon_proc.kill()
                self.daemon_proc.wait(timeout=5)
        rc = self.daemon_proc.returncode
        self.daemon_proc = None
        return rc

    def write_policy(self, text):
        """The policy file the daemon is started with (--policy) and reloads."""
        with open(self.policy_file, "w") as f:
            f.write(text)
        return self.policy_file

    def reload(self, check_first=False):
        """`pptp-alg reload`: returns (exit status, output)."""
        cmd = [self.daemon_binary, "reload", "--pid-file", self.pid_file]
        if check_first:
            cmd += ["--policy", self.policy_file]
        r = run(cmd, check=False)
        return r.returncode, r.stdout

    def daemon_alive(self):
        return self.daemon_proc is not None and self.daemon_proc.poll() is None

    def read_daemon_log(self):
        try:
            with open(self.daemon_log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def ctl(self, *args):
        """`pptp-alg ctl ARGS` on the running daemon's control socket (text out, errors in)."""
        return subprocess.run([self.daemon_binary, "ctl", "--socket", self.control_socket] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)

    def status(self, wait=1.5):
        """The daemon's status: asked over its control socket (built at the request), else
        read from the status file, which the daemon writes once a second at best: it paces
        the writes by their cost (a slow one at start-up in the test VM spaced them 38 s)."""
        time.sleep(wait)  # counters of packets still on their way
        if self.control_socket and self.daemon_alive():
            r = subprocess.run([self.daemon_binary, "ctl", "--socket", self.control_socket, "status", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=False)
            if r.returncode == 0:
                return json.loads(r.stdout)
        with open(self.status_file) as f:
            return json.load(f)

    def start_server(self):
        conf = os.path.join(self.tmp, "pptpd.conf")
        with open(conf, "w") as f:
            f.write("option /dev/null\n")
        p = self.spawn("srv", ["pptpd", "--fg", "-c", conf, "-D", "-e", os.path.join(HERE, "ppp_echo_server.py"),
                               "-l", SERVER, "-p", os.path.join(self.tmp, "pptpd.pid")],
                       log=os.path.join(self.tmp, "pptpd.log"))
        self.wait_listening("srv", SERVER)
        return p

    def start_pac(self, connections=1, incoming=False, first_call_id=300, duration=3.0, windows_cdn=False,
                  split=0, coalesce=False, reset_after=0.0, same_call_id=False):
        """The scripted PAC on SERVER2: several calls per connection, incoming calls, and
        Call-Disconnect-Notify on request (pptpd does none of these); with windows_cdn, the
        notify names the client's Call ID as a Windows server does."""
        cmd = [PYTHON, os.path.join(HERE, "scripted_peer.py"), "pac", "--local", SERVER2, "--call-id",
               str(first_call_id), "--connections", str(connections), "--duration", str(duration), "--tag", "pac"]
        if incoming:
            cmd.append("--incoming")
        if windows_cdn:
            cmd.append("--windows-cdn")
        if coalesce:
            cmd.append("--coalesce")
        if same_call_id:
            cmd.append("--same-call-id")
        cmd += ["--split", str(split), "--reset-after", str(reset_after)]
        p = subprocess.Popen(["ip", "netns", "exec", self.ns["srv"]] + cmd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.procs.append(p)
        self.wait_listening("srv", SERVER2)
        return p

    def hostile(self, kind, local, target, count=50, ns="lan", extra=()):
        cmd = [PYTHON, os.path.join(HERE, "hostile.py"), kind, "--local", local, "--target", target,
               "--count", str(count)] + list(extra)
        return json.loads(self.netns(ns, *cmd).stdout.strip().splitlines()[-1])

    def wait_listening(self, name, address, port=1723, timeout=10):
        deadline = time.monotonic() + timeout * TIME_SCALE
        while time.monotonic() < deadline:
            out = self.netns(name, "ss", "-Hltn", "src", "%s:%d" % (address, port), check=False).stdout
            if out.strip():
                return
            time.sleep(0.1)
        raise RuntimeError("nothing listens on %s:%d in %s" % (address, port, name))

    # -- clients -------------------------------------------------------------------------
    def client_cmd(self, kind, **kw):
        if kind == "pptp-linux":
            cmd = [PYTHON, os.path.join(HERE, "pptp_linux_client.py"), "--server", kw.get("server", SERVER),
                   "--log", os.path.join(self.tmp, "pptp-%s.log" % kw["tag"])]
            if kw.get("user"):
                cmd += ["--user", kw["user"]]
        else:
            cmd = [PYTHON, os.path.join(HERE, "scripted_peer.py"), kind]
            if kind == "pns":
                cmd += ["--server", kw.get("server", SERVER), "--hangup", kw.get("hangup", "client"),
                        "--linger", str(kw.get("linger", 0.0)), "--split", str(kw.get("split", 0)),
                        "--after-hangup", str(kw.get("after_hangup", 0.0))]
                if kw.get("incoming"):
                    cmd.append("--incoming")
                if kw.get("coalesce"):
                    cmd.append("--coalesce")
                if kw.get("reuse_after_clear"):
                    cmd.append("--reuse-after-clear")
                for flag in ("pipeline", "no_start"):
                    if kw.get(flag):
                        cmd.append("--" + flag.replace("_", "-"))
                if kw.get("split_pause") is not None:
                    cmd += ["--split-pause", str(kw["split_pause"])]
                # Slow machines (the test VM's emulated CPUs) start pptpd's PPP program late.
                await_lcp = kw.get("await_server_lcp") or os.environ.get("PPTPLAB_AWAIT_SERVER_LCP") == "1"
                if await_lcp and kw.get("server", SERVER) == SERVER:
                    cmd.append("--await-server-lcp")
                for option in ("pap", "forge_chap", "reauth"):  # PPP authentication (names)
                    if kw.get(option):
                        cmd += ["--" + option.replace("_", "-"), kw[option]]
            for cid in kw.get("call_ids", [7]):
                cmd += ["--call-id", str(cid)]
        cmd += ["--local", kw["local"], "--duration", str(kw.get("duration", 2.0)), "--tag", kw["tag"]]
        return cmd

    def start_client(self, kind, ns="lan", **kw):
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[ns]] + self.client_cmd(kind, **kw),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.procs.append(p)
        return p

    def result(self, p, timeout=60):
        timeout *= TIME_SCALE
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._stop(p, signal.SIGKILL)
            return {"ok": False, "error": "timed out"}
        for line in reversed(out.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        return {"ok": False, "error": "no result", "stdout": out[-2000:], "stderr": err[-2000:]}

    def run_clients(self, specs, timeout=60):
        """Starts every client at once (their calls overlap) and returns their results."""
        procs = [self.start_client(kind, **kw) for kind, kw in specs]
        return [self.result(p, timeout) for p in procs]

    def rules_left(self):
        """Our rules in the router, if any survived the daemon."""
        nft = self.netns("rtr", "nft", "list", "ruleset", check=False).stdout
        ipt = self.netns("rtr", "iptables-save", check=False).stdout
        return [line for line in (nft + ipt).splitlines() if "pptp_alg" in line.lower()]


def die(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)
