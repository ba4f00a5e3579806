#include "alg/config/config.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace pptp::config {
namespace {

ConfigError error_of(std::string_view yaml) {
  auto s = parse_config(yaml);
  EXPECT_FALSE(s.has_value()) << yaml;
  return s ? ConfigError{} : s.error();
}

TEST(Config, EmptyFileSetsNothing) {
  auto s = parse_config("# only comments\n");
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->queue);
  EXPECT_FALSE(s->install_rules);
  EXPECT_FALSE(s->pid_file);
}

TEST(Config, EveryKeyReadsItsValue) {
  auto s = parse_config(
      "queue: 7\ninstall-rules: true\nbackend: xtables\nfail-open: true\nno-fast-path: true\n"
      "keep-fast-path: false\nfast-path: netdev\nallow-unknown-gre: true\nidle-timeout: 12.5\n"
      "status-file: /run/x/status.json\npolicy: /etc/x/rules.yaml\npid-file: /run/x/x.pid\nlog-level: debug\n"
      "user: pptp-alg\nsyn-limit: 0\nqueued-gre-limit: 250\ncontrol-socket: /run/x/control\n"
      "metrics-listen: 127.0.0.1:9816\nlog-format: json\n");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->queue, 7);
  EXPECT_EQ(s->install_rules, true);
  EXPECT_EQ(s->backend, "xtables");
  EXPECT_EQ(s->fail_open, true);
  EXPECT_EQ(s->no_fast_path, true);
  EXPECT_EQ(s->keep_fast_path, false);
  EXPECT_EQ(s->fast_path_mode, "netdev");
  EXPECT_EQ(s->allow_unknown_gre, true);
  EXPECT_EQ(s->idle_timeout, 12.5);
  EXPECT_EQ(s->status_file, "/run/x/status.json");
  EXPECT_EQ(s->policy, "/etc/x/rules.yaml");
  EXPECT_EQ(s->pid_file, "/run/x/x.pid");
  EXPECT_EQ(s->log_level, "debug");
  EXPECT_EQ(s->user, "pptp-alg");
  EXPECT_EQ(s->syn_limit, 0u);
  EXPECT_EQ(s->queued_gre_limit, 250u);
  EXPECT_EQ(s->control_socket, "/run/x/control");
  EXPECT_EQ(s->metrics_listen, "127.0.0.1:9816");
  EXPECT_EQ(s->log_format, "json");
  EXPECT_EQ(key_names().size(), 38u);
  EXPECT_FALSE(parse_config("fast-path: flowtable\n"));
}

TEST(Config, HighAvailabilityKeysAreReadAndANodeIsZeroOrOne) {
  auto s = parse_config("ha-peer: 192.0.2.2:1724\nha-listen: 192.0.2.1:1724\nha-key-file: /etc/x/ha.key\n"
                        "ha-node: 1\nha-commit-command: none\n");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->ha_peer, "192.0.2.2:1724");
  EXPECT_EQ(s->ha_listen, "192.0.2.1:1724");
  EXPECT_EQ(s->ha_key_file, "/etc/x/ha.key");
  EXPECT_EQ(s->ha_node, "1");
  EXPECT_EQ(s->ha_commit_command, "none");
  EXPECT_FALSE(parse_config("ha-node: 2\n"));
  EXPECT_FALSE(parse_config("ha-key-file: relative/ha.key\n"));
}

// The commit command's time limit at a healing: seconds from 1 to 600; out of that, the
// error says what the number is for and what to give.
TEST(Config, TheHealingCommitTimeoutIsSecondsFromOneToSixHundred) {
  for (const char* good : {"ha-commit-timeout: 1\n", "ha-commit-timeout: 2.5\n", "ha-commit-timeout: 600\n"}) {
    EXPECT_TRUE(parse_config(good)) << good;
  }
  EXPECT_EQ(parse_config("ha-commit-timeout: 30\n")->ha_commit_timeout, 30.0);
  EXPECT_EQ(parse_config("ha-virtual-address: 198.51.100.1\n")->ha_virtual_address, "198.51.100.1");
  for (const char* bad : {"ha-virtual-address: 198.51.100\n", "ha-virtual-address: 198.51.100.1:1723\n",
                          "ha-virtual-address: vip\n", "ha-virtual-address: 2001:db8::1\n"}) {
    EXPECT_FALSE(parse_config(bad)) << bad;
  }
  EXPECT_FALSE(parse_config("ha-peer: 192.0.2.2:1724\n")->ha_commit_timeout);  // the default stays
  for (const char* bad : {"ha-commit-timeout: 0\n", "ha-commit-timeout: 0.5\n", "ha-commit-timeout: 601\n",
                          "ha-commit-timeout: -3\n", "ha-commit-timeout: soon\n", "ha-commit-timeout: nan\n"}) {
    const auto s = parse_config(bad);
    ASSERT_FALSE(s) << bad;
    EXPECT_NE(s.error().message.find("expected seconds from 1 to 600 that the commit command"), std::string::npos)
        << s.error().message;
  }
}

TEST(Config, ARateLimitIsAWholeNumberOfPacketsPerSecond) {
  for (const char* bad : {"syn-limit: -1\n", "syn-limit: 2.5\n", "queued-gre-limit: 1000001\n", "syn-limit: many\n"}) {
    EXPECT_FALSE(parse_config(bad)) << bad;
  }
}

