#!/usr/bin/python3
"""End-to-end tests of proxy mode's own limits, which hold with or without a policy
(`pptp-alg --proxy`, docs/proxy.md "Limits"): calls per client address and in all with
their reserve, control connections per client address and in all (the descriptors), a
server that never accepts the router's connection, a server's unanswered incoming calls and
a server that reads nothing (hostile peers in pptplab/proxy_peers.py, beside a good call). Split from test_proxy_policy_e2e.py (the
same ProxyTest lab). Run as root:

    PPTP_ALG=build/release/alg/pptp-alg /usr/bin/python3 tests/e2e/test_proxy_limits_e2e.py -v
"""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pptplab.lab import PUBLIC, PYTHON, SERVER, SERVER2  # noqa: E402
from test_proxy_e2e import ALICE, BOB, ProxyTest  # noqa: E402

HOSTILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pptplab", "hostile.py")


class PipelinedClient(ProxyTest):
    def test_a_client_that_pipelines_echo_requests_and_reads_gets_every_reply_and_is_not_cut(self):
        # s29 review, finding 9: 4,000 Echo-Requests in one write (64 KB) while reading all the
        # replies: 13 came, then the proxy cut the client as "not reading" (one message per
        # write could not keep up). Every queued reply now goes in one write.
        self.lab.start_pac(connections=1, duration=10)
        r = subprocess.run(["ip", "netns", "exec", self.lab.ns["lan"], PYTHON, HOSTILE, "echo-pipeline", "--local",
                            ALICE, "--target", SERVER2, "--count", "4000", "--seconds", "20"],
                           stdout=subprocess.PIPE, text=True, timeout=60)
        answer = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual((answer.get("replies"), answer.get("closed")), (4000, False), answer)
        self.assertNotIn("proxy_peer_not_reading", self.lab.read_daemon_log())


    def test_a_client_that_resets_while_its_replies_wait_is_logged_and_its_session_ends(self):
        # A client that pipelines and never reads: the proxy's write to it stalls and its
        # reads pause (16 KiB queued). Its RST then fails that write. Before s31 the write's
        # failure ended the leg without a log line (docs/proxy.md, "Not done yet").
        self.lab.start_pac(connections=1, duration=10)
        r = subprocess.run(["ip", "netns", "exec", self.lab.ns["lan"], PYTHON, HOSTILE, "echo-pipeline", "--local",
                            ALICE, "--target", SERVER2, "--count", "4000000", "--unread"],
                           stdout=subprocess.PIPE, text=True, timeout=60)
        answer = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertTrue(answer.get("reset"), answer)
        # Our writes stalled: the proxy's queue of replies past 16 KiB, its reads paused.
        self.assertLess(answer["sent"], 4000000, answer)
        status = self.wait_status(lambda s: s["connections"]["open"] == 0)
        self.assertEqual(status["connections"]["open"], 0, status)
        self.assertIn("proxy_leg_ended leg=client server=%s why=reset during=write" % SERVER2,
                      self.lab.read_daemon_log())


class ConnectDeadline(ProxyTest):
    def test_a_server_that_drops_the_routers_syns_is_given_up_and_the_client_hears_general_error(self):
        # Without a deadline the kernel tries for about 127 s, with two descriptors and the
        # client's place in the limits held (s29 review). kServerStartDeadline: 20 s,
        # checked every 5 s.
        self.lab.netns("srv", "iptables", "-w", "-A", "INPUT", "-p", "tcp", "--dport", "1723", "-j", "DROP")
        r = subprocess.run(["ip", "netns", "exec", self.lab.ns["lan"], PYTHON, HOSTILE, "start-wait", "--local", ALICE,
                            "--target", SERVER2, "--seconds", "40"], stdout=subprocess.PIPE, text=True, timeout=60)
        answer = json.loads(r.stdout.strip().splitlines()[-1])
        # Start-Control-Connection-Reply result 2, general error (RFC 2637 2.2), long before
        # the kernel would give up.
        self.assertEqual(answer.get("result"), 2, answer)
        self.assertLess(answer["after"], 35, answer)
        self.assertIn('proxy_connect_failed server=%s error="no TCP connection within 20 s"' % SERVER2,
                      self.lab.read_daemon_log())
        self.assertEqual(self.wait_status(lambda s: s["connections"]["open"] == 0)["connections"]["open"], 0)


