#include "nftables/named_counter.hpp"

#include <libmnl/libmnl.h>
#include <libnftnl/object.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <memory>
#include <vector>

#include "nftables/netlink_batch.hpp"

namespace pptp::nft {

namespace {

constexpr std::size_t kAnswerBytes = 4096;  // one counter object

struct ObjFree {
  void operator()(nftnl_obj* o) const { nftnl_obj_free(o); }
};

bool is_object_message(const nlmsghdr* m) {
  return m->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWOBJ);
}

}  // namespace

Result<std::unique_ptr<NamedCounters>, std::string> NamedCounters::open() {
  std::unique_ptr<NamedCounters> c(new NamedCounters());
  c->socket_ = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (c->socket_ == nullptr || mnl_socket_bind(c->socket_, 0, MNL_SOCKET_AUTOPID) < 0) {
    return unexpected(errno_text("netlink socket for nftables counters", errno));
  }
  return c;
}

NamedCounters::~NamedCounters() {
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

Result<NamedCount, std::string> NamedCounters::read(TableFamily family, std::string_view table,
                                                    std::string_view name) {
  std::unique_ptr<nftnl_obj, ObjFree> query(nftnl_obj_alloc());
  if (!query) return unexpected(std::string("out of memory"));
  nftnl_obj_set_str(query.get(), NFTNL_OBJ_TABLE, std::string(table).c_str());
  nftnl_obj_set_str(query.get(), NFTNL_OBJ_NAME, std::string(name).c_str());
  nftnl_obj_set_u32(query.get(), NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
  std::vector<char> buffer(kAnswerBytes);
  const std::uint32_t seq = ++sequence_;
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buffer.data(), NFT_MSG_GETOBJ,
                                        family == TableFamily::Ip ? NFPROTO_IPV4 : NFPROTO_NETDEV, NLM_F_ACK, seq);
  nftnl_obj_nlmsg_build_payload(nlh, query.get());
  if (mnl_socket_sendto(socket_, nlh, nlh->nlmsg_len) < 0) return unexpected(errno_text("asking nftables", errno));
  std::optional<NamedCount> found;
  bool acked = false;
  while (!acked) {
    auto r = receive_round(socket_, buffer, seq, seq, last_errno_, [&](const nlmsghdr* m) -> std::optional<std::string> {
      if (m->nlmsg_type == NLMSG_ERROR) {
        acked = true;
        if (const int e = error_of(m); e != 0) return errno_text("reading the counter", -e);
        return std::nullopt;
      }
      if (!is_object_message(m)) return std::nullopt;
      std::unique_ptr<nftnl_obj, ObjFree> o(nftnl_obj_alloc());
      if (o && nftnl_obj_nlmsg_parse(m, o.get()) == 0) {
        found = NamedCount{nftnl_obj_get_u64(o.get(), NFTNL_OBJ_CTR_PKTS), nftnl_obj_get_u64(o.get(), NFTNL_OBJ_CTR_BYTES)};
      }
      return std::nullopt;
    });
    if (!r) return unexpected(r.error());
  }
  if (!found) return unexpected(std::string("no counter in the answer"));
  return *found;
}

}  // namespace pptp::nft
