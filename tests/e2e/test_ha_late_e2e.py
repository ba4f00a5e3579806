#!/usr/bin/python3
"""What comes after a split brain's healing (issue 18, docs/ha.md "Records that come after the
healing"): the peer's call records held back on the sync link, the kernel entries of its
calls' control connections missing at the healing's commit, and a split brain whose end the
node that stays active cannot see (the peer it never saw active gives up). Before s33 such
calls were lost.

    PPTP_ALG=build/release/alg/pptp-alg /usr/bin/python3 tests/e2e/test_ha_late_e2e.py -v
"""
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pptplab.lab import CLIENTS, SERVER  # noqa: E402
from pptplab.ha_lab import SYNC_PORT  # noqa: E402
from ha_more_common import SLOW_RATE, SplitCase, all_up, fail_over, first_time  # noqa: E402


class LateRecords(SplitCase):
    def test_records_that_come_after_the_healing_are_taken_over_late(self):
        """As SplitBrain's test with the sync link cut, but rb's call records (Add, Update
        and Snapshot datagrams, type octet 3, 4, 6) are held back 3 s longer than its Hellos:
        ra heals with none of rb's calls and takes them over once their records come."""
        lab = self.lab
        pac, first, split = self.split_through_rb(5, cut_sync=True)
        lab.wait_for(lambda: lab.ha_status("rb").get("role") == "standby", 30, "rb demoted after the healing")
        lab.wait_for(lambda: not lab.holds_vips("rb"), 30, "rb without the addresses")
        records = "udp dport %d @th,104,8 { 3, 4, 6 }" % SYNC_PORT
        lab.drop_input("ra", "ha_records", records)
        sync_at = time.monotonic()
        for r in ("ra", "rb"):
            lab.block_sync(r, False)
        lab.wait_for(lambda: lab.ha_status("ra").get("healings", 0) >= 1, 10, "ra's healing")
        at_healing = {k: lab.ha_status("ra").get(k) for k in ("healing_calls", "replicated_calls")}
        time.sleep(3)
        lab.drop_input("ra", "ha_records", records, False)
        released_at = time.monotonic()
        taken_at = first_time(lambda: lab.ha_status("ra").get("healing_calls", 0) >= 5, released_at, 10)
        time.sleep(max(0.0, 6 - (time.monotonic() - released_at)))
        calls, ra = self.stop_split(pac, first, split, sync_at)
        ra["healing_late_rounds"] = lab.ha_status("ra").get("healing_late_rounds")
        numbers = {"at_healing": at_healing, "records_to_takeover_s": round(taken_at - released_at, 3)
                   if taken_at else None, "calls": calls, "ra": ra}
        print("\nsplit brain, records late: " + json.dumps(numbers), file=sys.stderr)
        self.assertEqual(at_healing["healing_calls"], 0, numbers)  # the records were held back
        self.assert_carried(calls, 5, numbers)
        self.assertEqual(ra["healings"], 1, numbers)
        self.assertEqual(ra["healing_calls"], 5, numbers)
        self.assertGreaterEqual(ra["healing_late_rounds"], 1, numbers)

class LateEntries(SplitCase):
    """The commit command's first run does nothing (skip_first.sh), as when conntrackd's
    resync of the peer's control connections comes after the healing's commit."""
    commit_skip_first = True

    def test_calls_without_a_kernel_entry_at_the_healing_are_taken_by_a_retry(self):
        """The split as in SplitBrain (VRRP cut, the sync link up), rb's 3 calls: ra's
        healing finds no kernel entry for their control connection and takes none; the retry
        5 s later (kHealingRetryEvery) commits and takes them."""
        lab = self.lab
        pac, first, split = self.split_through_rb(3)
        lab.wait_for(lambda: lab.ha_status("ra").get("healings", 0) >= 1, 30, "ra's healing")
        healed_at = time.monotonic()
        lab.wait_for(lambda: "ha_healing_installed" in lab.log("pptp-alg-ra"), 10, "the healing's (empty) takeover")
        at_healing = lab.ha_status("ra").get("healing_calls")
        taken_at = first_time(lambda: lab.ha_status("ra").get("healing_calls", 0) >= 3, healed_at, 12)
        time.sleep(max(0.0, 4 - (time.monotonic() - (taken_at or healed_at))))
        calls, ra = self.stop_split(pac, first, split, healed_at)
        ra["healing_late_rounds"] = lab.ha_status("ra").get("healing_late_rounds")
        numbers = {"healing_calls_at_healing": at_healing,
                   "healing_to_takeover_s": round(taken_at - healed_at, 3) if taken_at else None,
                   "calls": calls, "ra": ra}
        print("\nsplit brain, entries late: " + json.dumps(numbers), file=sys.stderr)
        self.assertEqual(at_healing, 0, numbers)
        self.assert_carried(calls, 3, numbers)
        self.assertEqual(ra["healings"], 1, numbers)
        self.assertEqual(ra["healing_calls"], 3, numbers)
        self.assertGreaterEqual(ra["healing_late_rounds"], 1, numbers)


