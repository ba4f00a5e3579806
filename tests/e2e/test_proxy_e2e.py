#!/usr/bin/python3
"""End-to-end tests of proxy mode (`pptp-alg --proxy`, docs/proxy.md) with real peers:
pptp-linux and scripted clients behind the router, Poptop's pptpd and a scripted PAC
behind it. The router terminates each client's control connection and places the call to
the server itself; GRE is relayed between the legs. Run as root:

    PPTP_ALG=build/release/alg/pptp-alg /usr/bin/python3 tests/e2e/test_proxy_e2e.py -v
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_nat_e2e as nat  # noqa: E402  (its LabTest: set-up, tear-down, the checks after each test)
from pptplab.lab import CLIENTS, PUBLIC, PYTHON, SERVER, SERVER2  # noqa: E402

ALICE, BOB, CAROL = CLIENTS[0], CLIENTS[1], CLIENTS[2]
METRICS_PORT = 9817  # --metrics-listen, inside the router's namespace


class ProxyTest(nat.LabTest):
    daemon_args = ("--proxy",)

    def server_peers(self):
        """Addresses of the control connections the server side has established."""
        out = self.lab.netns("srv", "ss", "-Htn", "state", "established", "( sport = :1723 )", check=False).stdout
        return {line.split()[-1].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}

    def run_watching_server(self, specs, timeout=60):
        """Runs the clients at once; returns their results and every peer the server saw."""
        procs = [self.lab.start_client(kind, **kw) for kind, kw in specs]
        peers = set()
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            peers |= self.server_peers()
            time.sleep(0.2)
        return [self.lab.result(p) for p in procs], peers

    def wait_status(self, predicate, timeout=15):
        """The status file once `predicate` holds for it (it is rewritten every second)."""
        deadline = time.monotonic() + timeout
        status = {}
        while time.monotonic() < deadline:
            try:
                status = self.lab.status(wait=0.3)
            except (OSError, ValueError):
                continue
            if predicate(status):
                return status
        self.fail("status never got there: %s" % status)

    def fast_elements(self, name):
        kind = "set" if name == "fast_out" else "map"
        return self.lab.netns("rtr", "nft", "list", kind, "ip", "pptp_alg_proxy", name, check=False).stdout

    def tearDown(self):
        super().tearDown()
        rules = self.lab.netns("rtr", "ip", "rule", check=False).stdout
        self.assertNotIn("lookup 1723", rules, "the policy route was left behind")


class Proxy(ProxyTest):
    def test_colliding_clients_and_pptp_linux_each_get_their_own_echoes(self):
        self.lab.start_server()
        results, peers = self.run_watching_server([
            ("pns", dict(local=CLIENTS[0], tag="alice", call_ids=[7], duration=3)),
            ("pns", dict(local=CLIENTS[1], tag="bob", call_ids=[7], duration=3)),
            ("pptp-linux", dict(local=CLIENTS[2], tag="carol", duration=3)),
        ])
        for r in results:
            self.assertEchoed(r)
        for r in results[:2]:  # each scripted client saw its own Call ID in the reply
            self.assertEqual(r["calls"][0]["my_call_id"], 7, r)
        # The two colliding clients got different Call IDs from the proxy (the PAC they see).
        self.assertNotEqual(results[0]["calls"][0]["peer_call_id"], results[1]["calls"][0]["peer_call_id"])
        self.assertEqual(peers, {PUBLIC}, "the server saw other addresses than the router's")
        status = self.lab.status()
        self.assertEqual(status["mode"], "proxy")
        self.assertGreaterEqual(status["relay"]["calls_connected"], 3, status)
        self.assertGreater(status["gre"]["to_server"], 0, status)
        self.assertGreater(status["gre"]["to_client"], 0, status)
        self.assertEqual(status["call_ids_in_use"], 0, "every call's Call IDs came back")

    def test_several_calls_on_one_connection_and_a_server_that_clears_one(self):
        pac = self.lab.start_pac(connections=2, duration=4)
        multi = self.lab.start_client("pns", local=CLIENTS[0], server=SERVER2, tag="multi", call_ids=[7, 8],
                                      duration=3)
        cleared = self.lab.start_client("pns", local=CLIENTS[1], server=SERVER2, tag="cleared", call_ids=[7],
                                        duration=1.5, hangup="server")
        multi_r, cleared_r = self.lab.result(multi), self.lab.result(cleared)
        for r in (multi_r, cleared_r):
            self.assertEchoed(r)
        self.assertEqual(len(multi_r["calls"]), 2, multi_r)
        # The server's Call-Disconnect-Notify reached the client with the Call ID the client
        # knows the call by (the proxy's, RFC 2637 2.13), not the server's.
        c = cleared_r["calls"][0]
        self.assertEqual(c["ended_by"], "call_disconnect_notify", cleared_r)
        self.assertEqual(c["disconnect_call_id"], c["peer_call_id"], cleared_r)
        self.assertTrue(self.lab.result(pac)["ok"])

    def test_incoming_calls_placed_by_the_server_reach_colliding_clients(self):
        for r in nat.scenario_incoming_calls(self.lab):  # the scripted PAC places one per connection
            self.assertEchoed(r)
        self.assertEqual(self.lab.status()["relay"]["incoming_placed"], 2)

    def test_a_clients_segment_conntrack_finds_invalid_never_reaches_the_server_untranslated(self):
        """A LAN neighbour sends RSTs and FINs with wrong numbers on alice's control connection
        (her address and port, toward the server). Conntrack finds them invalid, so NAT skips
        them: no REDIRECT to the proxy, no masquerade. Routed on, they reached the server with
        alice's inside address (s28 review); the proxy's filter rule (chain
        PPTP_ALG_PROXY_INVALID) drops them. alice's call echoes."""
        lab = self.lab
        lab.start_server()
        # The server's namespace counts TCP/1723 from inside addresses, before anything else.
        lab.netns("srv", "nft", "add", "table", "ip", "leak")
        lab.netns("srv", "nft", "add", "chain", "ip", "leak", "seen", "{ type filter hook prerouting priority -300; }")
        lab.netns("srv", "nft", "add", "rule", "ip", "leak", "seen", "ip saddr 192.0.2.0/24 tcp dport 1723 counter")
        client = lab.start_client("pptp-linux", local=ALICE, tag="alice", duration=6)
        port = None
        deadline = time.monotonic() + 15
        while port is None and time.monotonic() < deadline:
            out = lab.netns("lan", "ss", "-Htn", "state", "established", "( dport = :1723 )", check=False).stdout
            ports = [line.split()[-2].rsplit(":", 1)[1] for line in out.splitlines() if ALICE + ":" in line]
            port = int(ports[0]) if ports else None
            time.sleep(0.2)
        self.assertIsNotNone(port, "alice's control connection never came up")
        attack = lab.hostile("tcp-spoof", ALICE, SERVER, count=2, extra=["--sport", str(port)])
        self.assertEqual(attack.get("sent"), ["rst", "fin", "syn"] * 2, attack)
        time.sleep(0.5)
        seen = lab.netns("srv", "nft", "list", "chain", "ip", "leak", "seen").stdout
        leaked = sum(int(n) for n in re.findall(r"packets (\d+)", seen))
        rules = lab.netns("rtr", "iptables", "-w", "-t", "filter", "-L", "PPTP_ALG_PROXY_INVALID", "-v", "-x", "-n",
                          check=False).stdout
        dropped = sum(int(line.split()[0]) for line in rules.splitlines() if "DROP" in line)
        result = lab.result(client)
        self.assertEqual(leaked, 0, seen)
        self.assertGreaterEqual(dropped, 2, rules)  # the FINs at least (a SYN is ignored by conntrack)
        self.assertEchoed(result)