TEST(Config, BudgetsAreWholePositiveNumbers) {
  auto s = parse_config("memory-budget: 32\nsource-connections: 10\nsource-half-open: 4\nsource-calls: 20\n"
                        "source-reassembly: 64\nsource-held: 16\n");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->memory_budget, 32u);
  EXPECT_EQ(s->source_connections, 10u);
  EXPECT_EQ(s->source_half_open, 4u);
  EXPECT_EQ(s->source_calls, 20u);
  EXPECT_EQ(s->source_reassembly, 64u);
  EXPECT_EQ(s->source_held, 16u);
  for (const char* bad : {"memory-budget: 0\n", "source-calls: -1\n", "source-half-open: 2.5\n"}) {
    EXPECT_FALSE(parse_config(bad)) << bad;
  }
}

TEST(Config, TheProxysPerSourceLimitsAreWholePositiveNumbers) {
  auto s = parse_config("proxy: true\nproxy-source-calls: 8\nproxy-source-connections: 3\nproxy-calls: 100\n");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->proxy_source_calls, 8u);
  EXPECT_EQ(s->proxy_source_connections, 3u);
  EXPECT_EQ(s->proxy_calls, 100u);
  for (const char* bad : {"proxy-source-calls: 0\n", "proxy-source-calls: many\n", "proxy-source-connections: 0\n",
                          "proxy-calls: 7\n", "proxy-calls: 30001\n"}) {
    EXPECT_FALSE(parse_config(bad)) << bad;
  }
}

// proxy-servers and proxy-outside are read as written; the proxy parses them at start
// (daemon_flags.cpp proxy_servers_of, proxy_outside_of).
TEST(Config, TheProxysServersAreOneTextOfPrefixes) {
  auto s = parse_config("proxy: true\nproxy-servers: 198.51.100.3,203.0.113.0/24\nproxy-outside: wan0,ppp0\n");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->proxy_servers, "198.51.100.3,203.0.113.0/24");
  EXPECT_EQ(s->proxy_outside, "wan0,ppp0");
  EXPECT_FALSE(parse_config("proxy-servers: [198.51.100.3]\n")) << "a list is not the flag's text";
}

TEST(Config, TheShippedFileIsValidAndRunsTheService) {
  auto s = load_config_file(PPTP_SOURCE_DIR "/packaging/etc/pptp-alg.conf");
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ(s->install_rules, true);
  EXPECT_EQ(s->pid_file, std::string(kDefaultPidFile));
  EXPECT_EQ(s->status_file, std::string(kDefaultStatusFile));
  EXPECT_FALSE(s->policy) << "the example policy denies by default: the admin enables it";
  EXPECT_EQ(s->control_socket, "/run/pptp-alg/control");
  EXPECT_FALSE(s->metrics_listen) << "metrics over HTTP are off unless the admin turns them on";
}

TEST(Config, NoControlSocketIsSaidWithNone) {
  auto s = parse_config("control-socket: none\n");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->control_socket, "none");
  EXPECT_FALSE(parse_config("control-socket: relative/control\n"));
}

TEST(Config, UnknownKeyIsAnErrorAtItsPosition) {
  const auto e = error_of("queue: 1\n  \ninstal-rules: true\n");
  EXPECT_EQ(e.line, 3);
  EXPECT_EQ(e.column, 1);
  EXPECT_NE(e.message.find("unknown key 'instal-rules'"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("install-rules"), std::string::npos) << "lists the keys: " << e.message;
}

TEST(Config, WrongValuesNameTheValue) {
  struct Case {
    const char* yaml;
    const char* says;
  };
  for (const Case& c : {Case{"queue: 65536", "queue number"}, Case{"queue: -1", "queue number"},
                        Case{"queue: 3x", "queue number"}, Case{"install-rules: yes", "true or false"},
                        Case{"fail-open: ''", "true or false"}, Case{"idle-timeout: 0", "positive"},
                        Case{"idle-timeout: nan", "positive"}, Case{"status-file: run/status.json", "absolute"},
                        Case{"log-level: verbose", "trace, debug"}, Case{"backend: [nft]", "one of auto"}}) {
    const auto e = error_of(c.yaml);
    EXPECT_EQ(e.line, 1) << c.yaml;
    EXPECT_GT(e.column, 1) << c.yaml << ": points at the value";
    EXPECT_NE(e.message.find(c.says), std::string::npos) << c.yaml << ": " << e.message;
  }
}

TEST(Config, MissingValueIsAnError) {
  const auto e = error_of("queue: 0\nfail-open:\n");
  EXPECT_EQ(e.line, 2);
  EXPECT_EQ(e.column, 1);
  EXPECT_NE(e.message.find("'fail-open' has no value"), std::string::npos) << e.message;
}

TEST(Config, KeyGivenTwiceIsAnError) {
  const auto e = error_of("queue: 1\nqueue: 2\n");
  EXPECT_EQ(e.line, 2);
  EXPECT_NE(e.message.find("twice"), std::string::npos);
}

TEST(Config, NotAMappingOrNotYaml) {
  EXPECT_NE(error_of("- queue\n").message.find("mapping"), std::string::npos);
  const auto e = error_of("queue: 1\npolicy: [unclosed\n");
  EXPECT_GE(e.line, 2);
  EXPECT_NE(e.message.find("not valid YAML"), std::string::npos);
}

TEST(Config, FileErrorsReadFileLineColumn) {
  EXPECT_EQ(to_string(ConfigError{4, 9, "expected true or false"}, "/etc/pptp-alg/pptp-alg.conf"),
            "/etc/pptp-alg/pptp-alg.conf:4:9: expected true or false");
  EXPECT_EQ(to_string(ConfigError{0, 0, "empty"}, "f.conf"), "f.conf: empty");
  auto missing = load_config_file("/nonexistent/pptp-alg.conf");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().rfind("/nonexistent/pptp-alg.conf: cannot read", 0), 0u) << missing.error();
}

}  // namespace
}  // namespace pptp::config
