#!/usr/bin/python3
"""End-to-end tests of the s35 review's findings (docs/packet-path.md, "Integrity: what holds
against a hostile peer"): call set-ups that a client and a server's own numbering can turn
against another client behind the same public address, with Poptop's pptpd and a good
tunnel beside. Run as root; each test builds and removes its own namespaces (RFC 5737
addresses only), processes and rules.

    PPTP_ALG=build/alg/pptp-alg /usr/bin/python3 tests/e2e/test_hostile_server_e2e.py -v
"""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pptplab.lab import CLIENTS, HERE, PYTHON, SERVER, SERVER2  # noqa: E402
from test_nat_e2e import LabTest  # noqa: E402
from test_proxy_e2e import ProxyTest  # noqa: E402

ATTACKER, VICTIM = CLIENTS[0], CLIENTS[1]
# pptpd's second control connection gets server Call IDs from 128 on (a range of 128 each).
VICTIMS_SERVER_CALL_ID = 128


def range_attacker(lab, key, count, seconds, pause, go_file=""):
    """hostile.py call-id-range from ATTACKER: its connection's calls run past pptpd's range
    until one is given `key` (-1: never, `count` calls), then GRE keyed `key`."""
    attacker = subprocess.Popen(
        ["ip", "netns", "exec", lab.ns["lan"], PYTHON, os.path.join(HERE, "hostile.py"), "call-id-range",
         "--local", ATTACKER, "--target", SERVER, "--key", str(key), "--count", str(count),
         "--seconds", str(seconds), "--pause", str(pause), "--go-file", go_file], stdout=subprocess.PIPE,
        text=True, start_new_session=True)
    lab.procs.append(attacker)
    return attacker


def wait_line(attacker, key):
    """The attacker's progress line that has `key` (the order of the two clients' connections
    at pptpd decides their ranges: the test starts the victim only after it)."""
    for _ in range(5):
        line = json.loads(attacker.stdout.readline() or "{}")
        if key in line:
            return line
    raise AssertionError("the attacker never said %r" % key)