class ReframedControlMessages(ProxyTest):
    def test_split_and_coalesced_control_messages_on_both_legs_still_make_working_calls(self):
        # The proxy reads each leg as a byte stream (RFC 2637 2: messages over TCP, no
        # boundaries): the PAC cuts every message at byte 9 and sends an Echo-Request in each
        # Outgoing-Call-Reply's segment; one client cuts its messages inside the Call ID,
        # the other sends its three Outgoing-Call-Requests, and later its three
        # Call-Clear-Requests, in one segment each.
        pac = self.lab.start_pac(connections=2, duration=5, split=9, coalesce=True)
        split = self.lab.start_client("pns", local=ALICE, server=SERVER2, tag="split", call_ids=[7], duration=3,
                                      split=13)
        coalesced = self.lab.start_client("pns", local=BOB, server=SERVER2, tag="coalesced", call_ids=[7, 8, 9],
                                          duration=3, coalesce=True)
        split_r, coalesced_r = self.lab.result(split), self.lab.result(coalesced)
        for r in (split_r, coalesced_r):
            self.assertEchoed(r)  # each frame went client -> server and its echo server -> client
        self.assertEqual([c["asked_call_id"] for c in coalesced_r["calls"]], [7, 8, 9], coalesced_r)
        self.assertEqual(len({c["peer_call_id"] for c in coalesced_r["calls"]}), 3, coalesced_r)
        for c in split_r["calls"] + coalesced_r["calls"]:  # every clear answered for its own call
            self.assertEqual(c["ended_by"], "call_disconnect_notify", c)
            self.assertEqual(c["disconnect_call_id"], c["peer_call_id"], c)
        p = self.lab.result(pac)
        self.assertEqual((p["outgoing"], p["clears_received"]), (4, 4), p)
        self.assertEqual(p["echo_replies"], 4, "the Echo-Requests coalesced into the replies: %s" % p)
        status = self.wait_status(lambda s: s["call_ids_in_use"] == 0)
        self.assertEqual(status["relay"]["calls_connected"], 4, status)


