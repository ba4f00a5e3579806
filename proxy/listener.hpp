// Proxy mode's listener (docs/proxy.md, "Limits"): where the REDIRECTed TCP/1723 connections
// are accepted. A connection over the proxy's limits is reset at once (RST, before anything
// of it is read or any connection to its server made); a failed accept (the process out of
// descriptors, the kernel out of memory) is counted and tried again after kAcceptRetry, not
// at once: a listener whose queue holds a connection it cannot take would otherwise spin.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>  // before Asio (std::exchange)

#include <boost/asio.hpp>

#include "alg/core/result.hpp"
#include "proxy/limits.hpp"

namespace pptp::proxy {

inline constexpr std::chrono::milliseconds kAcceptRetry{100};
// Descriptors kept for everything else (sockets of the GRE relay, control, metrics, netlink,
// the status file, iptables at exit) when the connection limit is worked out.
inline constexpr std::uint64_t kReservedDescriptors = 64;
// The soft descriptor limit is raised to the hard one, up to this.
inline constexpr std::uint64_t kWantedDescriptors = 1u << 16;

// Raises the soft RLIMIT_NOFILE to the hard limit (at most kWantedDescriptors) and returns
// how many client control connections fit at two descriptors each (the client leg and the
// server leg), beside kReservedDescriptors; at least 1.
std::uint32_t connections_that_fit(std::uint32_t at_most);

class ProxyListener {
 public:
  using OnAccept = std::function<void(boost::asio::ip::tcp::socket)>;
  explicit ProxyListener(boost::asio::io_context& io) : acceptor_(io), retry_(io) {}

  Result<bool, std::string> open(std::uint16_t port);  // 0: a port of the kernel's choice (tests)
  // Accepts until the io_context stops; each connection goes to `on_accept`.
  void start(OnAccept on_accept);
  // Ends `socket` with a RST (SO_LINGER 0): the client's TCP learns at once, and no
  // TIME_WAIT is left here.
  static void reset(boost::asio::ip::tcp::socket& socket);
  // Where the client meant to go before the REDIRECT (netfilter's SO_ORIGINAL_DST).
  static std::optional<boost::asio::ip::tcp::endpoint> original_destination(boost::asio::ip::tcp::socket& socket);
  const ListenerCounters& counters() const { return counters_; }
  std::uint16_t port() const {
    boost::system::error_code ec;
    return acceptor_.local_endpoint(ec).port();
  }

 private:
  void accept();
  void accepted(const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket);

  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  OnAccept on_accept_;
  ListenerCounters counters_;
  std::chrono::steady_clock::time_point last_warned_{};
};

}  // namespace pptp::proxy
