#include "alg/service/systemd.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace pptp::service {
namespace {

// A stand-in for the service manager: a datagram socket named by $NOTIFY_SOCKET.
class FakeManager : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = "/tmp/pptp-alg-notify-" + std::to_string(::getpid());
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd_, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof(a.sun_path) - 1);
    ::unlink(path_.c_str());
    ASSERT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << std::strerror(errno);
    timeval wait{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  std::string received() {
    char buffer[512];
    const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
  }
  std::string path_;
  int fd_ = -1;
};

TEST_F(FakeManager, ReadyCarriesAOneLineStatus) {
  EXPECT_TRUE(under_systemd());
  notify_ready("queue 0\nnft");
  EXPECT_EQ(received(), "READY=1\nSTATUS=queue 0 nft");
  notify_ready();
  EXPECT_EQ(received(), "READY=1");
}

TEST_F(FakeManager, EachStateIsItsOwnMessage) {
  notify_reloading();
  EXPECT_EQ(received().rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u);
  notify_status("3 calls");
  EXPECT_EQ(received(), "STATUS=3 calls");
  notify_watchdog();
  EXPECT_EQ(received(), "WATCHDOG=1");
  notify_stopping();
  EXPECT_EQ(received(), "STOPPING=1");
}

TEST_F(FakeManager, WatchdogIntervalIsHalfOfWatchdogSecForThisProcessOnly) {
  EXPECT_FALSE(watchdog_interval());
  ::setenv("WATCHDOG_USEC", "20000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  ASSERT_TRUE(watchdog_interval());
  EXPECT_DOUBLE_EQ(*watchdog_interval(), 10.0);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
  EXPECT_FALSE(watchdog_interval()) << "the watchdog is meant for another process";
}

TEST(OutsideSystemd, NothingIsExpected) {
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(under_systemd());
  EXPECT_FALSE(watchdog_interval());
  notify_ready("not sent anywhere");  // must not fail or block
}

}  // namespace
}  // namespace pptp::service
