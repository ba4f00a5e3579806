#include "alg/service/logging.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
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

}  // namespace
}  // namespace pptp::service
