#include "nftables/fastpath.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>

extern "C" {
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/set.h>
}

#include "nftables/fastpath_keys.hpp"
#include "nftables/netlink_batch.hpp"
#include "nftables/rules.hpp"

namespace pptp::nft {

namespace {

constexpr std::size_t kElementsPerBatch = 256;  // keeps each netlink message well under 64 KiB
constexpr std::size_t kReceiveBufferBytes = 1u << 16;  // lets the kernel fill 32 KiB dump parts

struct SetDeleter {
  void operator()(nftnl_set* s) const { nftnl_set_free(s); }
};
using SetPtr = std::unique_ptr<nftnl_set, SetDeleter>;

SetPtr make_set(const std::string& table, std::string_view name) {
  SetPtr s(nftnl_set_alloc());
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, std::string(name).c_str());
  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_IPV4);
  return s;
}

void add_element(nftnl_set* s, const Key& key, const void* data, std::uint32_t data_length, std::uint64_t timeout_ms,
                 bool with_timeout, bool refresh, const Binding* binding = nullptr) {
  nftnl_set_elem* e = nftnl_set_elem_alloc();
  if (binding != nullptr) nftnl_set_elem_set(e, NFTNL_SET_ELEM_USERDATA, binding->data(), kBindingLength);
  nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key.data(), static_cast<std::uint32_t>(key.size()));
  if (data != nullptr) nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, data, data_length);
  if (with_timeout) {
    nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, timeout_ms);
    if (refresh) nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_EXPIRATION, timeout_ms);
  }
  nftnl_set_elem_add(s, e);
}

struct Collect {
  std::vector<FastPathCount>* out;
  bool inbound;
};

int on_element(nftnl_set_elem* e, void* data) {
  auto* c = static_cast<Collect*>(data);
  std::uint32_t length = 0;
  const void* key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &length);
  if (key == nullptr) return 0;
  const ElementCounter counter = counter_of(e);
  FastPathCount n;
  n.to_client = c->inbound;
  std::uint32_t user_length = 0;
  const void* user = nftnl_set_elem_get(e, NFTNL_SET_ELEM_USERDATA, &user_length);
  n.binding = parse_binding(user, user_length);
  if (c->inbound) {
    parse_key(key, length, n.key.server, n.key.outside, n.key.outside_call_id);
  } else {
    parse_key(key, length, n.key.inside, n.key.server, n.key.server_call_id);
  }
  n.packets = counter.packets;
  n.bytes = counter.bytes;
  c->out->push_back(n);
  return 0;
}

// One NEWSETELEM message (a part of a dump, or the answer to a read of one element): the
// set's name says the direction.
void collect_elements(const nlmsghdr* m, std::vector<FastPathCount>& out) {
  SetPtr s(nftnl_set_alloc());
  if (nftnl_set_elems_nlmsg_parse(m, s.get()) < 0) return;
  const char* name = nftnl_set_get_str(s.get(), NFTNL_SET_NAME);
  if (name == nullptr) return;
  Collect collect{&out, kFastOut != name};
  nftnl_set_elem_foreach(s.get(), on_element, &collect);
}

bool is_set_element_message(const nlmsghdr* m) {
  return m->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM);
}

}  // namespace

Result<std::unique_ptr<FastPath>, std::string> FastPath::open(std::uint32_t timeout_seconds, std::string_view table) {
  std::unique_ptr<FastPath> f(new FastPath(timeout_seconds, table));
  f->socket_ = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (f->socket_ == nullptr || mnl_socket_bind(f->socket_, 0, MNL_SOCKET_AUTOPID) < 0) {
    return unexpected(errno_text("netlink socket for nftables", errno) + " (are you root?)");
  }
  f->port_id_ = mnl_socket_get_portid(f->socket_);
  // Room for the answers to a round of element reads; the forced size needs CAP_NET_ADMIN,
  // which the daemon has, and the plain one is the fallback.
  set_read_buffer(f->socket_);
  // The sets must be there: reading them is the check.
  if (auto r = f->read_counters(); !r) {
    return unexpected("the fast-path sets of table ip " + f->table_ + " are not usable (" + r.error() +
                      "); install the rules with --install-rules or '" +
                      (f->table_ == kTableName ? "pptp-alg rules" : "pptp-alg rules --proxy") + "'");
  }
  return f;
}

