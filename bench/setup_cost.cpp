// The control plane's cost per call, in process and independent of the machine's load
// (docs/performance.md, "Memory per call and set-up cost"): control connections and calls
// are set up through the gateway (the daemon's packet handling without the queue), every
// call's first GRE is fed until the call is offloaded, and the bench reports the heap the
// gateway holds per call and the allocations per packet. For instructions per set-up run it
// under callgrind: `valgrind --tool=callgrind --toggle-collect=pptp_bench_feed ...` counts
// only the gateway's work on the crafted packets (see docs/performance.md for the command).
//
//   setup_cost --connections 10000 --calls-per-connection 1 [--gre-packets 64]
//
// Not a test: numbers for a person to compare. Addresses are RFC 5737.
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/sinks/null_sink.h>

#include "gateway/gateway.hpp"
#include "nat/checksum.hpp"
#include "tests/support/packets.hpp"
#include "tests/support/router_view.hpp"

namespace {

// ---- A counting allocator: live heap bytes and allocations, for the whole process ---------

std::atomic<std::size_t> g_live_bytes{0};
std::atomic<std::uint64_t> g_allocations{0};

void* counted_alloc(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  g_live_bytes += malloc_usable_size(p);
  ++g_allocations;
  return p;
}

void counted_free(void* p) {
  if (p == nullptr) return;
  g_live_bytes -= malloc_usable_size(p);
  std::free(p);
}

}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }

namespace {

using namespace pptp;
using Packet = std::vector<std::uint8_t>;
namespace flags = wire::tcp_flags;

using test::router::kPublic;
using test::router::kServer;
constexpr std::uint16_t kFirstPnsCallId = 1000;
constexpr std::uint16_t kFirstPacCallId = 300;

struct Options {
  std::size_t connections = 1000;
  std::size_t calls_per_connection = 1;
  std::size_t gre_packets = track::kAuthScanPackets;  // per call, half each way: enough to offload it
};

struct Totals {
  std::size_t packets = 0;
  std::uint64_t allocations = 0;
};


// The gateway's work on one packet, and nothing else (callgrind's --toggle-collect names it:
// C linkage keeps the name plain; the verdict comes back through a pointer because a C
// function may not return a C++ type, clang's -Wreturn-type-c-linkage).
extern "C" __attribute__((noinline)) void pptp_bench_feed(gateway::Gateway& gw, Packet& p, double time,
                                                          gateway::Verdict* verdict) {
  const gateway::PacketMeta meta{time, 0, kPublic};
  *verdict = gw.process(p, meta);
}

// One control connection seen from the router: both endpoints' sequence numbers.
using Connection = test::router::Client;

class Bench {
 public:
  explicit Bench(const Options& o) : options_(o), gw_(gateway_options(), quiet()) {}

  // Opens connection `n` and places its calls; then the calls' first GRE both ways.
  void run_connection(std::size_t n) {
    Connection c;
    // 192.0.2.0/24, 60,000 ports per address from 1024, never 1723: a client on the PPTP
    // port is taken for the server (the tracker's PAC is the side on 1723), and its one call
    // never came up (the 64 GRE packets dropped with --connections 700 and more).
    auto port = static_cast<std::uint16_t>(1024 + n % 60000);
    if (port >= wire::kPptpPort) ++port;
    c.pns = {wire::Ipv4Address{test::addr("192.0.2.1").value + static_cast<std::uint32_t>(n / 60000)}, port};
    feed(c.to_pac({}, flags::kSyn));
    feed(c.to_pns({}, flags::kSyn | flags::kAck));
    feed(c.to_pac(test::bytes_of(wire::StartControlConnectionRequest{})));
    wire::StartControlConnectionReply reply;
    reply.result_code = 1;
    feed(c.to_pns(test::bytes_of(reply)));
    for (std::size_t k = 0; k < options_.calls_per_connection; ++k) place_call(c);
  }

  // The loop's part of a route change with every call up (--fast-path netdev): selecting the
  // calls to one client address, against listing every call (what it did before s13). Median
  // of kSelectRepeats, in microseconds.
  std::pair<double, double> select_costs() const {
    constexpr int kSelectRepeats = 21;
    const std::set<std::uint32_t> one{test::addr("192.0.2.1").value + 1};  // a client's, or none
    std::vector<double> selected, listed;
    for (int i = 0; i < kSelectRepeats; ++i) {
      selected.push_back(micros([&] { return gw_.offloaded_calls_to(one).size(); }));
      listed.push_back(micros([&] { return gw_.offloaded_calls().size(); }));
    }
    std::sort(selected.begin(), selected.end());
    std::sort(listed.begin(), listed.end());
    return {selected[kSelectRepeats / 2], listed[kSelectRepeats / 2]};
  }

