// Hearing at once that the firewall removed our rules (issue 15): nf_tables multicasts every
// committed change to the NFNLGRP_NFTABLES group (what `nft monitor` prints). The daemon
// subscribes and, when a message says that our table, one of its chains or sets went, or
// that our table was created again (an nftables.conf include), runs its table check
// (table_watch.hpp) right away instead of at the next tick.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "alg/core/result.hpp"

struct mnl_socket;

namespace pptp::nft {

// What one datagram from the group says about table `table` of family ip.
struct TableNews {
  bool removed = false;    // NFT_MSG_DELTABLE, DELCHAIN or DELSET of our table
  bool created = false;    // NFT_MSG_NEWTABLE of our table
  bool malformed = false;  // a message or attribute ran past the datagram: the rest is unread
  std::size_t messages = 0;
};

// Pure: reads nothing outside `datagram`.
TableNews classify_table_news(std::span<const std::uint8_t> datagram, std::string_view table);

class TableMonitor {
 public:
  static Result<std::unique_ptr<TableMonitor>, std::string> open();
  ~TableMonitor();
  TableMonitor(const TableMonitor&) = delete;
  TableMonitor& operator=(const TableMonitor&) = delete;

  int fd() const;

  struct Drained {
    TableNews news;          // merged over every datagram read
    bool overrun = false;    // ENOBUFS: the kernel dropped notifications, news may be missing
  };
  // Reads every datagram waiting (non-blocking). An error other than an overrun: the text.
  Result<Drained, std::string> drain(std::string_view table);

 private:
  TableMonitor() = default;
  mnl_socket* socket_ = nullptr;
};

}  // namespace pptp::nft
