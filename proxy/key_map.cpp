#include "proxy/key_map.hpp"

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

extern "C" {
#include <libnftnl/common.h>
#include <libnftnl/set.h>
}

#include "nftables/fastpath_keys.hpp"
#include "nftables/rules.hpp"

namespace pptp::proxy {

namespace {
constexpr std::size_t kElementsPerMessage = 64;  // one message, one ack: well under the buffer
constexpr timeval kAnswerTimeout{2, 0};

std::string failed(const char* what, int e) { return std::string(what) + ": " + std::strerror(e); }
}  // namespace

Result<std::unique_ptr<KeyMap>, std::string> KeyMap::open() {
  std::unique_ptr<KeyMap> m(new KeyMap());
  m->socket_ = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (m->socket_ == nullptr || mnl_socket_bind(m->socket_, 0, MNL_SOCKET_AUTOPID) < 0) {
    return unexpected(failed("netlink socket for nftables", errno));
  }
  // An answer that never comes must not stall the proxy's loop.
  setsockopt(mnl_socket_get_fd(m->socket_), SOL_SOCKET, SO_RCVTIMEO, &kAnswerTimeout, sizeof kAnswerTimeout);
  return m;
}

KeyMap::~KeyMap() {
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

Result<bool, std::string> KeyMap::put(const std::vector<ProxyFastCall>& calls, bool refresh) {
  for (std::size_t first = 0; first < calls.size(); first += kElementsPerMessage) {
    const auto end = calls.begin() + static_cast<std::ptrdiff_t>(std::min(calls.size(), first + kElementsPerMessage));
    auto r = send(NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_ACK,
                  std::vector<ProxyFastCall>(calls.begin() + static_cast<std::ptrdiff_t>(first), end), refresh);
    if (!r) return r;
  }
  return true;
}

Result<bool, std::string> KeyMap::remove(const ProxyFastCall& call) {
  auto r = send(NFT_MSG_DELSETELEM, NLM_F_ACK, {call}, false);
  if (!r && last_errno_ == ENOENT) return true;
  return r;
}

// One batch: begin, the elements in one message, end; the kernel acks the message.
Result<bool, std::string> KeyMap::send(std::uint16_t type, std::uint16_t flags, const std::vector<ProxyFastCall>& calls,
                                       bool refresh) {
  nftnl_set* set = nftnl_set_alloc();
  nftnl_set_set_str(set, NFTNL_SET_TABLE, std::string(kTableName).c_str());
  nftnl_set_set_str(set, NFTNL_SET_NAME, std::string(kOutKeyMap).c_str());
  nftnl_set_set_u32(set, NFTNL_SET_FAMILY, NFPROTO_IPV4);
  const std::uint64_t timeout_ms = std::uint64_t{nft::kFastPathTimeoutSeconds} * 1000;
  for (const ProxyFastCall& c : calls) {
    nftnl_set_elem* e = nftnl_set_elem_alloc();
    const nft::Key key = nft::key_of(c.router, c.server, c.pac_call_id);
    nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key.data(), static_cast<std::uint32_t>(key.size()));
    if (type == NFT_MSG_NEWSETELEM) {
      const auto value = nft::call_id_value(c.server_call_id);
      nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, value.data(), static_cast<std::uint32_t>(value.size()));
      nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, timeout_ms);
      if (refresh) nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_EXPIRATION, timeout_ms);
    }
    nftnl_set_elem_add(set, e);
  }
  std::vector<char> buffer(MNL_SOCKET_BUFFER_SIZE * 2);
  mnl_nlmsg_batch* batch = mnl_nlmsg_batch_start(buffer.data(), buffer.size());
  nftnl_batch_begin(static_cast<char*>(mnl_nlmsg_batch_current(batch)), sequence_++);
  mnl_nlmsg_batch_next(batch);
  const std::uint32_t seq = sequence_++;
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(batch)), type, NFPROTO_IPV4, flags, seq);
  nftnl_set_elems_nlmsg_build_payload(nlh, set);
  nftnl_set_free(set);
  mnl_nlmsg_batch_next(batch);
  nftnl_batch_end(static_cast<char*>(mnl_nlmsg_batch_current(batch)), sequence_++);
  mnl_nlmsg_batch_next(batch);
  const ssize_t sent = mnl_socket_sendto(socket_, mnl_nlmsg_batch_head(batch), mnl_nlmsg_batch_size(batch));
  mnl_nlmsg_batch_stop(batch);
  last_errno_ = 0;
  if (sent < 0) return unexpected(failed("sending to nftables", last_errno_ = errno));
  std::vector<char> answer(MNL_SOCKET_BUFFER_SIZE);
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(socket_, answer.data(), answer.size());
    if (n < 0) return unexpected(failed("no answer from nftables", last_errno_ = errno));
    const int r = mnl_cb_run(answer.data(), static_cast<std::size_t>(n), seq, mnl_socket_get_portid(socket_), nullptr,
                             nullptr);
    if (r < 0) return unexpected(failed("nftables refused the change to proxy_out_key", last_errno_ = errno));
    if (r == MNL_CB_STOP) return true;
  }
}

}  // namespace pptp::proxy
