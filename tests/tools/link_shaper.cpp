// A slow, reordering, lossy link for the E2E suites (tests/e2e/test_link_e2e.py), where the
// kernel has no netem: the packets a test's own namespace queues to it (xtables NFQUEUE)
// get their verdicts late, out of order or as drops. NFQUEUE lets verdicts go in any order;
// each accepted packet is re-injected when its verdict comes.
//
//   link_shaper --queue N [--delay-ms D] [--swap-every K] [--drop-every M] [--seconds S]
//
//   --delay-ms D     every accepted packet leaves D ms after it came (order kept)
//   --swap-every K   every K-th packet carrying data (a TCP segment with payload, or any
//                    other protocol's packet) waits for the next of its flow (addresses,
//                    protocol, TCP ports) that carries data: the two leave swapped (after
//                    at most kMaxSwapWaitMs it leaves alone)
//   --drop-every M   every M-th packet is dropped (TCP sends it again), RSTs excepted: TCP
//                    never sends a RST again, and a lost one leaves every middlebox (and
//                    the peer) to its timers
//
// Prints "ready" once bound. On SIGTERM or SIGINT, or after S seconds: accepts what it holds,
// prints one JSON line {"packets", "delayed", "swapped", "dropped"} and exits 0.
#include <poll.h>
#include <signal.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "alg/wire/ip.hpp"
#include "nftables/queue.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using pptp::nft::NetlinkQueue;
using pptp::nft::VerdictKind;

// A swapped packet whose successor does not come leaves alone after this: a lone last
// segment is delayed, not lost.
constexpr int kMaxSwapWaitMs = 300;

volatile std::sig_atomic_t stop_requested = 0;
void on_signal(int) { stop_requested = 1; }

struct Options {
  std::uint16_t queue = 0;
  int delay_ms = 0;
  unsigned swap_every = 0;
  unsigned drop_every = 0;
  int seconds = 600;
};

struct Pending {
  std::uint32_t id;
  Clock::time_point due;
  unsigned long number;  // in arrival order
  bool data;
  std::uint64_t flow;  // PacketView::flow
};

struct Shaper {
  Options options;
  std::deque<Pending> pending;     // accepted, leaving at `due`, in arrival order
  std::optional<Pending> swapped;  // waits for the next packet to leave first
  unsigned long packets = 0, data_packets = 0, delayed = 0, swaps = 0, dropped = 0;

  void take(NetlinkQueue& q, std::uint32_t id, bool data, bool rst, std::uint64_t flow, Clock::time_point now) {
    ++packets;
    if (data) ++data_packets;
    if (options.drop_every != 0 && packets % options.drop_every == 0 && !rst) {
      ++dropped;
      q.verdict(id, VerdictKind::Drop);
      return;
    }
    if (data && options.swap_every != 0 && data_packets % options.swap_every == 0 && !swapped) {
      swapped = Pending{id, now + std::chrono::milliseconds(kMaxSwapWaitMs), packets, true, flow};
      return;
    }
    if (options.delay_ms > 0) ++delayed;
    pending.push_back({id, now + std::chrono::milliseconds(options.delay_ms), packets, data, flow});
  }

  // Gives the verdicts that are due; the swapped one right after a packet of its flow with
  // data that came after it (other packets between them leave in their turn).
  void release_due(NetlinkQueue& q, Clock::time_point now, bool all) {
    bool overtaken = false;
    while (!pending.empty() && (all || pending.front().due <= now)) {
      q.verdict(pending.front().id, VerdictKind::Accept);
      const Pending& p = pending.front();
      if (swapped && p.data && p.flow == swapped->flow && p.number > swapped->number) overtaken = true;
      pending.pop_front();
    }
    if (swapped && (all || overtaken || swapped->due <= now)) {
      if (overtaken) ++swaps;
      q.verdict(swapped->id, VerdictKind::Accept);
      swapped.reset();
    }
    q.flush();
  }

