// Request and answer rounds on a netfilter netlink socket, shared by the fast path's element
// batches (fastpath.cpp) and the queue target's rule (queue_target.cpp): one copy of the
// waiting, the sequence filtering and the error reading.
#pragma once

#include <libmnl/libmnl.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "alg/core/result.hpp"

struct nftnl_set;
struct nftnl_set_elem;

namespace pptp::nft {

inline constexpr int kNetlinkAnswerTimeoutMs = 2000;

std::string errno_text(const char* what, int e);

// The error code of an NLMSG_ERROR message (0: an acknowledgment).
int error_of(const nlmsghdr* m);

// Waits for the next datagram from nftables and hands each message in it with a sequence
// number in [first_seq, last_seq] to `each`, which returns an error text to stop.
template <typename Each>
Result<bool, std::string> receive_round(mnl_socket* socket, std::vector<char>& buffer, std::uint32_t first_seq,
                                        std::uint32_t last_seq, int& last_errno, Each&& each) {
  for (;;) {
    pollfd p{mnl_socket_get_fd(socket), POLLIN, 0};
    if (poll(&p, 1, kNetlinkAnswerTimeoutMs) <= 0) return unexpected(std::string("no answer from nftables"));
    const ssize_t n = recv(mnl_socket_get_fd(socket), buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      last_errno = errno;
      return unexpected(errno_text("receiving from nftables", errno));
    }
    int size = static_cast<int>(n);
    for (auto* m = reinterpret_cast<nlmsghdr*>(buffer.data()); mnl_nlmsg_ok(m, size); m = mnl_nlmsg_next(m, &size)) {
      if (m->nlmsg_seq < first_seq || m->nlmsg_seq > last_seq) continue;
      if (std::optional<std::string> error = each(m)) return unexpected(std::move(*error));
    }
    return true;
  }
}

// Sends a batch (begin, messages, end) and waits for one acknowledgment per message with a
// sequence number in [first_seq, last_seq], or the error that ended the transaction
// (`last_errno` keeps its code).
Result<bool, std::string> send_and_ack(mnl_socket* socket, const void* buffer, std::size_t length,
                                       std::uint32_t first_seq, std::uint32_t last_seq, int& last_errno);

// The packets and bytes of an element's counter (0 without one).
struct ElementCounter {
  std::uint64_t packets = 0, bytes = 0;
};
ElementCounter counter_of(nftnl_set_elem* e);

// One transaction of set-element messages (NFT_MSG_NEWSETELEM with NLM_F_CREATE, or
// NFT_MSG_DELSETELEM), one per set, built in `buffer`; `sequence` moves past it. The fast
// paths' element changes (fastpath.cpp, netdev_elements.cpp).
Result<bool, std::string> send_set_elements(mnl_socket* socket, std::vector<char>& buffer,
                                            const std::vector<nftnl_set*>& sets, std::uint16_t type,
                                            std::uint16_t family, std::uint32_t& sequence, int& last_errno);

// Element reads by key (NFT_MSG_GETSETELEM), kElementReadsInFlight at a time (their answers
// must fit the socket's receive buffer: set_read_buffer): queries[i] is a set holding one
// element's key. `each(i, m)` hears the answer to query i, a NEWSETELEM message; an element
// that is gone (ENOENT: it expired) has none. One read per element, not a dump: a dump
// resumes its walk from the start for every part it sends (quadratic in the elements).
inline constexpr std::size_t kElementReadsInFlight = 128;
using ElementAnswer = std::function<void(std::size_t query, const nlmsghdr* m)>;
Result<bool, std::string> read_set_elements(mnl_socket* socket, const std::vector<nftnl_set*>& queries,
                                            std::uint16_t family, std::uint32_t& sequence, int& last_errno,
                                            const ElementAnswer& each);

// Room for a round of element reads' answers (SO_RCVBUFFORCE with CAP_NET_ADMIN, else the
// plain size).
void set_read_buffer(mnl_socket* socket);

}  // namespace pptp::nft
