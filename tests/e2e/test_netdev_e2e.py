#!/usr/bin/python3
"""The netdev fast path end to end (--fast-path netdev, issue 17; docs/packet-path.md,
"Netdev fast path"): the lab's masquerading router runs this build's daemon with real peers
(pptpd, pptp-linux) and scripted ones; an offloaded call's GRE is taken at the interface's
ingress by table netdev pptp_alg_fast, rewritten and sent out with `fwd`. Run as root: each
test builds its own namespaces (RFC 5737 addresses) and removes them, also on failure.

    PPTP_ALG=build/alg/pptp-alg /usr/bin/python3 tests/e2e/test_netdev_e2e.py -v
"""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_nat_e2e as nat  # noqa: E402
import test_ops_e2e as ops  # noqa: E402
from pptplab.lab import CLIENTS, PUBLIC, SERVER, TIME_SCALE  # noqa: E402

NETDEV_KEYED = ("in_plain", "in_address", "in_call_id", "out_source")


def ip_path_counts(test, timeout=5):
    """Until the ip table's element of the client's GRE has counted a packet (the call is on
    the ip fast path), else the test fails."""
    deadline, ip = time.monotonic() + timeout * TIME_SCALE, ""
    while time.monotonic() < deadline:
        ip = test.lab.netns("rtr", "nft", "list", "set", "ip", "pptp_alg", "fast_out").stdout
        if re.search(r"counter packets [1-9]", ip):
            return
        time.sleep(0.3)
    test.fail("the ip fast path carried none of it: " + ip)


class ForgedServerGre:
    """A client forges the server's GRE (the server's source address, the router's public
    address, another client's outside Call ID) and sends it from the inside. The netdev
    path's keys carry the interface the server's GRE arrives on, so it is not taken there;
    the ip table's first rule (strict reverse path) drops it, whichever path would have
    rewritten it to the victim: before that rule, all 100 reached the victim."""

    def spoofed_dropped(self):
        text = self.lab.netns("rtr", "nft", "list", "counter", "ip", "pptp_alg", "gre_spoofed").stdout
        return int(re.search(r"packets (\d+)", text).group(1))

    def test_a_servers_gre_forged_from_the_inside_reaches_no_client(self):
        self.lab.start_server()
        victim = self.lab.start_client("pns", local=CLIENTS[1], tag="v", call_ids=[9], duration=14 * TIME_SCALE)
        deadline, calls = time.monotonic() + 15 * TIME_SCALE, []
        while time.monotonic() < deadline and not [c for c in calls if c["fast_path"]]:
            calls = nat.all_calls(self.lab.status(wait=0.5))
        self.assertEqual([c["fast_path"] for c in calls], [True], calls)
        dropped = self.spoofed_dropped()
        attack = self.lab.hostile("gre-spoof", CLIENTS[3], PUBLIC, count=100,
                                  extra=["--spoof-source", SERVER, "--key", str(calls[0]["outside_call_id"])])
        self.assertTrue(attack.get("ok"), attack)
        self.assertEqual(self.spoofed_dropped() - dropped, 100)
        self.assertEchoed(self.lab.result(victim), minimum=60)  # "foreign" 0: no forged frame arrived


class IpPathForgedServerGre(ForgedServerGre, nat.LabTest):
    """The same attack on the ip fast path (the default)."""