class LegFailures(ProxyTest):
    def test_a_server_that_dies_clears_the_clients_call(self):
        pac = self.lab.start_pac(connections=1, duration=20)
        client = self.lab.start_client("pns", local=CLIENTS[0], server=SERVER2, tag="orphan", call_ids=[7],
                                       duration=6)
        self.wait_status(lambda s: s["relay"]["calls_connected"] == 1 and s["gre"]["to_client"] > 0)
        self.lab._stop(pac, signal.SIGKILL)
        # The client hears Call-Disconnect-Notify for its call (RFC 2637 2.13) from the proxy,
        # the PAC it knows, instead of GRE that silently stops.
        r = self.lab.result(client)
        self.assertIn(13, r.get("messages_seen", []), r)
        status = self.wait_status(lambda s: s["call_ids_in_use"] == 0)
        self.assertEqual(status["relay"]["calls_ended"], 1, status)
        self.assertIn("proxy_leg_ended leg=server", self.lab.read_daemon_log())

    def test_a_server_that_resets_its_connection_clears_the_clients_call_and_control_connection(self):
        # A TCP RST from the server (SO_LINGER 0), not a process that exits: the server leg's
        # read fails with a reset. RFC 2637 2.13 and 2.3: the client hears
        # Call-Disconnect-Notify (lost carrier) for its call, then its control connection ends.
        pac = self.lab.start_pac(connections=1, duration=20, reset_after=2)
        client = self.lab.start_client("pns", local=ALICE, server=SERVER2, tag="reset", call_ids=[7],
                                       duration=15)
        status = self.wait_status(lambda s: s["relay"]["calls_ended"] == 1 and s["call_ids_in_use"] == 0, 30)
        self.assertEqual(status["relay"]["calls_connected"], 1, status)
        self.assertEqual(self.lab.result(pac)["resets_sent"], 1)
        self.assertIn("proxy_leg_ended leg=server server=%s why=reset during=read" % SERVER2,
                      self.lab.read_daemon_log())
        # The proxy closed the client's control connection while the client still runs.
        self.assertIsNone(client.poll(), "the client ended before the check")
        lan = self.lab.netns("lan", "ss", "-Htn", "state", "close-wait", "( dport = :1723 )", check=False).stdout
        self.assertIn(ALICE, lan, "the client's control connection was not closed by the proxy")
        r = self.lab.result(client)
        c = r["calls"][0]
        self.assertEqual(c["ended_by"], "call_disconnect_notify", r)
        self.assertEqual(c["disconnect_call_id"], c["peer_call_id"], r)
        self.assertEqual(c["disconnect_result"], 1, "not lost carrier (RFC 2637 2.13): %s" % r)

    def test_a_client_that_vanishes_clears_the_servers_side(self):
        self.lab.start_pac(connections=1, duration=20)
        client = self.lab.start_client("pns", local=CLIENTS[0], server=SERVER2, tag="vanishes", call_ids=[7],
                                       duration=15)
        self.wait_status(lambda s: s["relay"]["calls_connected"] == 1 and s["gre"]["to_client"] > 0)
        self.assertEqual(self.server_peers(), {PUBLIC})
        self.lab._stop(client, signal.SIGKILL)
        # The proxy stops the server's control connection (Stop-Control-Connection-Request,
        # RFC 2637 2.3, then closes it): the server holds nothing for a client that is gone.
        deadline = time.monotonic() + 15
        while self.server_peers() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.server_peers(), set(), "the server still holds the proxied connection")
        self.wait_status(lambda s: s["call_ids_in_use"] == 0)


