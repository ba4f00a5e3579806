#!/usr/bin/python3
"""The HA pair's longer cases (issue 18, docs/ha.md), beside test_ha_e2e.py's failover:
a second failover back to the first node, whose daemon came back as standby; a node
without its snapshot kept from becoming master; a control message split across a failover;
a split brain, its healing and a failover after it.

    PPTP_ALG=build/release/alg/pptp-alg /usr/bin/python3 tests/e2e/test_ha_more_e2e.py -v
"""
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pptplab.lab import CLIENTS, SERVER  # noqa: E402
from pptplab.ha_lab import VIP_INSIDE, VIP_OUTSIDE  # noqa: E402
from test_ha_e2e import RATE, GAP_BOUND, HaCase, direction  # noqa: E402


def stop_both(test, pac, first):
    """The client, then the server stopped; their results (asserted present)."""
    first.send("stop")
    client = first.result()
    pac.send("stop")
    server = pac.result()
    for r in (client, server):
        test.assertIsNotNone(r, test.lab.log("pac") + test.lab.log("pns1"))
    return client, server


def fail_over(lab, away, to):
    """`away`'s links go down; returns once `to` holds the addresses and is promoted: when
    the links went and when it was promoted (monotonic)."""
    failed_at = time.monotonic()
    lab.fail_links(away)
    lab.wait_for(lambda: lab.holds_vips(to), 30, to + " holding the virtual addresses")
    lab.wait_for(lambda: lab.ha_status(to).get("role") == "active", 30, to + " promoted")
    return failed_at, time.monotonic()


def elements_gone_s(lab, r, before, since, timeout=10):
    """Seconds from `since` until router r's fast path forwards fewer calls than `before`
    (polled every 0.05 s); None if not within `timeout`."""
    while time.monotonic() - since < timeout:
        if lab.fast_path_calls(r) < before:
            return round(time.monotonic() - since, 3)
        time.sleep(0.05)
    return None


class SecondFailover(HaCase):
    def failover(self, away, to):
        """`away`'s links go down; `to` takes the addresses and is promoted; the call
        streams through it for 4 s. Returns when the links went and the times taken."""
        lab = self.lab
        failed_at = time.monotonic()
        lab.fail_links(away)
        lab.wait_for(lambda: lab.holds_vips(to), 30, to + " holding the virtual addresses")
        vips_at = time.monotonic()
        lab.wait_for(lambda: lab.ha_status(to).get("role") == "active", 30, to + " promoted")
        promoted_at = time.monotonic()
        time.sleep(4)
        return {"failed_at": failed_at, "vips_moved_s": round(vips_at - failed_at, 3),
                "promoted_s": round(promoted_at - failed_at, 3)}

    def test_a_call_survives_a_second_failover_back_to_the_first_node(self):
        lab = self.lab
        pac, first, call = self.start_call()
        lab.wait_for(lambda: lab.ha_status("rb").get("replicated_calls") == 1, 10, "the call replicated to rb")
        time.sleep(2)
        one = self.failover("ra", "rb")

        # ra's daemon comes back (a new run) as standby while ra is cut off; the sync
        # datagrams to ra are dropped, so it has no snapshot of rb's calls.
        lab.block_sync("ra")
        lab.stop("pptp-alg-ra")
        failed_checks = lab.log("keepalived-ra").count("PPTP_READY) failed")
        lab.start_daemon("ra")
        # Its keepalived's check has counted it out (`fall 3`: about 3 s after the start).
        lab.wait_for(lambda: lab.log("keepalived-ra").count("PPTP_READY) failed") > failed_checks, 30,
                     "ra's check failing")
        before = len(lab.vrrp_states("ra"))
        lab.restore_links("ra")
        time.sleep(6)  # keepalived would have gone to BACKUP within a second or two
        self.assertFalse(lab.ha_status("ra").get("synced"), lab.ha_status("ra"))
        self.assertNotIn("BACKUP", lab.vrrp_states("ra")[before:], "ra ready to become master without its snapshot")
        self.assertTrue(lab.holds_vips("rb"))
        # Its snapshot in, ra may become master again: backup, with rb's calls (rb publishes
        # the call it took over as its own).
        lab.block_sync("ra", False)
        lab.wait_for(lambda: lab.ha_status("ra").get("synced"), 20, "ra synced")
        lab.wait_for(lambda: "BACKUP" in lab.vrrp_states("ra")[before:], 20, "ra backup")
        self.assertEqual(lab.ha_status("ra").get("replicated_calls"), 1, lab.ha_status("ra"))

        two = self.failover("rb", "ra")
        first.send("echo")
        echo = first.event("echo_reply", 10)
        first.send("clear")
        disconnect = first.event("disconnect", 10)
        stopped_at = time.monotonic()
        client, server = stop_both(self, pac, first)

        received_up = server["calls"][str(call["my_call_id"])]["received"]
        received_down = client["stream"]["received"]
        numbers = {"rate_per_s": RATE}
        for name, f, until in (("first", one, two["failed_at"]), ("second", two, stopped_at)):
            numbers[name] = {"vips_moved_s": f["vips_moved_s"], "promoted_s": f["promoted_s"],
                             "client_to_server": direction(received_up, f["failed_at"], until),
                             "server_to_client": direction(received_down, f["failed_at"], until)}
        print("\nsecond failover: " + json.dumps(numbers), file=sys.stderr)
        for name in ("first", "second"):
            for way in ("client_to_server", "server_to_client"):
                d = numbers[name][way]
                self.assertGreater(d["after"], RATE, numbers)  # more than a second's worth got through
                self.assertLess(d["gap_s"], GAP_BOUND, numbers)
        # The control connection, on its third router: Echo and a Call-Clear with the
        # outside Call ID (RFC 2637 2.11), answered.
        self.assertIsNotNone(echo, "no Echo-Reply after the second failover")
        self.assertEqual(server["clears"], [call["peer_call_id"]], server)
        self.assertEqual(disconnect and disconnect["call_id"], call["my_call_id"], disconnect)