FastPath::~FastPath() {
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

Result<bool, std::string> FastPath::add(const std::vector<FastPathCall>& calls) {
  auto r = change(Op::Add, calls);
  (r ? stats_.added : stats_.errors) += r ? calls.size() : 1;
  return r;
}

Result<bool, std::string> FastPath::refresh(const std::vector<FastPathCall>& calls) {
  auto r = change(Op::Refresh, calls);
  (r ? stats_.refreshed : stats_.errors) += r ? calls.size() : 1;
  return r;
}

Result<bool, std::string> FastPath::remove(const std::vector<FastPathCall>& calls) {
  // One transaction fails as a whole: an element that has expired would take the others
  // with it, so a failed batch is retried element by element, ignoring what is gone.
  auto r = change(Op::Remove, calls);
  if (!r) {
    for (const auto& c : calls) {
      for (std::string_view set :
           {kFastInPlain, kFastInAddress, kFastInCallId, kFastOut, kFastOutSource}) {
        (void)remove_one(set, c);
      }
    }
    r = true;
  }
  stats_.removed += calls.size();
  return r;
}

Result<bool, std::string> FastPath::remove_one(std::string_view set, const FastPathCall& c) {
  SetPtr s = make_set(table_, set);
  if (set == kFastOut || set == kFastOutSource) {
    add_element(s.get(), key_of(c.inside, c.server, c.server_call_id), nullptr, 0, 0, false, false);
  } else if (set == kFastInCallId) {
    add_element(s.get(), key_of(c.server, c.inside, c.outside_call_id), nullptr, 0, 0, false, false);
  } else {
    add_element(s.get(), key_of(c.server, c.outside, c.outside_call_id), nullptr, 0, 0, false, false);
  }
  std::vector<char> buffer(MNL_SOCKET_BUFFER_SIZE);
  mnl_nlmsg_batch* batch = mnl_nlmsg_batch_start(buffer.data(), buffer.size());
  nftnl_batch_begin(static_cast<char*>(mnl_nlmsg_batch_current(batch)), sequence_++);
  mnl_nlmsg_batch_next(batch);
  const std::uint32_t seq = sequence_++;
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(batch)), NFT_MSG_DELSETELEM,
                                        NFPROTO_IPV4, NLM_F_ACK, seq);
  nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
  mnl_nlmsg_batch_next(batch);
  nftnl_batch_end(static_cast<char*>(mnl_nlmsg_batch_current(batch)), sequence_++);
  mnl_nlmsg_batch_next(batch);
  auto r = send_and_ack(mnl_nlmsg_batch_head(batch), mnl_nlmsg_batch_size(batch), seq, seq);
  mnl_nlmsg_batch_stop(batch);
  return r;
}

Result<bool, std::string> FastPath::change(Op op, const std::vector<FastPathCall>& calls) {
  const std::uint64_t timeout_ms = std::uint64_t{timeout_seconds_} * 1000;
  std::vector<char> buffer(1u << 20);
  for (std::size_t first = 0; first < calls.size(); first += kElementsPerBatch) {
    const std::size_t last = std::min(calls.size(), first + kElementsPerBatch);
    SetPtr in_plain = make_set(table_, kFastInPlain), in_address = make_set(table_, kFastInAddress),
           in_call_id = make_set(table_, kFastInCallId), out = make_set(table_, kFastOut),
           out_source = make_set(table_, kFastOutSource);
    bool any_plain = false, any_translated = false;
    for (std::size_t i = first; i < last; ++i) {
      const FastPathCall& c = calls[i];
      const auto inside = address_value(c.inside);
      const auto inside_call_id = call_id_value(c.inside_call_id);
      const bool put = op != Op::Remove;
      const bool refresh = op == Op::Refresh;
      const Binding binding = binding_of(c);
      const Binding* b = put ? &binding : nullptr;
      const Key in_key = key_of(c.server, c.outside, c.outside_call_id);
      if (c.translated()) {
        any_translated = true;
        add_element(in_address.get(), in_key, put ? inside.data() : nullptr, 4, timeout_ms, put, refresh, b);
        add_element(in_call_id.get(), key_of(c.server, c.inside, c.outside_call_id),
                    put ? inside_call_id.data() : nullptr, 2, timeout_ms, put, refresh);
      } else {
        any_plain = true;
        add_element(in_plain.get(), in_key, put ? inside.data() : nullptr, 4, timeout_ms, put, refresh, b);
      }
      const Key out_key = key_of(c.inside, c.server, c.server_call_id);
      const auto outside = address_value(c.outside);
      add_element(out.get(), out_key, nullptr, 0, timeout_ms, put, refresh, b);
      add_element(out_source.get(), out_key, put ? outside.data() : nullptr, 4, timeout_ms, put,
                  refresh);
    }
    std::vector<nftnl_set*> sets{out.get(), out_source.get()};
    if (any_plain) sets.push_back(in_plain.get());
    if (any_translated) {
      sets.push_back(in_address.get());
      sets.push_back(in_call_id.get());
    }
    auto r = send_set_elements(socket_, buffer, sets, op == Op::Remove ? NFT_MSG_DELSETELEM : NFT_MSG_NEWSETELEM,
                               NFPROTO_IPV4, sequence_, stats_.last_errno);
    if (!r) return r;
  }
  return true;
}

