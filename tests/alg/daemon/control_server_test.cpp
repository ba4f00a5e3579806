// The daemon's listeners on a real loop: a request and its answer over the unix socket, the
// bounds (request size, clients), the socket's mode, a live socket never replaced, and the
// metrics HTTP answers.
#include "alg/daemon/control_server.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>
#include <vector>

#include "alg/control/client.hpp"

namespace pptp::daemon {
namespace {

class ControlSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("pptp-alg-ctl-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "control").string();
    auto opened = open_control_socket(io_, path_, nullptr, [this](std::string_view line, Reply reply) {
      ++requests_;
      auto r = control::parse_request(line.substr(0, line.find('\n')));
      reply(r ? control::ok_answer({{"command", control::name_of(r->command)}}) + "\n"
              : control::error_answer(r.error()) + "\n",
            false);
    });
    ASSERT_TRUE(opened) << opened.error();
    listener_ = std::move(*opened);
    listener_->start();
    guard_.emplace(io_.get_executor());
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    guard_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    listener_.reset();
    std::filesystem::remove_all(dir_);
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  std::thread thread_;
  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<ControlListener> listener_;
  std::atomic<int> requests_{0};
};

TEST_F(ControlSocket, AnswersARequestLine) {
  auto answer = control::ask(path_, control::Request{control::Command::Calls, {}}, 10);
  ASSERT_TRUE(answer) << answer.error();
  EXPECT_EQ(nlohmann::json::parse(*answer)["command"], "calls");
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, kControlSocketMode);
}

TEST_F(ControlSocket, ARequestTooLongIsRefusedWithoutReachingTheDaemon) {
  control::Request r{control::Command::Kill, {}};
  r.kill.user = std::string(control::kMaxRequestBytes * 2, 'x');
  auto answer = control::ask(path_, r, 10);
  ASSERT_TRUE(answer) << answer.error();
  EXPECT_FALSE(nlohmann::json::parse(*answer)["ok"].get<bool>());
  EXPECT_EQ(requests_.load(), 0);
}

TEST_F(ControlSocket, ALiveSocketIsNotReplaced) {
  boost::asio::io_context other;
  auto second = open_control_socket(other, path_, nullptr, [](std::string_view, const Reply&) {});
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().find("another daemon answers"), std::string::npos);
  EXPECT_TRUE(control::ask(path_, control::Request{control::Command::Status, {}}, 10));
}

// A request still being answered when the loop stops (a `ctl status` on the worker) gets
// stopping_answer(), not a bare close; a client between requests gets nothing (s34 review L4).
TEST(ControlSocketAtShutdown, ARequestBeingAnsweredGetsTheStoppingAnswer) {
  namespace asio = boost::asio;
  using local = asio::local::stream_protocol;
  const auto dir = std::filesystem::temp_directory_path() / ("pptp-alg-ctl-stop-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "control").string();
  asio::io_context io;
  std::atomic<int> requests{0};
  std::vector<Reply> held;  // on the loop's thread only
  auto opened = open_control_socket(io, path, nullptr, [&](std::string_view, Reply reply) {
    held.push_back(std::move(reply));  // answered "later", as the worker does
    ++requests;
  });
  ASSERT_TRUE(opened) << opened.error();
  (*opened)->start();
  std::thread loop([&io] {
    auto guard = asio::make_work_guard(io);
    io.run();
  });
  asio::io_context mine;
  local::socket asking(mine), idle(mine);
  asking.connect(local::endpoint(path));
  idle.connect(local::endpoint(path));
  asio::write(asking, asio::buffer(std::string("{\"command\":\"status\"}\n")));
  for (int i = 0; i < 500 && requests.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(requests.load(), 1);
  io.stop();
  loop.join();
  EXPECT_EQ((*opened)->answer_in_flight(stopping_answer()), 1u);
  const timeval two_seconds{2, 0};  // bounded: no answer fails the test, not hangs it
  ASSERT_EQ(::setsockopt(asking.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &two_seconds, sizeof two_seconds), 0);
  asio::streambuf got;
  boost::system::error_code ec;
  asio::read_until(asking, got, "\n", ec);
  ASSERT_FALSE(ec) << ec.message();
  const std::string line(asio::buffers_begin(got.data()), asio::buffers_end(got.data()));
  EXPECT_EQ(line, stopping_answer());
  EXPECT_FALSE(nlohmann::json::parse(line)["ok"].get<bool>());
  EXPECT_EQ((*opened)->answer_in_flight(stopping_answer()), 0u);  // once only
  held.clear();
  opened->reset();
  std::filesystem::remove_all(dir);
}

TEST(MetricsHttp, AnswersGetMetricsOnly) {
  const auto metrics = [] { return std::string("pptp_alg_calls 1\n"); };
  const std::string ok = http_answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", metrics);
  EXPECT_EQ(ok.rfind("HTTP/1.0 200 OK\r\n", 0), 0u);
  EXPECT_NE(ok.find("Content-Length: 17\r\n"), std::string::npos);
  EXPECT_NE(ok.find("\r\n\r\npptp_alg_calls 1\n"), std::string::npos);
  EXPECT_EQ(http_answer("GET / HTTP/1.1\r\n\r\n", metrics).rfind("HTTP/1.0 404", 0), 0u);
  EXPECT_EQ(http_answer("POST /metrics HTTP/1.1\r\n\r\n", metrics).rfind("HTTP/1.0 405", 0), 0u);
  EXPECT_EQ(http_answer("garbage\r\n\r\n", metrics).rfind("HTTP/1.0 400", 0), 0u);
}

TEST(MetricsHttp, ListenAddresses) {
  auto v4 = parse_listen_address("127.0.0.1:9816");
  ASSERT_TRUE(v4) << v4.error();
  EXPECT_EQ(v4->port(), 9816);
  auto v6 = parse_listen_address("[::1]:9816");
  ASSERT_TRUE(v6) << v6.error();
  EXPECT_TRUE(v6->address().is_v6());
  EXPECT_FALSE(parse_listen_address("127.0.0.1"));
  EXPECT_FALSE(parse_listen_address("127.0.0.1:0"));
  EXPECT_FALSE(parse_listen_address("localhost:9816"));
}

}  // namespace
}  // namespace pptp::daemon