  int wait_ms(Clock::time_point now) const {
    Clock::time_point next = now + std::chrono::milliseconds(100);
    if (!pending.empty() && pending.front().due < next) next = pending.front().due;
    if (swapped && swapped->due < next) next = swapped->due;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count();
    return ms < 0 ? 0 : static_cast<int>(ms) + 1;
  }
};

// What the shaper needs of a packet, from the project's own parsers (alg/wire): whether it
// carries data (a TCP segment with payload, not a bare ACK, SYN or FIN; or a packet of any
// other protocol: GRE), whether it is a RST, and its flow (addresses and protocol, and the
// ports for TCP). A packet that does not parse is shaped as data of flow 0.
struct PacketView {
  bool data = true;
  bool rst = false;
  std::uint64_t flow = 0;
};

PacketView view_of(std::span<const std::uint8_t> bytes) {
  PacketView v;
  const auto ip = pptp::wire::parse_ipv4(bytes);
  if (!ip) return v;
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
  auto mix = [&h](std::uint64_t value, int octets) {
    for (int i = 0; i < octets; ++i) h = (h ^ ((value >> (8 * i)) & 0xffU)) * 1099511628211ULL;
  };
  mix(ip->protocol, 1);
  mix(ip->source.value, 4);
  mix(ip->destination.value, 4);
  if (ip->protocol == pptp::wire::kIpProtocolTcp) {
    const auto tcp = pptp::wire::parse_tcp(ip->payload);
    if (!tcp) return v;
    v.data = !tcp->payload.empty();
    v.rst = tcp->has(pptp::wire::tcp_flags::kRst);
    mix(tcp->source_port, 2);
    mix(tcp->destination_port, 2);
  }
  v.flow = h;
  return v;
}

bool parse_options(int argc, char** argv, Options& o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const long value = std::strtol(argv[i + 1], nullptr, 10);
    if (value < 0 || value > 65535) return false;
    if (flag == "--queue") o.queue = static_cast<std::uint16_t>(value);
    else if (flag == "--delay-ms") o.delay_ms = static_cast<int>(value);
    else if (flag == "--swap-every") o.swap_every = static_cast<unsigned>(value);
    else if (flag == "--drop-every") o.drop_every = static_cast<unsigned>(value);
    else if (flag == "--seconds") o.seconds = static_cast<int>(value);
    else return false;
  }
  return argc % 2 == 1;
}

}  // namespace

int main(int argc, char** argv) {
  Shaper shaper;
  if (!parse_options(argc, argv, shaper.options)) {
    std::cerr << "usage: link_shaper --queue N [--delay-ms D] [--swap-every K] [--drop-every M] [--seconds S]\n";
    return 2;
  }
  auto queue = NetlinkQueue::open({.queue = shaper.options.queue, .fail_open = false});
  if (!queue) {
    std::cerr << "link_shaper: cannot bind queue " << shaper.options.queue << ": " << queue.error()
              << " (run as root in the namespace whose rules queue to it)\n";
    return 1;
  }
  NetlinkQueue& q = **queue;
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::cout << "ready" << std::endl;
  const Clock::time_point end = Clock::now() + std::chrono::seconds(shaper.options.seconds);
  while (stop_requested == 0 && Clock::now() < end) {
    pollfd p{q.fd(), POLLIN, 0};
    ::poll(&p, 1, shaper.wait_ms(Clock::now()));
    const Clock::time_point now = Clock::now();
    q.receive([&](pptp::nft::QueuedPacket& packet) {
      const PacketView v = view_of(packet.payload);
      shaper.take(q, packet.id, v.data, v.rst, v.flow, now);
    });
    shaper.release_due(q, Clock::now(), false);
  }
  shaper.release_due(q, Clock::now(), true);
  std::cout << "{\"packets\": " << shaper.packets << ", \"delayed\": " << shaper.delayed
            << ", \"swapped\": " << shaper.swaps << ", \"dropped\": " << shaper.dropped << "}" << std::endl;
  return 0;
}
