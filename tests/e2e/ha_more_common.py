"""What the HA pair's longer cases share (test_ha_more_e2e.py: failovers; test_ha_split_e2e.py:
split brains): failing over, waiting for calls and elements, counting frames, and the split
brain's base case. No tests of its own."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pptplab.lab import CLIENTS, SERVER  # noqa: E402
from pptplab.ha_lab import VIP_INSIDE, VIP_OUTSIDE  # noqa: E402
from test_ha_e2e import HaCase, direction  # noqa: E402

SLOW_RATE = 5    # frames per second per call and direction for the many calls


def stop_both(test, pac, first):
    """The client, then the server stopped; their results (asserted present)."""
    results, server = test.stop_peers(pac, (first,))
    return results[0], server


def echo_clear_stop(test, pac, first):
    """After a failover: an Echo and a Call-Clear from the client, then both peers stopped.
    Returns the echo reply and the disconnect events (None if missing), when they were
    done (monotonic), and the client's and server's results."""
    first.send("echo")
    echo = first.event("echo_reply", 10)
    first.send("clear")
    disconnect = first.event("disconnect", 10)
    stopped_at = time.monotonic()
    client, server = stop_both(test, pac, first)
    return echo, disconnect, stopped_at, client, server


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


def all_up(peer, n, timeout=40):
    """Waits for a stream_peer's n "up" events; None if they did not all come."""
    return peer.wait(lambda o: sum(1 for x in peer.seen if x.get("event") == "up") >= n, timeout)


def first_time(predicate, since, within):
    """When predicate first held (monotonic; polled every 0.05 s until `within` s after
    `since`), or None."""
    while time.monotonic() < since + within:
        if predicate():
            return time.monotonic()
        time.sleep(0.05)
    return None


def frames_between(received, since, until):
    """Frames received between two times (monotonic), from [seq, sent, received] rows."""
    return sum(1 for r in received if since <= r[2] <= until)


class SplitCase(HaCase):
    """A split brain's tools (no tests of its own)."""

    def calls_on(self, r):
        out = self.lab.ctl(r, "calls", "--json")
        return json.loads(out.stdout)["calls"] if out.returncode == 0 else []

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
