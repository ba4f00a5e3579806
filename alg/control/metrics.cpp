#include "alg/control/metrics.hpp"

#include <cmath>
#include <cstdio>

namespace pptp::control {

namespace {
// HELP text escapes backslash and newline (the exposition format).
std::string help_text(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (const char ch : help) {
    if (ch == '\\') {
      out += "\\\\";
    } else if (ch == '\n') {
      out += "\\n";
    } else {
      out += ch;
    }
  }
  return out;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}
}  // namespace

std::string metric_name_part(std::string_view text) {
  std::string out(text);
  for (char& ch : out) {
    const bool keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
    if (!keep) ch = '_';
  }
  return out;
}

void MetricsText::family(const std::string& name, std::string_view help, std::string_view type) {
  out_ += "# HELP " + name + " " + help_text(help) + "\n";
  out_ += "# TYPE " + name + " " + std::string(type) + "\n";
}

void MetricsText::counter(std::string_view group, std::string_view key, std::string_view help, std::uint64_t value) {
  const std::string name =
      std::string(kMetricsPrefix) + metric_name_part(group) + "_" + metric_name_part(key) + "_total";
  family(name, help, "counter");
  out_ += name + " " + std::to_string(value) + "\n";
}

void MetricsText::gauge(std::string_view name, std::string_view help, double value) {
  const std::string full = std::string(kMetricsPrefix) + metric_name_part(name);
  family(full, help, "gauge");
  out_ += full + " " + number(value) + "\n";
}

void MetricsText::gauges(std::string_view name, std::string_view help, std::string_view label,
                         const std::vector<std::pair<std::string_view, double>>& samples) {
  const std::string full = std::string(kMetricsPrefix) + metric_name_part(name);
  family(full, help, "gauge");
  for (const auto& [value, sample] : samples) {
    out_ += full + "{" + metric_name_part(label) + "=\"" + metric_name_part(value) + "\"} " + number(sample) + "\n";
  }
}

void LatencyHistogram::observe(double seconds) {
  std::size_t i = 0;
  while (i < kLatencyBoundsSeconds.size() && seconds > kLatencyBoundsSeconds[i]) ++i;
  ++buckets[i];
  ++count;
  sum_seconds += seconds;
}

void MetricsText::histogram(std::string_view name, std::string_view help, const LatencyHistogram& h) {
  const std::string full = std::string(kMetricsPrefix) + metric_name_part(name);
  family(full, help, "histogram");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.buckets.size(); ++i) {
    cumulative += h.buckets[i];
    char le[32] = "+Inf";  // the bounds as written (%g: 5e-05, not 5.0000000000000002e-05)
    if (i < kLatencyBoundsSeconds.size()) std::snprintf(le, sizeof le, "%g", kLatencyBoundsSeconds[i]);
    out_ += full + "_bucket{le=\"" + std::string(le) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out_ += full + "_sum " + number(h.sum_seconds) + "\n";
  out_ += full + "_count " + std::to_string(h.count) + "\n";
}

}  // namespace pptp::control
