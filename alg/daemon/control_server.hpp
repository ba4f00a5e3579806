// The daemon's two local listeners, opened at start (docs/packaging.md, "Operations"):
// the control socket (a unix stream socket, mode 0660, for `pptp-alg ctl`) and the optional
// metrics HTTP listener (`--metrics-listen ADDR:PORT`, Prometheus text on GET /metrics).
// Private to the daemon library.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <sys/types.h>

#include "alg/core/result.hpp"
#include "alg/daemon/listener.hpp"
#include "alg/daemon/privileges.hpp"

namespace pptp::daemon {

inline constexpr mode_t kControlSocketMode = 0660;  // the daemon's user and group
inline constexpr std::size_t kMaxHttpRequestBytes = 8192;
inline constexpr std::size_t kMaxHttpClients = 4;

using ControlListener = Listener<boost::asio::local::stream_protocol>;
using MetricsListener = Listener<boost::asio::ip::tcp>;

// Binds `path` (a stale socket left by a crash is replaced; any other file is not), mode
// kControlSocketMode, owned by `owner` when the daemon will become that user.
Result<std::unique_ptr<ControlListener>, std::string> open_control_socket(boost::asio::io_context& io,
                                                                          const std::string& path,
                                                                          const Account* owner, OnRequest on_request);

// What a request still being answered when the daemon stops gets (Listener::answer_in_flight)
// instead of a bare close.
std::string stopping_answer();

// "127.0.0.1:9816" or "[::1]:9816": where to listen.
Result<boost::asio::ip::tcp::endpoint, std::string> parse_listen_address(std::string_view text);

Result<std::unique_ptr<MetricsListener>, std::string> open_metrics_listener(
    boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& at, std::function<std::string()> metrics);

// The HTTP answer to one request (its head up to the blank line): the metrics for
// GET /metrics, 404 for another path, 405 for another method.
std::string http_answer(std::string_view request_head, const std::function<std::string()>& metrics);

}  // namespace pptp::daemon
