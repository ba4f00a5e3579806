// Local listeners on the daemon's loop (the control socket, the metrics HTTP port): accept,
// read one request up to its delimiter, answer, and so on. Everything is asynchronous, so a
// slow or silent client never holds the packet loop; each is bounded: at most max_clients
// at once (others get the refusal and are closed), at most max_request_bytes per request,
// and a client silent for idle_seconds is closed. At shutdown a request still being answered
// gets a last word (answer_in_flight) instead of a bare close. Private to the daemon library.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>  // before Boost.Asio: its awaitable.hpp uses std::exchange
#include <vector>

#include <boost/asio.hpp>

namespace pptp::daemon {

// The answer to one request; `close` ends the session after it is written.
using Reply = std::function<void(std::string answer, bool close)>;
// Called on the loop with the request (delimiter included); answers through `reply`, now or
// later (a reload answers once the worker is done).
using OnRequest = std::function<void(std::string_view request, Reply reply)>;

struct ListenerLimits {
  std::string delimiter;
  std::size_t max_request_bytes = 0;
  std::size_t max_clients = 0;
  double idle_seconds = 0;
  std::string refusal;  // written to a client over the limits (too many, too long)
};

template <class Protocol>
class Session : public std::enable_shared_from_this<Session<Protocol>> {
 public:
  using Socket = typename Protocol::socket;
  Session(Socket socket, const ListenerLimits& limits, OnRequest on_request, std::shared_ptr<std::size_t> clients)
      : socket_(std::move(socket)),
        limits_(limits),
        on_request_(std::move(on_request)),
        clients_(std::move(clients)),
        buffer_(limits.max_request_bytes),
        idle_(socket_.get_executor()) {
    ++*clients_;
  }
  ~Session() { --*clients_; }

  void read() {
    idle_.expires_after(std::chrono::milliseconds(static_cast<long>(limits_.idle_seconds * 1000)));
    idle_.async_wait([self = this->shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->close();
    });
    boost::asio::async_read_until(socket_, buffer_, limits_.delimiter,
                                  [self = this->shared_from_this()](const boost::system::error_code& ec,
                                                                    std::size_t n) { self->on_read(ec, n); });
  }

  // Writes `answer`, then reads the next request or closes.
  void write(std::string answer, bool close_after) {
    answering_ = false;
    auto text = std::make_shared<std::string>(std::move(answer));
    boost::asio::async_write(socket_, boost::asio::buffer(*text),
                             [self = this->shared_from_this(), text, close_after](const boost::system::error_code& ec,
                                                                                  std::size_t) {
                               if (ec || close_after) {
                                 self->close();
                               } else {
                                 self->read();
                               }
                             });
  }

  // A request read and not yet answered: the loop is gone (shutdown), so `text` goes out
  // now if the socket takes it at once (one short line; a client that does not read gets
  // the close alone), then the session ends. Returns whether it was such a session.
  bool answer_now_if_waiting(const std::string& text) {
    if (!answering_) return false;
    answering_ = false;
    boost::system::error_code ignored;
    socket_.non_blocking(true, ignored);
    if (!ignored) socket_.write_some(boost::asio::buffer(text), ignored);
    close();
    return true;
  }

 private:
  void on_read(const boost::system::error_code& ec, std::size_t n) {
    idle_.cancel();
    if (ec == boost::asio::error::not_found) {  // the buffer's bound: a request too long
      write(limits_.refusal, true);
      return;
    }
    if (ec) {
      close();
      return;
    }
    std::string request(boost::asio::buffers_begin(buffer_.data()),
                        boost::asio::buffers_begin(buffer_.data()) + static_cast<std::ptrdiff_t>(n));
    buffer_.consume(n);
    answering_ = true;
    on_request_(request, [self = this->shared_from_this()](std::string answer, bool close_after) {
      self->write(std::move(answer), close_after);
    });
  }

  void close() {
    boost::system::error_code ignored;
    idle_.cancel();
    socket_.shutdown(Socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  Socket socket_;
  ListenerLimits limits_;  // a copy: a session may outlive its listener at shutdown
  OnRequest on_request_;
  std::shared_ptr<std::size_t> clients_;
  boost::asio::streambuf buffer_;
  boost::asio::steady_timer idle_;
  bool answering_ = false;  // a request handed to on_request_, its reply not yet written
};

template <class Protocol>
class Listener {
 public:
  Listener(typename Protocol::acceptor acceptor, ListenerLimits limits, OnRequest on_request)
      : acceptor_(std::move(acceptor)), limits_(std::move(limits)), on_request_(std::move(on_request)) {}
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  void start() { accept(); }
  std::size_t clients() const { return *clients_; }

  // At shutdown, the loop stopped: every session whose request is still being answered (a
  // `ctl status` on the worker, a reload) gets `text` and is closed. Returns how many.
  std::size_t answer_in_flight(const std::string& text) {
    std::size_t answered = 0;
    for (auto& weak : sessions_) {
      if (auto session = weak.lock(); session && session->answer_now_if_waiting(text)) ++answered;
    }
    return answered;
  }

 private:
  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, typename Protocol::socket socket) {
      if (ec == boost::asio::error::operation_aborted) return;
      if (!ec) {
        auto session = std::make_shared<Session<Protocol>>(std::move(socket), limits_, on_request_, clients_);
        remember(session);
        if (*clients_ > limits_.max_clients) {
          session->write(limits_.refusal, true);
        } else {
          session->read();
        }
      }
      accept();
    });
  }

  // Sessions ended are forgotten here: the list stays within the clients alive plus one.
  void remember(const std::shared_ptr<Session<Protocol>>& session) {
    std::erase_if(sessions_, [](const auto& weak) { return weak.expired(); });
    sessions_.push_back(session);
  }

  typename Protocol::acceptor acceptor_;
  ListenerLimits limits_;
  OnRequest on_request_;
  std::shared_ptr<std::size_t> clients_ = std::make_shared<std::size_t>(0);
  std::vector<std::weak_ptr<Session<Protocol>>> sessions_;  // for answer_in_flight
};

}  // namespace pptp::daemon