  template <typename Work>
  static double micros(Work&& work) {
    const auto start = std::chrono::steady_clock::now();
    volatile std::size_t keep = work();
    (void)keep;
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  }

  void report() {
    gw_.take_offload_changes();
    const auto [selected_us, listed_us] = select_costs();
    const std::size_t calls = options_.connections * options_.calls_per_connection;
    const double heap = static_cast<double>(g_live_bytes.load() - heap_before_);
    std::printf(
        "{\"connections\": %zu, \"calls\": %zu, \"offloaded\": %zu, \"heap_bytes_per_call\": %.1f, "
        "\"setup_packets\": %zu, \"allocations_per_setup_packet\": %.2f, \"gre_packets\": %zu, "
        "\"allocations_per_gre_packet\": %.2f, \"dropped\": %zu, \"reroute_select_us\": %.1f, "
        "\"all_calls_listed_us\": %.1f}\n",
        options_.connections, calls, gw_.offloader().offloaded(), heap / static_cast<double>(calls), setup_.packets,
        ratio(setup_.allocations, setup_.packets), gre_.packets, ratio(gre_.allocations, gre_.packets), dropped_, selected_us, listed_us);
  }

  void start() { heap_before_ = g_live_bytes.load(); }

 private:
  static double ratio(std::uint64_t a, std::size_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : 0; }

  static gateway::GatewayOptions gateway_options() {
    gateway::GatewayOptions o;
    o.fast_path = true;
    o.budgets.memory_bytes = std::size_t{4096} * gateway::kMiB;  // the daemon bench's limits (bench/run_bench.py)
    o.budgets.source_connections = o.budgets.source_half_open = o.budgets.source_calls = 1000000;
    return o;
  }
  static std::shared_ptr<spdlog::logger> quiet() {
    // Info, as the daemon logs: its lines are formatted, then dropped.
    auto log = std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
    log->set_level(spdlog::level::info);
    return log;
  }

  gateway::Verdict feed(Packet p, Totals* into = nullptr) {
    Totals& t = into != nullptr ? *into : setup_;
    const std::uint64_t before = g_allocations.load();
    gateway::Verdict v{};
    pptp_bench_feed(gw_, p, now_ += 0.0001, &v);
    t.allocations += g_allocations.load() - before;
    ++t.packets;
    if (v.action == gateway::Action::Drop) ++dropped_;
    last_ = std::move(p);
    return v;
  }

  void place_call(Connection& c) {
    wire::OutgoingCallRequest request;
    request.call_id = next_pns_call_id_++;
    feed(c.to_pac(test::bytes_of(request)));
    // The Call ID the server was told (the gateway may have translated it): RFC 2637 2.7,
    // at offset 12 of the message, after 40 bytes of IPv4 and TCP headers.
    const std::uint16_t told = load_u16(&last_[40 + 12]);
    wire::OutgoingCallReply answer;
    answer.call_id = next_pac_call_id_++;
    answer.peer_call_id = told;
    answer.result_code = 1;
    feed(c.to_pns(test::bytes_of(answer)));
    const Packet lcp = test::ppp(0xC021, {9, 1, 0, 8, 0, 0, 0, 0});  // LCP Echo-Request (RFC 1661 5.8)
    for (std::size_t i = 0; i < options_.gre_packets; ++i) {
      const bool to_client = i % 2 == 0;
      Packet g = to_client ? test::gre(kServer, kPublic, told, static_cast<std::uint32_t>(i), lcp)
                           : test::gre(c.pns.address, kServer, answer.call_id, static_cast<std::uint32_t>(i), lcp);
      nat::update_ipv4_header_checksum(g, 20);
      feed(std::move(g), &gre_);
    }
    gw_.take_offload_changes();  // the daemon applies them at once
  }

  Options options_;
  gateway::Gateway gw_;
  double now_ = 1;
  std::uint16_t next_pns_call_id_ = kFirstPnsCallId, next_pac_call_id_ = kFirstPacCallId;
  Totals setup_, gre_;
  std::size_t dropped_ = 0;
  std::size_t heap_before_ = 0;
  Packet last_;
};

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const auto value = static_cast<std::size_t>(std::strtoull(argv[i + 1], nullptr, 10));
    if (flag == "--connections") {
      o.connections = value;
    } else if (flag == "--calls-per-connection") {
      o.calls_per_connection = value;
    } else if (flag == "--gre-packets") {
      o.gre_packets = value;
    } else {
      return false;
    }
  }
  return argc % 2 == 1 && o.connections > 0 && o.calls_per_connection > 0 &&
         o.calls_per_connection <= track::kMaxCallsPerConnection;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr, "usage: setup_cost [--connections N] [--calls-per-connection K] [--gre-packets P]\n");
    return 2;
  }
  Bench bench(o);
  bench.start();
  for (std::size_t n = 0; n < o.connections; ++n) bench.run_connection(n);
  bench.report();
  return 0;
}