class NetdevFastPath(ForgedServerGre, nat.FastPath):
    """The ip fast path's two tests (the calls work, the queue sees none of their GRE, the
    server sees the public address with good checksums, conntrack stays free of it), with
    the kernel's forwarding read from the netdev table's counters: they pass only if the
    netdev path carries the GRE both ways. Plus what only the netdev path has."""
    daemon_args = ("--fast-path", "netdev")

    def netdev_packets(self, name):
        return self.kernel_packets(name, "map", ("netdev", "pptp_alg_fast"))

    def netdev_elements(self):
        return {name: self.lab.netns("rtr", "nft", "list", "map", "netdev", "pptp_alg_fast", name).stdout
                .count(" timeout ") for name in NETDEV_KEYED}

    def kernel_packets_both_ways(self):
        return ({**self.netdev_packets("in_plain"), **self.netdev_packets("in_address")},
                self.netdev_packets("out_source"))

    def ip_packets_both_ways(self):
        return nat.FastPath.kernel_packets_both_ways(self)

    def test_the_netdev_path_carries_the_gre_and_the_ip_path_does_not(self):
        self.lab.start_server()
        duration = 16 * TIME_SCALE
        procs = [self.lab.start_client("pptp-linux", local=CLIENTS[0], tag="p", user="alice", duration=duration),
                 self.lab.start_client("pns", local=CLIENTS[1], tag="a", call_ids=[7], duration=duration),
                 self.lab.start_client("pns", local=CLIENTS[2], tag="b", call_ids=[7], duration=duration)]
        status = self.wait_offloaded(3, timeout=20 * TIME_SCALE)
        self.assertEqual(status["fast_path"]["mode"], "netdev", status["fast_path"])
        netdev = status["fast_path_netdev"]
        self.assertEqual(netdev["calls_added"], 3, netdev)
        self.assertEqual(set(netdev["fallbacks"].values()), {0}, netdev)
        self.assertEqual(netdev["errors"], 0, netdev)
        # Two calls kept their Call ID, one was translated (the ip table has the same).
        self.assertEqual(self.netdev_elements(), {"in_plain": 2, "in_address": 1, "in_call_id": 1, "out_source": 3})
        ip_before, netdev_before = self.ip_packets_both_ways(), self.kernel_packets_both_ways()
        grown = self.wait_kernel_forwarding(netdev_before, 30, timeout=10 * TIME_SCALE)
        ip_after = self.ip_packets_both_ways()
        ip_grown = tuple(sum(nat.forwarded_since(was[k], now[k]) for k in was.keys() & now.keys())
                         for was, now in zip(ip_before, ip_after))
        # The ip table's elements see nothing of the calls while the netdev path takes them.
        self.assertEqual(ip_grown, (0, 0), "ip path %s, netdev path %s" % (ip_grown, grown))
        for p in procs:
            self.assertEchoed(self.lab.result(p), minimum=60)
        status = self.lab.status()
        self.assertEqual(status["fast_path"]["calls"], 0, status["fast_path"])
        self.assertEqual(self.netdev_elements(), {name: 0 for name in NETDEV_KEYED})
        self.assertEqual(status["fast_path_netdev"]["calls_removed"], 3, status["fast_path_netdev"])

class NetdevFirewallReload(nat.LabTest):
    """`nft flush ruleset` (a firewall reload) takes the netdev table with the ip table: the
    daemon makes both again and puts the offloaded call back on the netdev path."""
    daemon_args = ("--fast-path", "netdev")

    def test_a_flushed_ruleset_brings_the_netdev_table_and_the_call_back(self):
        self.lab.start_server()
        client = self.lab.start_client("pns", local=CLIENTS[0], tag="f", call_ids=[7], duration=16 * TIME_SCALE)
        self.assertTrue(ops.poll(lambda: self.lab.status(wait=0.3)["fast_path_netdev"]["calls_added"] == 1),
                        "never on the netdev path")
        ops.run(["ip", "netns", "exec", self.lab.ns["rtr"], "nft", "-f", "-"],
                input="flush ruleset\n" + ops.MASQUERADE)
        self.assertTrue(ops.poll(lambda: "fast_path_netdev_restored" in self.lab.read_daemon_log()),
                        "the netdev table was not made again")
        counted = lambda: sum(NetdevFastPath.netdev_packets(self, "out_source").values())  # noqa: E731
        self.assertTrue(ops.poll(lambda: counted() > 10), "the netdev path does not carry the call again")
        result = self.lab.result(client)
        calls = result.get("calls") or [result]
        self.assertTrue(result.get("ok"), result)
        self.assertGreaterEqual(calls[0]["echoed"], calls[0]["sent"] - 20, result)  # the ip repair's bound

    def kernel_packets(self, name, kind, table):
        return nat.FastPath.kernel_packets(self, name, kind, table)


