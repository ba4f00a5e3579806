#include "nftables/netdev_elements.hpp"

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>

extern "C" {
#include <libnftnl/common.h>
#include <libnftnl/set.h>
}

#include "nftables/command.hpp"
#include "nftables/fastpath_keys.hpp"
#include "nftables/netlink_batch.hpp"

namespace pptp::nft {

namespace {

constexpr std::size_t kCallsPerBatch = 128;  // 6 elements each: well under 64 KiB a message
constexpr std::size_t kBatchBufferBytes = 1u << 20;

struct SetFree {
  void operator()(nftnl_set* s) const { nftnl_set_free(s); }
};
using NetdevSet = std::unique_ptr<nftnl_set, SetFree>;

NetdevSet netdev_set(std::string_view name) {
  NetdevSet s(nftnl_set_alloc());
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, std::string(kNetdevTable).c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, std::string(name).c_str());
  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_NETDEV);
  return s;
}

// What one change writes per element: on Add and Refresh the value and the timeout (Refresh
// also the expiration: Linux 6.10+ re-arms in place); on Remove the key alone.
struct Put {
  bool put;
  bool refresh;
  std::uint64_t timeout_ms;
};

nftnl_set_elem* element(const Put& p, const void* key, std::uint32_t key_length) {
  nftnl_set_elem* e = nftnl_set_elem_alloc();
  nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, key_length);
  if (p.put) {
    nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, p.timeout_ms);
    if (p.refresh) nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_EXPIRATION, p.timeout_ms);
  }
  return e;
}

void keyed(nftnl_set* s, const Put& p, const NetdevKey& key, const void* value, std::uint32_t value_length) {
  nftnl_set_elem* e = element(p, key.data(), static_cast<std::uint32_t>(key.size()));
  if (p.put) nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, value, value_length);
  nftnl_set_elem_add(s, e);
}

void egress(nftnl_set* s, const Put& p, wire::Ipv4Address destination, const NetdevHop& hop) {
  const auto address = address_value(destination);
  nftnl_set_elem* e = element(p, address.data(), static_cast<std::uint32_t>(address.size()));
  nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, static_cast<std::uint32_t>(NFT_GOTO));
  nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, hop_chain_name(hop).c_str());
  nftnl_set_elem_add(s, e);
}

// The sets of one change of calls [first, last): each set's elements in one message.
struct Batch {
  NetdevSet plain = netdev_set(kNetdevInPlain), address = netdev_set(kNetdevInAddress),
            call_id = netdev_set(kNetdevInCallId), source = netdev_set(kNetdevOutSource),
            out = netdev_set(kNetdevEgress);
  bool any_plain = false, any_translated = false, put = false;
  std::vector<nftnl_set*> sets() const {
    std::vector<nftnl_set*> v{source.get()};
    if (any_plain) v.push_back(plain.get());
    if (any_translated) v.insert(v.end(), {address.get(), call_id.get()});
    if (put) v.push_back(out.get());
    return v;
  }
};

void fill(Batch& b, const Put& p, const std::vector<NetdevCall>& calls, std::size_t first, std::size_t last) {
  b.put = p.put;
  for (std::size_t i = first; i < last; ++i) {
    const FastPathCall& c = calls[i].call;
    const int from_server = calls[i].to_server.ifindex, from_client = calls[i].to_client.ifindex;
    const auto inside = address_value(c.inside), outside = address_value(c.outside);
    const auto inside_call_id = call_id_value(c.inside_call_id);
    const NetdevKey in_key = netdev_key_of(from_server, c.server, c.outside, c.outside_call_id);
    (c.translated() ? b.any_translated : b.any_plain) = true;
    if (c.translated()) {
      keyed(b.address.get(), p, in_key, inside.data(), 4);
      keyed(b.call_id.get(), p, netdev_key_of(from_server, c.server, c.inside, c.outside_call_id),
            inside_call_id.data(), 2);
    } else {
      keyed(b.plain.get(), p, in_key, inside.data(), 4);
    }
    keyed(b.source.get(), p, netdev_key_of(from_client, c.inside, c.server, c.server_call_id), outside.data(), 4);
    if (p.put) {
      egress(b.out.get(), p, c.inside, calls[i].to_client);
      egress(b.out.get(), p, c.server, calls[i].to_server);
    }
  }
}

}  // namespace

Result<std::unique_ptr<NetdevElements>, std::string> NetdevElements::open(std::uint32_t timeout_seconds,
                                                                         std::shared_ptr<NetdevChains> chains) {
  std::unique_ptr<NetdevElements> n(new NetdevElements(timeout_seconds, std::move(chains)));
  n->socket_ = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (n->socket_ == nullptr || mnl_socket_bind(n->socket_, 0, MNL_SOCKET_AUTOPID) < 0) {
    return unexpected(errno_text("netlink socket for nftables", errno) + " (are you root?)");
  }
  set_read_buffer(n->socket_);
  return n;
}

