"""A measurement prototype, not the product (docs/performance.md "s9"): the fast path moved
to netdev ingress with `fwd` (issue 17). Once pptp-alg has offloaded the calls, a netdev
table on the router's two interfaces does, from copies of the daemon's own elements, what
the daemon's fast path does (server to client: the destination and, for a translated call,
the Key; client to server: the source becomes the public address; nft fixes the IPv4
checksum, GRE has none over the addresses) and hands the packet to the egress device with
`fwd`, past prerouting, routing, forward and postrouting. PPP control frames (LCP, the
authentication protocols: the same test as chain fast_ppp) and GRE of no copied call go the
normal way. What it leaves out: the copies are taken once (no timeouts, no re-arming), the
next hop is the new destination itself (the lab's hosts are on the router's own subnets),
no MTU check, no policy.
"""
import json
import struct
import subprocess
import time

TABLE = "pptp_alg_netdev_prototype"
DAEMON_TABLE = "pptp_alg"
KEY = "ip saddr . ip daddr . @th,48,16"
# The daemon's maps copied, with what each maps to (docs/packet-path.md "Fast path").
MAPS = {"fast_in_plain": "ip daddr", "fast_in_address": "ip daddr", "fast_in_call_id": "@th,48,16",
        "fast_out_source": "ip saddr"}
COUNTED = ("fast_in_plain", "fast_in_address", "fast_out_source")  # the element counters
# Enhanced GRE's first 16 bits (RFC 2637 4.1), and where the PPP frame starts, in bits.
GRE_SEQUENCE, GRE_SEQUENCE_ACK, GRE_ACK_ONLY = 0x3001, 0x3081, 0x2001
PPP_AFTER_SEQUENCE, PPP_AFTER_SEQUENCE_ACK = 96, 128
CHECK_PACKETS = 20  # captured per direction by check()
CAPTURE_SECONDS = 10  # tshark gives up after this
LCP_WAIT_SECONDS = 0.5  # the queue's round trip through the daemon, with room
DEFAULT_TTL = 64  # what the sender's raw socket sets (net.ipv4.ip_default_ttl)
CHECKSUM_GOOD = "1"  # tshark's ip.checksum.status (0 bad, 1 good, 2 unverified)


def elements(listing):
    """The (key, data) pairs of one map in `nft -j list map` output: key (address,
    address, Key), data an address or a Key."""
    out = []
    for item in json.loads(listing)["nftables"]:
        for elem in item.get("map", {}).get("elem", []):
            key, data = elem
            key = key["elem"]["val"] if "elem" in key else key  # with a counter or timeout, wrapped
            out.append((tuple(key["concat"]), data))
    return out


def daemon_elements(lab):
    return {name: elements(lab.netns("rtr", "nft", "-j", "list", "map", "ip", DAEMON_TABLE, name).stdout)
            for name in MAPS}


def element_text(key, data):
    return "%s . %s . %d : %s" % (key[0], key[1], key[2], data)


def ppp_chain(name, offset, lookup):
    """As chain fast_ppp: LCP and the authentication protocols (0xc0xx and 0xc2xx, with or
    without the address and control bytes) go the normal way."""
    return ("  chain %s {\n    @th,%d,16 & 0xfd00 == 0xc000 return\n"
            "    @th,%d,32 & 0xfffffd00 == 0xff03c000 return\n    goto %s\n  }\n" % (name, offset, offset, lookup))


def ingress_chain(direction, device):
    return ("  chain %s_in {\n    type filter hook ingress device \"%s\" priority filter; policy accept;\n"
            "    meta protocol != ip return\n    ip protocol != gre return\n"
            "    @th,0,16 & 0xffff == 0x%04x jump %s_ppp\n"
            "    @th,0,16 & 0xffff == 0x%04x jump %s_ppp_ack\n"
            "    @th,0,16 & 0xff7f == 0x%04x jump %s_lookup\n  }\n"
            % (direction, device, GRE_SEQUENCE, direction, GRE_SEQUENCE_ACK, direction, GRE_ACK_ONLY, direction))


def table(copied, inside, outside):
    """The netdev table: `copied` maps each of MAPS to its (key, data) pairs; the server's GRE
    arrives on `outside` and leaves by `inside`, the client's the other way."""
    s = ["table netdev %s {\n" % TABLE]
    for name, data in MAPS.items():
        s.append("  map %s {\n    typeof %s : %s\n%s" % (name, KEY, data, "    counter\n" if name in COUNTED else ""))
        if copied.get(name):
            s.append("    elements = { %s }\n" % ", ".join(element_text(k, d) for k, d in copied[name]))
        s.append("  }\n")
    to_inside, to_outside = 'fwd ip to ip daddr device "%s"' % inside, 'fwd ip to ip daddr device "%s"' % outside
    s.append("  chain s2c_lookup {\n"
             "    ip daddr set %s map @fast_in_plain %s\n"
             "    ip daddr set %s map @fast_in_address @th,48,16 set %s map @fast_in_call_id %s\n  }\n"
             % (KEY, to_inside, KEY, KEY, to_inside))
    s.append("  chain c2s_lookup {\n    ip saddr set %s map @fast_out_source %s\n  }\n" % (KEY, to_outside))
    for direction in ("s2c", "c2s"):
        s.append(ppp_chain(direction + "_ppp", PPP_AFTER_SEQUENCE, direction + "_lookup"))
        s.append(ppp_chain(direction + "_ppp_ack", PPP_AFTER_SEQUENCE_ACK, direction + "_lookup"))
    s.append(ingress_chain("s2c", outside))
    s.append(ingress_chain("c2s", inside))
    s.append("}\n")
    return "".join(s)