Result<bool, std::string> FastPath::send_and_ack(const void* buffer, std::size_t length, std::uint32_t first_seq,
                                                 std::uint32_t last_seq) {
  return nft::send_and_ack(socket_, buffer, length, first_seq, last_seq, stats_.last_errno);
}

Result<std::vector<FastPathCount>, std::string> FastPath::read_counters() {
  std::vector<FastPathCount> out;
  std::vector<char> buffer(kReceiveBufferBytes);
  for (std::string_view name : {kFastInPlain, kFastInAddress, kFastOut}) {
    SetPtr query = make_set(table_, name);
    const std::uint32_t seq = sequence_++;
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buffer.data(), NFT_MSG_GETSETELEM, NFPROTO_IPV4, NLM_F_DUMP | NLM_F_ACK, seq);
    nftnl_set_elems_nlmsg_build_payload(nlh, query.get());
    if (mnl_socket_sendto(socket_, nlh, nlh->nlmsg_len) < 0) return unexpected(errno_text("sending to nftables", errno));
    bool done = false;
    while (!done) {
      auto r = receive_round(socket_, buffer, seq, seq, stats_.last_errno,
                             [&](const nlmsghdr* m) -> std::optional<std::string> {
                               if (m->nlmsg_type == NLMSG_DONE) {
                                 done = true;
                               } else if (m->nlmsg_type == NLMSG_ERROR) {
                                 if (error_of(m) != 0) {
                                   return errno_text(("reading set " + std::string(name)).c_str(), -error_of(m));
                                 }
                                 done = true;
                               } else if (is_set_element_message(m)) {
                                 collect_elements(m, out);
                               }
                               return std::nullopt;
                             });
      if (!r) return unexpected(r.error());
    }
  }
  return out;
}

Result<std::vector<FastPathCount>, std::string> FastPath::read_counters(const std::vector<FastPathCall>& calls) {
  // One read per element, by its key (a dump's cost is quadratic: at 60,000 calls that took
  // most of a core on Linux 6.18); each call: its inbound and its outbound element.
  std::vector<FastPathCount> out;
  out.reserve(calls.size() * 2);
  std::vector<SetPtr> queries;
  std::vector<nftnl_set*> raw;
  queries.reserve(calls.size() * 2);
  raw.reserve(calls.size() * 2);
  for (const FastPathCall& c : calls) {
    for (const bool inbound : {true, false}) {
      SetPtr s = make_set(table_, inbound ? (c.translated() ? kFastInAddress : kFastInPlain) : kFastOut);
      add_element(s.get(),
                  inbound ? key_of(c.server, c.outside, c.outside_call_id) : key_of(c.inside, c.server, c.server_call_id),
                  nullptr, 0, 0, false, false);
      raw.push_back(s.get());
      queries.push_back(std::move(s));
    }
  }
  auto r = read_set_elements(socket_, raw, NFPROTO_IPV4, sequence_, stats_.last_errno,
                             [&](std::size_t, const nlmsghdr* m) { collect_elements(m, out); });
  if (!r) return unexpected(r.error());
  return out;
}

}  // namespace pptp::nft