NetdevElements::~NetdevElements() {
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

Result<bool, std::string> NetdevChains::ensure(const NetdevHop& hop, NetdevRole role) {
  const std::lock_guard lock(mutex_);
  const bool new_hop = hops_.count(hop) == 0, new_ingress = ingress_.count(hop.device) == 0,
             new_role = roles_.count({hop.device, role}) == 0;
  if (!new_hop && !new_role) return true;
  if (!valid_device_name(hop.device)) return unexpected("not a device name: " + hop.device);
  // One script: the chain's guards come before the role's jumps.
  std::string script = new_hop ? netdev_hop_script(hop) : std::string();
  if (new_ingress) script += netdev_ingress_script(hop.device);
  if (new_role) script += netdev_role_script(hop.device, role);
  auto r = run_nft(script);
  if (!r) return unexpected(r.error());
  hops_.insert(hop);
  ingress_.insert(hop.device);
  roles_.insert({hop.device, role});
  return true;
}

void NetdevChains::forget() {
  const std::lock_guard lock(mutex_);
  hops_.clear();
  ingress_.clear();
  roles_.clear();
}

Result<bool, std::string> ensure_call_chains(NetdevChains& chains, const NetdevCall& call) {
  // The route toward the client is the client's GRE's way in; toward the server, the server's.
  if (auto r = chains.ensure(call.to_client, NetdevRole::FromClient); !r) return r;
  return chains.ensure(call.to_server, NetdevRole::FromServer);
}

Result<bool, std::string> NetdevElements::ensure_hops(const std::vector<NetdevCall>& calls) {
  for (const NetdevCall& c : calls) {
    if (auto r = ensure_call_chains(*chains_, c); !r) return r;
  }
  return true;
}

Result<bool, std::string> NetdevElements::add(const std::vector<NetdevCall>& calls) {
  if (auto r = ensure_hops(calls); !r) return r;
  return change(Op::Add, calls);
}

Result<bool, std::string> NetdevElements::refresh(const std::vector<NetdevCall>& calls) {
  if (auto r = ensure_hops(calls); !r) return r;
  return change(Op::Refresh, calls);
}

Result<bool, std::string> NetdevElements::remove(const std::vector<NetdevCall>& calls) {
  return change(Op::Remove, calls);
}

Result<bool, std::string> NetdevElements::remove_egress(const std::vector<wire::Ipv4Address>& destinations) {
  std::vector<char> buffer(kBatchBufferBytes);
  for (const wire::Ipv4Address d : destinations) {
    NetdevSet out = netdev_set(kNetdevEgress);
    const auto address = address_value(d);
    nftnl_set_elem_add(out.get(), element(Put{false, false, 0}, address.data(), static_cast<std::uint32_t>(address.size())));
    if (auto r = send_batch({out.get()}, NFT_MSG_DELSETELEM, buffer); !r && last_errno_ != ENOENT) return r;
  }
  return true;
}

Result<bool, std::string> NetdevElements::change(Op op, const std::vector<NetdevCall>& calls) {
  const Put p{op != Op::Remove, op == Op::Refresh, std::uint64_t{timeout_seconds_} * 1000};
  std::vector<char> buffer(kBatchBufferBytes);
  for (std::size_t first = 0; first < calls.size(); first += kCallsPerBatch) {
    const std::size_t last = std::min(calls.size(), first + kCallsPerBatch);
    Batch batch;
    fill(batch, p, calls, first, last);
    const auto r = send_batch(batch.sets(), op == Op::Remove ? NFT_MSG_DELSETELEM : NFT_MSG_NEWSETELEM, buffer);
    if (r) continue;
    if (op != Op::Remove || last_errno_ != ENOENT) return r;
    // One transaction fails as a whole, and an element may have expired already: this
    // batch's removals again one element at a time, what is gone (ENOENT) not an error.
    for (std::size_t i = first; i < last; ++i) {
      Batch one;
      fill(one, p, calls, i, i + 1);
      for (nftnl_set* s : one.sets()) {
        if (auto e = send_batch({s}, NFT_MSG_DELSETELEM, buffer); !e && last_errno_ != ENOENT) return e;
      }
    }
  }
  return true;
}

Result<std::vector<NetdevPackets>, std::string> NetdevElements::read_packets(const std::vector<NetdevCall>& calls) {
  // Per call two reads: its to-client element (query 2i), its to-server one (2i + 1).
  std::vector<NetdevSet> queries;
  std::vector<nftnl_set*> raw;
  queries.reserve(calls.size() * 2);
  raw.reserve(calls.size() * 2);
  for (const NetdevCall& n : calls) {
    const FastPathCall& c = n.call;
    NetdevSet in = netdev_set(c.translated() ? kNetdevInAddress : kNetdevInPlain);
    keyed(in.get(), Put{false, false, 0}, netdev_key_of(n.to_server.ifindex, c.server, c.outside, c.outside_call_id),
          nullptr, 0);
    NetdevSet source = netdev_set(kNetdevOutSource);
    keyed(source.get(), Put{false, false, 0}, netdev_key_of(n.to_client.ifindex, c.inside, c.server, c.server_call_id),
          nullptr, 0);
    for (NetdevSet* s : {&in, &source}) {
      raw.push_back(s->get());
      queries.push_back(std::move(*s));
    }
  }
  std::vector<NetdevPackets> out(calls.size());
  auto r = read_set_elements(socket_, raw, NFPROTO_NETDEV, sequence_, last_errno_, [&](std::size_t i, const nlmsghdr* m) {
    NetdevSet answer(nftnl_set_alloc());
    if (nftnl_set_elems_nlmsg_parse(m, answer.get()) < 0) return;
    std::uint64_t packets = 0;
    nftnl_set_elem_foreach(answer.get(), [](nftnl_set_elem* e, void* sum) {
      *static_cast<std::uint64_t*>(sum) += counter_of(e).packets;
      return 0;
    }, &packets);
    (i % 2 == 0 ? out[i / 2].to_client : out[i / 2].to_server) += packets;
  });
  if (!r) return unexpected(r.error());
  return out;
}

Result<bool, std::string> NetdevElements::send_batch(const std::vector<nftnl_set*>& sets, std::uint16_t type,
                                                     std::vector<char>& buffer) {
  last_errno_ = 0;
  ++transactions_;
  return send_set_elements(socket_, buffer, sets, type, NFPROTO_NETDEV, sequence_, last_errno_);
}

}  // namespace pptp::nft
