// rules.yaml -> Policy (the schema is docs/policy.md). Every error names the line and column
// and says what to write instead; unknown keys are errors, so a typo never silently widens
// what the firewall lets through. Runs at start, on reload and in `pptp-alg check`, never on
// the packet path.
#pragma once

#include <string>
#include <string_view>

#include "alg/core/result.hpp"
#include "policy/policy.hpp"

namespace pptp::policy {

struct PolicyError {
  int line = 0;    // 1-based; 0 when the error concerns the whole file
  int column = 0;  // 1-based
  std::string message;
};
std::string to_string(const PolicyError& e, std::string_view origin);

// Which mode reads the policy: `on_deny: refuse` needs the proxy (it answers with RFC 2637
// result codes, docs/proxy.md); the transparent gateway rejects it rather than silently drop.
// Any: `pptp-alg check`, which does not know the daemon's mode.
enum class PolicyMode : std::uint8_t { Transparent, Proxy, Any };

Result<Policy, PolicyError> parse_policy(std::string_view yaml, std::string origin = "rules.yaml",
                                         PolicyMode mode = PolicyMode::Transparent);
// Reads and parses a file; the error is ready to print ("FILE:LINE:COLUMN: what").
Result<Policy, std::string> load_policy_file(const std::string& path, PolicyMode mode = PolicyMode::Transparent);

}  // namespace pptp::policy
