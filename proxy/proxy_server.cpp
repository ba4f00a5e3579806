#include "proxy/proxy_server.hpp"

#include <arpa/inet.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <utility>  // before Asio (std::exchange)

#include <boost/asio.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "alg/daemon/files.hpp"
#include "alg/wire/gre.hpp"
#include "proxy/gre_relay.hpp"
#include "proxy/session.hpp"

namespace pptp::proxy {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

inline constexpr std::size_t kMaxGrePacket = 65535;
inline constexpr std::size_t kMaxGrePerWake = 256;  // then other work gets the loop
inline constexpr std::uint8_t kTtl = 64;

#define PPTP_PROXY_GRE_COUNTERS(X)                                                       \
  X(to_server, "to_server", "GRE packets relayed client -> server")                      \
  X(to_client, "to_client", "GRE packets relayed server -> client")                      \
  X(malformed, "malformed", "not enhanced GRE (dropped)")                                \
  X(unknown_call, "unknown_call", "a Key that is no routed call's (dropped)")            \
  X(wrong_source, "wrong_source", "a call's Key from another sender (dropped)")          \
  X(send_errors, "send_errors", "sendto failed")

struct GreCounters {
  PPTP_PROXY_GRE_COUNTERS(PPTP_COUNTER_FIELD)
};
template <class F>
void visit_gre_counters(const GreCounters& c, F&& f) {
  PPTP_PROXY_GRE_COUNTERS(PPTP_COUNTER_VISIT)
}

sockaddr_in socket_address(wire::Ipv4Address a) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_addr.s_addr = htonl(a.value);
  return s;
}

// Where the client meant to go before the REDIRECT (netfilter's SO_ORIGINAL_DST).
std::optional<tcp::endpoint> original_destination(tcp::socket& s) {
  sockaddr_in dst{};
  socklen_t len = sizeof dst;
  if (::getsockopt(s.native_handle(), SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0) return std::nullopt;
  return tcp::endpoint(asio::ip::address_v4(ntohl(dst.sin_addr.s_addr)), ntohs(dst.sin_port));
}

class ProxyServer {
 public:
  explicit ProxyServer(const ProxyOptions& o) : options_(o) {}
  ~ProxyServer() {
    if (gre_fd_ >= 0) ::close(gre_fd_);
    if (raw_fd_ >= 0) ::close(raw_fd_);
  }
  Result<bool, std::string> open();
  void run();

 private:
  void accept();
  void on_accept(tcp::socket socket);
  void wait_gre();
  void read_gre();
  void forward(const GreForward& f);
  void tick();
  void write_status();

  ProxyOptions options_;
  CallBook book_;  // before io_: sessions (destroyed with io_'s handlers) release Call IDs here
  RelayCounters counters_;
  GreCounters gre_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  asio::signal_set signals_{io_, SIGINT, SIGTERM};
  asio::steady_timer tick_{io_};
  int gre_fd_ = -1;  // IPPROTO_GRE: receives both peers' GRE, sends toward servers
  int raw_fd_ = -1;  // IPPROTO_RAW (IP_HDRINCL): sends toward clients as the server
  std::optional<asio::posix::stream_descriptor> gre_in_;
  std::array<std::uint8_t, kMaxGrePacket> packet_{};
};

Result<bool, std::string> ProxyServer::open() {
  boost::system::error_code ec;
  const tcp::endpoint listen(asio::ip::address_v4::any(), options_.listen_port);
  acceptor_.open(listen.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(listen, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unexpected("cannot listen on port " + std::to_string(options_.listen_port) + ": " + ec.message());
  gre_fd_ = ::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_GRE);
  raw_fd_ = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (gre_fd_ < 0 || raw_fd_ < 0) return unexpected(std::string("cannot open raw GRE sockets: ") + std::strerror(errno));
  gre_in_.emplace(io_, gre_fd_);
  if (options_.install_rules) {
    auto r = install_proxy_rules(ProxyRuleOptions{options_.listen_port, kGreMark, kRouteTable});
    if (!r) return unexpected(r.error());
  }
  return true;
}

void ProxyServer::run() {
  accept();
  wait_gre();
  tick();
  signals_.async_wait([this](const boost::system::error_code&, int signal) {
    spdlog::info("stopping signal={}", signal);
    io_.stop();
  });
  spdlog::info("ready mode=proxy listen_port={} rules={}", options_.listen_port, options_.install_rules);
  io_.run();
  if (options_.install_rules) remove_proxy_rules(ProxyRuleOptions{options_.listen_port, kGreMark, kRouteTable});
}

void ProxyServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (!ec) on_accept(std::move(socket));
    if (ec != asio::error::operation_aborted) accept();
  });
}