class SourceCallLimit(ProxyTest):
    daemon_args = ("--proxy", "--proxy-source-calls", "1")

    def test_a_client_over_the_per_source_call_limit_is_told_busy(self):
        pac = self.lab.start_pac(connections=1, duration=5)
        r = self.lab.result(self.lab.start_client("pns", local=ALICE, server=SERVER2, tag="alice", call_ids=[7, 8],
                                                  duration=3))
        # One call per address (--proxy-source-calls 1): the second is refused "busy"
        # (Outgoing-Call-Reply result 4, RFC 2637 2.8) and never reaches the server.
        self.assertEqual(r["calls"][0]["result"], 1, r)
        self.assertGreaterEqual(r["calls"][0]["echoed"], 5, r)
        self.assertEqual(r["calls"][1]["result"], 4, r)
        self.assertEqual(self.lab.result(pac)["outgoing"], 1)
        self.assertEqual(self.lab.status()["limits"]["source_calls_refused"], 1)


class CallsInAll(ProxyTest):
    daemon_args = ("--proxy", "--proxy-calls", "16")

    def test_one_host_calling_until_busy_leaves_the_reserve_and_a_new_host_still_calls(self):
        # s29 review, finding 2: one LAN host (33 addresses) took the whole Call-ID pool and
        # every other client was told busy. 16 calls in all here: the last eighth (2) is kept
        # for hosts holding fewer than 4, so one host gets 14 and a new one still calls.
        pac = self.lab.start_pac(connections=2, duration=6)
        mallory = self.lab.start_client("pns", local=BOB, server=SERVER2, tag="mallory", call_ids=list(range(10, 30)),
                                        duration=1, linger=12)
        self.wait_status(lambda s: s.get("calls_judged") == 14 and s["limits"]["calls_refused"] == 6, timeout=30)
        alice = self.lab.result(self.lab.start_client("pns", local=ALICE, server=SERVER2, tag="alice", call_ids=[7],
                                                      duration=2))
        self.assertEqual(alice["calls"][0]["result"], 1, alice)
        self.assertGreaterEqual(alice["calls"][0]["echoed"], 5, alice)
        status = self.lab.status()
        self.assertEqual(status["call_limits"], {"in_all": 16, "reserve": 2, "fair_share": 4, "per_source": 1024})
        r = self.lab.result(mallory)
        results = [c["result"] for c in r["calls"]]
        # Outgoing-Call-Reply result 4, busy (RFC 2637 2.8), and never at the server.
        self.assertEqual((results.count(1), results.count(4)), (14, 6), r)
        self.assertEqual(self.lab.result(pac)["outgoing"], 15)
        self.assertEqual(status["limits"]["calls_refused"], 6)
        self.assertEqual(status["limits"]["source_calls_refused"], 0)
        self.assertIn("anomaly kind=proxy_call_refused source=%s answer=busy calls_held=14" % BOB, self.lab.read_daemon_log())


# Opens N TCP connections from one address to the server's port 1723 (REDIRECTed to the
# proxy) and holds them, saying nothing; after `report` s prints how many are still open
# (the rest the proxy reset), then holds them for `hold` s more. Bounded: N connections, one pass, fixed sleeps.
HOLDER = r"""
import json, socket, sys, time
local, server, n, report, hold = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
held = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(3)
    s.bind((local, 0))
    try:  # a connect whose RST came before Python read its result fails here: counted not held
        s.connect((server, 1723))
        held.append(s)
    except OSError:
        s.close()
time.sleep(report)
still = 0
for s in held:
    s.setblocking(False)
    try:
        still += s.recv(1) != b""
    except BlockingIOError:
        still += 1
    except OSError:
        pass
print(json.dumps({"attempts": n, "held": still}), flush=True)
time.sleep(hold)
"""