def install(lab, inside="inside", outside="outside"):
    """The table from the daemon's elements now; returns the copies."""
    copied = daemon_elements(lab)
    if not any(copied[name] for name in COUNTED):
        raise RuntimeError("netdev-prototype: the daemon has offloaded no call to copy")
    subprocess.run(["ip", "netns", "exec", lab.ns["rtr"], "nft", "-f", "-"], input=table(copied, inside, outside),
                   text=True, check=True)
    return copied


def forwarded(lab):
    """Packets the prototype's elements counted, summed over its counted maps."""
    copied = {name: lab.netns("rtr", "nft", "-j", "list", "map", "netdev", TABLE, name).stdout for name in COUNTED}
    total = 0
    for listing in copied.values():
        for item in json.loads(listing)["nftables"]:
            for key, _ in item.get("map", {}).get("elem", []):
                total += key["elem"].get("counter", {}).get("packets", 0) if "elem" in key else 0
    return total


# -- correctness (run_bench.py --check-prototype) ----------------------------------------
def capture(lab, ns, send):
    """Up to CHECK_PACKETS GRE packets arriving in namespace `ns` while send() runs: per
    packet source, destination, TTL, IPv4 checksum status, Key."""
    fields = ["ip.src", "ip.dst", "ip.ttl", "ip.checksum.status", "gre.key.call_id"]
    cmd = ["ip", "netns", "exec", lab.ns[ns], "tshark", "-n", "-i", "eth0", "-f", "ip proto 47", "-c",
           str(CHECK_PACKETS), "-a", "duration:%d" % CAPTURE_SECONDS, "-o", "ip.check_checksum:TRUE", "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    tshark = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)  # tshark's start-up
    send()
    out, _ = tshark.communicate(timeout=CAPTURE_SECONDS + 5)
    return [dict(zip(fields, line.split("\t"))) for line in out.splitlines() if line.strip()]


def wrong(packets, source, destination, key):
    """What is wrong with the captured packets (empty: all as expected)."""
    problems = [] if len(packets) == CHECK_PACKETS else ["%d of %d captured" % (len(packets), CHECK_PACKETS)]
    for p in packets:
        got = (p["ip.src"], p["ip.dst"], int(p["gre.key.call_id"] or -1), int(p["ip.ttl"]), p["ip.checksum.status"])
        expected = (source, destination, key, DEFAULT_TTL - 1, CHECKSUM_GOOD)
        if got != expected:
            problems.append("got %s, expected %s" % (got, expected))
    return problems


def send_lcp(lab, ns, source, destination, key):
    """One GRE packet carrying an LCP Configure-Request: the prototype must leave it alone."""
    frame = struct.pack("!HHHHI", GRE_SEQUENCE, 0x880B, 8, key, 1) + bytes.fromhex("ff03c0210101000400000000")[:8]
    code = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47); s.bind((%r, 0)); "
            "s.sendto(bytes.fromhex(%r), (%r, 0))" % (source, frame.hex(), destination))
    lab.netns(ns, "/usr/bin/python3", "-c", code)


def check(lab, flood_burst, paths, expected, arrived):
    """Each direction's GRE arrives rewritten (addresses, Key, checksum, TTL one less), by
    the prototype (its counters grow), and an LCP frame is not taken by it but still arrives
    (the normal way: the daemon's queue). `expected` per direction: (source, destination,
    Key) as the receiver must see them; arrived(namespace): GRE counted there."""
    problems = []
    for d, (side, source, target, keys, receiver) in paths.items():
        before = forwarded(lab)
        packets = capture(lab, receiver, lambda: flood_burst(d))
        problems += ["%s: %s" % (d, p) for p in wrong(packets, *expected[d])]
        if forwarded(lab) <= before:
            problems.append("%s: the prototype's counters did not grow" % d)
        before, counted = forwarded(lab), arrived(receiver)
        send_lcp(lab, side, source, target, keys[0])
        time.sleep(LCP_WAIT_SECONDS)
        if forwarded(lab) != before:
            problems.append("%s: an LCP frame was taken by the prototype" % d)
        if arrived(receiver) != counted + 1:
            problems.append("%s: the LCP frame did not arrive the normal way" % d)
    return problems
