"""The failover test bed (issue 18, docs/ha.md): two routers between an inside and an
outside bridge, joined by a sync link; each runs keepalived (VRRP, one sync group for both
virtual addresses), conntrackd (FTFW over the sync link) and pptp-alg (its call table synced
to the other). RFC 5737 addresses only; everything made is removed, by name and by the PIDs
started, also when a test fails.

    lan: br0 192.0.2.11-.15 --+-- ra inside 192.0.2.2  | sync 203.0.113.1 | outside 198.51.100.4 --+-- srv: br0 198.51.100.2
                              +-- rb inside 192.0.2.3  | sync 203.0.113.2 | outside 198.51.100.5 --+
    virtual addresses: 192.0.2.1 (the clients' gateway), 198.51.100.1 (snat to it)
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from pptplab.lab import CLIENTS, PYTHON, SERVER, Namespaces, run

HERE = os.path.dirname(os.path.abspath(__file__))
NOTIFY = os.path.join(HERE, "..", "..", "..", "scripts", "ha", "pptp-alg-ha-notify")
VIP_INSIDE, VIP_OUTSIDE = "192.0.2.1", "198.51.100.1"
ROUTERS = {"ra": {"inside": "192.0.2.2", "outside": "198.51.100.4", "sync": "203.0.113.1", "node": 0, "prio": 150},
           "rb": {"inside": "192.0.2.3", "outside": "198.51.100.5", "sync": "203.0.113.2", "node": 1, "prio": 100}}
SYNC_PORT, CONNTRACKD_PORT = 1724, 3780
ADVERT_INT = 1  # keepalived's reference: detection took 3.1 s with this (issue 18)

KEEPALIVED_CONF = """global_defs {{
  router_id {name}
  vrrp_garp_master_delay 1
  vrrp_garp_master_repeat 3
  # A split brain's healing: the master that stays sends gratuitous ARPs again when it hears
  # the other master (which, going back to backup, first sends an advert), else the
  # neighbours keep the other's MAC, the last they heard, and its calls' frames go there.
  vrrp_garp_lower_prio_repeat 3
  vrrp_garp_lower_prio_delay 0
  vrrp_higher_prio_send_advert true
}}
vrrp_sync_group PPTP {{
  group {{
    VI_IN
    VI_OUT
  }}
  notify_master "{notify} master {args}"
  notify_backup "{notify} backup {args}"
  notify_fault "{notify} fault {args}"
}}
vrrp_script PPTP_READY {{
  script "{notify} check {args}"
  interval 1
  timeout 3
  fall 3
  rise 1
}}
vrrp_instance VI_IN {{
  state BACKUP
  nopreempt
  interface inside
  virtual_router_id 51
  priority {prio}
  advert_int {advert}
  track_script {{
    PPTP_READY
  }}
  virtual_ipaddress {{
    {vip_in}/24 dev inside
  }}
}}
vrrp_instance VI_OUT {{
  state BACKUP
  nopreempt
  interface outside
  virtual_router_id 52
  priority {prio}
  advert_int {advert}
  track_script {{
    PPTP_READY
  }}
  virtual_ipaddress {{
    {vip_out}/24 dev outside
  }}
}}
"""

CONNTRACKD_CONF = """Sync {{
  Mode FTFW {{
    ResendQueueSize 131072
  }}
  UDP {{
    IPv4_address {me}
    IPv4_Destination_Address {peer}
    Port {port}
    Interface sync
    Checksum on
  }}
}}
General {{
  Systemd off
  HashSize 8192
  HashLimit 65536
  LogFile {tmp}/conntrackd-{name}.log
  Syslog off
  LockFile {tmp}/conntrackd-{name}.lock
  UNIX {{
    Path {tmp}/conntrackd-{name}.ctl
  }}
  NetlinkBufferSize 2097152
  NetlinkBufferSizeMaxGrowth 8388608
  Filter From Userspace {{
    Protocol Accept {{
      TCP
    }}
    Address Ignore {{
      IPv4_address 127.0.0.1
      IPv4_address {me}
      IPv4_address {peer}
    }}
  }}
}}
"""

# snat to the outside virtual address (a synced masquerade entry would name the old node's
# own address); the routers' own packets (VRRP adverts) keep theirs.
NAT = """table ip ha_nat {
 chain postrouting {
  type nat hook postrouting priority srcnat; policy accept;
  oifname "outside" ip saddr 192.0.2.0/24 snat to %s
 }
}
""" % VIP_OUTSIDE


class HaLab(Namespaces):
    def __init__(self, daemon, verbose=False, idle_timeout=60):
        self.daemon = daemon
        self.verbose = verbose
        self.idle_timeout = idle_timeout
        self.prefix = "pptpha%d" % os.getpid()
        self.ns = {k: "%s-%s" % (self.prefix, k) for k in ("lan", "srv", "ra", "rb")}
        self.tmp = tempfile.mkdtemp(prefix="pptpha-")
        self.procs = {}  # name -> Popen
        self.key_file = os.path.join(self.tmp, "ha.key")
        self.commit_delay = 0  # s the commit command sleeps first (delayed.sh), 0: none
        self.commit_skip_first = False  # the commit command's first run does nothing (skip_first.sh)
        self.master_notify_delay = 0  # s keepalived's master notify runs late (late_master.sh), 0: none

    def path(self, what, name):
        return os.path.join(self.tmp, "%s-%s" % (what, name))

    # -- the network ---------------------------------------------------------------------
    def build(self):
        for n in self.ns.values():
            run(["ip", "netns", "add", n])
        for name in self.ns:
            self.netns(name, "ip", "link", "set", "lo", "up")
        for side, host in (("inside", "lan"), ("outside", "srv")):
            self.netns(host, "ip", "link", "add", "br0", "type", "bridge")
            for r in ROUTERS:
                run(["ip", "link", "add", side, "netns", self.ns[r], "type", "veth", "peer", "name", r,
                     "netns", self.ns[host]])
                self.netns(host, "ip", "link", "set", r, "master", "br0", "up")
            self.netns(host, "ip", "link", "set", "br0", "up")
        run(["ip", "link", "add", "sync", "netns", self.ns["ra"], "type", "veth", "peer", "name", "sync",
             "netns", self.ns["rb"]])
        for r, a in ROUTERS.items():
            for dev in ("inside", "outside", "sync"):
                self.netns(r, "ip", "addr", "add", a[dev] + "/24", "dev", dev)
                self.netns(r, "ip", "link", "set", dev, "up")
            self.netns(r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            subprocess.run(["ip", "netns", "exec", self.ns[r], "nft", "-f", "-"], input=NAT, text=True, check=True)
        for a in CLIENTS:
            self.netns("lan", "ip", "addr", "add", a + "/24", "dev", "br0")
        self.netns("lan", "ip", "route", "add", "198.51.100.0/24", "via", VIP_INSIDE)
        self.netns("srv", "ip", "addr", "add", SERVER + "/24", "dev", "br0")
        with open(self.key_file, "w") as f:
            f.write("a pair's shared key for the test bed\n")

    def teardown(self):
        for name in reversed(list(self.procs)):
            self.stop(name)
        for n in self.ns.values():
            run(["ip", "netns", "del", n], check=False)
        if not self.verbose:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- processes -----------------------------------------------------------------------
    def spawn(self, name, ns, cmd, stdin=None, stdout=None):
        log = open(self.path("log", name), "ab")
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[ns]] + cmd, stdin=stdin,
                             stdout=stdout if stdout is not None else log, stderr=log, start_new_session=True)
        log.close()
        self.procs[name] = p
        return p

    def stop(self, name, sig=signal.SIGTERM):
        p = self.procs.pop(name, None)
        if p is None:
            return None
        try:
            return self.end(p, sig)
        finally:
            for pipe in (p.stdin, p.stdout):  # a peer's pipes: closed with it, not left to the collector
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass

    @staticmethod
    def end(p, sig):
        if p.poll() is not None:
            return p.returncode
        try:
            os.killpg(p.pid, sig)
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)
        except ProcessLookupError:
            pass
        return p.returncode

    def log(self, name):
        try:
            with open(self.path("log", name), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def socket(self, r):
        return self.path("ctl", r)

    def start_daemon(self, r):
        a, peer = ROUTERS[r], ROUTERS["rb" if r == "ra" else "ra"]
        cmd = [self.daemon, "--install-rules", "--log-level", "debug", "--status-file", self.path("status", r),
               "--pid-file", self.path("pid", r), "--control-socket", self.socket(r),
               "--idle-timeout", str(self.idle_timeout),
               "--ha-listen", "%s:%d" % (a["sync"], SYNC_PORT), "--ha-peer", "%s:%d" % (peer["sync"], SYNC_PORT),
               "--ha-key-file", self.key_file, "--ha-node", str(a["node"]),
               # A daemon restarted on the node that holds it promotes itself (docs/ha.md).
               "--ha-virtual-address", VIP_OUTSIDE,
               # At a split brain's healing (docs/ha.md); PPTP_HA_COMMIT_COMMAND=none for the
               # break-check.
               "--ha-commit-command", self.commit_command(r)]
        # The log is appended to across restarts: this start's "ready".
        before = self.log("pptp-alg-" + r).count(" ready ")
        self.spawn("pptp-alg-" + r, r, cmd)
        self.wait_for(lambda: self.log("pptp-alg-" + r).count(" ready ") > before, 60, "pptp-alg in %s ready" % r)

    def commit_command(self, r):
        """Run at a split brain's healing (docs/ha.md): conntrackd's commit;
        PPTP_HA_COMMIT_COMMAND=none for the break-check; after commit_delay s if set; its
        first run doing nothing with commit_skip_first."""
        command = os.environ.get("PPTP_HA_COMMIT_COMMAND", "conntrackd -C %s -c" % self.path("conntrackd.conf", r))
        if self.commit_delay:
            command = "%s %s %s" % (os.path.join(HERE, "delayed.sh"), self.commit_delay, command)
        if self.commit_skip_first:
            command = "%s %s %s" % (os.path.join(HERE, "skip_first.sh"), self.path("commit_skipped", r), command)
        return command

    def start_conntrackd(self, r):
        me, peer = ROUTERS[r]["sync"], ROUTERS["rb" if r == "ra" else "ra"]["sync"]
        conf = self.path("conntrackd.conf", r)
        with open(conf, "w") as f:
            f.write(CONNTRACKD_CONF.format(me=me, peer=peer, port=CONNTRACKD_PORT, tmp=self.tmp, name=r))
        self.spawn("conntrackd-" + r, r, ["conntrackd", "-C", conf])
        self.wait_for(lambda: os.path.exists(self.path("conntrackd", r) + ".ctl"), 20, "conntrackd in %s" % r)

    def start_keepalived(self, r):
        conf = self.path("keepalived.conf", r)
        args = "--conntrackd-config %s --socket %s --pptp-alg %s" % (
            self.path("conntrackd.conf", r), self.socket(r), self.daemon)
        notify = os.path.abspath(NOTIFY)
        if self.master_notify_delay:
            notify = "%s %s %s" % (os.path.join(HERE, "late_master.sh"), self.master_notify_delay, notify)
        with open(conf, "w") as f:
            f.write(KEEPALIVED_CONF.format(name=r, notify=notify, args=args, prio=ROUTERS[r]["prio"],
                                           advert=ADVERT_INT, vip_in=VIP_INSIDE, vip_out=VIP_OUTSIDE))
        self.spawn("keepalived-" + r, r, ["keepalived", "-n", "-l", "-D", "-P", "-f", conf, "-p",
                                          self.path("keepalived.pid", r), "-r", self.path("vrrp.pid", r)])

    def start_pair(self):
        """Both daemons synced, both conntrackds, then keepalived on ra (it becomes master and
        is promoted), then on rb (backup)."""
        for r in ROUTERS:
            self.start_daemon(r)
            self.start_conntrackd(r)
        self.wait_for(lambda: all(self.ha_status(r).get("synced") for r in ROUTERS), 20, "both daemons synced")
        self.start_keepalived("ra")
        self.wait_for(lambda: self.ha_status("ra").get("role") == "active", 30, "ra promoted")
        self.start_keepalived("rb")
        self.wait_for(lambda: "Entering BACKUP STATE" in self.log("keepalived-rb"), 30, "rb backup")

    # -- what the routers say ----------------------------------------------------------------
    def ctl(self, r, *args):
        return run([self.daemon, "ctl", "--socket", self.socket(r)] + list(args), check=False)

    def ha_status(self, r):
        return self.status_part(r, "ha")

    def status_part(self, r, part):
        out = self.ctl(r, "status", "--json")
        if out.returncode != 0:
            return {}
        return json.loads(out.stdout).get(part, {})

    def holds_vips(self, r):
        out = self.netns(r, "ip", "-4", "-o", "addr", "show", check=False).stdout
        return VIP_INSIDE + "/" in out and VIP_OUTSIDE + "/" in out

    def fast_path_calls(self, r):
        """How many calls router r's kernel forwards: the elements of the fast path's
        outbound set (one per call, the client's GRE toward the server)."""
        out = self.netns(r, "nft", "list", "set", "ip", "pptp_alg", "fast_out", check=False).stdout
        return out.count(" timeout ")

    def fail_links(self, r):
        """The router's inside and outside links go down (a crashed or unplugged node): its
        keepalived goes to FAULT, the other's stops hearing adverts."""
        for dev in ("inside", "outside"):
            self.netns(r, "ip", "link", "set", dev, "down")

    def restore_links(self, r):
        for dev in ("inside", "outside"):
            self.netns(r, "ip", "link", "set", dev, "up")

    def drop_input(self, r, table, match, dropped=True):
        """A table of its own in router r dropping what it receives that matches (or, with
        dropped=False, that table removed)."""
        if dropped:
            rule = "table inet %s {\n chain input {\n  type filter hook input priority -10; " \
                   "policy accept;\n  %s drop\n }\n}\n" % (table, match)
            run(["ip", "netns", "exec", self.ns[r], "nft", "-f", "-"], input=rule)
        else:
            self.netns(r, "nft", "delete", "table", "inet", table, check=False)

    def block_sync(self, r, blocked=True):
        """The pptp-alg sync datagrams to router r dropped: its daemon gets no snapshot
        (conntrackd's sync and VRRP are untouched)."""
        self.drop_input(r, "ha_block", "udp dport %d" % SYNC_PORT, blocked)

    def block_vrrp(self, r, blocked=True):
        """VRRP adverts to router r dropped: blocked on both, each router thinks the other
        gone and both become master (a split brain)."""
        self.drop_input(r, "vrrp_block", "ip protocol vrrp", blocked)

    def vrrp_states(self, r):
        """keepalived's state changes so far, in order (from its log)."""
        return re.findall(r"VI_IN\) Entering (\w+) STATE", self.log("keepalived-" + r))

    # -- peers -----------------------------------------------------------------------------
    def stream_peer(self, name, ns, *args):
        cmd = [PYTHON, os.path.join(HERE, "stream_peer.py")] + list(args)
        return self.spawn(name, ns, cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    @staticmethod
    def wait_for(predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError("timed out after %g s waiting for %s" % (timeout, what))
