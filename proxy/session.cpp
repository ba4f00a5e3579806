#include "proxy/session.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <optional>

#include <spdlog/spdlog.h>

namespace pptp::proxy {

namespace {
wire::Ipv4Address address_of(const boost::asio::ip::tcp::endpoint& e) {
  return wire::Ipv4Address{e.address().to_v4().to_uint()};
}
wire::Ipv4Address peer_of(const boost::asio::ip::tcp::socket& s) {
  boost::system::error_code ec;
  const auto e = s.remote_endpoint(ec);
  return ec ? wire::Ipv4Address{} : address_of(e);
}
const char* name_of(Leg leg) { return leg == Leg::Client ? "client" : "server"; }
// How a read or write found its leg ended, for the log's `why=`: the peer's FIN, its RST
// (reset on a read; on a write the kernel says broken pipe or reset), or another error.
std::string why_of(const boost::system::error_code& ec) {
  namespace error = boost::asio::error;
  if (ec == error::eof) return "closed";
  if (ec == error::connection_reset || ec == error::broken_pipe || ec == error::connection_aborted) return "reset";
  return fmt::format("error error=\"{}\"", ec.message());
}
// The peer's FIN or RST, from the kernel's TCP state (TCP_INFO), without reading the data it
// sent before them: a read-paused leg has no read pending that would find them (s30 review).
// A FIN with replies still queued toward the peer is not yet an end (check_paused_legs).
enum class PeerEnd : std::uint8_t { None, Fin, Reset };
// The leg's TCP state; nothing when the kernel does not answer.
std::optional<tcp_info> tcp_info_of(boost::asio::ip::tcp::socket& s) {
  tcp_info info{};
  socklen_t size = sizeof info;
  if (::getsockopt(s.native_handle(), IPPROTO_TCP, TCP_INFO, &info, &size) != 0) return std::nullopt;
  return info;
}
PeerEnd peer_end(boost::asio::ip::tcp::socket& s) {
  const auto info = tcp_info_of(s);
  if (!info || info->tcpi_state == TCP_CLOSE) return PeerEnd::Reset;
  return info->tcpi_state == TCP_CLOSE_WAIT || info->tcpi_state == TCP_LAST_ACK ? PeerEnd::Fin : PeerEnd::None;
}
// What an overdue Echo's leg needs of its TCP (keepalive.hpp): unacknowledged bytes and the
// retransmissions so far. An error reads as all acknowledged: the leg is not held longer on it.
void read_link(boost::asio::ip::tcp::socket& s, LegWatch& watch) {
  const auto info = tcp_info_of(s);
  if (!info) return;
  watch.unacknowledged = info->tcpi_unacked > 0;
  watch.retransmissions = info->tcpi_total_retrans;
}
// Before the connect (the server's leg) or at once (the client's): the buffer bounds what one
// session can leave in the kernel, also after its close.
void limit_send_buffer(boost::asio::ip::tcp::socket& s) {
  boost::system::error_code ignored;
  s.set_option(boost::asio::socket_base::send_buffer_size(kLegSendBuffer), ignored);
}
// The server leg's, before its connect (the client leg has the listener's): limits.hpp.
void limit_receive_buffer(boost::asio::ip::tcp::socket& s) {
  boost::system::error_code ignored;
  s.set_option(boost::asio::socket_base::receive_buffer_size(kLegReceiveBuffer), ignored);
}
// One read buffer for every leg on this loop's thread: a leg waits until it is readable, then
// reads into it and feeds the stream (which keeps only an incomplete message) before anything
// else runs. Each leg held its own 4 KiB before: 8 KiB of an idle session's 11.9 (s32).
std::array<std::uint8_t, kReadChunk>& read_buffer() {
  thread_local std::array<std::uint8_t, kReadChunk> buffer{};
  return buffer;
}
// What the peer sent and nobody will read: closed with it unread, the kernel sends a RST in
// place of the FIN (RFC 2525 2.17), and the peer may lose the last messages written to it
// (s32 review: a client's Echo-Reply crossing our Call-Disconnect-Notify). Bounded: what is
// there now, at most 16 reads.
void discard_unread(boost::asio::ip::tcp::socket& s) {
  boost::system::error_code ec;
  if (!s.non_blocking()) s.non_blocking(true, ec);
  for (int i = 0; i < 16 && !ec && s.available(ec) > 0; ++i) s.read_some(boost::asio::buffer(read_buffer()), ec);
}
}  // namespace

Session::Session(tcp::socket client, tcp::endpoint server, CallBook& book, RelayCounters& counters,
                 std::unique_ptr<CallJudge> judge)
    : client_(std::move(client)),
      server_(tcp::socket(client_.socket.get_executor())),
      server_endpoint_(server),
      judge_(std::move(judge)),
      relay_(book, counters, peer_of(client_.socket), address_of(server), judge_.get()),
      keepalive_timer_(client_.socket.get_executor()) {
  client_.connected = true;
  limit_send_buffer(client_.socket);
  relay_.set_cutter(this);
}

void Session::start() {
  read(Leg::Client);
  arm_keepalive();
}

void Session::cut(std::uint16_t pac_call_id, std::uint8_t result_code, const std::string& why) {
  apply(relay_.cut_call(pac_call_id, result_code, why));
}

void Session::cut_connection(std::string_view why) {
  spdlog::warn("proxy_connection_cut client={} server={} calls={} reason=\"{}\"", wire::to_string(relay_.client()),
               server_endpoint_.address().to_string(), relay_.calls().size(), why);
  apply(relay_.cut_connection(why));
}

void Session::read(Leg leg) {
  io(leg).socket.async_wait(tcp::socket::wait_read, [self = shared_from_this(), leg](const boost::system::error_code& ec) {
    self->on_readable(leg, ec);
  });
}

void Session::on_readable(Leg leg, const boost::system::error_code& ec) {
  LegIo& l = io(leg);
  if (l.closed) return;  // we closed it: the relay knows
  if (ec) {
    failed(leg, ec, "read");
    return;
  }
  boost::system::error_code read_error;
  if (!l.socket.non_blocking()) l.socket.non_blocking(true, read_error);  // once: it is an ioctl
  const std::size_t n = read_error ? 0 : l.socket.read_some(boost::asio::buffer(read_buffer()), read_error);
  if (read_error == boost::asio::error::would_block || read_error == boost::asio::error::try_again) {
    read(leg);  // woken with nothing to read after all
    return;
  }
  if (read_error == boost::asio::error::eof) {
    ended_in_order(leg);
    return;
  }
  if (read_error) {
    failed(leg, read_error, "read");
    return;
  }
  on_read(leg, Bytes(read_buffer().data(), n));
}

void Session::on_read(Leg leg, Bytes data) {
  LegIo& l = io(leg);
  std::vector<wire::ControlMessage> messages;
  const bool ok = l.stream.feed(data, messages);
  if (!messages.empty()) l.keepalive.heard(Clock::now());
  for (const wire::ControlMessage& m : messages) {
    apply(leg == Leg::Client ? relay_.on_client(m) : relay_.on_server(m));
    if (l.closed) return;
  }
  if (!ok) {
    spdlog::warn("proxy_stream_broken leg={} error={}", name_of(leg),
                 l.stream.error() ? wire::describe(*l.stream.error()) : std::string("lost sync"));
    lost(leg);
    return;
  }
  if (backlogged()) {
    l.read_paused = true;  // resume_reading() goes on once the queues drain
    return;
  }
  read(leg);
}

// A queue past kReadPauseBytes: what either leg says may add to it (an Echo-Reply, a relayed
// message), so neither is read until it drains. The peers' TCP windows then hold them back,
// instead of a client that pipelines being cut as "not reading" (s29 review, finding 9).
bool Session::backlogged() const {
  return client_.queued_bytes > kReadPauseBytes || server_.queued_bytes > kReadPauseBytes;
}

void Session::resume_reading() {
  if (backlogged()) return;
  for (Leg leg : {Leg::Client, Leg::Server}) {
    LegIo& l = io(leg);
    if (!l.read_paused || l.closed) continue;
    l.read_paused = false;
    read(leg);
  }
}

void Session::connect_server() {
  connect_started_ = Clock::now();
  boost::system::error_code opened;
  server_.socket.open(tcp::v4(), opened);  // async_connect opens it too: the error surfaces there
  if (!opened) {
    limit_send_buffer(server_.socket);
    limit_receive_buffer(server_.socket);
  }
  server_.socket.async_connect(server_endpoint_, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (self->server_.closed) return;
    if (ec) {
      spdlog::warn("proxy_connect_failed server={} error={}", self->server_endpoint_.address().to_string(),
                   ec.message());
      self->lost(Leg::Server);
      return;
    }
    self->server_.connected = true;
    self->server_.keepalive.heard(Clock::now());
    self->read(Leg::Server);
    self->write_next(Leg::Server);
  });
}

