#include "proxy/listener.hpp"

#include <arpa/inet.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include <spdlog/spdlog.h>

namespace pptp::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
// A failure that another try may not meet: a connection the client gave up on, or
// descriptors and memory that free up as connections end.
bool worth_retrying_later(const boost::system::error_code& ec) {
  const int e = ec.value();
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}
}  // namespace

std::uint32_t connections_that_fit(std::uint32_t at_most) {
  rlimit l{};
  if (::getrlimit(RLIMIT_NOFILE, &l) != 0) return at_most;
  const rlim_t wanted = std::min<rlim_t>(l.rlim_max, kWantedDescriptors);
  if (l.rlim_cur < wanted) {
    rlimit raised = l;
    raised.rlim_cur = wanted;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) l = raised;
  }
  const std::uint64_t usable = l.rlim_cur > kReservedDescriptors + 2 ? (l.rlim_cur - kReservedDescriptors) / 2 : 1;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(usable, at_most));
}

Result<bool, std::string> ProxyListener::open(std::uint16_t port) {
  boost::system::error_code ec;
  const tcp::endpoint listen(asio::ip::address_v4::any(), port);
  acceptor_.open(listen.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::receive_buffer_size(kLegReceiveBuffer), ec);
  if (!ec) acceptor_.bind(listen, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unexpected("cannot listen on port " + std::to_string(port) + ": " + ec.message());
  return true;
}

void ProxyListener::start(OnAccept on_accept) {
  on_accept_ = std::move(on_accept);
  accept();
}

void ProxyListener::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    accepted(ec, std::move(socket));
  });
}

void ProxyListener::accepted(const boost::system::error_code& ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted) return;
  if (!ec) {
    on_accept_(std::move(socket));
    accept();
    return;
  }
  ++counters_.accept_failures;
  const bool later = worth_retrying_later(ec);
  // One line a second at most: a client that keeps connecting would otherwise fill the log.
  const auto now = std::chrono::steady_clock::now();
  if (now - last_warned_ >= std::chrono::seconds(1)) {
    last_warned_ = now;
    spdlog::warn("proxy_accept_failed error=\"{}\" failures={} retry_ms={}", ec.message(), counters_.accept_failures,
                 later ? kAcceptRetry.count() : 0);
  }
  if (!later) {
    accept();
    return;
  }
  retry_.expires_after(kAcceptRetry);
  retry_.async_wait([this](const boost::system::error_code& e) {
    if (!e) accept();
  });
}

void ProxyListener::reset(tcp::socket& socket) {
  boost::system::error_code ec;
  socket.set_option(asio::socket_base::linger(true, 0), ec);
  socket.close(ec);
}

std::optional<tcp::endpoint> ProxyListener::original_destination(tcp::socket& socket) {
  sockaddr_in dst{};
  socklen_t len = sizeof dst;
  if (::getsockopt(socket.native_handle(), SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0) return std::nullopt;
  return tcp::endpoint(asio::ip::address_v4(ntohl(dst.sin_addr.s_addr)), ntohs(dst.sin_port));
}

}  // namespace pptp::proxy