# In the LAN: listens on ADDRESS:1723 for SECONDS and counts GRE to ADDRESS meanwhile; prints
# {"connections": n, "gre": n}.
LAN_WATCH = r"""
import json, socket, sys, time
address, seconds = sys.argv[1], float(sys.argv[2])
lst = socket.socket()
lst.bind((address, 1723))
lst.listen(8)
lst.settimeout(0.2)
gre = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)
gre.setblocking(False)
connections = packets = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        lst.accept()[0].close()
        connections += 1
    except OSError:
        pass
    while True:
        try:
            data = gre.recv(2048)
        except BlockingIOError:
            break
        if socket.inet_ntoa(data[16:20]) == address:
            packets += 1
print(json.dumps({"connections": connections, "gre": packets}), flush=True)
"""
# From the WAN: one TCP connect to TARGET:1723 (3 s at most), then 20 GRE packets to TARGET.
WAN_PROBE = r"""
import json, socket, struct, sys
local, target = sys.argv[1], sys.argv[2]
s = socket.socket()
s.bind((local, 0))
s.settimeout(3)
try:
    s.connect((target, 1723))
    connected = True
except OSError:
    connected = False
g = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)
for i in range(20):
    g.sendto(struct.pack("!HHHHI", 0x3001, 0x880B, 4, 5, i) + b"data", (target, 0))
print(json.dumps({"connected": connected}), flush=True)
"""


class FromTheOutside(ProxyTest):
    def test_a_host_outside_neither_reaches_an_inside_host_through_the_proxy_nor_loses_its_gre(self):
        # The router's default route is the outside: its TCP/1723 and GRE are left to the
        # forward policy (s29 review: REDIRECT came first, so a host outside reached an inside
        # host's TCP/1723 through the proxy from the router's own address, and GRE through the
        # router was delivered to the proxy and dropped). The admin forbids new TCP from the
        # outside in; GRE is let through. A client inside still calls through the proxy.
        lab = self.lab
        lab.netns("rtr", "ip", "route", "add", "default", "via", "198.51.100.254", "dev", "outside")
        lab.stop_daemon()
        lab.start_daemon(self.daemon_arguments())
        self.assertIn("proxy_outside interfaces=outside", lab.read_daemon_log())
        lab.netns("rtr", "iptables", "-w", "-A", "FORWARD", "-i", "outside", "-o", "inside", "-p", "tcp",
                  "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP")
        lab.netns("srv", "ip", "route", "add", "192.0.2.0/24", "via", PUBLIC)
        victim = CLIENTS[4]
        watch = subprocess.Popen(["ip", "netns", "exec", lab.ns["lan"], PYTHON, "-c", LAN_WATCH, victim, "5"],
                                 stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (watch.kill(), watch.wait(), watch.stdout.close()))
        time.sleep(0.5)
        probe = json.loads(lab.netns("srv", PYTHON, "-c", WAN_PROBE, SERVER, victim).stdout.strip().splitlines()[-1])
        seen = json.loads(watch.stdout.readline())
        self.assertEqual((probe["connected"], seen["connections"]), (False, 0), (probe, seen))
        self.assertEqual(seen["gre"], 20, seen)
        self.assertNotIn("proxy_connection client=%s" % SERVER, lab.read_daemon_log())
        pac = lab.start_pac(connections=1, duration=5)
        self.assertEchoed(lab.result(lab.start_client("pns", local=ALICE, server=SERVER2, tag="alice", call_ids=[7],
                                                      duration=3)))
        self.assertTrue(lab.result(pac)["ok"])


