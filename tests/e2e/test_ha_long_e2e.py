#!/usr/bin/python3
"""The HA pair's opt-in run (issue 18, docs/ha.md), not in CI, only with PPTP_HA_LONG=1:
a taken-over call kept on the new node's fast path past twice its elements' timeout (minutes
long).

    PPTP_HA_LONG=1 PPTP_ALG=build/release/alg/pptp-alg /usr/bin/python3 tests/e2e/test_ha_long_e2e.py -v
"""
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pptplab.lab import CLIENTS, SERVER  # noqa: E402
from test_ha_e2e import RATE, HaCase, direction  # noqa: E402
from ha_more_common import fail_over, stop_both  # noqa: E402


def element_expiry_s(lab, r):
    """Seconds until the first element of router r's fast_out set expires (None: none)."""
    out = lab.netns(r, "nft", "list", "set", "ip", "pptp_alg", "fast_out", check=False).stdout
    m = re.search(r"expires (?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?", out)
    if not m:
        return None
    minutes, seconds, ms = (int(g) if g else 0 for g in m.groups())
    return minutes * 60 + seconds + ms / 1000.0


@unittest.skipUnless(os.environ.get("PPTP_HA_LONG"), "PPTP_HA_LONG=1: runs for over three minutes")
class LongAfterAFailover(HaCase):
    def test_a_taken_over_call_keeps_the_fast_path_past_twice_its_elements_timeout(self):
        # Issue 18 ("elements re-armed for twice their timeout"): after a failover rb's daemon
        # re-arms the taken-over call's elements while its GRE flows, so the call stays on
        # rb's fast path past twice the elements' timeout. Sampled every 10 s: the element is
        # there and its expiry renewed; frames pass both ways throughout.
        lab = self.lab
        long_run = ("--rate", str(RATE), "--max-duration", "600")
        pac = self.peer("pac", "srv", "pac", "--local", SERVER, *long_run)
        self.assertIsNotNone(pac.event("listening"), lab.log("pac"))
        first = self.peer("pns1", "lan", "pns", "--local", CLIENTS[0], "--server", SERVER, "--call-id", "7",
                          *long_run)
        self.assertIsNotNone(first.event("up"), lab.log("pns1"))
        call = pac.event("call")
        lab.wait_for(lambda: lab.ha_status("rb").get("replicated_calls") == 1, 10, "the call replicated to rb")
        failed_at, promoted_at = fail_over(lab, "ra", "rb")
        timeout = int(re.search(r"fast_path_enabled mode=\w+ timeout_seconds=(\d+)", lab.log("pptp-alg-rb")).group(1))
        samples = []  # [seconds since the promotion, elements, seconds to expiry]
        while time.monotonic() < promoted_at + 2 * timeout + 15:
            time.sleep(10)
            samples.append([round(time.monotonic() - promoted_at), lab.fast_path_calls("rb"),
                            element_expiry_s(lab, "rb")])
        first.send("echo")
        echo = first.event("echo_reply", 10)
        stopped_at = time.monotonic()
        client, server = stop_both(self, pac, first)
        since = promoted_at + 5  # past the failover's own gap
        numbers = {"timeout_s": timeout, "promoted_s": round(promoted_at - failed_at, 3),
                   "client_to_server": direction(server["calls"][str(call["my_call_id"])]["received"], since,
                                                 stopped_at),
                   "server_to_client": direction(client["stream"]["received"], since, stopped_at),
                   "samples": samples}
        print("\nlong after a failover: " + json.dumps(numbers), file=sys.stderr)
        self.assertIsNotNone(echo, numbers)
        self.assertTrue(all(n == 1 for _, n, _ in samples), numbers)
        # Renewed: never nearer its end than one re-arm period leaves it (a third of it).
        self.assertTrue(all(e is not None and e > timeout / 3 for _, _, e in samples), numbers)
        for way in ("client_to_server", "server_to_client"):
            self.assertGreater(numbers[way]["after"], RATE * 2 * timeout, numbers)
            self.assertLess(numbers[way]["gap_s"], 5.0, numbers)  # far below the elements' timeout


if __name__ == "__main__":
    unittest.main()
