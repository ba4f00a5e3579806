#include "nftables/netlink_batch.hpp"

#include <cstring>

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

}  // namespace pptp::nft
