#include "alg/daemon/daemon.hpp"

#include "alg/daemon/pacing.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "alg/version.hpp"
#include "nftables/conntrack.hpp"
#include "nftables/fastpath.hpp"
#include "nftables/queue.hpp"
#include "policy/loader.hpp"

namespace pptp::daemon {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void write_status(const std::string& path, const nlohmann::json& status) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return;
    out << status.dump(1) << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());  // readers see a whole file
}

nlohmann::json queue_json(const nft::QueueStats& s) {
  return {{"packets", s.packets},
          {"verdicts", s.verdicts},
          {"verdict_sends", s.verdict_sends},
          {"socket_overruns", s.socket_overruns},
          {"receive_errors", s.receive_errors},
          {"send_errors", s.send_errors},
          {"last_errno", s.last_errno},
          {"kernel_queue_dropped", s.kernel_queue_dropped},
          {"kernel_user_dropped", s.kernel_user_dropped}};
}

}  // namespace

int run_daemon(const DaemonOptions& o) {
  auto log = spdlog::default_logger();
  std::shared_ptr<const policy::Policy> rules;
  if (!o.policy_file.empty()) {
    auto loaded = policy::load_policy_file(o.policy_file);
    if (!loaded) {
      log->error("policy_invalid error=\"{}\" note=\"fix the file; 'pptp-alg check FILE' shows what it means\"",
                 loaded.error());
      return 2;
    }
    rules = std::make_shared<const policy::Policy>(std::move(*loaded));
    log->info("policy_loaded file={} users={} rules={} default={}", o.policy_file, rules->users.size(),
              rules->rules.size(), policy::name_of(rules->default_action));
  }
  const nft::Backend backend = o.backend ? *o.backend : nft::detect_backend();
  log->info("starting version={} queue={} backend={} fail_open={} allow_unknown_gre={}", PPTP_ALG_VERSION,
            o.queue, nft::name_of(backend), o.fail_open, o.gateway.allow_unknown_gre);

  auto queue = nft::NetlinkQueue::open(nft::QueueOptions{o.queue, o.fail_open});
  if (!queue) {
    log->error("queue_open_failed queue={} error=\"{}\"", o.queue, queue.error());
    return 1;
  }
  nft::NetlinkQueue& q = **queue;
  bool rules_installed = false;
  if (o.install_rules) {
    bool kept = false;
    auto ok = nft::install_rules(backend, nft::RuleOptions{o.queue, o.fail_open, o.fast_path}, &kept);
    if (!ok) {
      log->error("rules_install_failed error=\"{}\"", ok.error());
      return 1;
    }
    rules_installed = true;
    log->info("rules_installed backend={} table={} fast_path_elements_kept={}", nft::name_of(backend),
              nft::kTableName, kept);
  }

  // Without conntrack data on queued packets, ask ctnetlink once per control connection.
  struct CtResolver final : OutsideResolver {
    std::unique_ptr<nft::ConntrackLookup> lookup;
    std::optional<wire::Ipv4Address> outside_address(const wire::Endpoint& pns, const wire::Endpoint& pac) override {
      return lookup ? lookup->reply_destination(pns, pac) : std::nullopt;
    }
  } resolver;
  if (!q.conntrack_attached()) {
    auto lookup = nft::ConntrackLookup::open();
    if (!lookup) {
      log->warn("conntrack_lookup_unavailable error=\"{}\" note=\"Call IDs are translated per client address\"",
                lookup.error());
    } else {
      resolver.lookup = std::move(*lookup);
    }
    log->info("nat_binding_source source=ctnetlink reason=\"the kernel attaches no conntrack data to queued packets\"");
  }
  // The fast path needs its sets in the kernel (ours with --install-rules, or the
  // operator's from `pptp-alg rules`); without them GRE goes through the queue.
  std::unique_ptr<nft::FastPath> fast_path;
  GatewayOptions gateway_options = o.gateway;
  if (o.fast_path) {
    auto fp = nft::FastPath::open();
    if (fp) {
      fast_path = std::move(*fp);
      gateway_options.fast_path = true;
      log->info("fast_path_enabled timeout_seconds={}", nft::kFastPathTimeoutSeconds);
    } else {
      log->warn("fast_path_unavailable error=\"{}\" note=\"GRE goes through the queue\"", fp.error());
    }
  }
  Gateway gateway(gateway_options, log, &resolver);
  gateway.set_policy(rules);
  const auto to_offload_counts = [](const std::vector<nft::FastPathCount>& counts) {
    std::vector<OffloadCount> n;
    n.reserve(counts.size());
    for (const nft::FastPathCount& c : counts) {
      const OffloadedCall key{c.call.server, c.call.outside, c.call.inside, c.call.outside_call_id, 0,
                              c.call.server_call_id};
      OffloadCount x{c.to_client, key, c.to_client ? c.to_client_packets : c.to_server_packets,
                     c.to_client ? c.to_client_bytes : c.to_server_bytes, std::nullopt};
      if (c.binding) {
        const nft::FastPathCall& b = *c.binding;
        x.binding = OffloadedCall{b.server, b.outside, b.inside, b.outside_call_id, b.inside_call_id, b.server_call_id};
      }
      n.push_back(x);
    }
    return n;
  };
  // A restart: calls the previous run handed to the kernel are still there; keep them.
  if (fast_path) {
    if (auto counts = fast_path->read_counters(); counts && !counts->empty()) {
      const std::size_t adopted = gateway.adopt_offloaded(to_offload_counts(*counts), 0);
      log->info("fast_path_adopted calls={} note=\"their GRE keeps flowing; they end when it stops\"", adopted);
    }
  }
  const auto to_fast_path_call = [](const OffloadedCall& c) {
    return nft::FastPathCall{c.server, c.outside, c.inside, c.outside_call_id, c.inside_call_id, c.server_call_id};
  };
  bool counting_busy = false, status_busy = false, refresh_busy = false;  // worker jobs in flight
  std::uint64_t refreshed_elsewhere = 0;  // calls the worker re-armed (its socket's own stats are its own)
  std::vector<nft::FastPathCall> removed_while_refreshing;
  // Elements follow the calls: added when a call is handed over, removed when it ends.
  const auto apply_offload = [&] {
    if (!fast_path) return;
    std::vector<nft::FastPathCall> add, remove;
    for (const OffloadChange& ch : gateway.take_offload_changes()) {
      (ch.add ? add : remove).push_back(to_fast_path_call(ch.call));
    }
    if (!remove.empty()) {
      if (auto r = fast_path->remove(remove); !r) log->warn("fast_path_remove_failed error=\"{}\"", r.error());
      // A re-arm in flight on the worker may put these back: removed again when it is done.
      if (refresh_busy) removed_while_refreshing.insert(removed_while_refreshing.end(), remove.begin(), remove.end());
    }
    if (!add.empty()) {
      if (auto r = fast_path->add(add); !r) {
        log->error("fast_path_add_failed error=\"{}\"", r.error());
        gateway.disable_fast_path(r.error());
        fast_path.reset();
      }
    }
  };
  const auto start = std::chrono::steady_clock::now();
  double last_refresh = 0;
  // An offloaded call is idle when its counters stop: they must be read within half the
  // idle timeout, whatever it costs.
  Paced counting(std::clamp(o.gateway.timeouts.call_idle / 4, kTickSeconds, kFastPathCountSeconds),
                 o.gateway.timeouts.call_idle / 2);
  double refresh_cost = 0;
  // Work that grows with the calls (reading the fast path's counters, writing the status
  // file) runs beside the packet loop on one worker thread, so that the loop never waits
  // for it; the worker has its own netlink socket, and its results come back to the loop,
  // the only thread that touches the gateway. Declared after everything it uses, joined
  // before any of it goes.
  std::unique_ptr<nft::FastPath> counter_reader;
  if (fast_path) {
    if (auto r = nft::FastPath::open(); r) {
      counter_reader = std::move(*r);
    } else {
      log->warn("fast_path_counter_socket_failed error=\"{}\" note=\"counters are read on the packet loop\"",
                r.error());
    }
  }
  boost::asio::io_context io;
  boost::asio::thread_pool background(1);
  const auto apply_counts = [&](const Result<std::vector<nft::FastPathCount>, std::string>& counts, double now) {
    if (counts) {
      gateway.note_offload_counts(to_offload_counts(*counts), now);
    } else {
      log->warn("fast_path_counters_failed error=\"{}\"", counts.error());
    }
  };
  const auto fast_path_tick = [&](double now) {
    if (!fast_path) return;
    const bool count = counting.due(now) && !counting_busy, refresh = now - last_refresh >= kFastPathRefreshSeconds;
    if (!count && !refresh) return;
    std::vector<nft::FastPathCall> live;
    for (const OffloadedCall& c : gateway.offloaded_calls()) live.push_back(to_fast_path_call(c));
    if (count && counter_reader) {
      counting_busy = true;
      boost::asio::post(background, [&, live, now] {
        const auto began = std::chrono::steady_clock::now();
        auto counts = counter_reader->read_counters(live);
        const double cost = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
        boost::asio::post(io, [&, counts = std::move(counts), now, cost] {
          counting_busy = false;
          const double applied = seconds_since(start);
          apply_counts(counts, applied);
          counting.ran(now, now + cost + (seconds_since(start) - applied));
        });
      });
    } else if (count) {
      apply_counts(fast_path->read_counters(live), now);
      counting.ran(now, seconds_since(start));
    }
    if (refresh && !refresh_busy && !live.empty() && counter_reader) {
      last_refresh = now;
      refresh_busy = true;
      boost::asio::post(background, [&, live = std::move(live)] {
        const auto began = std::chrono::steady_clock::now();
        auto r = counter_reader->refresh(live);
        const double cost = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
        boost::asio::post(io, [&, r = std::move(r), cost, calls = live.size()] {
          refresh_busy = false;
          refresh_cost = cost;
          if (!removed_while_refreshing.empty() && fast_path) {
            (void)fast_path->remove(removed_while_refreshing);
          }
          removed_while_refreshing.clear();
          if (r) {
            refreshed_elsewhere += calls;
          } else {
            log->warn("fast_path_refresh_failed error=\"{}\"", r.error());
          }
        });
      });
    } else if (refresh && !refresh_busy) {
      last_refresh = now;
      if (!live.empty()) {
        if (auto r = fast_path->refresh(live); !r) log->warn("fast_path_refresh_failed error=\"{}\"", r.error());
      }
      refresh_cost = seconds_since(start) - now;
    }
  };
  if (!o.pid_file.empty()) {
    std::ofstream pid(o.pid_file, std::ios::trunc);
    pid << ::getpid() << "\n";
    if (!pid) log->warn("pid_file_unwritable file={}", o.pid_file);
  }
  boost::asio::posix::stream_descriptor socket(io, q.fd());
  boost::asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  boost::asio::steady_timer tick(io);
  double last_summary = 0;

  std::vector<std::uint8_t> scratch;
  const auto kind_of = [](Action a) { return a == Action::Drop ? nft::VerdictKind::Drop : nft::VerdictKind::Accept; };
  // Held segments come back once their message is whole (or their time is up).
  const auto verdict_released = [&] {
    for (const ReleasedPacket& r : gateway.take_released()) {
      q.verdict(static_cast<std::uint32_t>(r.packet_id), kind_of(r.action),
                r.modified ? std::span<const std::uint8_t>(r.bytes) : std::span<const std::uint8_t>());
    }
  };
  const std::function<void(nft::QueuedPacket&)> on_packet = [&](nft::QueuedPacket& p) {
    const PacketMeta meta{seconds_since(start), p.id, p.conntrack_reply_destination};
    const Verdict v = gateway.process(p.payload, meta);
    verdict_released();
    if (v.action == Action::Hold) return;
    q.verdict(p.id, kind_of(v.action),
              v.modified ? std::span<const std::uint8_t>(p.payload) : std::span<const std::uint8_t>());
  };
  std::function<void()> wait_packets = [&] {
    socket.async_wait(boost::asio::posix::stream_descriptor::wait_read, [&](boost::system::error_code ec) {
      if (ec) return;
      q.receive(on_packet);
      q.flush();
      apply_offload();
      wait_packets();
    });
  };
  Paced status_writes(kTickSeconds, kStatusAtMostSeconds);  // 60,000 calls take a while to write
  double status_build_cost = 0;  // the part of it on the packet loop
  const auto status = [&] {
    nlohmann::json s = gateway.status();
    s["daemon"] = {{"version", PPTP_ALG_VERSION}, {"queue", o.queue}, {"backend", nft::name_of(backend)},
                   {"uptime_seconds", seconds_since(start)}};
    s["queue"] = queue_json(q.stats());
    // Work that grows with the calls, and how often it runs (docs/daemon.md).
    s["housekeeping"] = {{"status_seconds", status_writes.last_cost()},
                         {"status_build_seconds", status_build_cost},
                         {"status_every_seconds", status_writes.interval()},
                         {"counters_seconds", counting.last_cost()},
                         {"counters_every_seconds", counting.interval()},
                         {"refresh_seconds", refresh_cost},
                         {"refresh_every_seconds", kFastPathRefreshSeconds}};
    if (fast_path) {
      const auto& f = fast_path->stats();
      s["fast_path"]["elements"] = {{"added", f.added}, {"removed", f.removed}, {"refreshed", f.refreshed + refreshed_elsewhere},
                                    {"errors", f.errors}};
    }
    return s;
  };
  std::function<void()> on_tick = [&] {
    tick.expires_after(std::chrono::milliseconds(static_cast<int>(kTickSeconds * 1000)));
    tick.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      const double now = seconds_since(start);
      fast_path_tick(now);
      gateway.expire(now);
      verdict_released();
      apply_offload();
      q.flush();
      q.refresh_kernel_stats();
      if (!o.status_file.empty() && !status_busy && status_writes.due(now)) {
        // Built here (it reads the gateway), written by the worker.
        status_busy = true;
        auto snapshot = status();
        const double built = seconds_since(start) - now;
        status_build_cost = built;
        boost::asio::post(background, [&, snapshot = std::move(snapshot), now, built] {
          const auto began = std::chrono::steady_clock::now();
          write_status(o.status_file, snapshot);
          const double written = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
          boost::asio::post(io, [&, now, built, written] {
            status_busy = false;
            status_writes.ran(now, now + built + written);
          });
        });
      }
      if (now - last_summary >= kSummaryEverySeconds) {
        last_summary = now;
        const auto& s = q.stats();
        log->info("summary connections={} calls={} packets={} socket_overruns={} kernel_queue_dropped={}",
                  gateway.tracker().connection_count(), gateway.tracker().call_count(), s.packets,
                  s.socket_overruns, s.kernel_queue_dropped);
      }
      on_tick();
    });
  };
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        if (o.policy_file.empty()) {
          log->info("reload_skipped reason=\"no --policy file\"");
        } else if (auto loaded = policy::load_policy_file(o.policy_file); loaded) {
          auto next = std::make_shared<const policy::Policy>(std::move(*loaded));
          log->info("policy_reloaded file={} users={} rules={} on_reload={}", o.policy_file, next->users.size(),
                    next->rules.size(), policy::name_of(next->on_reload));
          gateway.set_policy(std::move(next));
          verdict_released();
        } else {
          log->error("policy_reload_rejected error=\"{}\" note=\"the old policy keeps running\"", loaded.error());
        }
        wait_signal();
        return;
      }
      log->info("stopping signal={}", sig);
      io.stop();
    });
  };
  wait_packets();
  on_tick();
  wait_signal();
  log->info("ready queue={} status_file={}", o.queue, o.status_file.empty() ? "-" : o.status_file);
  io.run();
  background.join();  // its last status write must not race the one below

  socket.release();  // the queue object owns the descriptor
  gateway.shutdown(seconds_since(start));
  verdict_released();
  if (o.keep_fast_path && rules_installed) {
    (void)gateway.take_offload_changes();  // the elements stay for the next start
  } else {
    apply_offload();  // the calls ended: their elements go
  }
  q.flush();
  if (!o.status_file.empty()) write_status(o.status_file, status());
  if (!o.pid_file.empty()) std::remove(o.pid_file.c_str());
  if (rules_installed) {
    nft::remove_rules(o.keep_fast_path);
    log->info("rules_removed table={} fast_path_kept={}", nft::kTableName, o.keep_fast_path);
  }
  const auto& s = q.stats();
  log->info("stopped packets={} verdicts={} verdict_sends={} socket_overruns={}", s.packets, s.verdicts,
            s.verdict_sends, s.socket_overruns);
  return 0;
}

