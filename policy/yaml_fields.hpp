// Reading rules.yaml's fields: each reader returns the value or fails with the node's
// line and column (policy/loader.cpp turns the failure into a PolicyError). Loader-only:
// the packet path never links this.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "policy/loader.hpp"

namespace pptp::policy::yaml_fields {

// Thrown inside the loader only, caught in parse_policy: the packet path never sees it.
struct Failure {
  PolicyError error;
};

[[noreturn]] void fail(const YAML::Node& at, std::string message);
std::string scalar(const YAML::Node& n, std::string_view what);
// The keys a mapping may have; anything else is a typo.
void only_keys(const YAML::Node& map, std::string_view where, std::initializer_list<std::string_view> allowed);
std::uint32_t number(const YAML::Node& n, std::string_view what, std::uint32_t low, std::uint32_t high);
double rate(const YAML::Node& n, std::string_view what);  // set-ups per second
bool boolean(const YAML::Node& n, std::string_view what);
// A single value or a list of values.
std::vector<YAML::Node> items(const YAML::Node& n, std::string_view what);

}  // namespace pptp::policy::yaml_fields
