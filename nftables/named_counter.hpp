// The kernel's named counters of the daemon's tables (nft `counter NAME` objects), read for
// the status and the metrics: `gre_spoofed` in table ip pptp_alg (GRE whose source does
// not route back through its interface, dropped first: docs/packet-path.md "Integrity")
// and `no_egress` in table netdev pptp_alg_fast (a rewritten packet with no way out,
// dropped). Without them an operator had to ask nft.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "alg/core/result.hpp"

struct mnl_socket;

namespace pptp::nft {

enum class TableFamily : std::uint8_t { Ip, Netdev };

struct NamedCount {
  std::uint64_t packets = 0, bytes = 0;
};

class NamedCounters {
 public:
  static Result<std::unique_ptr<NamedCounters>, std::string> open();
  ~NamedCounters();
  NamedCounters(const NamedCounters&) = delete;
  NamedCounters& operator=(const NamedCounters&) = delete;

  // NFT_MSG_GETOBJ of one counter; an error when it (or its table) is not there.
  Result<NamedCount, std::string> read(TableFamily family, std::string_view table, std::string_view name);

 private:
  NamedCounters() = default;
  mnl_socket* socket_ = nullptr;
  std::uint32_t sequence_ = 1;
  int last_errno_ = 0;
};

}  // namespace pptp::nft