# Bytes of the split message written before the failover. 20: past its Call ID field (bytes
# 12-13), which ra translates; rb skips the tail and resumes at the next message. Before the
# field (PPTP_HA_SPLIT_AT=6) the tail reaches the client untranslated: a known gap (docs/ha.md,
# "Not done yet"), so the test fails there.
SPLIT_AT = int(os.environ.get("PPTP_HA_SPLIT_AT", "20"))


class SplitAcrossAFailover(HaCase):
    def test_a_message_split_across_a_failover_arrives_whole_and_the_call_clears_on_the_new_node(self):
        """The server writes the first SPLIT_AT bytes of a WAN-Error-Notify (RFC 2637 2.14,
        naming the client's outside Call ID) through ra, ra's links go down, and the rest goes
        through rb once promoted: rb resumes the control connection from the replicated
        positions (docs/ha.md, "Resuming a control connection"). Then an Echo, and the
        client's Call-Clear-Request, whose Call-Disconnect-Notify ends the call on rb."""
        lab = self.lab
        pac, first, call = self.start_call()
        lab.wait_for(lambda: lab.ha_status("rb").get("replicated_calls") == 1, 10, "the call replicated to rb")
        time.sleep(1)
        pac.send("wen-head %d" % SPLIT_AT)
        self.assertIsNotNone(pac.event("wen-head", 5), lab.log("pac"))
        time.sleep(0.5)  # the head passes ra and is acknowledged
        failed_at, promoted_at = fail_over(lab, "ra", "rb")
        time.sleep(1)
        pac.send("wen-tail")
        self.assertIsNotNone(pac.event("wen-tail", 5), lab.log("pac"))
        wen = first.event("wan_error", 10)
        first.send("echo")
        echo = first.event("echo_reply", 10)
        time.sleep(2)  # the call streams through rb
        offloaded = lab.fast_path_calls("rb")
        first.send("clear")
        disconnect = first.event("disconnect", 10)
        removed_s = elements_gone_s(lab, "rb", offloaded, time.monotonic())
        stopped_at = time.monotonic()
        client, server = stop_both(self, pac, first)

        outside = call["peer_call_id"]
        ended = re.findall(r"adopted_call_ended .*outside_call_id=(\d+) .*reason=\"(\w+)\"", lab.log("pptp-alg-rb"))
        status = json.loads(lab.ctl("rb", "status", "--json").stdout or "{}")
        numbers = {"split_at": SPLIT_AT, "promoted_s": round(promoted_at - failed_at, 3),
                   "client_call_id": 7, "outside_call_id": outside, "wan_error": wen, "echo": echo,
                   "server_clears": server["clears"], "disconnect": disconnect, "elements_removed_s": removed_s,
                   "offloaded_before": offloaded, "adopted_call_ended": ended,
                   "rb_anomalies": _anomalies(status),
                   "client_to_server": direction(server["calls"][str(call["my_call_id"])]["received"], failed_at,
                                                 stopped_at),
                   "server_to_client": direction(client["stream"]["received"], failed_at, stopped_at)}
        print("\nsplit across a failover: " + json.dumps(numbers), file=sys.stderr)
        # The split message reached the client whole, naming its own Call ID, not the
        # outside one the server knows it by (the translation shows: ra chose an even one).
        self.assertNotEqual(outside, 7, numbers)
        self.assertEqual(wen and wen["call_id"], 7, numbers)
        self.assertEqual(client.get("wan_errors"), [7], numbers)
        # The control connection survived: Echo answered, the clear named the outside Call
        # ID and was answered (the server's own Call ID, RFC 2637 2.13).
        self.assertIsNotNone(echo, numbers)
        self.assertEqual(server["clears"], [outside], numbers)
        self.assertEqual(disconnect and disconnect["call_id"], call["my_call_id"], numbers)
        # The clear ended the call on rb: its elements gone, its outside Call ID given back.
        self.assertIsNotNone(removed_s, numbers)
        self.assertIn((str(outside), "CDN"), ended, numbers)
        # Its GRE flowed across the failover, both ways.
        for way in ("client_to_server", "server_to_client"):
            self.assertGreater(numbers[way]["after"], RATE, numbers)
            self.assertLess(numbers[way]["gap_s"], GAP_BOUND, numbers)


