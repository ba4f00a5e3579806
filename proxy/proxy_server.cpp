#include "proxy/proxy_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>

#include "alg/control/protocol.hpp"
#include "alg/daemon/files.hpp"
#include "alg/service/systemd.hpp"
#include "alg/wire/gre.hpp"
#include "policy/loader.hpp"
#include "proxy/coexistence.hpp"
#include "proxy/proxy_server_impl.hpp"

namespace pptp::proxy {

namespace {

inline constexpr std::size_t kMaxGrePerWake = 256;  // then other work gets the loop

wire::Endpoint endpoint_of(const tcp::endpoint& e) {
  return wire::Endpoint{wire::Ipv4Address{e.address().to_v4().to_uint()}, e.port()};
}

void log_outside(const std::vector<std::string>& outside, bool given) {
  if (outside.empty()) {
    spdlog::warn("proxy_outside_unknown note=\"no IPv4 default route: TCP/1723 and GRE from every interface are "
                 "proxied, the outside's too (docs/proxy.md)\"");
    return;
  }
  std::string names;
  for (const std::string& i : outside) names += (names.empty() ? "" : ",") + i;
  spdlog::info("proxy_outside interfaces={} from={} note=\"their TCP/1723 and GRE are not proxied\"", names,
               given ? "proxy-outside" : "default_route");
}

}  // namespace


Result<bool, std::string> ProxyServer::open() {
  if (auto r = listener_.open(options_.listen_port); !r) return r;
  policy_.limit_connections(connections_that_fit(options_.limits.connections));
  if (auto r = gre_sockets_.open(); !r) return r;
  gre_in_.emplace(io_, gre_sockets_.receive_fd());
  if (!options_.user.empty()) {
    auto found = daemon::find_account(options_.user);
    if (!found) return unexpected("--user " + options_.user + ": " + found.error());
    account_ = *found;
  }
  if (options_.install_rules) {
    ProxyRuleOptions o = rule_options();
    o.outside_interfaces = outside_interfaces(options_.outside);
    log_outside(o.outside_interfaces, !options_.outside.empty());
    auto r = install_proxy_rules(o);
    if (!r) return unexpected(r.error());
    rules_installed_ = true;
  }
  if (options_.fast_path) {
    fast_.open(options_.install_rules, options_.servers, options_.keep_fast_path);
    // Without its table (chain proxy_server_gre) a transparent daemon beside it would queue
    // and drop the proxied servers' GRE (proxy/coexistence.hpp): not a state to run in.
    if (!fast_.enabled() && read_other_mode().transparent_table) {
      return unexpected(std::string("the fast path could not be set up (log: fast_path_unavailable) and a transparent "
                                    "pptp-alg runs on this router: its queue would drop the proxied calls' GRE"));
    }
    book_.on_release([this](std::uint16_t id) { fast_.released(id); });
  }
  open_control();
  return open_metrics();
}

void ProxyServer::run() {
  worker_.emplace(1);
  listener_.start([this](tcp::socket socket) { on_accept(std::move(socket)); });
  wait_gre();
  tick();
  signals_.async_wait([this](const boost::system::error_code&, int signal) {
    spdlog::info("stopping signal={}", signal);
    io_.stop();
  });
  wait_hangup();
  spdlog::info("ready mode=proxy listen_port={} rules={} policy={}", options_.listen_port, options_.install_rules,
               options_.policy_file.empty() ? "-" : options_.policy_file);
  service::notify_ready("proxy mode");
  io_.run();
  service::notify_stopping();
  if (control_) control_->answer_in_flight(daemon::stopping_answer());
}

// Every socket is open and the rules are in: what is left needs CAP_NET_ADMIN only (the
// iptables and ip run at exit to remove the rules), as the transparent daemon keeps; with
// --user the proxy becomes that user (alg/daemon/privileges.hpp).
Result<std::string, std::string> ProxyServer::drop_privileges() {
  return daemon::drop_privileges(account_ ? &*account_ : nullptr);
}

// The policy as the proxy reads it: `on_deny: refuse` is allowed here (docs/proxy.md).
Result<bool, std::string> ProxyServer::load_policy() {
  if (options_.policy_file.empty()) return true;
  auto loaded = policy::load_policy_file(options_.policy_file, policy::PolicyMode::Proxy);
  if (!loaded) return unexpected(loaded.error());
  auto p = std::make_shared<const policy::Policy>(std::move(*loaded));
  spdlog::info("policy_loaded file={} users={} rules={} default={} on_deny={}", options_.policy_file, p->users.size(),
               p->rules.size(), policy::name_of(p->default_action), policy::name_of(p->on_deny));
  policy_.set(std::move(p));
  return true;
}

// The policy file again; an invalid one leaves the old running.
Result<std::string, std::string> ProxyServer::reload() {
  if (options_.policy_file.empty()) {
    spdlog::info("reload_skipped reason=\"no --policy file\"");
    return std::string("reload skipped: no policy file");
  }
  service::notify_reloading();
  auto r = load_policy();
  service::notify_ready("proxy mode");
  if (!r) {
    spdlog::error("policy_reload_rejected error=\"{}\" note=\"the old policy keeps running\"", r.error());
    return unexpected("reload rejected, the old policy keeps running: " + r.error());
  }
  spdlog::info("policy_reloaded file={}", options_.policy_file);
  return "policy reloaded: " + options_.policy_file;
}

// SIGHUP (`pptp-alg reload`).
void ProxyServer::wait_hangup() {
  hangup_.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;
    (void)reload();  // logged there
    wait_hangup();
  });
}