// Only REDIRECTed connections to TCP/1723 of another host are proxied: one straight to the
// listener would make the router connect to itself.
void ProxyServer::on_accept(tcp::socket socket) {
  boost::system::error_code ec;
  const auto local = socket.local_endpoint(ec);
  const auto target = original_destination(socket);
  if (ec || !target || *target == local || target->port() != wire::kPptpPort) {
    spdlog::warn("proxy_refused_connection why=not_redirected_to_1723");
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  spdlog::info("proxy_connection client={} server={}", socket.remote_endpoint(ec).address().to_string(),
               target->address().to_string());
  std::make_shared<Session>(std::move(socket), *target, book_, counters_)->start();
}

void ProxyServer::wait_gre() {
  gre_in_->async_wait(asio::posix::descriptor_base::wait_read, [this](const boost::system::error_code& ec) {
    if (ec) return;
    read_gre();
    wait_gre();
  });
}

void ProxyServer::read_gre() {
  for (std::size_t i = 0; i < kMaxGrePerWake; ++i) {
    const ssize_t n = ::recv(gre_fd_, packet_.data(), packet_.size(), 0);
    if (n <= 0) return;
    auto f = relay_gre(book_, Bytes(packet_.data(), static_cast<std::size_t>(n)));
    if (f) {
      forward(*f);
      continue;
    }
    switch (f.error()) {
      case GreDrop::Malformed: ++gre_.malformed; break;
      case GreDrop::UnknownCall: ++gre_.unknown_call; break;
      case GreDrop::WrongSource: ++gre_.wrong_source; break;
    }
  }
}

void ProxyServer::forward(const GreForward& f) {
  const sockaddr_in to = socket_address(f.destination);
  ssize_t sent = 0;
  if (f.toward == Leg::Server) {
    sent = ::sendto(gre_fd_, f.gre.data(), f.gre.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    ++gre_.to_server;
  } else {
    // IPv4 header by hand (IP_HDRINCL): the kernel fills in length, identification, checksum.
    std::vector<std::uint8_t> packet(20, 0);
    packet[0] = 0x45;
    packet[8] = kTtl;
    packet[9] = wire::kIpProtocolGre;
    store_u32(packet.data() + 12, f.source.value);
    store_u32(packet.data() + 16, f.destination.value);
    packet.insert(packet.end(), f.gre.begin(), f.gre.end());
    sent = ::sendto(raw_fd_, packet.data(), packet.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    ++gre_.to_client;
  }
  if (sent < 0) ++gre_.send_errors;
}

void ProxyServer::tick() {
  write_status();
  tick_.expires_after(std::chrono::seconds(1));
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

void ProxyServer::write_status() {
  if (options_.status_file.empty()) return;
  nlohmann::json s;
  s["mode"] = "proxy";
  s["relay"] = counters_json(counters_, [](const auto& c, auto&& f) { visit_relay_counters(c, f); });
  s["gre"] = counters_json(gre_, [](const auto& c, auto&& f) { visit_gre_counters(c, f); });
  s["call_ids_in_use"] = book_.used();
  if (auto r = daemon::write_private_file(options_.status_file, s.dump(2) + "\n"); !r) {
    spdlog::warn("status_write_failed error={}", r.error());
  }
}

}  // namespace

int run_proxy(const ProxyOptions& options) {
  ProxyServer server(options);
  if (auto r = server.open(); !r) {
    spdlog::error("proxy_start_failed error={}", r.error());
    return 1;
  }
  if (!options.pid_file.empty()) {
    if (auto r = daemon::write_private_file(options.pid_file, std::to_string(::getpid()) + "\n"); !r) {
      spdlog::warn("pid_file_failed error={}", r.error());
    }
  }
  server.run();
  return 0;
}

}  // namespace pptp::proxy