class NetdevFallback(nat.LabTest):
    """A call whose routes the netdev path cannot use (here the devices' MTUs differ: `fwd`
    checks none) stays on the ip fast path, counted by its reason, and works."""
    daemon_args = ("--fast-path", "netdev")

    def test_a_call_whose_devices_differ_in_mtu_takes_the_ip_fast_path(self):
        self.lab.netns("rtr", "ip", "link", "set", "inside", "mtu", "1400")
        self.lab.start_server()
        p = self.lab.start_client("pptp-linux", local=CLIENTS[0], tag="m", user="alice", duration=8 * TIME_SCALE)
        deadline, status = time.monotonic() + 15 * TIME_SCALE, {}
        while time.monotonic() < deadline:
            status = self.lab.status(wait=0.5)
            if status["fast_path"]["calls"] >= 1:
                break
        self.assertEqual(status["fast_path"]["calls"], 1, status.get("fast_path"))
        netdev = status["fast_path_netdev"]
        self.assertEqual((netdev["calls_added"], netdev["fallbacks"]["mtu_differs"]), (0, 1), netdev)
        text = self.lab.netns("rtr", "nft", "list", "map", "netdev", "pptp_alg_fast", "out_source").stdout
        self.assertEqual(text.count(" timeout "), 0, text)
        # While the call is up, the ip fast path's element of its client's GRE counts it.
        ip_path_counts(self)
        self.assertEchoed(self.lab.result(p), minimum=40)


class NetdevFollowsLinks(nat.LabTest):
    """A device that changes under a call on the netdev path (its MTU here: a link going down
    or a new next hop are the same news): the call's elements follow at the next tick, back
    to the ip fast path while the MTUs differ and onto the netdev path again after. The call
    works throughout."""
    daemon_args = ("--fast-path", "netdev")

    def out_source_elements(self):
        text = self.lab.netns("rtr", "nft", "list", "map", "netdev", "pptp_alg_fast", "out_source").stdout
        return text.count(" timeout ")

    def wait_for(self, what, predicate, timeout):
        deadline, status = time.monotonic() + timeout, {}
        while time.monotonic() < deadline:
            status = self.lab.status(wait=0.3)
            if predicate(status):
                return status
        self.fail("%s not within %g s: %s" % (what, timeout, status.get("fast_path_netdev")))

    def test_an_mtu_change_moves_the_call_off_the_netdev_path_and_back(self):
        self.lab.start_server()
        p = self.lab.start_client("pptp-linux", local=CLIENTS[0], tag="l", user="alice", duration=16 * TIME_SCALE)
        self.wait_for("the call on the netdev path", lambda s: s["fast_path_netdev"]["calls_added"] == 1,
                      15 * TIME_SCALE)
        self.assertEqual(self.out_source_elements(), 1)
        self.lab.netns("rtr", "ip", "link", "set", "inside", "mtu", "1400")
        status = self.wait_for("the fall-back", lambda s: s["fast_path_netdev"]["calls_fell_back"] == 1, 5 * TIME_SCALE)
        self.assertEqual(self.out_source_elements(), 0)
        self.assertGreaterEqual(status["fast_path_netdev"]["reroutes"], 1)
        # Meanwhile the ip fast path carries it (its element of the client's GRE counts).
        ip_path_counts(self)
        self.lab.netns("rtr", "ip", "link", "set", "inside", "mtu", "1500")
        status = self.wait_for("the return", lambda s: s["fast_path_netdev"]["calls_joined"] == 1, 5 * TIME_SCALE)
        self.assertEqual(self.out_source_elements(), 1)
        self.assertEqual(status["fast_path_netdev"]["errors"], 0, status["fast_path_netdev"])
        self.assertEchoed(self.lab.result(p), minimum=100)


if __name__ == "__main__":
    unittest.main()