class ServerCallIdRanges(LabTest):
    def attack(self, seconds, pause, go_file=""):
        return range_attacker(self.lab, VICTIMS_SERVER_CALL_ID, 300, seconds, pause, go_file)

    def wait_calls_up(self, address, calls=1, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.lab.status(wait=0.5)
            up = sum(call.get("pac_call_id") is not None for c in status["connections"]
                     if c["pns"].startswith(address + ":") for call in c["calls"])
            if up >= calls:
                return
        raise AssertionError("%s's %d call(s) were not up within %d s" % (address, calls, timeout))

    def test_a_call_pptpd_numbers_like_another_clients_is_ended_and_that_client_unharmed(self):
        """The attacker's connection comes first; the victim's call then gets pptpd's second
        range; the attacker asks for calls until pptpd gives one the victim's server Call ID
        and sends GRE with it from its own address. Before s35 one such frame ended the
        victim's session at pptpd (62 of 295 frames echoed)."""
        self.lab.start_server()
        go = os.path.join(self.lab.tmp, "go")
        attacker = self.attack(seconds=60, pause=0, go_file=go)
        wait_line(attacker, "first")
        victim = self.lab.start_client("pns", local=VICTIM, tag="victim", call_ids=[7], duration=20)
        self.wait_calls_up(VICTIM)
        open(go, "w").close()
        attack = json.loads(attacker.communicate(timeout=90)[0].strip().splitlines()[-1])
        victim = self.lab.result(victim, timeout=90)
        status = self.lab.status()
        self.assertTrue(attack["ok"], attack)
        [call] = victim["calls"]
        self.assertEqual(call["peer_call_id"], VICTIMS_SERVER_CALL_ID, victim)
        self.assertTrue(attack["hit"], attack)  # pptpd gave the attacker's call the victim's Call ID
        self.assertEqual(attack["frames"], 40, attack)
        self.assertEchoed(victim, minimum=20)
        self.assertGreaterEqual(status["anomalies"].get("pac_call_id_taken", 0), 1, status["anomalies"])

    def test_a_connection_past_its_range_first_is_cut_when_another_client_needs_the_call_id(self):
        """The attacker's connection runs past its range first and holds the Call ID pptpd then
        gives the victim's first call: the connection with more calls is cut, the victim's call
        works. Before, the first holder kept it: the victim got 0 of 248 frames (s35 second
        review, N4)."""
        self.lab.start_server()
        attacker = self.attack(seconds=0, pause=5)  # its GRE once the victim's call is up
        wait_line(attacker, "hit")
        victim = self.lab.start_client("pns", local=VICTIM, tag="victim", call_ids=[7], duration=10)
        attack = json.loads(attacker.communicate(timeout=90)[0].strip().splitlines()[-1])
        victim = self.lab.result(victim, timeout=90)
        status = self.lab.status()
        self.assertTrue(attack["hit"], attack)
        [call] = victim["calls"]
        self.assertEqual(call["peer_call_id"], VICTIMS_SERVER_CALL_ID, victim)
        self.assertEchoed(victim, minimum=20)
        self.assertEqual(status["packets"]["connections_cut_server_call_id"], 1, status["packets"])


    def test_a_connection_within_its_range_keeps_its_call_ids_when_pptpd_wraps(self):
        """pptpd's ranges wrap after 512 connections, and any client can open them: the
        attacker's 512th connection after the victim's gets the victim's range, and its first
        call the Call ID of the victim's first call. The victim's connection holds 2 calls,
        within its range: the attacker's call is refused, its Outgoing-Call-Reply turned into
        General Error (No-Resource), and the victim's connection goes on.
        With the rule of s35 (more calls than the other connection were enough) the victim's
        connection was cut. (pptpd carries one call a connection: the victim's first call gets
        no GRE from it once the second is placed, with or without pptp-alg.)"""
        self.lab.start_server()
        victim = self.lab.start_client("pns", local=VICTIM, tag="victim", call_ids=[7, 8], duration=40)
        self.wait_calls_up(VICTIM, 2)
        attack = self.lab.hostile("range-wrap", ATTACKER, SERVER, count=511, extra=("--pause", "2"))
        victim = self.lab.result(victim, timeout=90)
        status = self.lab.status()
        self.assertTrue(attack["ok"], attack)
        self.assertEqual(attack["call_id"], victim["calls"][0]["peer_call_id"], (attack, victim))  # the wrap hit
        # The attacker is told its call failed: General Error, No-Resource (RFC 2637 2.8; before, Connected).
        self.assertEqual((attack["result_code"], attack["error_code"]), (2, 4), attack)
        live = victim["calls"][1]
        self.assertGreaterEqual(live["echoed"], live["sent"] - 3, victim)
        self.assertEqual(live["foreign"], 0, victim)
        self.assertEqual(status["packets"]["connections_cut_server_call_id"], 0, status["packets"])
        self.assertGreaterEqual(status["anomalies"].get("pac_call_id_taken", 0), 1, status["anomalies"])


class ProxiedServerCallIdRanges(ProxyTest):
    def test_a_proxied_connection_past_its_range_is_cut_when_another_client_needs_the_call_id(self):
        """Proxy mode: every server leg leaves from the router's address. The attacker's
        connection holds 200 calls at pptpd (0 to 199, past its range of 128); the victim's first
        call then gets 128. The connection with more calls is cut (CDN and a Stop), the
        victim's call works. Before, the first holder kept the ID and the victim's call was
        refused "general error" (s36 review R2)."""
        self.lab.start_server()
        attacker = range_attacker(self.lab, key=-1, count=200, seconds=0, pause=15)
        self.assertFalse(wait_line(attacker, "hit")["hit"])  # our Call IDs: it never sees pptpd's
        victim = self.lab.result(self.lab.start_client("pns", local=VICTIM, tag="victim", call_ids=[7], duration=5),
                                 timeout=60)
        status = self.lab.status()
        [call] = victim["calls"]
        self.assertEqual(call["result"], 1, victim)
        self.assertEchoed(victim, minimum=20)
        self.assertEqual(status["relay"]["connections_cut_server_call_id"], 1, status["relay"])
        self.assertEqual(status["relay"]["server_call_id_taken"], 0, status["relay"])
        self.assertIn("proxy_connection_cut client=%s server=%s calls=200 reason=\"pptp-alg: the server gave Call ID %d, "
                      "past its range for this connection" % (ATTACKER, SERVER, VICTIMS_SERVER_CALL_ID),
                      self.lab.read_daemon_log())
        attacker.kill()


class ServerCallIdReuse(LabTest):
    def test_a_server_call_id_another_host_used_a_moment_ago_carries_the_new_call(self):
        """A server that gives a freed Call ID at once to the next call, here another host's.
        The first host's client GRE left a conntrack entry (server -> public address, Key 500)
        that lives 30 s, and the kernel does not remap GRE Keys without a PPTP master entry:
        before s36 the second host's GRE failed to confirm and was dropped after pptp-alg had
        accepted it, 0 of 50 frames (s36 review R1). Now the entry goes when the server names
        the Call ID to the new call."""
        pac = self.lab.start_pac(connections=2, first_call_id=500, duration=2, same_call_id=True)
        first = self.lab.result(self.lab.start_client("pns", local=CLIENTS[0], server=SERVER2, tag="first",
                                                      call_ids=[7], duration=2))
        second = self.lab.result(self.lab.start_client("pns", local=CLIENTS[1], server=SERVER2, tag="second",
                                                       call_ids=[9], duration=2))
        status = self.lab.status()
        for r in (first, second):
            [call] = r["calls"]
            self.assertEqual(call["peer_call_id"], 500, r)
            self.assertEchoed(r)
        self.assertGreaterEqual(status["stale_gre"]["deleted"], 1, status["stale_gre"])
        self.assertTrue(self.lab.result(pac)["ok"])


if __name__ == "__main__":
    unittest.main()
