// Noticing that the firewall's own reload removed our rules (issue 15): Debian's
// /etc/nftables.conf starts with `flush ruleset`, so `systemctl reload nftables` deletes the
// table ip pptp_alg with its chains and the fast path's elements. The daemon asks the kernel
// every tick (one netlink round trip: NFT_MSG_GETTABLE and NFT_MSG_GETCHAIN) whether the
// table and its chains are there, and by the table's handle whether it is still the one it
// installed (a table re-created by an nftables.conf include has a new handle and none of
// the fast path's elements).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "alg/core/result.hpp"
#include "nftables/rules.hpp"

struct mnl_socket;

namespace pptp::nft {

// The chains of our table for these options (nft_table() in rules.cpp writes them).
std::vector<std::string_view> table_chains(Backend backend, const RuleOptions& options);

// Puts back a table that vanished whole (`nft flush ruleset`) with the nft table's backends
// (Nft, Compat: then the queue target is armed in a second transaction): through
// libnftables (run_nft), without install_rules()' listing and its iptables clean-ups (two
// seconds on a loaded router, while the calls' GRE is lost). The xtables backend's jumps
// went with the flush too: that backend needs install_rules().
Result<bool, std::string> reload_vanished_table(Backend backend, const RuleOptions& options);

struct TableState {
  std::optional<std::uint64_t> handle;  // empty: the table is gone
  bool chains_complete = false;         // every chain of table_chains() is there
};

class TableWatch {
 public:
  static Result<std::unique_ptr<TableWatch>, std::string> open();
  ~TableWatch();
  TableWatch(const TableWatch&) = delete;
  TableWatch& operator=(const TableWatch&) = delete;

  Result<TableState, std::string> look(const std::vector<std::string_view>& chains);

 private:
  TableWatch() = default;
  // Sends one GET request; true when the kernel has the object, false on ENOENT. A table's
  // answer leaves its handle in last_handle_.
  Result<bool, std::string> ask(const void* request, std::size_t length, std::uint32_t seq, bool table);

  mnl_socket* socket_ = nullptr;
  std::uint32_t sequence_ = 1;
  std::optional<std::uint64_t> last_handle_;  // from the answer being read
};

}  // namespace pptp::nft