void Session::apply(const RelayOutput& out) {
  for (const Send& s : out.sends) enqueue(s.leg, s.message);
  if (out.open_server) connect_server();
  if (out.close_client) close_when_written(Leg::Client);
  if (out.close_server) close_when_written(Leg::Server);
}

void Session::enqueue(Leg leg, const wire::ControlMessage& message) {
  LegIo& l = io(leg);
  if (l.closed || l.close_after) return;
  l.queue.push_back(wire::serialize(message));
  l.queued_bytes += l.queue.back().size();
  if (l.queued_bytes > kMaxQueuedBytes) {
    ++relay_.counters().legs_not_reading;
    spdlog::warn("proxy_peer_not_reading leg={} server={} unsent_bytes={}", name_of(leg),
                 server_endpoint_.address().to_string(), l.queued_bytes);
    lost(leg);
    return;
  }
  write_next(leg);
}

void Session::write_next(Leg leg) {
  LegIo& l = io(leg);
  if (l.writing || !l.connected || l.closed) return;
  if (l.queue.empty()) {
    if (l.close_after) close(leg);
    return;
  }
  // Everything queued in one write (s29 review, finding 9): one message per write let a
  // client that pipelines, and reads all the while, outrun the writes and be cut as "not
  // reading". kMaxQueuedBytes now counts only what the peer's TCP has not taken. The deque
  // keeps its elements in place while more are queued behind them.
  l.writing = true;
  l.keepalive.wrote(Clock::now());
  std::vector<boost::asio::const_buffer> buffers;
  buffers.reserve(l.queue.size());
  for (const auto& message : l.queue) buffers.emplace_back(boost::asio::buffer(message));
  boost::asio::async_write(l.socket, buffers,
                           [self = shared_from_this(), leg, sent = l.queue.size()](const boost::system::error_code& ec,
                                                                                   std::size_t) {
                             LegIo& w = self->io(leg);
                             w.writing = false;
                             if (w.closed) return;
                             if (ec) {
                               self->failed(leg, ec, "write");
                               return;
                             }
                             w.keepalive.wrote(Clock::now());
                             for (std::size_t i = 0; i < sent; ++i) {
                               w.queued_bytes -= w.queue.front().size();
                               w.queue.pop_front();
                             }
                             self->resume_reading();
                             self->write_next(leg);
                           });
}