def _anomalies(status):
    """The stream counters that say how a taken-over connection resumed."""
    names = ("tcp_resumed_at_position", "tcp_mid_stream_start", "stream_resync_skipped", "stream_framing_error")
    found = {}

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k in names and isinstance(v, int):
                    found[k] = v
                else:
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(status)
    return found


LOAD_CALLS = 50  # set up at once on one control connection, replicated while they come
SLOW_RATE = 5    # frames per second per call and direction for the many calls


def all_up(peer, n, timeout=40):
    """Waits for a stream_peer's n "up" events; None if they did not all come."""
    return peer.wait(lambda o: sum(1 for x in peer.seen if x.get("event") == "up") >= n, timeout)


class SetUpsAroundAFailover(HaCase):
    def replication_lag(self, load):
        """Each call's set-up on ra (its Outgoing-Call-Reply at the client) to its record on
        rb (rb's replicated count reaching it, polled every 0.05 s)."""
        lab, seen = self.lab, {}
        deadline = time.monotonic() + 60
        while len(seen) < LOAD_CALLS and time.monotonic() < deadline:
            n = lab.ha_status("rb").get("replicated_calls", 0)
            for i in range(len(seen) + 1, n + 1):
                seen[i] = time.monotonic()
            time.sleep(0.05)
        all_up(load, LOAD_CALLS)
        ups = sorted(o["at"] for o in load.seen if o.get("event") == "up")
        lags = sorted(seen[i + 1] - at for i, at in enumerate(ups) if i + 1 in seen)
        return {"calls": len(ups), "replicated": len(seen),
                "median_s": round(lags[len(lags) // 2], 3) if lags else None,
                "max_s": round(lags[-1], 3) if lags else None}

    def test_calls_set_up_during_and_after_a_failover_collide_with_none(self):
        lab = self.lab
        pac = self.peer("pac", "srv", "pac", "--local", SERVER, "--rate", str(SLOW_RATE))
        self.assertIsNotNone(pac.event("listening"), lab.log("pac"))
        # 50 calls set up at once through ra (Call IDs 100-149); their lag to rb.
        load = self.peer("load", "lan", "pns", "--local", CLIENTS[0], "--server", SERVER, "--call-id", "100",
                         "--calls", str(LOAD_CALLS), "--rate", str(SLOW_RATE))
        lag = self.replication_lag(load)
        self.assertEqual(lag["replicated"], LOAD_CALLS, lag)
        # ra goes; a client sets up 10 calls while nobody holds the addresses (its SYN is
        # retried until rb does), another right after rb's promotion; both ask for the
        # Call IDs ra's calls have (100-109), so rb must translate them away from those.
        lab.fail_links("ra")
        during = self.peer("during", "lan", "pns", "--local", CLIENTS[1], "--server", SERVER, "--call-id", "100",
                           "--calls", "10", "--rate", str(SLOW_RATE))
        lab.wait_for(lambda: lab.ha_status("rb").get("role") == "active", 30, "rb promoted")
        after = self.peer("after", "lan", "pns", "--local", CLIENTS[2], "--server", SERVER, "--call-id", "100",
                          "--calls", "10", "--rate", str(SLOW_RATE))
        for p in (during, after):
            self.assertIsNotNone(all_up(p, 10), lab.log("pptp-alg-rb")[-3000:])
        time.sleep(4)
        stopped_at = time.monotonic()
        for p in (load, during, after):
            p.send("stop")
        clients = {name: p.result() for name, p in (("load", load), ("during", during), ("after", after))}
        pac.send("stop")
        server = pac.result()
        self.assertIsNotNone(server)

        # No outside Call ID handed to two calls: the server saw 70 distinct ones.
        outside_ids = [c["send_key"] for c in server["calls"].values()]
        print("\nset-ups around a failover: " + json.dumps({"replication_lag": lag, "calls_at_server":
              len(outside_ids), "distinct_outside_call_ids": len(set(outside_ids))}), file=sys.stderr)
        self.assertEqual(len(outside_ids), LOAD_CALLS + 20, server.keys())
        self.assertEqual(len(set(outside_ids)), len(outside_ids), sorted(outside_ids))
        # Each new call's GRE reached its own client, and the client's reached the server.
        for name in ("during", "after"):
            self.assertIsNotNone(clients[name], lab.log(name))
            for st in clients[name]["streams"]:
                down = direction(st["received"], 0, stopped_at)
                self.assertGreater(down["received"], SLOW_RATE, (name, st["recv_key"], down))
                up = direction(server["calls"][str(st["send_key"])]["received"], 0, stopped_at)
                self.assertGreater(up["received"], SLOW_RATE, (name, st["send_key"], up))
        # ra's calls went on through rb.
        for st in clients["load"]["streams"]:
            after_failover = direction(st["received"], stopped_at - 3, stopped_at)
            self.assertGreater(after_failover["received"], 0, st["recv_key"])



def frames_between(received, since, until):
    """Frames received between two times (monotonic), from [seq, sent, received] rows."""
    return sum(1 for r in received if since <= r[2] <= until)


class SplitCase(HaCase):
    """A split brain's tools (no tests of its own)."""

    def calls_on(self, r):
        out = self.lab.ctl(r, "calls", "--json")
        return json.loads(out.stdout) if out.returncode == 0 else []

    def pin(self, r):
        """The clients' and the server's way to the virtual addresses through router r alone
        (permanent neighbour entries, which no gratuitous ARP moves); None: ARP decides again."""
        for host, vip, dev in (("lan", VIP_INSIDE, "inside"), ("srv", VIP_OUTSIDE, "outside")):
            if r is None:
                self.lab.netns(host, "ip", "neigh", "del", vip, "dev", "br0", check=False)
                continue
            mac = json.loads(self.lab.netns(r, "ip", "-j", "link", "show", dev).stdout)[0]["address"]
            self.lab.netns(host, "ip", "neigh", "replace", vip, "lladdr", mac, "dev", "br0", "nud", "permanent")

    def split_through_rb(self, calls, cut_sync=False):
        """ra's call up; the adverts cut both ways (and pptp-alg's sync if cut_sync): rb is
        promoted, `calls` calls are set up through it (pinned), then the adverts come back.
        Returns the server, ra's client, the split client."""
        lab = self.lab
        pac, first, call = self.start_call()
        lab.wait_for(lambda: lab.ha_status("rb").get("replicated_calls") == 1, 10, "the call replicated to rb")
        for r in ("ra", "rb"):
            if cut_sync:
                lab.block_sync(r)
            lab.block_vrrp(r)
        lab.wait_for(lambda: lab.ha_status("rb").get("role") == "active", 30, "rb promoted in the split")
        self.pin("rb")
        split = self.peer("split", "lan", "pns", "--local", CLIENTS[2], "--server", SERVER,
                          "--call-id", "20", "--calls", str(calls), "--rate", str(SLOW_RATE))
        self.assertIsNotNone(all_up(split, calls, 20), lab.log("split"))
        self.pin(None)
        time.sleep(2)
        for r in ("ra", "rb"):
            lab.block_vrrp(r, False)
        return pac, first, split

    def stop_split(self, pac, first, split, since):
        """All stopped; each split call's frames in the last 3 s and its longest gap since
        `since` (each way), and ra's healing counters."""
        stopped_at = time.monotonic()
        for p in (first, split):
            p.send("stop")
        res = split.result()
        first.result()
        pac.send("stop")
        server = pac.result()
        self.assertIsNotNone(server)
        calls = []
        for st in (res or {}).get("streams", []):
            to_server = server["calls"].get(str(st["send_key"]), {}).get("received", [])
            ways = {"server_to_client": st["received"], "client_to_server": to_server}
            calls.append({"client_call_id": st["recv_key"],
                          "last_3s": {w: direction(r, stopped_at - 3, stopped_at)["after"] for w, r in ways.items()},
                          "gap_s": {w: direction(r, since, stopped_at)["gap_s"] for w, r in ways.items()}})
        ra_status = self.lab.ha_status("ra")
        return calls, {k: ra_status.get(k) for k in ("healings", "healing_calls", "healing_commit_failures",
                                                      "healing_commit_timeouts")}

    def assert_carried(self, calls, n, numbers):
        self.assertEqual(len(calls), n, numbers)
        for c in calls:
            for way, frames in c["last_3s"].items():
                self.assertGreater(frames, SLOW_RATE, (c["client_call_id"], way, numbers))


class SplitBrain(SplitCase):
    # The server answers a Call-Clear-Request as Windows servers do: a WAN-Error-Notify and
    # a Call-Disconnect-Notify naming the client's outside Call ID (only the first test clears).
    pac_args = ("--windows",)

    def test_a_split_brain_hands_no_outside_call_id_twice_and_heals_to_one_master(self):
        """...and, after the healing, a second failover (ra's links down) hands the calls ra
        took over at the healing back to rb."""
        lab = self.lab
        pac, first, call = self.start_call()
        lab.wait_for(lambda: lab.ha_status("rb").get("replicated_calls") == 1, 10, "the call replicated to rb")
        # VRRP blocked both ways: rb hears no adverts, becomes master and is promoted
        # while ra stays master and active (the sync link still works).
        split_at = time.monotonic()
        for r in ("ra", "rb"):
            lab.block_vrrp(r)
        lab.wait_for(lambda: lab.ha_status("rb").get("role") == "active", 30, "rb promoted in the split")
        promoted_at = time.monotonic()
        self.assertEqual(lab.ha_status("ra").get("role"), "active")
        self.assertTrue(lab.holds_vips("ra") and lab.holds_vips("rb"), "both hold the addresses")
        # Two clients set up calls in the split, one through each router (the way there and
        # back pinned to it), both asking for the Call ID the first call has outside and the
        # next ones: each node chooses without knowing the other's new calls, so only the
        # even/odd split keeps their outside Call IDs apart.
        split = []
        for i, r in ((1, "ra"), (2, "rb")):
            self.pin(r)
            split.append(self.peer("split%d" % i, "lan", "pns", "--local", CLIENTS[i], "--server", SERVER,
                                   "--call-id", str(call["peer_call_id"]), "--calls", "5", "--rate", str(SLOW_RATE)))
            self.assertIsNotNone(all_up(split[-1], 5, 20), (r, lab.log("split%d" % i)))
        self.pin(None)
        time.sleep(3)
        during = {r: self.calls_on(r) for r in ("ra", "rb")}
        healed_at = time.monotonic()
        for r in ("ra", "rb"):
            lab.block_vrrp(r, False)
        # ra's priority is higher: rb goes back to backup and is demoted.
        lab.wait_for(lambda: lab.ha_status("rb").get("role") == "standby", 30, "rb demoted after the healing")
        lab.wait_for(lambda: not lab.holds_vips("rb"), 30, "rb without the addresses")
        standby_at = time.monotonic()
        self.assertTrue(lab.holds_vips("ra"))
        # ra, still active, sees rb's Hellos say standby and takes rb's calls of the split
        # over (docs/ha.md); not waited for with a failure, so that the frames decide.
        taken_at = None
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and taken_at is None:
            if lab.ha_status("ra").get("healings", 0) >= 1:
                taken_at = time.monotonic()
            time.sleep(0.05)
        time.sleep(max(0.0, 8 - (time.monotonic() - standby_at)))
        stopped_at = time.monotonic()
        # The control connection of rb's split calls, taken over by ra at the healing: an
        # Echo, then a Call-Clear-Request for its first call (ra must name the outside Call
        # ID to the server, RFC 2637 2.12), answered Windows-style: a WAN-Error-Notify and a
        # Call-Disconnect-Notify naming that outside Call ID, which ra translates back to the
        # client's own; the call ends on ra at once (its elements go, not at the idle timeout).
        split[1].send("echo")
        echo = split[1].event("echo_reply", 10)
        offloaded = lab.fast_path_calls("ra")
        split[1].send("clear")
        disconnect = split[1].event("disconnect", 10)
        removed_s = elements_gone_s(lab, "ra", offloaded, time.monotonic())
        rb_held_after_heal = lab.holds_vips("rb")
        again = self.failover_after_the_healing(split[1], disconnect)
        for p in [first] + split:
            p.send("stop")
        client = first.result()
        results = {p: p.result() for p in split}
        pac.send("stop")
        server = pac.result()
        self.assertIsNotNone(server)

        outside_ids = [c["send_key"] for c in server["calls"].values()]
        up = direction(server["calls"][str(call["my_call_id"])]["received"], split_at, stopped_at)
        down = direction(client["stream"]["received"], split_at, stopped_at)
        tail = {way: frames_between(rows, stopped_at - 3, stopped_at) for way, rows in (
            ("client_to_server", server["calls"][str(call["my_call_id"])]["received"]),
            ("server_to_client", client["stream"]["received"]))}
        split_calls = []
        for p, res in results.items():
            for st in (res or {}).get("streams", []):
                to_server = server["calls"].get(str(st["send_key"]), {}).get("received", [])
                split_calls.append({"through": "rb" if p is split[1] else "ra",
                                    "client_call_id": st["recv_key"], "server_call_id": st["send_key"],
                                    "last_3s": {"server_to_client": frames_between(st["received"], stopped_at - 3,
                                                                                   stopped_at),
                                                "client_to_server": frames_between(to_server, stopped_at - 3,
                                                                                   stopped_at)},
                                    "gap_after_heal_s": {"server_to_client": direction(st["received"], healed_at,
                                                                                       stopped_at)["gap_s"],
                                                         "client_to_server": direction(to_server, healed_at,
                                                                                       stopped_at)["gap_s"]}})
        ra_status = lab.ha_status("ra")
        cleared = (results[split[1]] or {}).get("stream", {})
        cleared_at_server = server["calls"].get(str(cleared.get("send_key")), {})
        numbers = {"split_to_rb_promoted_s": round(promoted_at - split_at, 3), "healed_to_rb_standby_s": round(standby_at - healed_at, 3),
                   "first_call": {"client_to_server": up, "server_to_client": down, "last_3s": tail},
                   "calls_at_server": len(outside_ids), "outside_call_ids": sorted(outside_ids),
                   "live_calls_in_split": {r: len(c) for r, c in during.items()}, "split_calls": split_calls,
                   "heal_to_takeover_s": round(taken_at - healed_at, 3) if taken_at else None,
                   "rb_standby_to_takeover_s": round(taken_at - standby_at, 3) if taken_at else None,
                   "ra": {k: ra_status.get(k) for k in ("healings", "healing_calls", "healing_commit_failures")},
                   "rb_split_echo": echo, "rb_split_clear": {"disconnect": disconnect, "server_clears": server["clears"],
                                                             "wan_errors": (results[split[1]] or {}).get("wan_errors"),
                                                             "outside_call_id": cleared_at_server.get("send_key"),
                                                             "elements_removed_s": removed_s,
                                                             "offloaded_before": offloaded}}
        numbers["second_failover"] = self.second_failover_numbers(again, results[split[1]], server)
        print("\nsplit brain: " + json.dumps(numbers), file=sys.stderr)
        # Each node set up calls in the split (the pinning held), and no outside Call ID was
        # handed to two calls, though both nodes chose.
        self.assertTrue(all(len(c) >= 5 for c in during.values()), numbers)
        self.assertEqual(len(set(outside_ids)), len(outside_ids), sorted(outside_ids))
        # One master after the healing, and the surviving side's call intact: its frames
        # flow both ways in the last 3 s.
        self.assertFalse(rb_held_after_heal)
        for way, n in tail.items():
            self.assertGreater(n, RATE, (way, numbers))
        # The calls set up through rb in the split: ra took them over at the healing, so
        # their frames flow both ways in the last 3 s (before: 0 each).
        through_rb = [c for c in split_calls if c["through"] == "rb"]
        self.assertEqual(len(through_rb), 5, numbers)
        for c in through_rb:
            for way, n in c["last_3s"].items():
                self.assertGreater(n, SLOW_RATE, (c["client_call_id"], way, numbers))
        self.assertEqual(ra_status.get("healings"), 1, numbers)
        self.assertEqual(ra_status.get("healing_calls"), 5, numbers)
        self.assertIsNotNone(echo, numbers)
        self.assertEqual(server["clears"][:1], [cleared_at_server.get("send_key")], numbers)
        # Its outside Call ID is not its own (rb chose odd ones): the translation shows.
        self.assertNotEqual(cleared.get("recv_key"), cleared_at_server.get("send_key"), numbers)
        self.assertEqual(disconnect and disconnect["call_id"], cleared.get("recv_key"), numbers)
        wan_errors = (results[split[1]] or {}).get("wan_errors") or []
        self.assertEqual(wan_errors[:1], [cleared.get("recv_key")], numbers)
        self.assertIsNotNone(removed_s, numbers)
        self.assert_second_failover(numbers["second_failover"], numbers)
        # The second clear's Windows-style answer too reaches the client with its own Call ID.
        self.assertEqual(wan_errors[1:], [numbers["second_failover"]["calls"][0]["client_call_id"]], numbers)

    def failover_after_the_healing(self, client, first_disconnect):
        """ra's links go down after the healing: rb, standby again, takes back the calls ra
        took over at the healing (ra republished them) and carries them 4 s; then an Echo
        and a Call-Clear-Request (the connection's next call) through rb."""
        lab = self.lab
        # ra's own call, its 5 split calls and the 4 it took over and did not clear.
        lab.wait_for(lambda: lab.ha_status("rb").get("replicated_calls") == 10, 10,
                     "ra's calls in rb's replica: %s" % lab.ha_status("rb"))
        failed_at, promoted_at = fail_over(lab, "ra", "rb")
        time.sleep(4)
        stopped_at = time.monotonic()
        client.send("echo")
        echo = client.wait(lambda o: o.get("event") == "echo_reply" and o.get("id") == 2, 5)
        offloaded = lab.fast_path_calls("rb")
        client.send("clear")
        disconnect = client.wait(lambda o: o.get("event") == "disconnect" and o is not first_disconnect, 5)
        removed_s = elements_gone_s(lab, "rb", offloaded, time.monotonic()) if disconnect else None
        return {"failed_at": failed_at, "stopped_at": stopped_at, "promoted_s": round(promoted_at - failed_at, 3),
                "echo": echo, "disconnect": disconnect, "offloaded_before": offloaded, "elements_removed_s": removed_s,
                "rb": {k: lab.ha_status("rb").get(k) for k in ("role", "replicated_calls", "released_connections",
                                                               "released_calls", "released_conntrack_missed")},
                "rb_invalid_dropped": json.loads(lab.ctl("rb", "status", "--json").stdout or "{}").get(
                    "rules", {}).get("invalid_dropped")}

    def second_failover_numbers(self, again, res, server):
        """rb's split calls (taken over by ra at the healing, back on rb): frames in the 3 s
        before the Echo and their longest gap since ra's links went (each way)."""
        t0, t1 = again.pop("failed_at"), again.pop("stopped_at")
        calls = []
        for st in (res or {}).get("streams", [])[1:]:  # the first was cleared through ra
            at_server = server["calls"].get(str(st["send_key"]), {})  # by the server's Call ID
            ways = {"server_to_client": st["received"], "client_to_server": at_server.get("received", [])}
            calls.append({"client_call_id": st["recv_key"], "outside_call_id": at_server.get("send_key"),
                          "last_3s": {w: frames_between(r, t1 - 3, t1) for w, r in ways.items()},
                          "gap_s": {w: direction(r, t0, t1)["gap_s"] for w, r in ways.items()}})
        return dict(again, calls=calls, server_clears=server["clears"])

    def assert_second_failover(self, second, numbers):
        self.assertEqual(len(second["calls"]), 4, numbers)
        for c in second["calls"]:
            for way, frames in c["last_3s"].items():
                self.assertGreater(frames, SLOW_RATE, (c["client_call_id"], way, numbers))
        # rb set this control connection up in the split; once ra carried it (taken over at the
        # healing), rb, standby, let go of it (docs/ha.md, "Letting go of what the peer
        # carries"): its tracker's connection and calls, their elements and its kernel's
        # conntrack entry. Before (s12), the stale entry made the segments INVALID and the
        # tracker's calls conflicted with the takeover: no Echo-Reply, no clear at the server.
        # Now the takeover carries the connection: the Echo is answered, the Call-Clear-Request
        # (the connection's next call) reaches the server with the call's outside Call ID
        # (RFC 2637 2.12), its Windows-style answer reaches the client with its own, and the
        # call's elements leave rb's fast path at once.
        cleared = second["calls"][0]
        self.assertGreaterEqual(second["rb"].get("released_connections") or 0, 1, numbers)
        self.assertIsNotNone(second["echo"], numbers)
        self.assertEqual(second["server_clears"][1:], [cleared["outside_call_id"]], numbers)
        self.assertIsNotNone(second["disconnect"], numbers)
        self.assertEqual(second["disconnect"]["call_id"], cleared["client_call_id"], numbers)
        self.assertIsNotNone(second["elements_removed_s"], numbers)

    def test_after_a_split_with_the_sync_link_cut_the_active_node_takes_the_peers_calls_over(self):
        """The adverts and pptp-alg's sync cut both ways (conntrackd's sync works): rb is
        promoted unseen by ra, sets up 5 calls, gives up when the adverts come back, and only
        then does the sync come back: ra sees rb's epoch risen and takes its calls over."""
        lab = self.lab
        pac, first, split = self.split_through_rb(5, cut_sync=True)
        lab.wait_for(lambda: lab.ha_status("rb").get("role") == "standby", 30, "rb demoted after the healing")
        lab.wait_for(lambda: not lab.holds_vips("rb"), 30, "rb without the addresses")
        self.assertEqual(lab.ha_status("ra").get("healings"), 0)  # ra never heard rb active
        sync_at = time.monotonic()
        for r in ("ra", "rb"):
            lab.block_sync(r, False)
        taken_at = None
        while time.monotonic() < sync_at + 8 and taken_at is None:
            if lab.ha_status("ra").get("healings", 0) >= 1:
                taken_at = time.monotonic()
            time.sleep(0.05)
        time.sleep(max(0.0, 8 - (time.monotonic() - sync_at)))
        calls, ra = self.stop_split(pac, first, split, sync_at)
        numbers = {"sync_back_to_takeover_s": round(taken_at - sync_at, 3) if taken_at else None, "calls": calls,
                   "ra": ra}
        print("\nsplit brain, sync cut: " + json.dumps(numbers), file=sys.stderr)
        self.assert_carried(calls, 5, numbers)
        self.assertEqual(ra["healings"], 1, numbers)
        self.assertEqual(ra["healing_calls"], 5, numbers)


class SlowCommit(SplitCase):
    """The commit command slowed down (delayed.sh: 2 s before conntrackd's commit): ra's
    loop goes on while it runs (docs/ha.md)."""
    commit_delay = 2

    def test_the_loop_goes_on_while_a_slow_commit_command_runs(self):
        """A split brain healed as in SplitBrain (rb sets up 2 calls in it): while ra's
        commit command sleeps, Echoes on ra's own call's control connection are answered at
        once; rb's calls are adopted after the command and carry frames."""
        lab = self.lab
        pac, first, split = self.split_through_rb(2)
        lab.wait_for(lambda: "ha_split_brain_healed" in lab.log("pptp-alg-ra"), 30, "ra's healing")
        healed_at = time.monotonic()
        # The command sleeps 2 s: Echoes (each waited for) and `ctl status` in its first 1.5 s.
        echoes, statuses, echo_id = [], [], 0
        while time.monotonic() < healed_at + 1.5:
            sent = time.monotonic()
            first.send("echo")
            echo_id += 1
            reply = first.wait(lambda o, n=echo_id: o.get("event") == "echo_reply" and o.get("id") == n, 5)
            echoes.append(round(time.monotonic() - sent, 3) if reply else None)
            asked = time.monotonic()
            lab.ha_status("ra")
            statuses.append(round(time.monotonic() - asked, 3))
            time.sleep(0.1)
        committing = "ha_healing_installed" not in lab.log("pptp-alg-ra")
        lab.wait_for(lambda: "ha_healing_installed" in lab.log("pptp-alg-ra"), 15, "ra's adoption after the commit")
        installed_at = time.monotonic()
        time.sleep(4)
        calls, ra = self.stop_split(pac, first, split, healed_at)
        committed = re.findall(r"ha_healing_committed seconds=([0-9.]+)", lab.log("pptp-alg-ra"))
        numbers = {"echo_round_trips_s": echoes, "ctl_status_s": statuses, "still_committing_after": committing,
                   "healed_to_installed_s": round(installed_at - healed_at, 3), "committed_s": committed,
                   "rb_split_calls": calls, "ra": ra}
        print("\nslow commit: " + json.dumps(numbers), file=sys.stderr)
        self.assertGreaterEqual(len(echoes), 3, numbers)
        for s in echoes:
            self.assertIsNotNone(s, numbers)
            self.assertLess(s, 0.5, numbers)
        for s in statuses:
            self.assertLess(s, 0.5, numbers)
        self.assertTrue(committing, numbers)  # the Echoes went while the command ran
        self.assertEqual(len(committed), 1, numbers)
        self.assertGreaterEqual(float(committed[0]), 2.0, numbers)
        self.assertEqual(ra["healing_calls"], 2, numbers)
        self.assertEqual(ra["healing_commit_failures"], 0, numbers)
        self.assert_carried(calls, 2, numbers)


if __name__ == "__main__":
    unittest.main()