std::string render_status(const nlohmann::json& s) {
  std::ostringstream out;
  const auto text = [](const nlohmann::json& v) {
    if (v.is_null()) return std::string("-");
    if (v.is_string()) return v.get<std::string>();
    return v.dump();
  };
  char line[512];
  std::snprintf(line, sizeof line, "%-5s %-21s %-21s %-15s %-12s %s\n", "CONN", "PNS (inside)", "PAC (server)",
                "OUTSIDE", "STATE", "CALLS");
  out << line;
  for (const auto& c : s.value("connections", nlohmann::json::array())) {
    std::snprintf(line, sizeof line, "%-5s %-21s %-21s %-15s %-12s %zu\n", text(c["id"]).c_str(),
                  text(c["pns"]).c_str(), text(c["pac"]).c_str(), text(c["outside"]).c_str(),
                  text(c["state"]).c_str(), c["calls"].size());
    out << line;
    for (const auto& call : c["calls"]) {
      std::snprintf(line, sizeof line,
                    "      call %-4s %-8s %-11s client Call ID %-5s -> server sees %-5s  server Call ID %-5s"
                    "  GRE to server %-6s to client %-6s user %s%s%s\n",
                    text(call["id"]).c_str(), text(call["origin"]).c_str(), text(call["state"]).c_str(),
                    text(call["pns_call_id"]).c_str(), text(call["outside_call_id"]).c_str(),
                    text(call["pac_call_id"]).c_str(), text(call["gre_to_pac"]["packets"]).c_str(),
                    text(call["gre_to_pns"]["packets"]).c_str(), text(call["user"]).c_str(),
                    call.contains("policy") ? ("  policy " + text(call["policy"]["verdict"]) + " (rule " +
                                               text(call["policy"]["rule"]) + ")").c_str()
                                            : "",
                    call.value("fast_path", false) ? "  [fast path]" : "");
      out << line;
    }
  }
  if (s.contains("packets")) out << "packets: " << s["packets"].dump() << "\n";
  if (s.contains("nat")) out << "nat: " << s["nat"].dump() << "\n";
  if (s.contains("policy") && !s["policy"].is_null()) out << "policy: " << s["policy"].dump() << "\n";
  if (s.contains("fast_path")) out << "fast_path: " << s["fast_path"].dump() << "\n";
  if (s.contains("anomalies")) out << "anomalies: " << s["anomalies"].dump() << "\n";
  if (s.contains("queue")) out << "queue: " << s["queue"].dump() << "\n";
  return out.str();
}

}  // namespace pptp::daemon
