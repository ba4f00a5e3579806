#include "policy/yaml_fields.hpp"

#include <algorithm>
#include <sstream>

namespace pptp::policy::yaml_fields {

[[noreturn]] void fail(const YAML::Node& at, std::string message) {
  const YAML::Mark m = at.Mark();
  throw Failure{PolicyError{m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0, std::move(message)}};
}

std::string scalar(const YAML::Node& n, std::string_view what) {
  if (!n.IsScalar()) fail(n, std::string(what) + " must be a single value");
  return n.Scalar();
}

// The keys a mapping may have; anything else is a typo.
void only_keys(const YAML::Node& map, std::string_view where, std::initializer_list<std::string_view> allowed) {
  if (!map.IsMap()) fail(map, std::string(where) + " must be a mapping (key: value)");
  for (auto it = map.begin(); it != map.end(); ++it) {
    const std::string key = it->first.IsScalar() ? it->first.Scalar() : std::string();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      fail(it->first, "unknown key '" + key + "' in " + std::string(where) + " (allowed: " + list + ")");
    }
  }
}

std::uint32_t number(const YAML::Node& n, std::string_view what, std::uint32_t low, std::uint32_t high) {
  const std::string text = scalar(n, what);
  std::uint64_t v = 0;
  const bool digits = !text.empty() && text.size() <= 10 &&
                      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) v = std::stoull(text);
  if (!digits || v < low || v > high) {
    fail(n, std::string(what) + " must be a whole number from " + std::to_string(low) + " to " +
                std::to_string(high) + ", not '" + text + "'");
  }
  return static_cast<std::uint32_t>(v);
}

double rate(const YAML::Node& n, std::string_view what) {
  const std::string text = scalar(n, what);
  std::istringstream in(text);
  double v = 0;
  in >> v;
  if (in.fail() || !in.eof() || !(v > 0) || v > 1e6) {
    fail(n, std::string(what) + " must be a positive number (set-ups per second), not '" + text + "'");
  }
  return v;
}

bool boolean(const YAML::Node& n, std::string_view what) {
  const std::string text = scalar(n, what);
  if (text == "true" || text == "yes") return true;
  if (text == "false" || text == "no") return false;
  fail(n, std::string(what) + " must be true or false, not '" + text + "'");
}

// A single value or a list of values.
std::vector<YAML::Node> items(const YAML::Node& n, std::string_view what) {
  std::vector<YAML::Node> out;
  if (n.IsScalar()) {
    out.push_back(n);
  } else if (n.IsSequence()) {
    for (const auto& x : n) {
      if (!x.IsScalar()) fail(x, std::string(what) + ": each entry must be a single value");
      out.push_back(x);
    }
  } else {
    fail(n, std::string(what) + " must be a value or a list of values");
  }
  return out;
}

}  // namespace pptp::policy::yaml_fields
