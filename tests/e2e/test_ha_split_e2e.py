#!/usr/bin/python3
"""The HA pair's split brains (issue 18, docs/ha.md): both nodes active, their healing (the
node that stays active takes the other's split calls over), a failover after it back to the
node that gave up, the same with the sync link cut, a slow commit command beside the loop,
and the two active daemons keepalived leaves when it is killed on the master.

    PPTP_ALG=build/release/alg/pptp-alg /usr/bin/python3 tests/e2e/test_ha_split_e2e.py -v
"""
import json
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pptplab.lab import CLIENTS, SERVER  # noqa: E402
from test_ha_e2e import GAP_BOUND, RATE, HaCase, direction  # noqa: E402
from ha_more_common import (SLOW_RATE, SplitCase, all_up, elements_gone_s, fail_over,  # noqa: E402
                            first_time, frames_between)


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
        # rb's demotion at the healing forgot the call it had taken over in the split (ra's
        # first), so its second promotion adopts it again cleanly (before: one
        # fast_path_adopt_conflict, the call left to the old adoption).
        rb_log = lab.log("pptp-alg-rb")
        self.assertIn("ha_demote_forgot adopted=1", rb_log)
        self.assertNotIn("fast_path_adopt_conflict", rb_log)
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
        taken_at = first_time(lambda: lab.ha_status("ra").get("healings", 0) >= 1, sync_at, 8)
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


class KeepalivedKilled(HaCase):
    def nodes(self):
        """Each router's daemon role, whether it holds the virtual addresses, its elements."""
        lab = self.lab
        return {r: {"role": lab.ha_status(r).get("role"), "holds_addresses": lab.holds_vips(r),
                    "elements": lab.fast_path_calls(r)} for r in ("ra", "rb")}

    def test_keepalived_killed_on_the_master_leaves_two_active_daemons_until_it_runs_again(self):
        # keepalived dying without releasing its addresses (SIGKILL; docs/ha.md, F4): rb stops
        # hearing adverts and takes the addresses, ra keeps them and nothing demotes ra's
        # daemon: both active, each with the call's elements; the call goes on. keepalived
        # started again on ra removes the stale addresses and enters BACKUP, and its notify
        # demotes ra's daemon: one active node again, the call on rb.
        lab = self.lab
        pac, first, call = self.start_call()
        lab.wait_for(lambda: lab.ha_status("rb").get("replicated_calls") == 1, 10, "the call replicated to rb")
        killed_at = time.monotonic()
        lab.stop("keepalived-ra", signal.SIGKILL)  # its process group: the VRRP child too
        lab.wait_for(lambda: lab.holds_vips("rb"), 30, "rb holding the virtual addresses")
        lab.wait_for(lambda: lab.ha_status("rb").get("role") == "active", 30, "rb promoted")
        promoted_s = time.monotonic() - killed_at
        time.sleep(2)
        both = self.nodes()
        first.send("echo")
        echo_while_both = first.event("echo_reply", 10)
        restarted_at = time.monotonic()
        lab.start_keepalived("ra")
        lab.wait_for(lambda: lab.ha_status("ra").get("role") == "standby", 30, "ra demoted by its notify")
        demoted_s = time.monotonic() - restarted_at
        time.sleep(3)  # the call streams through rb
        after = self.nodes()
        first.send("echo")
        echo_after = first.event("echo_reply", 10)
        stopped_at = time.monotonic()
        first.send("stop")
        client = first.result()
        pac.send("stop")
        server = pac.result()
        self.assertIsNotNone(client, lab.log("pns1"))
        self.assertIsNotNone(server, lab.log("pac"))
        received = (server["calls"][str(call["my_call_id"])]["received"], client["stream"]["received"])
        numbers = {"rb_promoted_s": round(promoted_s, 2), "while_both": both, "ra_demoted_s": round(demoted_s, 2),
                   "after": after, "client_to_server": direction(received[0], killed_at, stopped_at),
                   "server_to_client": direction(received[1], killed_at, stopped_at)}
        print("\nkeepalived killed on the master: " + json.dumps(numbers), file=sys.stderr)
        self.assertEqual(both, {"ra": {"role": "active", "holds_addresses": True, "elements": 1},
                                "rb": {"role": "active", "holds_addresses": True, "elements": 1}}, numbers)
        self.assertEqual(after, {"ra": {"role": "standby", "holds_addresses": False, "elements": 0},
                                 "rb": {"role": "active", "holds_addresses": True, "elements": 1}}, numbers)
        self.assertIsNotNone(echo_while_both, numbers)
        self.assertIsNotNone(echo_after, numbers)
        for way in ("client_to_server", "server_to_client"):
            self.assertGreater(numbers[way]["after"], RATE * 3, numbers)
            self.assertLess(numbers[way]["gap_s"], GAP_BOUND, numbers)


if __name__ == "__main__":
    unittest.main()
