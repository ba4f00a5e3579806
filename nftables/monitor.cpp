#include "nftables/monitor.hpp"

#include <libmnl/libmnl.h>
#include <linux/filter.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <optional>
#include <vector>

namespace pptp::nft {

namespace {
constexpr std::size_t kHeaderRoom = NLMSG_HDRLEN + sizeof(nfgenmsg);

// The attribute that names the table in each message type (all 1 today, named all the same).
int table_attribute(std::uint16_t type) {
  switch (type) {
    case NFT_MSG_NEWTABLE:
    case NFT_MSG_DELTABLE:
      return NFTA_TABLE_NAME;
    case NFT_MSG_DELCHAIN:
      return NFTA_CHAIN_TABLE;
    case NFT_MSG_DELSET:
      return NFTA_SET_TABLE;
    default:
      return -1;
  }
}

// The table's name in `nlh`'s attributes (nlh lies within the datagram: mnl_nlmsg_ok);
// nullopt when absent or unreadable (then `malformed`).
std::optional<std::string_view> table_name(const nlmsghdr* nlh, int attribute, bool& malformed) {
  std::optional<std::string_view> name;
  const auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
  int left = static_cast<int>(nlh->nlmsg_len - kHeaderRoom);
  while (mnl_attr_ok(a, left)) {
    // A NUL-terminated string within the attribute (mnl_attr_validate checks both).
    if (mnl_attr_get_type(a) == attribute) {
      if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0) {
        malformed = true;
        return std::nullopt;
      }
      name = std::string_view(mnl_attr_get_str(a));
    }
    left -= static_cast<int>(MNL_ALIGN(a->nla_len));
    a = mnl_attr_next(a);
  }
  if (left > 0) malformed = true;  // an attribute whose length runs past the message
  return name;
}

// The first message's type as a classic BPF half-word load sees it (network byte order;
// netlink headers are in host order).
std::uint32_t as_loaded(std::uint16_t host) {
  std::uint8_t b[2];
  std::memcpy(b, &host, sizeof b);
  return static_cast<std::uint32_t>(b[0]) << 8 | b[1];
}

// Datagrams that start with an element change (the daemon's own fast-path updates, many a
// second) are dropped in the kernel: the loop is not woken for them.
bool skip_element_news(mnl_socket* socket) {
  const auto type = [](int msg) { return as_loaded(static_cast<std::uint16_t>(NFNL_SUBSYS_NFTABLES << 8 | msg)); };
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, offsetof(nlmsghdr, nlmsg_type)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, type(NFT_MSG_NEWSETELEM), 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, type(NFT_MSG_DELSETELEM), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0),
      BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
  };
  const sock_fprog program{static_cast<unsigned short>(std::size(code)), code};
  return setsockopt(mnl_socket_get_fd(socket), SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) == 0;
}
}  // namespace

TableNews classify_table_news(std::span<const std::uint8_t> datagram, std::string_view table) {
  TableNews news;
  // libmnl's walkers only read the header once it fits (mnl_nlmsg_ok).
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(datagram.data());
  int left = static_cast<int>(datagram.size());
  while (mnl_nlmsg_ok(nlh, left)) {
    ++news.messages;
    const bool nftables = NFNL_SUBSYS_ID(nlh->nlmsg_type) == NFNL_SUBSYS_NFTABLES;
    const std::uint16_t type = NFNL_MSG_TYPE(nlh->nlmsg_type);
    const int attribute = nftables ? table_attribute(type) : -1;
    if (attribute >= 0 && nlh->nlmsg_len >= kHeaderRoom) {
      const auto* gen = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
      bool bad = false;
      const auto name = gen->nfgen_family == NFPROTO_IPV4 ? table_name(nlh, attribute, bad) : std::nullopt;
      news.malformed |= bad;
      if (name == table) (type == NFT_MSG_NEWTABLE ? news.created : news.removed) = true;
    }
    nlh = mnl_nlmsg_next(nlh, &left);
  }
  if (left > 0) news.malformed = true;  // a header or a length past the end
  return news;
}

Result<std::unique_ptr<TableMonitor>, std::string> TableMonitor::open() {
  std::unique_ptr<TableMonitor> m(new TableMonitor());
  m->socket_ = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (m->socket_ == nullptr || mnl_socket_bind(m->socket_, 0, MNL_SOCKET_AUTOPID) < 0) {
    return unexpected(std::string("cannot open a netfilter netlink socket: ") + std::strerror(errno));
  }
  int group = NFNLGRP_NFTABLES;
  if (mnl_socket_setsockopt(m->socket_, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0) {
    return unexpected(std::string("cannot join the nf_tables notification group: ") + std::strerror(errno));
  }
  if (!skip_element_news(m->socket_)) {
    return unexpected(std::string("socket filter on the nf_tables monitor: ") + std::strerror(errno));
  }
  return m;
}

TableMonitor::~TableMonitor() {
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

int TableMonitor::fd() const { return mnl_socket_get_fd(socket_); }

Result<TableMonitor::Drained, std::string> TableMonitor::drain(std::string_view table) {
  Drained out;
  std::vector<std::uint8_t> buffer(MNL_SOCKET_BUFFER_SIZE);
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(socket_, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return out;
      if (errno == ENOBUFS) {
        out.overrun = true;
        continue;
      }
      return unexpected(std::string("netlink receive: ") + std::strerror(errno));
    }
    const TableNews news = classify_table_news(std::span(buffer.data(), static_cast<std::size_t>(n)), table);
    out.news.removed |= news.removed;
    out.news.created |= news.created;
    out.news.malformed |= news.malformed;
    out.news.messages += news.messages;
  }
}

}  // namespace pptp::nft
