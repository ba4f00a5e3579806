#include "nftables/conntrack.hpp"

#include "nftables/netlink_attributes.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace pptp::nft {

namespace {
constexpr int kReplyTimeoutMs = 200;  // ctnetlink answers in microseconds; never stall the queue

struct Answer {
  std::optional<wire::Ipv4Address> address;
};

int on_answer(const nlmsghdr* nlh, void* data) {
  auto* answer = static_cast<Answer*>(data);
  const nlattr* reply = find_attribute(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)),
                                       mnl_nlmsg_get_payload_tail(nlh), CTA_TUPLE_REPLY);
  if (const auto a = tuple_destination(reply)) answer->address = a;
  return MNL_CB_OK;
}
}  // namespace

Result<std::unique_ptr<ConntrackLookup>, std::string> ConntrackLookup::open() {
  std::unique_ptr<ConntrackLookup> c(new ConntrackLookup());
  c->socket_ = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (c->socket_ == nullptr || mnl_socket_bind(c->socket_, 0, MNL_SOCKET_AUTOPID) < 0) {
    return unexpected(std::string("opening ctnetlink: ") + std::strerror(errno));
  }
  c->port_id_ = mnl_socket_get_portid(c->socket_);
  c->buffer_.resize(MNL_SOCKET_BUFFER_SIZE);
  return c;
}

ConntrackLookup::~ConntrackLookup() {
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

std::optional<wire::Ipv4Address> ConntrackLookup::reply_destination(const wire::Endpoint& source,
                                                                    const wire::Endpoint& destination) {
  ++lookups_;
  std::optional<wire::Ipv4Address> address;
  exchange(IPCTNL_MSG_CT_GET, IPPROTO_TCP, source, destination, &address, TcpChange{});
  if (!address) ++failures_;
  return address;
}

bool ConntrackLookup::delete_gre_by_reply(wire::Ipv4Address server, wire::Ipv4Address outside, std::uint16_t key) {
  // GRE's tuple in ctnetlink: the Keys in the port attributes (nf_conntrack_proto_gre).
  const int error = exchange(IPCTNL_MSG_CT_DELETE, IPPROTO_GRE, wire::Endpoint{server, key}, wire::Endpoint{outside, 0},
                             nullptr, TcpChange{}, Tuple::Reply);
  if (error != 0) return false;
  ++deleted_;
  return true;
}

bool ConntrackLookup::make_tcp_liberal(const wire::Endpoint& source, const wire::Endpoint& destination) {
  // IPCTNL_MSG_CT_NEW without NLM_F_CREATE changes an existing entry (ENOENT if none).
  return exchange(IPCTNL_MSG_CT_NEW, IPPROTO_TCP, source, destination, nullptr, TcpChange{true, std::nullopt}) == 0;
}

bool ConntrackLookup::keep_tcp_established(const wire::Endpoint& source, const wire::Endpoint& destination,
                                           std::uint32_t timeout_s) {
  return exchange(IPCTNL_MSG_CT_NEW, IPPROTO_TCP, source, destination, nullptr, TcpChange{false, timeout_s}) == 0;
}

void ConntrackLookup::put_tcp_change(nlmsghdr* nlh, const TcpChange& change) {
  if (!change.liberal && !change.established) return;
  // ctnetlink's TCP protoinfo (nlattr_to_tcp): the state, and flags under a mask.
  nlattr* info = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
  nlattr* tcp = mnl_attr_nest_start(nlh, CTA_PROTOINFO_TCP);
  if (change.established) mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_STATE, TCP_CONNTRACK_ESTABLISHED);
  if (change.liberal) {
    const nf_ct_tcp_flags liberal{IP_CT_TCP_FLAG_BE_LIBERAL, IP_CT_TCP_FLAG_BE_LIBERAL};
    mnl_attr_put(nlh, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, sizeof liberal, &liberal);
    mnl_attr_put(nlh, CTA_PROTOINFO_TCP_FLAGS_REPLY, sizeof liberal, &liberal);
  }
  mnl_attr_nest_end(nlh, tcp);
  mnl_attr_nest_end(nlh, info);
  if (change.established) mnl_attr_put_u32(nlh, CTA_TIMEOUT, htonl(*change.established));
}

int ConntrackLookup::exchange(std::uint16_t type, std::uint8_t protocol, const wire::Endpoint& source,
                              const wire::Endpoint& destination, std::optional<wire::Ipv4Address>* reply_destination,
                              TcpChange change, Tuple which) {
  std::vector<char>& buf = buffer_;
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nlh->nlmsg_seq = ++sequence_;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = AF_INET;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = 0;
  nlattr* tuple = mnl_attr_nest_start(nlh, which == Tuple::Reply ? CTA_TUPLE_REPLY : CTA_TUPLE_ORIG);
  nlattr* ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
  mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, htonl(source.address.value));
  mnl_attr_put_u32(nlh, CTA_IP_V4_DST, htonl(destination.address.value));
  mnl_attr_nest_end(nlh, ip);
  nlattr* proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(nlh, CTA_PROTO_NUM, protocol);
  mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(source.port));
  mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(destination.port));
  mnl_attr_nest_end(nlh, proto);
  mnl_attr_nest_end(nlh, tuple);
  put_tcp_change(nlh, change);
  if (mnl_socket_sendto(socket_, nlh, nlh->nlmsg_len) < 0) return errno;
  Answer answer;
  int error = ETIMEDOUT;
  // The entry (for a get), then the acknowledgment. ctnetlink answers inside the sendto (a
  // request is handled in the sender's context), so the answer is read at once; a wait,
  // bounded, only if it is not there (a set-up's round trip paid a poll for nothing, s37).
  const int fd = mnl_socket_get_fd(socket_);
  for (int i = 0; i < 2; ++i) {
    ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, kReplyTimeoutMs) != 1) break;
      n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    }
    if (n <= 0) break;
    const int rc = mnl_cb_run(buf.data(), static_cast<std::size_t>(n), sequence_, port_id_, on_answer, &answer);
    if (rc <= MNL_CB_STOP) {  // the acknowledgment (or an error) ends the exchange
      error = rc == MNL_CB_ERROR ? errno : 0;
      break;
    }
  }
  if (reply_destination != nullptr) *reply_destination = answer.address;
  return error;
}

}  // namespace pptp::nft
