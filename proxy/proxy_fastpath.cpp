#include "proxy/proxy_fastpath.hpp"

#include <sstream>

#include "nftables/command.hpp"
#include "nftables/rules.hpp"
#include "proxy/key_map.hpp"

namespace pptp::proxy {

nat::CallBinding binding_of(const ProxyFastCall& c) {
  return nat::CallBinding{c.server, c.router, c.client, c.pns_call_id, c.client_call_id, c.pac_call_id};
}

std::optional<ProxyFastCall> fast_call_of(const CallBook& book, std::uint16_t pac_call_id, wire::Ipv4Address router) {
  const GreRoute* up = book.route(pac_call_id);
  if (up == nullptr || up->toward != Leg::Server) return std::nullopt;
  const GreRoute* down = book.route(up->reverse);
  if (down == nullptr || down->toward != Leg::Client || down->call != pac_call_id) return std::nullopt;
  return ProxyFastCall{up->expected_source, up->destination, router, down->key, pac_call_id, up->reverse, up->key};
}

namespace {
// `ip saddr { ... } ` for the servers, nothing for every server.
std::string from_servers(const std::vector<policy::Prefix>& servers) {
  if (servers.empty()) return {};
  std::string out = "ip saddr { ";
  for (std::size_t i = 0; i < servers.size(); ++i) {
    if (i > 0) out += ", ";
    out += policy::to_string(servers[i]);
  }
  return out + " } ";
}
}  // namespace

std::string fast_path_script(const std::vector<policy::Prefix>& servers) {
  nft::RuleOptions o;
  o.fast_path_out_mark = kFastOutMark;
  o.table = kTableName;
  // Backend::Xtables: the fast-path sets and chains without the transparent mode's queue rules.
  std::ostringstream s;
  s << nft::nft_table(nft::Backend::Xtables, o) << "table ip " << kTableName << " {\n"
    << "  # Proxy mode: the client's GRE reaches the server with the server's Call ID as its Key,\n"
    << "  # looked up once fast_source has made its source the router's (RFC 2637 4.1).\n"
    << "  map " << kOutKeyMap << " {\n    typeof ip saddr . ip daddr . @th,48,16 : @th,48,16\n"
    << "    flags timeout\n  }\n"
    << "  chain " << kOutKeyMap << " {\n"
    << "    type filter hook forward priority mangle - 5; policy accept;\n"
    << "    meta mark & " << nft::hex32(kFastOutMark) << " == " << nft::hex32(kFastOutMark)
    << " @th,48,16 set ip saddr . ip daddr . @th,48,16 map @" << kOutKeyMap << "\n"
    << "  }\n"
    << "  # The servers' GRE to this router is the proxy's: a transparent daemon's queue rules\n"
    << "  # (table ip " << nft::kTableName << ") leave packets with this bit alone.\n"
    << "  chain " << kServerGreChain << " {\n"
    << "    type filter hook prerouting priority raw - 15; policy accept;\n"
    << "    ip protocol gre fib daddr type local " << from_servers(servers) << "meta mark set meta mark | "
    << nft::hex32(o.fast_path_mark) << "\n"
    << "  }\n}\n";
  return s.str();
}

bool OffloadBook::add(const ProxyFastCall& c) {
  if (by_pac_.contains(c.pac_call_id)) return false;
  by_pac_.emplace(c.pac_call_id, Entry{c});
  pac_of_pns_[c.pns_call_id] = c.pac_call_id;
  return true;
}

std::optional<ProxyFastCall> OffloadBook::take(std::uint16_t our_call_id) {
  auto it = by_pac_.find(our_call_id);
  if (it == by_pac_.end()) {
    const auto pns = pac_of_pns_.find(our_call_id);
    if (pns == pac_of_pns_.end()) return std::nullopt;
    it = by_pac_.find(pns->second);
  }
  const ProxyFastCall c = it->second.call;
  pac_of_pns_.erase(c.pns_call_id);
  by_pac_.erase(it);
  return c;
}

std::vector<ProxyFastCall> OffloadBook::calls() const {
  std::vector<ProxyFastCall> out;
  out.reserve(by_pac_.size());
  for (const auto& [id, e] : by_pac_) out.push_back(e.call);
  return out;
}

// To the client: fast_in's element, keyed by B; to the server: fast_out's, keyed by A (the
// binding's server_call_id, binding_of). A count below the last read is a re-added element.
std::vector<KernelGre> OffloadBook::deltas(const std::vector<nat::BindingCount>& counts) {
  std::unordered_map<std::uint16_t, KernelGre> out;
  for (const nat::BindingCount& n : counts) {
    std::uint16_t pac = n.key.server_call_id;
    if (n.to_client) {
      const auto pns = pac_of_pns_.find(n.key.outside_call_id);
      if (pns == pac_of_pns_.end()) continue;
      pac = pns->second;
    }
    const auto it = by_pac_.find(pac);
    if (it == by_pac_.end()) continue;
    std::uint64_t& last = n.to_client ? it->second.to_client : it->second.to_server;
    const std::uint64_t delta = n.packets >= last ? n.packets - last : n.packets;
    last = n.packets;
    if (delta == 0) continue;
    KernelGre& k = out[pac];
    k.pac_call_id = pac;
    (n.to_client ? k.to_client : k.to_server) += delta;
    (n.to_client ? to_client_ : to_server_) += delta;
  }
  std::vector<KernelGre> list;
  for (const auto& [id, k] : out) list.push_back(k);
  return list;
}

ProxyFastPath::ProxyFastPath(std::unique_ptr<nft::FastPath> fast, std::unique_ptr<KeyMap> keys)
    : fast_(std::move(fast)), keys_(std::move(keys)) {}
ProxyFastPath::~ProxyFastPath() = default;

Result<std::unique_ptr<ProxyFastPath>, std::string> ProxyFastPath::open() {
  auto fast = nft::FastPath::open(nft::kFastPathTimeoutSeconds, kTableName);
  if (!fast) return unexpected(fast.error());
  auto keys = KeyMap::open();
  if (!keys) return unexpected(keys.error());
  return std::unique_ptr<ProxyFastPath>(new ProxyFastPath(std::move(*fast), std::move(*keys)));
}

// The Key map first: the client's GRE marked by fast_out must find its Key.
Result<bool, std::string> ProxyFastPath::offer(const ProxyFastCall& c) {
  if (book_.has(c.pac_call_id)) return true;
  if (auto r = keys_->put({c}, false); !r) {
    ++key_errors_;
    return r;
  }
  if (auto r = fast_->add({binding_of(c)}); !r) {
    (void)keys_->remove(c);
    return r;
  }
  book_.add(c);
  return true;
}

void ProxyFastPath::withdraw(std::uint16_t our_call_id) {
  const auto c = book_.take(our_call_id);
  if (!c) return;
  (void)fast_->remove({binding_of(*c)});  // counted in stats(); one already expired is no error
  if (!keys_->remove(*c)) ++key_errors_;
}

std::vector<KernelGre> ProxyFastPath::read_counts() {
  if (book_.size() == 0) return {};
  std::vector<nat::CallBinding> bindings;
  for (const ProxyFastCall& c : book_.calls()) bindings.push_back(binding_of(c));
  auto counts = fast_->read_counters(bindings);
  if (!counts) return {};
  return book_.deltas(*counts);
}

void ProxyFastPath::refresh() {
  const std::vector<ProxyFastCall> calls = book_.calls();
  if (calls.empty()) return;
  std::vector<nat::CallBinding> bindings;
  for (const ProxyFastCall& c : calls) bindings.push_back(binding_of(c));
  (void)fast_->refresh(bindings);
  if (!keys_->put(calls, true)) ++key_errors_;
}

Result<bool, std::string> install_fast_path_table(const std::vector<policy::Prefix>& servers) {
  if (auto nft = nft::require_tool(nft::Tool::Nft); !nft) return unexpected(nft.error());
  remove_fast_path_table();
  std::string output;
  if (nft::run_command({nft::tool_path(nft::Tool::Nft), "-f", "-"}, fast_path_script(servers), output) != 0) {
    return unexpected("nft could not load table ip " + std::string(kTableName) + ": " + output);
  }
  return true;
}

std::size_t leftover_calls() {
  std::string output;
  if (nft::run_command({nft::tool_path(nft::Tool::Nft), "list", "map", "ip", std::string(kTableName),
                        std::string(kOutKeyMap)},
                       {}, output) != 0) {
    return 0;
  }
  std::size_t n = 0;  // every element carries a timeout, listed as "expires"
  for (std::size_t at = output.find(" expires "); at != std::string::npos; at = output.find(" expires ", at + 1)) ++n;
  return n;
}

void remove_fast_path_table() {
  std::string output;
  nft::run_command({nft::tool_path(nft::Tool::Nft), "delete", "table", "ip", std::string(kTableName)}, {}, output);
}

}  // namespace pptp::proxy