void Session::close_when_written(Leg leg) {
  LegIo& l = io(leg);
  l.close_after = true;
  // Never opened (or still connecting): nothing to flush. A backlog whose write has stalled
  // (kCloseStall): the peer is not reading and would not read the last messages either;
  // waiting for it held the session and the client's places in the limits (s30 review). A
  // backlog just queued is written (before s32 a client with 150 calls got 1 of their 150
  // Call-Disconnect-Notifies); kWriteStall ends it if it is not read.
  const bool stalled = l.queued_bytes > kReadPauseBytes && l.keepalive.write_stalled(Clock::now(), kCloseStall);
  if (!l.connected || stalled) {
    close(leg, stalled);
    return;
  }
  write_next(leg);
}

void Session::close(Leg leg, bool abort) {
  LegIo& l = io(leg);
  if (l.closed) return;
  l.closed = true;
  boost::system::error_code ignored;
  if (abort) {
    l.socket.set_option(boost::asio::socket_base::linger(true, 0), ignored);
  } else {
    discard_unread(l.socket);
  }
  l.socket.shutdown(tcp::socket::shutdown_both, ignored);
  l.socket.close(ignored);
}

// A read or write found the leg ended: logged (before s31 a write's failure, e.g. the RST of a
// peer whose leg was read-paused, was not), then lost.
void Session::failed(Leg leg, const boost::system::error_code& ec, const char* during) {
  spdlog::info("proxy_leg_ended leg={} server={} why={} during={}", name_of(leg),
               server_endpoint_.address().to_string(), why_of(ec), during);
  lost(leg);
}

// The peer's FIN: what is queued for it is still written (a client that half-closes after
// pipelined requests reads their replies; before s32 it got a RST after a few hundred), then
// the leg is closed; the relay tells the other leg.
void Session::ended_in_order(Leg leg) {
  spdlog::info("proxy_leg_ended leg={} server={} why=closed during=read", name_of(leg),
               server_endpoint_.address().to_string());
  close_when_written(leg);
  apply(relay_.on_closed(leg));
}

// The leg failed or its peer reset it: the relay tells the other leg, this one is gone.
void Session::lost(Leg leg) {
  close(leg, true);  // what it did not take is of no use to anyone now
  apply(relay_.on_closed(leg));
}