// Only REDIRECTed connections to TCP/1723 of another host are proxied: one straight to the
// listener would make the router connect to itself.
void ProxyServer::on_accept(tcp::socket socket) {
  boost::system::error_code ec;
  const auto local = socket.local_endpoint(ec);
  const auto target = ProxyListener::original_destination(socket);
  const wire::Endpoint client = endpoint_of(socket.remote_endpoint(ec));
  const double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  if (ec || !target || *target == local || target->port() != wire::kPptpPort) {
    // One made straight to the listener: logged under the per-source budget (a host that
    // keeps connecting must not fill the log).
    refusals_.warn_source("proxy_connection_not_redirected", client.address, now, [] { return std::string(); });
    ProxyListener::reset(socket);
    return;
  }
  auto judge = policy_.judge_for(client, endpoint_of(*target));
  if (!judge) {  // over the proxy's limits (counted there): reset before anything is read
    refusals_.warn_source("proxy_connection_refused", client.address, now, [&] {
      return "server=" + target->address().to_string() + " open=" + std::to_string(policy_.connections()) +
             " note=\"over the connections per client address or in all; reset\"";
    });
    ProxyListener::reset(socket);
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  spdlog::info("proxy_connection client={} server={}", wire::to_string(client.address), target->address().to_string());
  SessionJudge& j = *judge;
  auto session = std::make_shared<Session>(std::move(socket), *target, book_, counters_, std::move(judge));
  j.on_cut([weak = std::weak_ptr<Session>(session)](std::uint16_t id, std::uint8_t code, const std::string& why) {
    if (auto s = weak.lock()) s->cut(id, code, why);
  });
  session->start();
  sessions_.push_back(session);
}

void ProxyServer::wait_gre() {
  gre_in_->async_wait(asio::posix::descriptor_base::wait_read, [this](const boost::system::error_code& ec) {
    if (ec) return;
    read_gre();
    wait_gre();
  });
}

void ProxyServer::read_gre() {
  for (std::size_t i = 0; i < kMaxGrePerWake; ++i) {
    const std::optional<Bytes> packet = gre_sockets_.receive();
    if (!packet) return;
    auto f = relay_gre(book_, *packet);
    if (f && !policy_.on_gre(f->call, f->toward, Bytes(f->gre).subspan(f->payload_offset))) {
      ++gre_.policy_dropped;
      continue;
    }
    if (f) {
      gre_sockets_.send(*f, gre_);
      fast_.after_packet(book_, policy_, f->call);
      continue;
    }
    switch (f.error()) {
      case GreDrop::Malformed: ++gre_.malformed; break;
      case GreDrop::UnknownCall: ++gre_.unknown_call; break;
      case GreDrop::WrongSource: ++gre_.wrong_source; break;
    }
  }
}

void ProxyServer::tick() {
  fast_.tick(policy_);
  policy_.end_idle(options_.call_idle);
  write_status();
  tick_.expires_after(std::chrono::seconds(1));
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

int run_proxy(const ProxyOptions& options) {
  ProxyServer server(options);
  if (auto r = server.load_policy(); !r) {
    spdlog::error("policy_invalid error=\"{}\" note=\"fix the file; 'pptp-alg check FILE' shows what it means\"",
                  r.error());
    return 2;
  }
  if (auto r = server.open(); !r) {
    spdlog::error("proxy_start_failed error={}", r.error());
    return 1;
  }
  if (!options.pid_file.empty()) {
    if (auto r = daemon::write_private_file(options.pid_file, std::to_string(::getpid()) + "\n"); !r) {
      spdlog::warn("pid_file_failed error={}", r.error());
    }
  }
  auto dropped = server.drop_privileges();
  if (!dropped) {
    spdlog::error("privileges_drop_failed error=\"{}\"", dropped.error());
    return 1;
  }
  spdlog::info("privileges_dropped user={} {}", options.user.empty() ? "-" : options.user, *dropped);
  server.run();
  return 0;
}

}  // namespace pptp::proxy