class KernelFastPath(ProxyTest):
    """Once a call's first packets have been relayed here (64 without a PPP name, as in the
    transparent mode), the kernel relays its GRE (docs/proxy.md, "Fast path")."""

    def test_a_proxied_calls_gre_is_relayed_by_the_kernel_and_its_elements_go_with_the_call(self):
        pac = self.lab.start_pac(connections=1, duration=25)
        client = self.lab.start_client("pns", local=ALICE, server=SERVER2, tag="alice", call_ids=[7], duration=14)
        first = self.wait_status(lambda s: s["fast_path"]["calls"] == 1 and s["fast_path"]["to_server_packets"] > 0
                                 and s["fast_path"]["to_client_packets"] > 0, timeout=30)
        self.assertIn("elements = ", self.fast_elements("proxy_out_key"), "the client's Key rewrite is in the kernel")
        later = self.wait_status(lambda s: s["fast_path"]["to_server_packets"] >= first["fast_path"]["to_server_packets"] + 20,
                                 timeout=20)
        # The kernel counted the call's GRE both ways; user space relayed none of it.
        self.assertGreater(later["fast_path"]["to_client_packets"], first["fast_path"]["to_client_packets"], later)
        self.assertEqual(later["gre"]["to_server"], first["gre"]["to_server"], later)
        self.assertEqual(later["gre"]["to_client"], first["gre"]["to_client"], later)
        r = self.lab.result(client)
        self.assertEchoed(r, minimum=100)  # every frame still came back, with the client's own Key
        self.assertEqual(r["calls"][0]["foreign"], 0, r)
        self.assertGreaterEqual(r["calls"][0]["echoed"], r["calls"][0]["sent"] - 3, r)
        self.assertTrue(self.lab.result(pac)["ok"])
        done = self.wait_status(lambda s: s["fast_path"]["calls"] == 0)
        self.assertEqual(done["fast_path"]["withdrawn"], 1, done)
        for name in ("proxy_out_key", "fast_in_address", "fast_out"):
            self.assertNotIn("elements = ", self.fast_elements(name), "the call's elements outlived it")