class ConnectionLimits(ProxyTest):
    def test_one_host_holding_connections_is_reset_past_its_limit_and_another_clients_call_works(self):
        # Without a policy: a host that opens 70 control connections and says nothing on
        # them keeps 64 (kMaxConnectionsPerSource, --proxy-source-connections); the proxy
        # resets the rest at once, before it connects to any server. Another client's
        # connection, made while the 64 are held, is admitted and its call echoes.
        holder = subprocess.Popen(["ip", "netns", "exec", self.lab.ns["lan"], PYTHON, "-c", HOLDER, BOB, SERVER2,
                                   "70", "2", "12"], stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (holder.kill(), holder.wait(), holder.stdout.close()))
        held = self.wait_status(lambda s: s.get("connections", {}).get("open") == 64, timeout=20)
        self.assertEqual(held["connections"]["per_source_limit"], 64, held)
        pac = self.lab.start_pac(connections=1, duration=6)
        alice = self.lab.result(self.lab.start_client("pns", local=ALICE, server=SERVER2, tag="alice", call_ids=[7],
                                                      duration=4))
        self.assertEchoed(alice)
        self.assertTrue(self.lab.result(pac)["ok"])
        report = json.loads(holder.stdout.readline())
        self.assertEqual(report, {"attempts": 70, "held": 64}, report)
        status = self.lab.status()
        self.assertEqual(status["limits"]["source_connections_refused"], 6, status)
        self.assertEqual(status["limits"]["connections_refused"], 0, status)
        self.assertEqual(status["limits"]["accept_failures"], 0, status)
        self.assertEqual(self.server_peers() - {PUBLIC}, set(), "nothing but the router reached the server")
        self.assertIn("anomaly kind=proxy_connection_refused source=%s" % BOB, self.lab.read_daemon_log())

    def test_the_connections_in_all_follow_the_descriptors_the_proxy_may_open(self):
        # Started with 160 descriptors at most (soft and hard): (160 - 64 kept) / 2 = 48
        # connections in all, each with room for its server leg. A host's 50 get 48; the
        # proxy resets the other 2 and never meets EMFILE (accept_failures 0). Once they go,
        # another client's call works.
        self.lab.stop_daemon()
        wrapper = os.path.join(self.lab.tmp, "pptp-alg-160")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec prlimit --nofile=160:160 -- %s \"$@\"\n" % self.lab.daemon_binary)
        os.chmod(wrapper, 0o755)
        self.lab.daemon_binary = wrapper
        self.lab.start_daemon(self.daemon_arguments())
        holder = subprocess.Popen(["ip", "netns", "exec", self.lab.ns["lan"], PYTHON, "-c", HOLDER, BOB, SERVER2,
                                   "50", "2", "0"], stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (holder.kill(), holder.wait(), holder.stdout.close()))
        report = json.loads(holder.stdout.readline())
        self.assertEqual(report, {"attempts": 50, "held": 48}, report)
        status = self.wait_status(lambda s: s["connections"]["open"] == 0, timeout=20)
        self.assertEqual(status["connections"]["limit"], 48, status)
        self.assertEqual(status["limits"]["connections_refused"], 2, status)
        self.assertEqual(status["limits"]["source_connections_refused"], 0, status)
        self.assertEqual(status["limits"]["accept_failures"], 0, status)
        pac = self.lab.start_pac(connections=1, duration=5)
        self.assertEchoed(self.lab.result(self.lab.start_client("pns", local=ALICE, server=SERVER2, tag="alice",
                                                                call_ids=[7], duration=3)))
        self.assertTrue(self.lab.result(pac)["ok"])


PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pptplab", "proxy_peers.py")


