// Prometheus text exposition format (version 0.0.4) built from the counter lists
// (alg/core/counter_list.hpp): every counter of a list becomes
// pptp_alg_<group>_<key>_total with its HELP and TYPE lines, so that a counter added to a
// list shows up in the metrics without another line of code. Gauges for what is live now.
// Pure text building: served by `pptp-alg ctl metrics` and the optional HTTP listener.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pptp::control {

inline constexpr std::string_view kMetricsPrefix = "pptp_alg_";
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// A latency histogram in fixed buckets (upper bounds in seconds; Prometheus `le`). The
// daemon's verdict latency: from reading a queued packet to its verdict queued. The bounds
// span a fast verdict (10 us) to one that stalls the queue (50 ms).
inline constexpr std::array<double, 8> kLatencyBoundsSeconds{0.00001, 0.00005, 0.0001, 0.0005,
                                                              0.001,   0.005,   0.01,   0.05};
struct LatencyHistogram {
  std::array<std::uint64_t, kLatencyBoundsSeconds.size() + 1> buckets{};  // per bucket; the last: above all
  std::uint64_t count = 0;
  double sum_seconds = 0;
  void observe(double seconds);
};

class MetricsText {
 public:
  // pptp_alg_<group>_<key>_total (characters outside [a-zA-Z0-9_] become '_').
  void counter(std::string_view group, std::string_view key, std::string_view help, std::uint64_t value);
  // pptp_alg_<name>.
  void gauge(std::string_view name, std::string_view help, double value);
  // pptp_alg_<name>{<label>="<value>"}, one sample per pair, one family (calls by state).
  void gauges(std::string_view name, std::string_view help, std::string_view label,
              const std::vector<std::pair<std::string_view, double>>& samples);
  // pptp_alg_<name>_bucket{le=...} (cumulative, +Inf last), _sum and _count.
  void histogram(std::string_view name, std::string_view help, const LatencyHistogram& h);
  // Every counter of a list through its visitor, e.g. nft::visit_queue_counters.
  template <class Counters, class Visit>
  void counters(std::string_view group, const Counters& c, Visit&& visit) {
    visit(c, [&](std::string_view key, std::uint64_t value, std::string_view help) { counter(group, key, help, value); });
  }
  const std::string& text() const { return out_; }

 private:
  void family(const std::string& name, std::string_view help, std::string_view type);
  std::string out_;
};

// A metric name's part: [a-zA-Z0-9_] kept, anything else '_'.
std::string metric_name_part(std::string_view text);

}  // namespace pptp::control
