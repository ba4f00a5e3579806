"""The netdev fast path's rules alone (issue 17, nftables/netdev_fastpath.hpp): the daemon
does not create table netdev pptp_alg_fast yet, so this loads the script its code writes
(tests/tools/netdev_script) in a router namespace, adds one translated call's routes, hops
and elements through the same tool (route_lookup.hpp, netdev_elements.hpp), and sends GRE
with raw sockets: a client (192.0.2.11), a router (inside 192.0.2.1, outside 198.51.100.1,
the public address) and a server (198.51.100.3). Addresses from RFC 5737; namespaces
named by this process's PID."""
import os
import struct
import subprocess
import sys
import time
import unittest

SCRIPT = os.environ.get("NETDEV_SCRIPT", "")
PREFIX = "ndr%d" % os.getpid()
NS = {n: "%s_%s" % (PREFIX, n) for n in ("cl", "rtr", "srv")}
OUTSIDE_CALL_ID, INSIDE_CALL_ID, SERVER_CALL_ID = 2000, 1000, 500
CALL = ("198.51.100.3", "198.51.100.1", "192.0.2.11", str(OUTSIDE_CALL_ID), str(INSIDE_CALL_ID), str(SERVER_CALL_ID))
DATA = b"\xff\x03\x00\x21" + bytes(40)       # PPP, IPv4 (0x0021)
LCP = b"\xff\x03\xc0\x21\x01\x01\x00\x04"     # PPP LCP Configure-Request (RFC 1661)
# Sends one GRE payload (argv: destination, TTL, hex) or prints each GRE packet received for
# a while: source, destination, TTL, IPv4 header checksum ok/bad, Key.
PEER = r'''
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)
if sys.argv[1] == "send":
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, int(sys.argv[3]))
    s.sendto(bytes.fromhex(sys.argv[4]), (sys.argv[2], 0))
    sys.exit(0)
if sys.argv[1] == "fragment":  # a first fragment (MF set, offset 0), header by hand
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    body = bytes.fromhex(sys.argv[4])
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0x1234, 0x2000, 64, 47, 0,
                         socket.inet_aton(sys.argv[3]), socket.inet_aton(sys.argv[2]))
    s.sendto(header + body, (sys.argv[2], 0))  # Linux fills in the checksum
    sys.exit(0)
s.settimeout(float(sys.argv[2]))
try:
    while True:
        p = s.recv(2000); h = p[:20]
        c = sum(struct.unpack("!10H", h)); c = (c & 0xffff) + (c >> 16); c = (c & 0xffff) + (c >> 16)
        print(socket.inet_ntoa(h[12:16]), socket.inet_ntoa(h[16:20]), h[8], "ok" if c == 0xffff else "bad",
              struct.unpack("!H", p[26:28])[0], flush=True)
except socket.timeout:
    pass
'''


def run(ns, *args, stdin=None):
    return subprocess.run(["ip", "netns", "exec", NS[ns]] + list(args), check=True, text=True,
                          capture_output=True, input=stdin).stdout


def gre(key, ppp):
    """Enhanced GRE (RFC 2637 4.1): K and S set, version 1, PPP (0x880b)."""
    return struct.pack("!HHHHI", 0x3001, 0x880B, len(ppp), key, 1) + ppp


