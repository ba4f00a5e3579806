#include "alg/daemon/control_server.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <sstream>

#include "alg/control/metrics.hpp"
#include "alg/control/protocol.hpp"

namespace pptp::daemon {

namespace {
namespace asio = boost::asio;
using local = asio::local::stream_protocol;

std::string errno_text(std::string_view what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

bool someone_listens(const std::string& path) {
  asio::io_context io;
  local::socket probe(io);
  boost::system::error_code ec;
  probe.connect(local::endpoint(path), ec);
  return !ec;
}

// A socket left by a daemon that died is in the way of bind(); anything else at the path is
// someone else's and stays.
Result<bool, std::string> clear_stale_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? Result<bool, std::string>(true)
                                                               : unexpected(errno_text("cannot inspect", path));
  if (!S_ISSOCK(st.st_mode)) return unexpected(path + " exists and is not a socket: not replacing it");
  if (someone_listens(path)) return unexpected("another daemon answers on " + path + ": not replacing it");
  if (::unlink(path.c_str()) != 0) return unexpected(errno_text("cannot remove the stale socket", path));
  return true;
}

std::string http(std::string_view status, std::string_view type, std::string_view body) {
  return "HTTP/1.0 " + std::string(status) + "\r\nContent-Type: " + std::string(type) +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + std::string(body);
}
}  // namespace

Result<std::unique_ptr<ControlListener>, std::string> open_control_socket(asio::io_context& io,
                                                                          const std::string& path,
                                                                          const Account* owner, OnRequest on_request) {
  if (auto cleared = clear_stale_socket(path); !cleared) return unexpected(cleared.error());
  local::acceptor acceptor(io);
  boost::system::error_code ec;
  acceptor.open(local::endpoint(path).protocol(), ec);
  // Created 0660 from the start: no moment where any local user may connect.
  const mode_t old_mask = ::umask(0777 & ~kControlSocketMode);
  if (!ec) acceptor.bind(local::endpoint(path), ec);
  ::umask(old_mask);
  if (!ec) acceptor.listen(static_cast<int>(control::kMaxClients), ec);
  if (ec) return unexpected("cannot listen on " + path + ": " + ec.message());
  if (owner != nullptr && ::chown(path.c_str(), owner->uid, owner->gid) != 0) {
    return unexpected(errno_text("cannot hand over", path));
  }
  ListenerLimits limits{"\n", control::kMaxRequestBytes + 1, control::kMaxClients, control::kClientIdleSeconds,
                        control::error_answer("request too long, or too many clients") + "\n"};
  return std::make_unique<ControlListener>(std::move(acceptor), std::move(limits), std::move(on_request));
}

std::string stopping_answer() {
  return control::error_answer("the daemon is stopping: ask again once it is running") + "\n";
}

Result<asio::ip::tcp::endpoint, std::string> parse_listen_address(std::string_view text) {
  const auto colon = text.rfind(':');
  const std::string bad = "expected ADDRESS:PORT (127.0.0.1:9816 or [::1]:9816), not '" + std::string(text) + "'";
  if (colon == std::string_view::npos) return unexpected(bad);
  std::string_view host = text.substr(0, colon), port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  const auto [end, perr] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (perr != std::errc{} || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
    return unexpected(bad);
  }
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(std::string(host), ec);
  if (ec) return unexpected(bad);
  return asio::ip::tcp::endpoint(address, static_cast<unsigned short>(port));
}

std::string http_answer(std::string_view head, const std::function<std::string()>& metrics) {
  const auto line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const auto first = line.find(' ');
  const auto second = first == std::string_view::npos ? first : line.find(' ', first + 1);
  if (second == std::string_view::npos) return http("400 Bad Request", "text/plain", "bad request\n");
  const std::string_view method = line.substr(0, first), path = line.substr(first + 1, second - first - 1);
  if (method != "GET") return http("405 Method Not Allowed", "text/plain", "GET only\n");
  if (path != "/metrics") return http("404 Not Found", "text/plain", "the metrics are at /metrics\n");
  return http("200 OK", control::kMetricsContentType, metrics());
}

Result<std::unique_ptr<MetricsListener>, std::string> open_metrics_listener(asio::io_context& io,
                                                                            const asio::ip::tcp::endpoint& at,
                                                                            std::function<std::string()> metrics) {
  asio::ip::tcp::acceptor acceptor(io);
  boost::system::error_code ec;
  acceptor.open(at.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(at, ec);
  if (!ec) acceptor.listen(static_cast<int>(kMaxHttpClients), ec);
  std::ostringstream where;
  where << at;
  if (ec) return unexpected("cannot listen on " + where.str() + ": " + ec.message());
  ListenerLimits limits{"\r\n\r\n", kMaxHttpRequestBytes, kMaxHttpClients, control::kClientIdleSeconds,
                        http("503 Service Unavailable", "text/plain", "busy or request too long\n")};
  auto on_request = [metrics = std::move(metrics)](std::string_view head, const Reply& reply) {
    reply(http_answer(head, metrics), true);
  };
  return std::make_unique<MetricsListener>(std::move(acceptor), std::move(limits), std::move(on_request));
}

}  // namespace pptp::daemon