class StayedActiveGivesUp(SplitCase):
    """After a failover to rb (nopreempt keeps it master when ra comes back), a split brain
    with the sync link cut: ra is promoted in it, rb stays active all along and sets up calls;
    when the adverts come back rb, of lower priority, gives up. ra never saw rb active nor
    promoted in the split: rb's demotion with ra unheard raises its epoch, so that ra's
    healing takes rb's split calls over once the link is back (before s33 they were lost)."""

    def test_the_calls_of_the_node_that_stayed_active_and_gave_up_are_taken_over(self):
        lab = self.lab
        pac, first, call = self.start_call()
        lab.wait_for(lambda: lab.ha_status("rb").get("replicated_calls") == 1, 10, "the call replicated to rb")
        fail_over(lab, "ra", "rb")
        before = len(lab.vrrp_states("ra"))
        lab.restore_links("ra")  # nopreempt: ra comes back as backup
        lab.wait_for(lambda: "BACKUP" in lab.vrrp_states("ra")[before:], 20, "ra backup")
        lab.wait_for(lambda: lab.ha_status("ra").get("synced"), 20, "ra synced")
        for r in ("ra", "rb"):
            lab.block_sync(r)
            lab.block_vrrp(r)
        lab.wait_for(lambda: lab.ha_status("ra").get("role") == "active", 30, "ra promoted in the split")
        self.pin("rb")
        split = self.peer("split", "lan", "pns", "--local", CLIENTS[2], "--server", SERVER,
                          "--call-id", "20", "--calls", "3", "--rate", str(SLOW_RATE))
        self.assertIsNotNone(all_up(split, 3, 20), lab.log("split"))
        self.pin(None)
        time.sleep(2)
        for r in ("ra", "rb"):
            lab.block_vrrp(r, False)
        lab.wait_for(lambda: lab.ha_status("rb").get("role") == "standby", 30, "rb demoted")
        lab.wait_for(lambda: not lab.holds_vips("rb"), 30, "rb without the addresses")
        self.assertEqual(lab.ha_status("ra").get("healings"), 0)  # ra never heard rb in the split
        sync_at = time.monotonic()
        for r in ("ra", "rb"):
            lab.block_sync(r, False)
        taken_at = first_time(lambda: lab.ha_status("ra").get("healing_calls", 0) >= 3, sync_at, 10)
        time.sleep(max(0.0, 6 - (time.monotonic() - sync_at)))
        calls, ra = self.stop_split(pac, first, split, sync_at)
        demoted = re.findall(r"ha_demoted .*peer_unheard=(\w+)", lab.log("pptp-alg-rb"))
        numbers = {"sync_back_to_takeover_s": round(taken_at - sync_at, 3) if taken_at else None,
                   "rb_demotions_peer_unheard": demoted, "calls": calls, "ra": ra}
        print("\nthe node that stayed active gives up: " + json.dumps(numbers), file=sys.stderr)
        self.assert_carried(calls, 3, numbers)
        self.assertEqual(ra["healings"], 1, numbers)
        self.assertEqual(ra["healing_calls"], 3, numbers)
        self.assertEqual(demoted[-1:], ["true"], numbers)


if __name__ == "__main__":
    unittest.main()