class BesideTransparent(nat.LabTest):
    """A transparent daemon (the lab's) and a proxy for SERVER2 only (--proxy-servers) on one
    router (docs/proxy.md, "Beside the transparent mode"): each has its own table, and
    stopping one leaves the other's table and calls alone."""

    def setUp(self):
        super().setUp()
        self.proxy_status = os.path.join(self.lab.tmp, "proxy-status.json")
        self.proxy_log = os.path.join(self.lab.tmp, "proxy.log")
        self.proxy = self.lab.spawn("rtr", [self.lab.daemon_binary, "--proxy", "--install-rules", "--proxy-servers",
                                            SERVER2, "--status-file", self.proxy_status, "--pid-file",
                                            os.path.join(self.lab.tmp, "proxy.pid"), "--control-socket", "none",
                                            "--log-level", "debug"], log=self.proxy_log)
        deadline = time.monotonic() + 15
        while " ready " not in self.read_proxy_log() and time.monotonic() < deadline:
            self.assertIsNone(self.proxy.poll(), self.read_proxy_log())
            time.sleep(0.1)

    def tearDown(self):
        self.lab._stop(self.proxy)  # first: LabTest's tearDown finds no rule of ours left
        super().tearDown()
        self.assertNotIn("lookup 1723", self.lab.netns("rtr", "ip", "rule", check=False).stdout)

    def read_proxy_log(self):
        with open(self.proxy_log, errors="replace") as f:
            return f.read()

    def tables(self):
        return set(re.findall(r"table ip (\S+)", self.lab.netns("rtr", "nft", "list", "tables").stdout))

    def wait_both_offloaded(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(self.proxy_status) as f:
                    proxied = json.load(f)["fast_path"]["calls"]
                if proxied == 1 and self.lab.status(wait=0.5)["fast_path"]["calls"] == 1:
                    return
            except (OSError, ValueError):
                time.sleep(0.3)
        self.fail("the two calls were not both in the kernel within %d s" % timeout)

    def test_a_transparent_and_a_proxied_call_run_side_by_side_and_each_daemon_stops_alone(self):
        self.assertEqual(self.tables() & {"pptp_alg", "pptp_alg_proxy"}, {"pptp_alg", "pptp_alg_proxy"})
        self.lab.start_server()
        self.lab.start_pac(connections=2, duration=20)
        # One call each way through the router, both in the kernel; then the transparent
        # daemon stops: the proxied call goes on to its end, every frame echoed.
        transparent = self.lab.start_client("pns", local=ALICE, tag="transparent", call_ids=[7], duration=8)
        proxied = self.lab.start_client("pns", local=BOB, server=SERVER2, tag="proxied", call_ids=[7], duration=16)
        self.wait_both_offloaded()
        self.assertEchoed(self.lab.result(transparent), minimum=50)
        self.assertEqual(self.lab.stop_daemon(), 0)
        self.assertEqual(self.tables() & {"pptp_alg", "pptp_alg_proxy"}, {"pptp_alg_proxy"})
        r = self.lab.result(proxied)
        self.assertEchoed(r, minimum=100)
        self.assertGreaterEqual(r["calls"][0]["echoed"], r["calls"][0]["sent"] - 3, r)
        # The transparent daemon again, a call through it, and the proxy stops under it.
        self.lab.start_daemon(self.daemon_arguments())
        transparent = self.lab.start_client("pns", local=ALICE, tag="again", call_ids=[7], duration=10)
        proxied = self.lab.start_client("pns", local=BOB, server=SERVER2, tag="proxied2", call_ids=[7], duration=10)
        self.wait_both_offloaded()
        self.lab._stop(self.proxy)
        self.assertEqual(self.proxy.returncode, 0, self.read_proxy_log()[-1500:])
        self.assertEqual(self.tables() & {"pptp_alg", "pptp_alg_proxy"}, {"pptp_alg"})
        self.assertEchoed(self.lab.result(transparent), minimum=60)
        self.assertEqual(self.lab.status()["fast_path"]["calls"], 0)
        self.lab.result(proxied)  # cut with the proxy: its end is not this test's
        self.assertEqual(self.read_proxy_log().count("call_offloaded mode=proxy"), 2)


class RefusedBesideTransparent(nat.LabTest):
    """A proxy for every server (no --proxy-servers) would mark every server's GRE to the
    router, the transparent calls' too, and a proxy without its fast path has no such chain at
    all: neither starts beside a transparent daemon, and a transparent daemon does not start
    beside the first (proxy/coexistence.hpp; docs/proxy.md, "Beside the transparent mode")."""

    def run_daemon(self, *args):
        """The daemon run to its exit (a refusal is immediate): (exit status, output)."""
        r = self.lab.netns("rtr", "timeout", "20", self.lab.daemon_binary, *args, "--control-socket", "none",
                           "--pid-file", os.path.join(self.lab.tmp, "other.pid"), check=False)
        return r.returncode, r.stdout

    def tables(self):
        return set(re.findall(r"table ip (\S+)", self.lab.netns("rtr", "nft", "list", "tables").stdout))

    def test_neither_daemon_starts_into_a_router_where_the_other_would_take_its_gre(self):
        status, out = self.run_daemon("--proxy", "--install-rules")
        self.assertEqual(status, 2, out)
        self.assertIn("needs --proxy-servers", out)
        status, out = self.run_daemon("--proxy", "--install-rules", "--proxy-servers", SERVER2, "--no-fast-path")
        self.assertEqual(status, 2, out)
        self.assertIn("leave out --no-fast-path", out)
        self.assertNotIn("pptp_alg_proxy", self.tables())
        # The transparent daemon's call is unharmed by the refused starts.
        self.lab.start_server()
        self.assertEchoed(self.lab.result(self.lab.start_client("pns", local=ALICE, tag="alice", call_ids=[7],
                                                                duration=4)), minimum=20)
        # The reverse: a proxy for every server up first, then a transparent daemon.
        self.assertEqual(self.lab.stop_daemon(), 0)
        log = os.path.join(self.lab.tmp, "proxy.log")
        proxy = self.lab.spawn("rtr", [self.lab.daemon_binary, "--proxy", "--install-rules", "--control-socket",
                                       "none", "--status-file", os.path.join(self.lab.tmp, "proxy-status.json"),
                                       "--pid-file", os.path.join(self.lab.tmp, "proxy.pid")], log=log)
        try:
            deadline = time.monotonic() + 15
            while "pptp_alg_proxy" not in self.tables() and time.monotonic() < deadline:
                self.assertIsNone(proxy.poll())
                time.sleep(0.1)
            status, out = self.run_daemon("--install-rules", "--status-file", os.path.join(self.lab.tmp, "t.json"))
            self.assertEqual(status, 2, out)
            self.assertIn("nft delete table ip pptp_alg_proxy", out)
            self.assertNotIn("pptp_alg", self.tables())
        finally:
            self.lab._stop(proxy)
        self.lab.start_daemon(self.daemon_arguments())  # with the proxy gone it starts


class RestartAfterCrash(ProxyTest):
    """--keep-fast-path does not apply to proxy mode: a proxied call lives in the proxy's
    control connections. A proxy that crashed leaves its elements; the next one removes
    them at start and says so (docs/proxy.md, "Fast path")."""
    daemon_args = ("--proxy", "--keep-fast-path")

    def test_a_restarted_proxy_removes_what_the_crashed_one_left_in_the_kernel_and_says_so(self):
        self.assertIn("keep_fast_path_not_applied mode=proxy", self.lab.read_daemon_log())
        self.lab.start_pac(connections=1, duration=20)
        client = self.lab.start_client("pns", local=ALICE, server=SERVER2, tag="alice", call_ids=[7], duration=15)
        self.wait_status(lambda s: s["fast_path"]["calls"] == 1, timeout=30)
        self.lab.daemon_proc.kill()  # no clean-up: the elements stay (90 s timeout)
        self.lab.daemon_proc.wait(timeout=10)
        self.assertIn("elements = ", self.fast_elements("proxy_out_key"))
        self.lab.start_daemon(self.daemon_arguments())
        self.assertIn("fast_path_leftover_removed mode=proxy calls=1", self.lab.read_daemon_log())
        for name in ("proxy_out_key", "fast_in_address", "fast_out"):
            self.assertNotIn("elements = ", self.fast_elements(name), "the crashed proxy's call is still relayed")
        self.lab._stop(client)


class WithoutFastPath(ProxyTest):
    daemon_args = ("--proxy", "--no-fast-path")

    def test_every_gre_packet_is_relayed_in_user_space(self):
        self.lab.start_pac(connections=1, duration=12)
        r = self.lab.result(self.lab.start_client("pns", local=ALICE, server=SERVER2, tag="alice", call_ids=[7],
                                                  duration=8))
        self.assertEchoed(r, minimum=50)
        status = self.lab.status()
        self.assertFalse(status["fast_path"]["enabled"], status)
        self.assertGreaterEqual(status["gre"]["to_server"], r["calls"][0]["sent"], status)
        self.assertNotIn("pptp_alg", self.lab.netns("rtr", "nft", "list", "tables", check=False).stdout)


if __name__ == "__main__":
    unittest.main()