class HostilePeerTest(ProxyTest):
    """A hostile peer from pptplab/proxy_peers.py on SERVER (or a client toward it) beside a
    good call to the scripted PAC on SERVER2 (bob's)."""

    def peer(self, ns, kind, *args):
        """proxy_peers.py KIND in the namespace `ns`, killed with the lab if the test fails."""
        p = subprocess.Popen(["ip", "netns", "exec", self.lab.ns[ns], PYTHON, PEERS, kind] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lab.procs.append(p)
        return p

    def good_call(self, duration):
        """bob's call through the proxy to the scripted PAC, up (its GRE echoed) on return;
        assertGoodCall then checks it."""
        self.pac = self.lab.start_pac(connections=1, duration=duration + 2)
        good = self.lab.start_client("pns", local=BOB, server=SERVER2, tag="bob", call_ids=[7], duration=duration)
        self.wait_status(lambda s: s["relay"]["calls_connected"] == 1 and s["gre"]["to_client"] > 0)
        return good, time.monotonic()

    def assertGoodCall(self, good, minimum):
        """Every frame of bob's came back (10 a second), and the PAC ended his call in order."""
        self.assertEchoed(self.lab.result(good), minimum=minimum)
        self.assertTrue(self.lab.result(self.pac).get("ok"))


class UnansweredIncomingCalls(HostilePeerTest):
    def test_a_server_gets_eight_unanswered_incoming_calls_on_a_clients_connection_and_a_call_beside_works(self):
        # kMaxUnansweredIncomingCalls (proxy/relay_incoming.cpp, s31; 256 before): a server places 12
        # incoming calls on the control connection of a client that answers none. The client
        # is offered 8; the proxy answers the other 4 itself, Incoming-Call-Reply result 3 "do
        # not accept" (RFC 2637 2.10), naming the server's Call IDs. bob's call, through the
        # proxy to another server, echoes before, during and after.
        good, good_started = self.good_call(duration=8)
        placer = self.peer("srv", "incoming-placer", "--local", SERVER, "--count", "12", "--first-call-id", "500",
                           "--hold", "3", "--seconds", "10")
        self.lab.wait_listening("srv", SERVER)
        client = self.lab.result(self.peer("lan", "incoming-ignorer", "--local", ALICE, "--target", SERVER,
                                           "--seconds", "3"))
        server = self.lab.result(placer)
        hostile_done = time.monotonic()
        self.assertEqual(client.get("start_result"), 1, client)
        self.assertEqual(len(client["offered"]), 8, client)
        self.assertEqual(len(set(client["offered"])), 8, client)  # each its own Call ID from the proxy
        self.assertTrue(server.get("ok"), server)
        # The first 8 went on to the client and stay unanswered; the last 4 are refused.
        self.assertEqual(server["replies"], [[call_id, 3] for call_id in range(508, 512)], server)
        status = self.lab.status()
        self.assertEqual(status["relay"]["incoming_unanswered_refused"], 4, status["relay"])
        self.assertEqual(status["relay"]["incoming_placed"], 8, status["relay"])
        # The server is named in the log (its lines under a budget per source), s32.
        self.assertIn("anomaly kind=proxy_incoming_refused source=%s client=%s server_call_id=508" % (SERVER, ALICE),
                      self.lab.read_daemon_log())
        self.assertLess(hostile_done - good_started, 6.5, "bob's call had no time left after the hostile server")
        self.assertGoodCall(good, minimum=60)  # 8 s


class ServerThatReadsNothing(HostilePeerTest):
    def send_q_toward(self, address):
        """Send-Q (bytes not yet acknowledged) of the router's connections to address:1723, or
        None if it has none."""
        out = self.lab.netns("rtr", "ss", "-Htn", "dst", address + ":1723", check=False).stdout
        queues = [int(line.split()[2]) for line in out.splitlines() if line.strip()]
        return max(queues) if queues else None

    def test_a_server_that_reads_nothing_pins_little_in_the_router_and_is_reset_when_its_session_ends(self):
        # kLegSendBuffer (proxy/session.cpp, s31): each leg's kernel send buffer is 32 KiB
        # (64 KiB once Linux doubles it), and a leg that ends with data its peer never took is
        # closed with a RST (SO_LINGER 0). A server answers alice's start, places a call she
        # answers, and then reads nothing; for 6 s alice writes Call-Clear-Requests for that
        # call, which the proxy relays, as fast as TCP takes them, then resets. Before s31 the
        # router's socket toward that server held what autotuning let it (0.55 MB after these
        # 6 s, 0.77 MB after 30 s) and kept it after the session, in FIN-WAIT-1, its FIN behind
        # data the server would never take: the server heard neither a FIN nor a RST.
        good, good_started = self.good_call(duration=16)
        deaf = self.peer("srv", "deaf-server", "--local", SERVER, "--seconds", "30")
        self.lab.wait_listening("srv", SERVER)
        flood = self.peer("lan", "clear-flood", "--local", ALICE, "--target", SERVER, "--key", "9", "--seconds", "6",
                          "--reset")
        most, deadline = 0, time.monotonic() + 20
        while flood.poll() is None and time.monotonic() < deadline:
            most = max(most, self.send_q_toward(SERVER) or 0)
            time.sleep(0.2)
        flooded = self.lab.result(flood, timeout=10)
        reset_at = time.monotonic()
        self.assertTrue(flooded.get("ok"), flooded)
        # alice's writes stalled (the proxy's reads paused at 16 KiB queued), and what the
        # router held toward the server stayed within its leg's buffer.
        self.assertLess(flooded["last_moved"], 5, flooded)
        self.assertGreater(most, 16 * 1024, "the server's window never filled: %d" % most)
        self.assertLess(most, 100 * 1000, "the router held %d bytes toward a server that reads nothing" % most)
        # The session ends at the next keepalive tick (5 s): alice's leg, read-paused, is found
        # reset; the server's leg, 16 KiB and more queued for a peer that does not read, is
        # reset in turn (close_when_written) and the router's socket freed at once.
        ended = "proxy_leg_ended leg=client server=%s why=closed_while_paused" % SERVER
        while ended not in self.lab.read_daemon_log() and time.monotonic() < reset_at + 10:
            time.sleep(0.2)
        self.assertIn(ended, self.lab.read_daemon_log())
        while self.send_q_toward(SERVER) is not None and time.monotonic() < reset_at + 13:
            time.sleep(0.2)
        self.assertIsNone(self.send_q_toward(SERVER), "the router's socket toward the server outlived its session")
        self.assertLess(time.monotonic() - good_started, 15, "bob's call had no time left after the session ended")
        server = self.lab.result(deaf, timeout=30)
        self.assertEqual(server.get("ended"), "reset", server)  # not a FIN behind unsent data, nor nothing
        self.assertGreater(server["unread"], 16 * 1024, server)  # the flood reached it and lay unread
        self.assertGoodCall(good, minimum=120)  # 16 s
        status = self.wait_status(lambda s: s["connections"]["open"] == 0)
        self.assertEqual(status["relay"]["calls_connected"], 2, status["relay"])


class RepliesQueuedAtTheEnd(HostilePeerTest):
    """More than the read pause's 16 KiB queued toward an honest client as its session ends
    (s32 review): before, taken for a peer that does not read and reset."""

    def test_a_server_that_resets_with_150_calls_up_has_each_cleared_at_the_client(self):
        # The server's RST: 150 Call-Disconnect-Notifies (22 KB) queued at once. Before s32 the
        # client got 1 of them and a RST.
        self.pac = self.lab.start_pac(connections=1, duration=30, reset_after=4)
        client = self.lab.result(self.peer("lan", "many-calls", "--local", ALICE, "--target", SERVER2, "--count",
                                           "150", "--seconds", "25"), timeout=40)
        self.assertEqual((client["replies"], client["disconnects"], client["ended"]), (150, 150, "fin"), client)
        self.wait_status(lambda s: s["connections"]["open"] == 0)

    def test_a_client_that_half_closes_after_4000_echo_requests_reads_every_reply(self):
        # 80 KB of Echo-Replies, then the client's FIN read behind its last request. Before
        # s32 the FIN found while its leg was read-paused ended it: 448 replies and a RST.
        self.pac = self.lab.start_pac(connections=1, duration=10)
        client = self.lab.result(self.peer("lan", "half-close", "--local", ALICE, "--target", SERVER2, "--count",
                                           "4000", "--seconds", "15"), timeout=30)
        self.assertEqual((client["replies"], client["ended"]), (4000, "fin"), client)
        self.wait_status(lambda s: s["connections"]["open"] == 0)


if __name__ == "__main__":
    unittest.main()
