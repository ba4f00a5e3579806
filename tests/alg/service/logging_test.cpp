#include "alg/service/logging.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fcntl.h>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace pptp::service {
namespace {

TEST(Logging, PrioritiesThatJournalctlFilters) {
  // journalctl -p warning shows 0..4: warnings and errors, not info.
  EXPECT_EQ(syslog_priority(spdlog::level::err), 3);
  EXPECT_EQ(syslog_priority(spdlog::level::warn), 4);
  EXPECT_EQ(syslog_priority(spdlog::level::info), 6);
  EXPECT_EQ(syslog_priority(spdlog::level::debug), 7);
}

TEST(Logging, TheJournalIsRecognisedByDeviceAndInode) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  struct stat st {};
  ASSERT_EQ(::fstat(::fileno(f), &st), 0);
  const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  const std::string other = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
  EXPECT_TRUE(is_journal_stream(::fileno(f), mine.c_str()));
  EXPECT_FALSE(is_journal_stream(::fileno(f), other.c_str()));
  EXPECT_FALSE(is_journal_stream(::fileno(f), nullptr));
  EXPECT_FALSE(is_journal_stream(::fileno(f), "garbage"));
  std::fclose(f);
}

TEST(Logging, AMessageBecomesEventAndFields) {
  const LogEvent e = parse_log_message(
      R"(policy_denied pns=192.0.2.11:40001 user="alice smith" note="say \"no\"" because of rule=3)");
  EXPECT_EQ(e.event, "policy_denied");
  const std::vector<std::pair<std::string, std::string>> expected{{"pns", "192.0.2.11:40001"},
                                                                  {"user", "alice smith"},
                                                                  {"note", "say \"no\""},
                                                                  {"rule", "3"},
                                                                  {"text", "because of"}};
  EXPECT_EQ(e.fields, expected);
  EXPECT_TRUE(parse_log_message("ready").fields.empty());
}

TEST(Logging, JsonLinesForAnEventStream) {
  const auto j = nlohmann::json::parse(json_log_line("2026-12-02T00:00:00.000Z", "warning",
                                                     "call_killed user=\"bob\xff\" calls=1"));
  EXPECT_EQ(j["time"], "2026-12-02T00:00:00.000Z");
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["event"], "call_killed");
  EXPECT_EQ(j["fields"]["calls"], "1");
  EXPECT_TRUE(j["fields"]["user"].is_string());  // the invalid byte replaced, the line kept
}

TEST(Logging, FormatNames) {
  LogFormat f = LogFormat::Text;
  EXPECT_TRUE(parse_log_format("json", f));
  EXPECT_EQ(f, LogFormat::Json);
  EXPECT_FALSE(parse_log_format("xml", f));
}

// A logger on a DeferredSink whose writes land in `writes`, one entry per write().
class DeferredLog : public ::testing::Test {
 protected:
  std::vector<std::string> writes;
  std::shared_ptr<DeferredSink> sink =
      std::make_shared<DeferredSink>([this](std::string_view text) { writes.emplace_back(text); });
  std::shared_ptr<spdlog::logger> log = std::make_shared<spdlog::logger>("test", sink);
  void SetUp() override { log->set_pattern("%v"); }
};

TEST_F(DeferredLog, OutsideADeferralEveryLineIsWrittenAtOnce) {
  log->info("call_established call=1");
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0], "call_established call=1\n");
}

TEST_F(DeferredLog, ADeferralHoldsItsLinesInOrderUntilItEnds) {
  sink->begin_deferral();
  log->info("one");
  log->info("two");
  EXPECT_TRUE(writes.empty());
  sink->end_deferral();
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0], "one\ntwo\n");
  log->info("three");
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[1], "three\n");
}

TEST_F(DeferredLog, AWarningIsWrittenAtOnceWithTheLinesBeforeIt) {
  // A daemon that dies right after a warning or an error must still leave it in the log.
  sink->begin_deferral();
  log->info("one");
  log->warn("two");
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0], "one\ntwo\n");
  log->info("three");
  sink->end_deferral();
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[1], "three\n");
}

TEST_F(DeferredLog, HeldLinesAreWrittenOnceTheLimitIsReached) {
  const std::string word(1000, 'x');
  const std::size_t lines = kDeferredLogBytes / (word.size() + 1) + 1;  // the one that reaches the limit
  sink->begin_deferral();
  for (std::size_t i = 0; i < lines - 1; ++i) log->info("{}", word);
  EXPECT_TRUE(writes.empty());
  log->info("{}", word);
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].size(), lines * (word.size() + 1));
  EXPECT_EQ(sink->early_writes(), 1u);
  log->info("after");
  sink->end_deferral();
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[1], "after\n");
}

TEST(DefaultLogDeferral, TheDefaultLoggersLinesWaitForTheScope) {
  // configure_logging's sink writes to stderr; captured through a pipe on fd 2.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const int saved = ::dup(2);
  ::dup2(fds[1], 2);
  configure_logging(LogFormat::Text, spdlog::level::info);
  std::string before_end;
  {
    const LogDeferral deferral;
    spdlog::info("held_line");
    char buf[256];
    ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) before_end.assign(buf, static_cast<std::size_t>(n));
  }
  char buf[256];
  const ssize_t n = ::read(fds[0], buf, sizeof buf);
  ::dup2(saved, 2);
  ::close(saved);
  ::close(fds[0]);
  ::close(fds[1]);
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test"));
  EXPECT_EQ(before_end, "");
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string(buf, static_cast<std::size_t>(n)).find("info held_line\n"), std::string::npos);
}

}  // namespace
}  // namespace pptp::service
