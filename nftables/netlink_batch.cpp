#include "nftables/netlink_batch.hpp"

#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <algorithm>
#include <cstring>

extern "C" {
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/set.h>
}

namespace pptp::nft {

std::string errno_text(const char* what, int e) { return std::string(what) + ": " + std::strerror(e); }

int error_of(const nlmsghdr* m) { return static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m))->error; }

Result<bool, std::string> send_and_ack(mnl_socket* socket, const void* buffer, std::size_t length,
                                       std::uint32_t first_seq, std::uint32_t last_seq, int& last_errno) {
  if (mnl_socket_sendto(socket, buffer, length) < 0) {
    last_errno = errno;
    return unexpected(errno_text("sending to nftables", errno));
  }
  // One ack per message, or an error that ends the transaction.
  std::vector<char> receive(MNL_SOCKET_BUFFER_SIZE);
  std::uint32_t acks = 0;
  const std::uint32_t expected = last_seq - first_seq + 1;
  while (acks < expected) {
    auto r = receive_round(socket, receive, first_seq, last_seq, last_errno,
                           [&](const nlmsghdr* m) -> std::optional<std::string> {
                             if (m->nlmsg_type != NLMSG_ERROR) return std::nullopt;
                             if (error_of(m) != 0) {
                               last_errno = -error_of(m);
                               return errno_text("nftables refused the change", -error_of(m));
                             }
                             ++acks;
                             return std::nullopt;
                           });
    if (!r) return r;
  }
  return true;
}

namespace {

int on_expression(nftnl_expr* e, void* data) {
  const char* name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
  if (name != nullptr && std::strcmp(name, "counter") == 0) {
    auto* c = static_cast<ElementCounter*>(data);
    c->packets = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
    c->bytes = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
  }
  return 0;
}

}  // namespace

ElementCounter counter_of(nftnl_set_elem* e) {
  ElementCounter c;
  nftnl_set_elem_expr_foreach(e, on_expression, &c);
  return c;
}

Result<bool, std::string> send_set_elements(mnl_socket* socket, std::vector<char>& buffer,
                                            const std::vector<nftnl_set*>& sets, std::uint16_t type,
                                            std::uint16_t family, std::uint32_t& sequence, int& last_errno) {
  const std::uint16_t flags = type == NFT_MSG_DELSETELEM ? NLM_F_ACK : NLM_F_CREATE | NLM_F_ACK;
  mnl_nlmsg_batch* batch = mnl_nlmsg_batch_start(buffer.data(), buffer.size());
  nftnl_batch_begin(static_cast<char*>(mnl_nlmsg_batch_current(batch)), sequence++);
  mnl_nlmsg_batch_next(batch);
  const std::uint32_t acked_from = sequence;
  for (nftnl_set* s : sets) {
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(batch)), type, family, flags,
                                          sequence++);
    nftnl_set_elems_nlmsg_build_payload(nlh, s);
    mnl_nlmsg_batch_next(batch);
  }
  const std::uint32_t acked_to = sequence - 1;
  nftnl_batch_end(static_cast<char*>(mnl_nlmsg_batch_current(batch)), sequence++);
  mnl_nlmsg_batch_next(batch);
  auto r = send_and_ack(socket, mnl_nlmsg_batch_head(batch), mnl_nlmsg_batch_size(batch), acked_from, acked_to,
                        last_errno);
  mnl_nlmsg_batch_stop(batch);
  return r;
}

namespace {
constexpr std::size_t kReadAnswerBufferBytes = 1u << 16;
constexpr int kReadSocketBufferBytes = 4 << 20;
}  // namespace

void set_read_buffer(mnl_socket* socket) {
  const int fd = mnl_socket_get_fd(socket);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kReadSocketBufferBytes, sizeof kReadSocketBufferBytes) != 0) {
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kReadSocketBufferBytes, sizeof kReadSocketBufferBytes);
  }
}

Result<bool, std::string> read_set_elements(mnl_socket* socket, const std::vector<nftnl_set*>& queries,
                                            std::uint16_t family, std::uint32_t& sequence, int& last_errno,
                                            const ElementAnswer& each) {
  std::vector<char> request(kElementReadsInFlight * 512);
  std::vector<char> receive(kReadAnswerBufferBytes);
  for (std::size_t first = 0; first < queries.size(); first += kElementReadsInFlight) {
    const std::size_t last = std::min(queries.size(), first + kElementReadsInFlight);
    mnl_nlmsg_batch* batch = mnl_nlmsg_batch_start(request.data(), request.size());
    const std::uint32_t first_seq = sequence;
    for (std::size_t i = first; i < last; ++i) {
      nlmsghdr* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(batch)), NFT_MSG_GETSETELEM,
                                            family, 0, sequence++);
      nftnl_set_elems_nlmsg_build_payload(nlh, queries[i]);
      mnl_nlmsg_batch_next(batch);
    }
    const std::uint32_t last_seq = sequence - 1;
    const ssize_t sent = mnl_socket_sendto(socket, mnl_nlmsg_batch_head(batch), mnl_nlmsg_batch_size(batch));
    mnl_nlmsg_batch_stop(batch);
    if (sent < 0) return unexpected(errno_text("sending to nftables", errno));
    // Each read has one answer: the element, or an error (ENOENT: it expired).
    std::size_t answered = 0;
    while (answered < last - first) {
      auto r = receive_round(socket, receive, first_seq, last_seq, last_errno, [&](const nlmsghdr* m) -> std::optional<std::string> {
        if (m->nlmsg_type == NLMSG_ERROR) {
          if (error_of(m) != 0 && error_of(m) != -ENOENT) last_errno = -error_of(m);
          ++answered;
        } else if (m->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM)) {
          each(first + (m->nlmsg_seq - first_seq), m);
          ++answered;
        }
        return std::nullopt;
      });
      if (!r) return unexpected(r.error());
    }
  }
  return true;
}

}  // namespace pptp::nft