@unittest.skipUnless(os.geteuid() == 0 and SCRIPT, "needs root and NETDEV_SCRIPT")
class NetdevRules(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            cls.make_lab()
        except BaseException:
            cls.tearDownClass()  # unittest does not, when setUpClass fails
            raise

    @classmethod
    def make_lab(cls):
        for n in NS.values():
            subprocess.run(["ip", "netns", "add", n], check=True)
        for dev, peer in (("inside", "cl"), ("outside", "srv")):
            subprocess.run(["ip", "link", "add", dev, "netns", NS["rtr"], "type", "veth", "peer", "eth0",
                            "netns", NS[peer]], check=True)
        for ns, dev, a in (("rtr", "inside", "192.0.2.1/24"), ("rtr", "outside", "198.51.100.1/24"),
                           ("cl", "eth0", "192.0.2.11/24"), ("srv", "eth0", "198.51.100.3/24")):
            run(ns, "ip", "addr", "add", a, "dev", dev)
            run(ns, "ip", "link", "set", dev, "up")
        run("cl", "ip", "route", "add", "default", "via", "192.0.2.1")
        run("srv", "ip", "route", "add", "default", "via", "198.51.100.1")
        run("rtr", "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # The table without ingress chains: the call's add makes them (netdev_elements.hpp).
        script = subprocess.run([SCRIPT, "table"], check=True, text=True, capture_output=True).stdout
        run("rtr", "nft", "-f", "-", stdin=script)
        # The call's routes, hops and elements, by the daemon's code (route_lookup,
        # netdev_elements).
        run("rtr", SCRIPT, "add", *CALL)

    @classmethod
    def tearDownClass(cls):
        for n in NS.values():
            subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)

    def exchange(self, receiver, sender, destination, ttl, packet):
        """What `receiver` gets while `sender` sends one packet (one line per packet)."""
        listen = subprocess.Popen(["ip", "netns", "exec", NS[receiver], sys.executable, "-c", PEER, "recv", "1.5"],
                                  stdout=subprocess.PIPE, text=True)
        time.sleep(0.4)  # the receiver's socket is open
        run(sender, sys.executable, "-c", PEER, "send", destination, str(ttl), packet.hex())
        return listen.communicate(timeout=10)[0].splitlines()

    def packets(self, map_name):
        listing = run("rtr", "nft", "list", "map", "netdev", "pptp_alg_fast", map_name)
        return sum(int(part.split()[0]) for part in listing.split("counter packets ")[1:])

    def test_1_server_gre_rewritten_to_the_client(self):
        got = self.exchange("cl", "srv", "198.51.100.1", 64, gre(OUTSIDE_CALL_ID, DATA))
        self.assertEqual(got, ["198.51.100.3 192.0.2.11 63 ok %d" % INSIDE_CALL_ID])
        self.assertEqual(self.packets("in_address"), 1)

    def test_2_client_gre_gets_the_public_address(self):
        got = self.exchange("srv", "cl", "198.51.100.3", 64, gre(SERVER_CALL_ID, DATA))
        self.assertEqual(got, ["198.51.100.1 198.51.100.3 63 ok %d" % SERVER_CALL_ID])
        self.assertEqual(self.packets("out_source"), 1)

    def test_3_ttl_one_goes_the_normal_way(self):
        # The normal way here: to the router itself (no daemon), so nothing arrives; with
        # fwd it would be dropped silently, but counted.
        self.assertEqual(self.exchange("cl", "srv", "198.51.100.1", 1, gre(OUTSIDE_CALL_ID, DATA)), [])
        self.assertEqual(self.packets("in_address"), 1)
        got = self.exchange("srv", "cl", "198.51.100.3", 2, gre(SERVER_CALL_ID, DATA))
        self.assertEqual(got, ["198.51.100.1 198.51.100.3 1 ok %d" % SERVER_CALL_ID])
        self.assertEqual(self.packets("out_source"), 2)

    def test_4_lcp_goes_the_normal_way(self):
        # Routed without the netdev table: the source is not rewritten, nothing counted.
        before = self.packets("out_source")
        got = self.exchange("srv", "cl", "198.51.100.3", 64, gre(SERVER_CALL_ID, LCP))
        self.assertEqual(got, ["192.0.2.11 198.51.100.3 63 ok %d" % SERVER_CALL_ID])
        self.assertEqual(self.packets("out_source"), before)

    def test_5_a_first_fragment_goes_the_normal_way(self):
        # Rewritten, it would leave while the rest wait in defragmentation; counted, it
        # would have reached the lookups.
        before = self.packets("out_source")
        run("cl", sys.executable, "-c", PEER, "fragment", "198.51.100.3", "192.0.2.11",
            gre(SERVER_CALL_ID, DATA).hex())
        time.sleep(0.3)
        self.assertEqual(self.packets("out_source"), before)

    def test_6_the_counters_read_back_are_the_kernels(self):
        # What the daemon's idle reads would see (NetdevElements::read_packets): the
        # server's and the client's GRE counted so far, as nft lists them.
        expected = self.packets("in_address") + self.packets("out_source")
        self.assertGreaterEqual(expected, 3)
        self.assertEqual(int(run("rtr", SCRIPT, "packets", *CALL)), expected)

    def test_7_different_mtus_keep_a_call_off_the_netdev_path(self):
        run("rtr", "ip", "link", "set", "outside", "mtu", "1400")
        try:
            added = subprocess.run(["ip", "netns", "exec", NS["rtr"], SCRIPT, "add", *CALL], text=True,
                                   capture_output=True)
        finally:
            run("rtr", "ip", "link", "set", "outside", "mtu", "1500")
        self.assertEqual(added.returncode, 3, added.stderr)
        self.assertIn("mtu_differs", added.stderr)


if __name__ == "__main__":
    unittest.main()