void Session::arm_keepalive() {
  keepalive_timer_.expires_after(kKeepaliveTick);
  keepalive_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) self->check_keepalive();
  });
}

// Each keepalive tick, in named steps: the start deadlines, paused legs whose peer closed,
// Echo per leg, unanswered calls. The timer stops once no leg is left.
void Session::check_keepalive() {
  const auto now = Clock::now();
  check_start_deadlines(now);
  check_paused_legs();
  check_echo(now);
  if (RelayOutput out = relay_.age_unanswered(); !out.sends.empty()) {
    spdlog::info("proxy_call_unanswered server={} calls={}", server_endpoint_.address().to_string(),
                 out.sends.size() / 2);  // two messages per call: one to each peer
    apply(out);
  }
  const bool done = client_.closed && (server_.closed || !server_.connected);
  if (!done) arm_keepalive();
}

// A client must start within kStartDeadline; the server must accept and answer the start
// (2.2) within kServerStartDeadline of our connect.
void Session::check_start_deadlines(Clock::time_point now) {
  if (relay_.state() == RelayState::Idle && !client_.closed && now - created_ >= kStartDeadline) {
    spdlog::info("proxy_leg_ended leg=client server={} why=no_start_request", server_endpoint_.address().to_string());
    lost(Leg::Client);
  }
  if (connect_started_ && relay_.state() == RelayState::StartingServer && !server_.closed &&
      now - *connect_started_ >= kServerStartDeadline) {
    spdlog::warn("proxy_connect_failed server={} error=\"{} within {} s\"", server_endpoint_.address().to_string(),
                 server_.connected ? "no Start-Control-Connection-Reply" : "no TCP connection",
                 kServerStartDeadline.count());
    lost(Leg::Server);  // closing the socket ends a connect too: its handler finds the leg closed
  }
}

// A read-paused leg has no read pending that would find its peer's FIN or RST.
void Session::check_paused_legs() {
  for (Leg leg : {Leg::Client, Leg::Server}) {
    LegIo& l = io(leg);
    if (!l.read_paused || l.closed) continue;
    // A FIN with replies queued toward the peer: a client that half-closed after pipelined
    // requests reads them, then the rest of its requests and its FIN are read (ended_in_order;
    // before s32 it got a RST and lost most of its replies). Its writes end it otherwise: a
    // RST if it closed, kWriteStall if it does not read.
    const PeerEnd end = peer_end(l.socket);
    if (end == PeerEnd::Reset || (end == PeerEnd::Fin && l.queue.empty())) {
      spdlog::info("proxy_leg_ended leg={} server={} why=closed_while_paused", name_of(leg),
                   server_endpoint_.address().to_string());
      lost(leg);
    }
  }
}

// Echo per leg (RFC 2637 2.5, keepalive.hpp).
void Session::check_echo(Clock::time_point now) {
  for (Leg leg : {Leg::Client, Leg::Server}) {
    LegIo& l = io(leg);
    if (!l.connected || l.closed) continue;
    LegWatch watch{l.read_paused, l.queued_bytes > kReadPauseBytes};
    if (l.keepalive.echo_overdue(now)) read_link(l.socket, watch);
    switch (l.keepalive.tick(now, watch)) {
      case KeepaliveStep::SendEcho: {
        wire::EchoRequest echo;
        echo.identifier = ++echo_identifier_;
        LegWatch at_echo;
        read_link(l.socket, at_echo);
        l.keepalive.echo_sent(at_echo.retransmissions);
        enqueue(leg, wire::make_control_message(echo));
        break;
      }
      case KeepaliveStep::PeerGone:
        ++relay_.counters().legs_no_echo_reply;
        spdlog::info("proxy_leg_ended leg={} server={} why=no_echo_reply", name_of(leg),
                     server_endpoint_.address().to_string());
        lost(leg);
        break;
      case KeepaliveStep::LinkDown:
        ++relay_.counters().legs_link_down;
        spdlog::info("proxy_leg_ended leg={} server={} why=link_down retransmissions={}", name_of(leg),
                     server_endpoint_.address().to_string(), watch.retransmissions);
        lost(leg);
        break;
      case KeepaliveStep::PeerNotReading:
        ++relay_.counters().legs_not_reading;
        spdlog::warn("proxy_peer_not_reading leg={} server={} unsent_bytes={} seconds={}", name_of(leg),
                     server_endpoint_.address().to_string(), l.queued_bytes, kWriteStall.count());
        lost(leg);
        break;
      case KeepaliveStep::Nothing:
        break;
    }
  }
}

}  // namespace pptp::proxy
