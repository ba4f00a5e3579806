#!/usr/bin/python3
"""The HA pair against a hostile client, beside a good call (issue 18, docs/ha.md): a client
cutting every control message in two, so that each is a head the active node sends its peer
(docs/ha.md, "A message split before its Call ID field"), as fast as it can. The heads sent
stay within the node's budget (kMaxHeadsPerSecond, no policy needed), the sync link keeps
the pair synced, and the good call streams on and survives a failover after the flood.

    PPTP_ALG=build/release/alg/pptp-alg /usr/bin/python3 tests/e2e/test_ha_hostile_e2e.py -v
"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pptplab.lab import CLIENTS, PYTHON, SERVER  # noqa: E402
from test_ha_e2e import RATE, HaCase, direction  # noqa: E402
from ha_more_common import echo_clear_stop, fail_over  # noqa: E402

HOSTILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pptplab", "hostile.py")
HEADS_PER_SECOND = 2000  # kMaxHeadsPerSecond (alg/daemon/ha_node.hpp)
FLOOD_SECONDS = 4


class HostileHeads(HaCase):
    def test_a_client_cutting_every_message_loads_the_sync_link_no_more_than_the_budget(self):
        lab = self.lab
        pac, first, call = self.start_call()
        lab.wait_for(lambda: lab.ha_status("rb").get("replicated_calls") == 1, 10, "the good call replicated to rb")
        before = lab.ha_status("ra")
        flood_at = time.monotonic()
        out = lab.netns("lan", PYTHON, HOSTILE, "head-flood", "--local", CLIENTS[2], "--target", SERVER,
                        "--key", "21", "--count", "1000000", "--duration", str(FLOOD_SECONDS))
        flood = json.loads(out.stdout.strip().splitlines()[-1])
        flood_end = time.monotonic()
        self.assertTrue(flood.get("ok"), out.stdout)
        time.sleep(2)  # the last heads and records acknowledged
        ra, rb = lab.ha_status("ra"), lab.ha_status("rb")
        sent = ra["heads_sent"] - before["heads_sent"]
        limited = ra["heads_limited"] - before["heads_limited"]
        numbers = {"flood": flood, "heads_sent": sent, "heads_limited": limited,
                   "heads_kept_rb": rb.get("heads_kept"), "heads_unkept_rb": rb.get("heads_unkept"),
                   "ra_unacked": ra.get("unacked"), "ra_resent": ra["resent"] - before["resent"]}
        # The flood was real: nearly every message was a head, most of them over the budget.
        self.assertGreater(flood["sli_sent"] / flood["seconds"], 2 * HEADS_PER_SECOND, numbers)
        self.assertGreater(sent + limited, flood["sli_sent"] // 2, numbers)
        self.assertGreater(limited, 0, numbers)
        # The budget held: at most one window's worth per second of flood, and one more.
        self.assertLessEqual(sent, HEADS_PER_SECOND * (flood["seconds"] + 2), numbers)
        # The pair stayed synced, with both calls (the hostile's own is a call like any).
        self.assertTrue(rb.get("synced"), rb)
        self.assertEqual(rb.get("replicated_calls"), 2, rb)
        self.assertEqual(ra.get("unacked"), 0, ra)

        # The good call streamed through the flood, and survives a failover after it.
        failed_at, promoted_at = fail_over(lab, "ra", "rb")
        time.sleep(3)
        echo, disconnect, stopped_at, client, server = echo_clear_stop(self, pac, first)
        received = (server["calls"][str(call["my_call_id"])]["received"], client["stream"]["received"])
        during = [direction(r, flood_at, flood_end) for r in received]
        after = [direction(r, promoted_at, stopped_at) for r in received]
        numbers.update({"during_flood": {"client_to_server": during[0], "server_to_client": during[1]},
                        "after_failover": {"client_to_server": after[0], "server_to_client": after[1]},
                        "promoted_s": round(promoted_at - failed_at, 3)})
        print("\nhostile heads: " + json.dumps(numbers), file=sys.stderr)
        for d in during:
            # Its GRE is on the fast path: the control connection's flood does not touch it.
            self.assertLessEqual(d["lost_in_window"], RATE // 10, numbers)
            self.assertLess(d["gap_s"], 1.0, numbers)
        for d in after:
            self.assertGreater(d["after"], RATE, numbers)
        self.assertIsNotNone(echo, lab.log("pns1")[-2000:])
        self.assertIsNotNone(disconnect, lab.log("pns1")[-2000:])


if __name__ == "__main__":
    unittest.main()
