#!/usr/bin/python3
"""The HA pair's longer failover cases (issue 18, docs/ha.md), beside test_ha_e2e.py's
failover: a second failover back to the first node, whose daemon came back as standby, and a
plain failover and back with no restart (two calls); a node
without its snapshot kept from becoming master; a control message split across a failover;
calls set up around a failover and the replication lag. The split brains:
test_ha_split_e2e.py.

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
from test_ha_e2e import RATE, GAP_BOUND, HaCase, direction  # noqa: E402
from ha_more_common import SLOW_RATE, all_up, echo_clear_stop, elements_gone_s, fail_over, stop_both  # noqa: E402

LOAD_CALLS = 50  # set up at once on one control connection, replicated while they come


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
        echo, disconnect, stopped_at, client, server = echo_clear_stop(self, pac, first)

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

    def test_a_plain_failover_and_back_keeps_both_calls_without_a_restart(self):
        """ra -> rb -> ra, no daemon restarted: ra's call and one set up through rb after the
        first failover both stream after the second. rb, demoted, hands the call it took over
        to ra (forgotten there: not re-armed; its record kept until ra's promotion, then
        deleted); ra adopts both calls without a conflict; the first call clears through ra."""
        lab = self.lab
        pac, first, call = self.start_call()
        lab.wait_for(lambda: lab.ha_status("rb").get("replicated_calls") == 1, 10, "the call replicated to rb")
        time.sleep(2)
        one = self.failover("ra", "rb")
        second = self.peer("pns2", "lan", "pns", "--local", CLIENTS[1], "--server", SERVER,
                           "--call-id", str(call["peer_call_id"]), "--rate", str(RATE))
        self.assertIsNotNone(second.event("up"), lab.log("pns2"))
        second_call = pac.wait(lambda o: o.get("event") == "call" and o is not call, 10)
        self.assertIsNotNone(second_call, lab.log("pac"))
        before = len(lab.vrrp_states("ra"))
        lab.restore_links("ra")  # nopreempt: ra comes back as backup
        lab.wait_for(lambda: "BACKUP" in lab.vrrp_states("ra")[before:], 20, "ra backup")
        lab.wait_for(lambda: lab.ha_status("ra").get("replicated_calls") == 2, 10,
                     "both calls in ra's replica: %s" % lab.ha_status("ra"))
        two = self.failover("rb", "ra")
        # rb's record of the call it had taken over goes once it sees ra promoted (its tick).
        lab.wait_for(lambda: "ha_retired calls=1" in lab.log("pptp-alg-rb"), 10, "rb's handed-over record deleted")
        first.send("echo")
        echo = first.event("echo_reply", 10)
        first.send("clear")
        disconnect = first.event("disconnect", 10)
        stopped_at = time.monotonic()
        # The second call's connection carried no control message since ra took it over:
        # its Call-Clear is answered before ra's window of it is proven, held until the
        # client acknowledges the answer, and ends the call on ra then (s17; before, it was
        # ignored and the call kept its elements until its idle timeout).
        second.send("clear")
        second_disconnect = second.event("disconnect", 10)
        lab.wait_for(lambda: lab.status_part("ra", "fast_path").get("taken_over_ends_acknowledged", 0) >= 1, 5,
                     "the held end applied on ra: %s" % lab.status_part("ra", "fast_path"))
        second.send("stop")
        second_result = second.result()
        client, server = stop_both(self, pac, first)
        self.assertIsNotNone(second_result, lab.log("pns2"))
        self.assertIsNotNone(second_disconnect, lab.log("pns2"))
        self.assertIn("outside_call_id=%d inside=%s reason=\"CDN\"" % (second_call["peer_call_id"], CLIENTS[1]),
                      lab.log("pptp-alg-ra"))

        streams = {"first": (server["calls"][str(call["my_call_id"])]["received"], client["stream"]["received"]),
                   "second": (server["calls"][str(second_call["my_call_id"])]["received"],
                              second_result["stream"]["received"])}
        numbers = {"rate_per_s": RATE, "first_failover": {k: one[k] for k in ("vips_moved_s", "promoted_s")},
                   "second_failover": {k: two[k] for k in ("vips_moved_s", "promoted_s")}}
        for name, (up, down) in streams.items():
            numbers[name] = {"client_to_server": direction(up, two["failed_at"], stopped_at),
                             "server_to_client": direction(down, two["failed_at"], stopped_at)}
        rb_log, ra_log = lab.log("pptp-alg-rb"), lab.log("pptp-alg-ra")
        print("\nfailover and back: " + json.dumps(numbers), file=sys.stderr)
        for name in streams:
            for way in ("client_to_server", "server_to_client"):
                d = numbers[name][way]
                self.assertGreater(d["after"], RATE, (name, way, numbers))
                self.assertLess(d["gap_s"], GAP_BOUND, (name, way, numbers))
        self.assertIn("ha_demote_forgot adopted=1 of=1", rb_log)
        self.assertNotIn("fast_path_adopt_conflict", ra_log)
        self.assertNotIn("fast_path_adopt_conflict", rb_log)
        self.assertIsNotNone(echo, "no Echo-Reply after the failover back")
        self.assertEqual(server["clears"], [call["peer_call_id"], second_call["peer_call_id"]], server)
        self.assertEqual(disconnect and disconnect["call_id"], call["my_call_id"], disconnect)


class SplitAcrossAFailover(HaCase):
    """The server writes the first `split_at` bytes of a WAN-Error-Notify (RFC 2637 2.14,
    naming the client's outside Call ID at bytes 12-13) through ra, ra's links go down, and
    the rest goes through rb once promoted: rb resumes the control connection from the
    replicated positions (docs/ha.md, "Resuming a control connection"). Then an Echo, and
    the client's Call-Clear-Request, whose Call-Disconnect-Notify ends the call on rb."""

    def test_a_message_split_past_its_call_id_field_arrives_whole_and_the_call_clears_on_the_new_node(self):
        # ra translated the field; rb skips the rest and resumes at the next message.
        self.split_across(20)

    def test_a_message_split_before_its_call_id_field_arrives_translated_from_the_replicated_head(self):
        # ra passed the head and replicated it; rb reads the rest with it as one message and
        # translates the field ("A message split before its Call ID field"). Without the
        # head the rest reached the client naming its outside Call ID.
        # The client's Call-Clear-Request is split at 6 across the same failover: its rest
        # reaches the server naming the outside Call ID (RFC 2637 2.11), and the server's
        # answer ends the call on rb. The Echo comes after it.
        numbers = self.split_across(6, client_split=6)
        self.assertEqual(numbers["ra_heads_sent"], 2, numbers)  # one each way
        self.assertEqual(numbers["rb_heads_kept"], 2, numbers)
        self.assertEqual(numbers["rb_anomalies"].get("tcp_resumed_at_head"), 2, numbers)

    def test_messages_split_at_the_edges_of_their_call_id_fields_arrive_translated(self):
        # The server's WAN-Error-Notify split at 12 (its head ends where the field starts)
        # and the client's Call-Clear-Request at 13 (inside its own Call ID field: ra decides
        # the field from its first byte, docs/packet-path.md): both heads pass ra and are
        # replicated, and rb reads each rest with its head. (The server's split at 13 is
        # held for the field's second byte, which its TCP sends only once the held head is
        # acknowledged: it stalls, failover or not; docs/packet-path.md.)
        numbers = self.split_across(12, client_split=13)
        self.assertEqual(numbers["rb_anomalies"].get("tcp_resumed_at_head"), 2, numbers)

    def split_across(self, split_at, client_split=None):
        lab = self.lab
        pac, first, call = self.start_call()
        lab.wait_for(lambda: lab.ha_status("rb").get("replicated_calls") == 1, 10, "the call replicated to rb")
        time.sleep(1)
        pac.send("wen-head %d" % split_at)
        self.assertIsNotNone(pac.event("wen-head", 5), lab.log("pac"))
        if client_split is not None:
            first.send("clear-head %d" % client_split)
            self.assertIsNotNone(first.event("clear-head", 5), lab.log("pns1"))
        time.sleep(0.5)  # the heads pass ra and are acknowledged
        ra_heads_sent = lab.ha_status("ra").get("heads_sent")
        rb_heads_kept = lab.ha_status("rb").get("heads_kept")
        failed_at, promoted_at = fail_over(lab, "ra", "rb")
        # The rests come once ra, demoted, has let go of the connection and deleted its call
        # from rb's replica (and the replica's heads with it): rb must start from the heads
        # it took at its promotion. The order that failed in CI, now in every run.
        lab.wait_for(lambda: "ha_released_to_peer" in lab.log("pptp-alg-ra"), 10, "ra letting go of the connection")
        time.sleep(0.2)  # its delete reaches rb
        pac.send("wen-tail")
        self.assertIsNotNone(pac.event("wen-tail", 5), lab.log("pac"))
        wen = first.event("wan_error", 10)
        if client_split is None:
            first.send("echo")
            echo = first.event("echo_reply", 10)
        time.sleep(2)  # the call streams through rb
        offloaded = lab.fast_path_calls("rb")
        first.send("clear" if client_split is None else "clear-tail")
        disconnect = first.event("disconnect", 10)
        if client_split is not None:
            first.send("echo")  # the control connection outlives its call
            echo = first.event("echo_reply", 10)
        removed_s = elements_gone_s(lab, "rb", offloaded, time.monotonic())
        stopped_at = time.monotonic()
        client, server = stop_both(self, pac, first)

        outside = call["peer_call_id"]
        ended = re.findall(r"adopted_call_ended .*outside_call_id=(\d+) .*reason=\"(\w+)\"", lab.log("pptp-alg-rb"))
        status = json.loads(lab.ctl("rb", "status", "--json").stdout or "{}")
        numbers = {"split_at": split_at, "client_split": client_split, "promoted_s": round(promoted_at - failed_at, 3),
                   "client_call_id": 7, "outside_call_id": outside, "wan_error": wen, "echo": echo,
                   "server_clears": server["clears"], "disconnect": disconnect, "elements_removed_s": removed_s,
                   "offloaded_before": offloaded, "adopted_call_ended": ended,
                   "ra_heads_sent": ra_heads_sent, "rb_heads_kept": rb_heads_kept,
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
        return numbers


def _anomalies(status):
    """The stream counters that say how a taken-over connection resumed."""
    names = ("tcp_resumed_at_position", "tcp_resumed_at_head", "tcp_mid_stream_start", "stream_resync_skipped",
             "stream_framing_error")
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


class LateCommit(HaCase):
    """rb's master notify (its conntrackd commit, then the promotion) runs 3 s after
    keepalived gave it the addresses, as on a loaded node."""
    master_notify_delay = 3

    def test_a_servers_segment_before_the_conntrackd_commit_is_dropped_then_retransmitted_not_reset(self):
        # The server writes a whole WAN-Error-Notify in that window: to the outside virtual
        # address, with no conntrack entry yet to undo the snat, so addressed to rb itself.
        # Before s28 rb's own stack answered it with a RST, the server dropped its end and
        # the client's connection died (CI of s26, docs/ha.md). Now rb's input rule drops it
        # (counter control_stray), and the server's retransmission after the commit reaches
        # the client; the control connection lives on.
        lab = self.lab
        pac, first, call = self.start_call()
        lab.wait_for(lambda: lab.ha_status("rb").get("replicated_calls") == 1, 10, "the call replicated to rb")
        time.sleep(2)  # the call streams through ra, everything acknowledged
        failed_at = time.monotonic()
        lab.fail_links("ra")
        lab.wait_for(lambda: lab.holds_vips("rb"), 30, "rb holding the virtual addresses")
        moved_at = time.monotonic()
        time.sleep(0.5)  # rb's gratuitous ARPs out: the server's segments go to rb
        pac.send("wen")
        written = pac.event("wen", 5)
        self.assertIsNotNone(written, lab.log("pac"))
        early = lab.ha_status("rb").get("role")  # standby: the commit is still to come
        lab.wait_for(lambda: lab.ha_status("rb").get("role") == "active", 30, "rb promoted")
        promoted_at = time.monotonic()
        wen = first.event("wan_error", 20)  # the server's retransmissions back off: 0.2, 0.4, ... s
        wen_at = time.monotonic()
        first.send("echo")
        echo = first.event("echo_reply", 10)
        time.sleep(2)  # the call streams through rb
        stopped_at = time.monotonic()
        stray = named_counter(lab, "rb", "control_stray")
        client, server = stop_both(self, pac, first)
        numbers = {"vips_moved_s": round(moved_at - failed_at, 3), "promoted_s": round(promoted_at - failed_at, 3),
                   "role_when_written": early, "wen_after_write_s": round(wen_at - written["at"], 3) if wen else None,
                   "rb_control_stray": stray, "wan_error": wen, "echo": echo,
                   "client_connection_closed": client.get("connection_closed"),
                   "server_echo_requests": server.get("echo_requests"),
                   "server_to_client": direction(client["stream"]["received"], failed_at, stopped_at)}
        print("\nserver segment before the commit: " + json.dumps(numbers), file=sys.stderr)
        self.assertEqual(early, "standby", numbers)  # the write fell in the window
        self.assertGreaterEqual(stray, 1, numbers)  # dropped there at least once, not reset
        self.assertEqual(wen and wen["call_id"], 7, numbers)  # then reached the client, translated
        self.assertIsNotNone(echo, numbers)  # and the control connection lives
        self.assertFalse(client.get("connection_closed"), numbers)
        self.assertGreater(numbers["server_to_client"]["after"], RATE, numbers)


    def test_a_clients_echo_before_the_conntrackd_commit_is_answered(self):
        # The client's side of the same window: its Echo-Request reaches rb through the inside
        # virtual address before the commit. Forwarded (conntrack picks the connection up
        # mid-stream and snats it anew, to the same port when free) and queued to rb's
        # daemon, still standby. The reply must come back, and the connection stay the
        # call's after the promotion: a WAN-Error-Notify from the server reaches the client
        # translated, and its Call-Clear-Request is answered.
        lab = self.lab
        pac, first, call = self.start_call()
        lab.wait_for(lambda: lab.ha_status("rb").get("replicated_calls") == 1, 10, "the call replicated to rb")
        time.sleep(2)
        failed_at = time.monotonic()
        lab.fail_links("ra")
        lab.wait_for(lambda: lab.holds_vips("rb"), 30, "rb holding the virtual addresses")
        time.sleep(0.5)
        first.send("echo")
        early = lab.ha_status("rb").get("role")
        echo = first.event("echo_reply", 20)
        lab.wait_for(lambda: lab.ha_status("rb").get("role") == "active", 30, "rb promoted")
        time.sleep(1)
        pac.send("wen")
        self.assertIsNotNone(pac.event("wen", 5), lab.log("pac"))
        wen = first.event("wan_error", 20)
        later_echo, disconnect, stopped_at, client, server = echo_clear_stop(self, pac, first)
        numbers = {"role_when_sent": early, "echo": echo, "wan_error": wen, "later_echo": later_echo,
                   "disconnect": disconnect, "server_clears": server.get("clears"),
                   "client_connection_closed": client.get("connection_closed"),
                   "server_echo_requests": server.get("echo_requests"),
                   "rb_control_stray": named_counter(lab, "rb", "control_stray"),
                   "released_at": re.findall(r"ha_released_to_peer client=%s:\d+ .* at=(\w+)" % CLIENTS[0],
                                             lab.log("pptp-alg-rb")),
                   "server_to_client": direction(client["stream"]["received"], failed_at, stopped_at)}
        print("\nclient segment before the commit: " + json.dumps(numbers), file=sys.stderr)
        self.assertEqual(early, "standby", numbers)
        # rb's standby tracker picked the connection up with the Echo (not taken over: no
        # positions while standby); the promotion let go of it (or the tick, if ra's demotion
        # came first), so the WAN-Error-Notify's segment picks it up again, taken over. This is
        # a manual promotion of a daemon that saw the connection while standby (docs/ha.md).
        self.assertTrue(numbers["released_at"], numbers)
        self.assertIsNotNone(echo, numbers)
        self.assertEqual(wen and wen["call_id"], 7, numbers)
        self.assertIsNotNone(later_echo, numbers)
        self.assertEqual(disconnect and disconnect["call_id"], call["my_call_id"], numbers)


def named_counter(lab, r, name):
    """Packets router r's ip table's named counter `name` has counted."""
    out = lab.netns(r, "nft", "list", "counter", "ip", "pptp_alg", name, check=False).stdout
    return sum(int(n) for n in re.findall(r"packets (\d+)", out))


class KillAfterAFailover(HaCase):
    def test_ctl_kill_on_the_new_node_ends_a_taken_over_call_and_no_other(self):
        # Both calls taken over by rb; `ctl kill --client` there ends the first one's GRE
        # both ways (before s26 it looked at the tracker's calls only: "ended 0 call(s)") and
        # leaves the second streaming (docs/ha.md, "Not done yet").
        lab = self.lab
        pac, first, call = self.start_call()
        second = self.peer("pns2", "lan", "pns", "--local", CLIENTS[1], "--server", SERVER, "--call-id", "9",
                           "--rate", str(RATE))
        self.assertIsNotNone(second.event("up"), lab.log("pns2"))
        second_call = pac.wait(lambda o: o.get("event") == "call" and o is not call, 10)
        lab.wait_for(lambda: lab.ha_status("rb").get("replicated_calls") == 2, 10, "both calls replicated to rb")
        fail_over(lab, "ra", "rb")
        time.sleep(2)  # both stream through rb
        listed = lab.ctl("rb", "calls").stdout  # what an operator sees before the kill
        listed_json = json.loads(lab.ctl("rb", "calls", "--json").stdout)  # what a script sees
        answer = lab.ctl("rb", "kill", "--client", CLIENTS[0])
        killed_at = time.monotonic()
        time.sleep(3)
        stopped_at = time.monotonic()
        elements_left = lab.fast_path_calls("rb")
        results, server = self.stop_peers(pac, (first, second))
        after = killed_at + 0.5  # what was in flight at the kill
        numbers = {
            "answer": answer.stdout.strip(), "elements_left_on_rb": elements_left,
            "killed_down": direction(results[0]["stream"]["received"], after, stopped_at),
            "killed_up": direction(server["calls"][str(call["my_call_id"])]["received"], after, stopped_at),
            "other_down": direction(results[1]["stream"]["received"], after, stopped_at),
            "other_up": direction(server["calls"][str(second_call["my_call_id"])]["received"], after, stopped_at)}
        print("\nkill after a failover: " + json.dumps(numbers), file=sys.stderr)
        self.assertRegex(listed, r"taken over from the peer", listed)
        self.assertIn(CLIENTS[0] + ":", listed.split("taken over from the peer")[-1], listed)
        self.assertEqual(sorted((c["client"].split(":")[0], c["pns_call_id"]) for c in listed_json["taken_over"]),
                         [(CLIENTS[0], 7), (CLIENTS[1], 9)], listed_json)
        self.assertEqual(answer.returncode, 0, answer.stdout)
        self.assertRegex(answer.stdout, r"^ended 1 call\(s\)", numbers)
        self.assertRegex(lab.log("pptp-alg-rb"), r"call_killed .*taken_over=true", numbers)
        self.assertEqual(numbers["killed_down"]["after"], 0, numbers)
        self.assertEqual(numbers["killed_up"]["after"], 0, numbers)
        self.assertGreater(numbers["other_down"]["after"], 2 * RATE, numbers)
        self.assertGreater(numbers["other_up"]["after"], 2 * RATE, numbers)
        self.assertEqual(elements_left, 1, numbers)


if __name__ == "__main__":
    unittest.main()
