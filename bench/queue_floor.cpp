// The queued path's floor (issue 17, item 4): the daemon's own NFQUEUE socket
// (nft::NetlinkQueue: recvmmsg into slots, verdicts batched into one sendmsg) with no
// gateway behind it, every packet accepted as it came. bench/setup_bench.py's mode
// `queue-floor` runs it behind pptp-alg's own rules, so the sequential set-up through it
// costs the two queue trips per round trip and nothing of pptp-alg's work: the best any
// consumer of this queue can do on the machine. Not a test; not for a real firewall (it
// tracks nothing and translates nothing).
//
//     queue_floor --queue 0 [--seconds 600]
//
// Prints `ready` once bound, and at exit (SIGTERM, SIGINT or --seconds) one JSON line with
// the packets it accepted.
#include <poll.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include "nftables/queue.hpp"

namespace {

volatile std::sig_atomic_t stop_requested = 0;
extern "C" void on_signal(int) { stop_requested = 1; }

struct Options {
  std::uint16_t queue = 0;
  double seconds = 600;  // a bound: a benchmark that dies leaves no consumer behind for long
};

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--queue") {
      o.queue = static_cast<std::uint16_t>(std::strtoul(argv[i + 1], nullptr, 10));
    } else if (flag == "--seconds") {
      o.seconds = std::strtod(argv[i + 1], nullptr);
    } else {
      return false;
    }
  }
  return argc % 2 == 1;
}

double now() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// One wake: what is queued, each accepted unread, the verdicts in one send.
std::size_t accept_ready(pptp::nft::NetlinkQueue& q) {
  const std::size_t n = q.receive([&](pptp::nft::QueuedPacket& p) { q.verdict(p.id, pptp::nft::VerdictKind::Accept); });
  q.flush();
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr, "usage: queue_floor [--queue N] [--seconds S]\n");
    return 2;
  }
  auto opened = pptp::nft::NetlinkQueue::open(pptp::nft::QueueOptions{o.queue, false});
  if (!opened) {
    std::fprintf(stderr, "queue_floor: cannot bind queue %u: %s (run as root, in the router's namespace)\n",
                 o.queue, opened.error().c_str());
    return 1;
  }
  pptp::nft::NetlinkQueue& q = **opened;
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::printf("ready queue=%u\n", o.queue);
  std::fflush(stdout);
  const double end = now() + o.seconds;
  std::size_t accepted = 0;
  pollfd fd{q.fd(), POLLIN, 0};
  while (stop_requested == 0 && now() < end) {
    if (poll(&fd, 1, 200) > 0) accepted += accept_ready(q);
  }
  std::printf("{\"accepted\": %zu}\n", accepted);
  return 0;
}
