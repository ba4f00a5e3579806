// One proxied control connection's I/O: the client's TCP connection (accepted after the
// REDIRECT), the server's (opened from the router when the client starts), and the Relay
// between them. Messages out are queued per leg and written in order; a leg the relay
// closes is closed once its queue is written. The session lives as long as a handler holds
// it (shared_from_this).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>  // before Asio: its awaitable.hpp uses std::exchange
#include <vector>

#include <boost/asio.hpp>

#include "proxy/control_stream.hpp"
#include "proxy/keepalive.hpp"
#include "proxy/limits.hpp"
#include "proxy/relay.hpp"

namespace pptp::proxy {

inline constexpr std::size_t kReadChunk = 4096;  // one read, into the loop's one buffer
inline constexpr std::size_t kMaxQueuedBytes = 64 * 1024;  // a peer that does not read is cut
inline constexpr std::size_t kReadPauseBytes = 16 * 1024;  // past this, neither leg is read
// The kernel's send buffer per leg (SO_SNDBUF; the kernel doubles it for its bookkeeping):
// control messages are small and reads pause past kReadPauseBytes, but autotuning let a
// server that does not read pin about 0.77 MB per session in the router (s30 review, finding 5).
inline constexpr int kLegSendBuffer = 32 * 1024;

class Session : public std::enable_shared_from_this<Session>, public ConnectionCutter {
 public:
  using tcp = boost::asio::ip::tcp;
  // judge: the policy and limits (proxy_policy.hpp); nothing admits everything.
  Session(tcp::socket client, tcp::endpoint server, CallBook& book, RelayCounters& counters,
          std::unique_ptr<CallJudge> judge = nullptr);
  void start();
  // Ends one live call (Relay::cut_call): the policy re-judged it, or the operator.
  void cut(std::uint16_t pac_call_id, std::uint8_t result_code, const std::string& why);
  // Ends the whole control connection (Relay::cut_connection), for another relay's claim of a
  // server Call ID this one's call holds.
  void cut_connection(std::string_view why) override;
  const Relay& relay() const { return relay_; }

 private:
  struct LegIo {
    explicit LegIo(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    ControlStream stream;
    std::deque<std::vector<std::uint8_t>> queue;
    std::size_t queued_bytes = 0;
    bool connected = false;
    bool writing = false;
    bool close_after = false;
    bool closed = false;
    bool read_paused = false;  // backlogged(): read again by resume_reading()
    Keepalive keepalive{Clock::now()};
  };

  LegIo& io(Leg leg) { return leg == Leg::Client ? client_ : server_; }
  void read(Leg leg);
  void on_readable(Leg leg, const boost::system::error_code& ec);
  void on_read(Leg leg, Bytes data);
  void connect_server();
  void apply(const RelayOutput& out);
  void enqueue(Leg leg, const wire::ControlMessage& message);
  void write_next(Leg leg);
  bool backlogged() const;
  void resume_reading();
  void close_when_written(Leg leg);
  // `abort`: a RST (SO_LINGER 0) that frees what the peer did not take, for a leg lost or
  // whose peer does not read; else a FIN after the unsent data.
  void close(Leg leg, bool abort = false);
  void failed(Leg leg, const boost::system::error_code& ec, const char* during);
  void ended_in_order(Leg leg);
  void lost(Leg leg);
  void arm_keepalive();
  void check_keepalive();
  void check_start_deadlines(Clock::time_point now);
  void check_paused_legs();
  void check_echo(Clock::time_point now);

  LegIo client_;
  LegIo server_;
  tcp::endpoint server_endpoint_;
  std::unique_ptr<CallJudge> judge_;  // before relay_: the relay reports to it until its end
  Relay relay_;
  boost::asio::steady_timer keepalive_timer_;
  Clock::time_point created_ = Clock::now();  // the start must come by kStartDeadline
  std::optional<Clock::time_point> connect_started_;  // toward the server: by kServerStartDeadline
  std::uint32_t echo_identifier_ = 0;
};

}  // namespace pptp::proxy
