#include "proxy/fast_relay.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "nftables/rules.hpp"

namespace pptp::proxy {

void FastRelay::open(bool install, const std::vector<policy::Prefix>& servers, bool keep) {
  if (keep) {
    spdlog::warn("keep_fast_path_not_applied mode=proxy note=\"a proxied call ends with the proxy's control "
                 "connections: its elements are removed at exit, and an earlier proxy's at start\"");
  }
  if (install) {
    // An earlier proxy's calls ended with its control connections (they lived in that
    // process): what it left in the kernel is removed, not adopted.
    if (const std::size_t left = leftover_calls(); left > 0) {
      spdlog::warn("fast_path_leftover_removed mode=proxy calls={} note=\"their control connections ended with the "
                   "earlier proxy\"", left);
    }
    if (auto r = install_fast_path_table(servers); !r) {
      spdlog::warn("fast_path_unavailable error=\"{}\" note=\"GRE is relayed in user space\"", r.error());
      return;
    }
    installed_ = true;
  }
  auto p = ProxyFastPath::open();
  if (!p) {
    spdlog::warn("fast_path_unavailable error=\"{}\" note=\"GRE is relayed in user space\"", p.error());
    return;
  }
  path_ = std::move(*p);
  spdlog::info("fast_path_enabled mode=proxy timeout_seconds={}", nft::kFastPathTimeoutSeconds);
  if (auto c = nft::NamedCounters::open(); c) {
    named_counters_ = std::move(*c);
  } else {
    spdlog::warn("nft_counters_unavailable mode=proxy error=\"{}\" note=\"control_stray is not in the status\"",
                 c.error());
  }
}

void FastRelay::close() {
  if (path_) {
    for (const ProxyFastCall& c : path_->book().calls()) path_->withdraw(c.pac_call_id);
    path_.reset();
  }
  if (installed_) remove_fast_path_table();
  installed_ = false;
}

// The source the kernel picks toward the server (the route's), as for the server leg's TCP
// connection: the address the server sends the call's GRE to.
wire::Ipv4Address FastRelay::router_toward(wire::Ipv4Address server) {
  if (auto it = routers_.find(server.value); it != routers_.end()) return it->second;
  wire::Ipv4Address router;
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(wire::kPptpPort);
  to.sin_addr.s_addr = htonl(server.value);
  sockaddr_in from{};
  socklen_t length = sizeof from;
  if (fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&from), &length) == 0) {
    router.value = ntohl(from.sin_addr.s_addr);
    routers_[server.value] = router;
  }
  if (fd >= 0) ::close(fd);
  return router;
}

void FastRelay::after_packet(const CallBook& book, const ProxyPolicy& policy, std::uint16_t pac_call_id) {
  if (!path_ || stopped_ || path_->has(pac_call_id) || !policy.ready_for_kernel(pac_call_id)) return;
  const GreRoute* up = book.route(pac_call_id);
  if (up == nullptr) return;
  const wire::Ipv4Address router = router_toward(up->destination);
  const auto call = router.value != 0 ? fast_call_of(book, pac_call_id, router) : std::nullopt;
  if (!call) return;
  if (auto r = path_->offer(*call); !r) {
    ++failed_;
    stopped_ = true;
    spdlog::error("fast_path_add_failed call={} error=\"{}\" note=\"new calls stay in user space\"", pac_call_id,
                  r.error());
    return;
  }
  ++offloaded_;
  spdlog::info("call_offloaded mode=proxy call={} client={} server={} router={} keys={}/{}/{}/{} "
               "note=\"its GRE is relayed by the kernel\"",
               pac_call_id, wire::to_string(call->client), wire::to_string(call->server), wire::to_string(router),
               call->client_call_id, call->pac_call_id, call->pns_call_id, call->server_call_id);
}

void FastRelay::released(std::uint16_t call_id) {
  if (!path_ || !path_->book().size()) return;
  const std::size_t before = path_->book().size();
  path_->withdraw(call_id);
  withdrawn_ += before - path_->book().size();
}

void FastRelay::tick(ProxyPolicy& policy) {
  if (!path_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_count_ >= std::chrono::duration<double>(kCountSeconds)) {
    last_count_ = now;
    for (const KernelGre& k : path_->read_counts()) policy.on_kernel_gre(k.pac_call_id, k.to_server, k.to_client);
    if (named_counters_) {
      auto c = named_counters_->read(nft::TableFamily::Ip, kTableName, nft::kCounterControlStray);
      control_stray_ = c ? std::optional(*c) : std::nullopt;
    }
  }
  if (now - last_refresh_ >= std::chrono::duration<double>(kRefreshSeconds)) {
    last_refresh_ = now;
    path_->refresh();
  }
}

FastRelayCounts FastRelay::counts() const {
  FastRelayCounts c{0, offloaded_, withdrawn_, failed_, 0, 0, 0, control_stray_};
  if (path_) {
    c.calls = path_->book().size();
    c.netlink_errors = path_->stats().errors + path_->key_errors();
    c.to_server_packets = path_->book().to_server();
    c.to_client_packets = path_->book().to_client();
  }
  return c;
}

nlohmann::json FastRelay::status(const FastRelayCounts& c) const {
  return {{"enabled", path_ != nullptr},       {"calls", c.calls},
          {"offloaded", c.offloaded},          {"withdrawn", c.withdrawn},
          {"add_failed", c.add_failed},        {"netlink_errors", c.netlink_errors},
          {"to_server_packets", c.to_server_packets}, {"to_client_packets", c.to_client_packets}};
}

}  // namespace pptp::proxy
