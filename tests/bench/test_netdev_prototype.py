#!/usr/bin/python3
"""bench/netdev_prototype.py without root: the daemon's elements read from nft's JSON, the
netdev table built from them, and the check of captured packets (made-up captures)."""
import json
import os
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import netdev_prototype as proto  # noqa: E402

# What `nft -j list map ip pptp_alg fast_in_plain` printed (nft 1.0.6) for one call.
LISTING = json.dumps({"nftables": [
    {"metainfo": {"version": "1.0.6"}},
    {"map": {"family": "ip", "name": "fast_in_plain", "table": "pptp_alg", "map": "ipv4_addr",
             "elem": [[{"elem": {"val": {"concat": ["198.51.100.3", "198.51.100.1", 1000]}, "timeout": 90,
                                 "counter": {"packets": 7, "bytes": 700}}}, "192.0.2.11"],
                      [{"concat": ["198.51.100.3", "198.51.100.1", 1001]}, "192.0.2.12"]]}}]})


class Elements(unittest.TestCase):
    def test_keys_with_and_without_counters(self):
        self.assertEqual(proto.elements(LISTING), [(("198.51.100.3", "198.51.100.1", 1000), "192.0.2.11"),
                                                   (("198.51.100.3", "198.51.100.1", 1001), "192.0.2.12")])

    def test_an_empty_map(self):
        empty = json.dumps({"nftables": [{"map": {"name": "fast_out_source", "map": "ipv4_addr"}}]})
        self.assertEqual(proto.elements(empty), [])


class Table(unittest.TestCase):
    def setUp(self):
        self.copied = {"fast_in_plain": proto.elements(LISTING),
                       "fast_out_source": [(("192.0.2.11", "198.51.100.3", 300), "198.51.100.1")]}
        self.text = proto.table(self.copied, "inside", "outside")

    def test_each_direction_hooks_its_ingress_device_and_forwards_by_the_other(self):
        self.assertIn('chain s2c_in {\n    type filter hook ingress device "outside"', self.text)
        self.assertIn('chain c2s_in {\n    type filter hook ingress device "inside"', self.text)
        self.assertIn('map @fast_out_source fwd ip to ip daddr device "outside"', self.text)
        self.assertEqual(self.text.count('fwd ip to ip daddr device "inside"'), 2)  # plain and translated

    def test_the_copied_elements_are_in_their_maps(self):
        self.assertIn("198.51.100.3 . 198.51.100.1 . 1000 : 192.0.2.11, 198.51.100.3 . 198.51.100.1 . 1001 : "
                      "192.0.2.12", self.text)
        self.assertIn("192.0.2.11 . 198.51.100.3 . 300 : 198.51.100.1", self.text)
        self.assertEqual(self.text.count("elements = "), 2)  # the empty maps have none

    def test_ppp_control_frames_return_before_the_lookup(self):
        for chain, offset in (("s2c_ppp", 96), ("s2c_ppp_ack", 128), ("c2s_ppp", 96), ("c2s_ppp_ack", 128)):
            body = self.text.split("chain %s {" % chain)[1].split("}")[0]
            self.assertIn("@th,%d,16 & 0xfd00 == 0xc000 return" % offset, body)
            self.assertTrue(body.strip().endswith("goto %s_lookup" % chain.split("_")[0]))

    def test_counted_maps_count(self):
        for name in proto.MAPS:
            body = self.text.split("map %s {" % name)[1].split("}")[0]
            self.assertEqual("counter" in body, name in proto.COUNTED, name)


class Wrong(unittest.TestCase):
    def packet(self, **changes):
        p = {"ip.src": "198.51.100.3", "ip.dst": "192.0.2.11", "ip.ttl": str(proto.DEFAULT_TTL - 1),
             "ip.checksum.status": proto.CHECKSUM_GOOD, "gre.key.call_id": "1000"}
        p.update(changes)
        return p

    def check(self, packets):
        return proto.wrong(packets, "198.51.100.3", "192.0.2.11", 1000)

    def test_all_as_expected(self):
        self.assertEqual(self.check([self.packet()] * proto.CHECK_PACKETS), [])

    def test_each_fault_is_reported(self):
        for change in ({"ip.dst": "198.51.100.1"}, {"gre.key.call_id": "1001"}, {"ip.ttl": str(proto.DEFAULT_TTL)},
                       {"ip.checksum.status": "0"}, {"ip.src": "192.0.2.11"}):
            packets = [self.packet()] * (proto.CHECK_PACKETS - 1) + [self.packet(**change)]
            self.assertEqual(len(self.check(packets)), 1, change)

    def test_missing_packets_are_reported(self):
        self.assertEqual(self.check([self.packet()] * (proto.CHECK_PACKETS - 1)),
                         ["%d of %d captured" % (proto.CHECK_PACKETS - 1, proto.CHECK_PACKETS)])


if __name__ == "__main__":
    unittest.main()
