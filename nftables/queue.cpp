#include "nftables/queue.hpp"

#include "nftables/netlink_attributes.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

extern "C" {
#include <libnetfilter_queue/libnetfilter_queue.h>
}

namespace pptp::nft {

namespace {
// The largest message: a copied 64 KiB packet and its attributes (MNL_SOCKET_BUFFER_SIZE / 2
// at most, as the receive buffer was before).
constexpr std::size_t kSlotBytes = 0xffff + 4096;

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

struct Dispatch {
  const std::function<void(QueuedPacket&)>* handler;
  QueueStats* stats;
};

int on_message(const nlmsghdr* nlh, void* data) {
  auto* d = static_cast<Dispatch*>(data);
  nlattr* attr[NFQA_MAX + 1] = {};
  if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == nullptr || attr[NFQA_PAYLOAD] == nullptr) {
    ++d->stats->receive_errors;
    return MNL_CB_OK;
  }
  const auto* ph = static_cast<const nfqnl_msg_packet_hdr*>(mnl_attr_get_payload(attr[NFQA_PACKET_HDR]));
  QueuedPacket p;
  p.id = ntohl(ph->packet_id);
  p.payload = std::span<std::uint8_t>(static_cast<std::uint8_t*>(mnl_attr_get_payload(attr[NFQA_PAYLOAD])),
                                      mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]));
  if (attr[NFQA_CT] != nullptr) p.conntrack_reply_destination = tuple_destination(nested(attr[NFQA_CT], CTA_TUPLE_REPLY));
  if (attr[NFQA_MARK] != nullptr) p.mark = ntohl(mnl_attr_get_u32(attr[NFQA_MARK]));
  ++d->stats->packets;
  (*d->handler)(p);
  return MNL_CB_OK;
}
}  // namespace

Result<std::unique_ptr<NetlinkQueue>, std::string> NetlinkQueue::open(const QueueOptions& options) {
  std::unique_ptr<NetlinkQueue> q(new NetlinkQueue(options));
  auto ok = q->configure();
  if (!ok) return unexpected(ok.error());
  return q;
}

Result<bool, std::string> NetlinkQueue::configure() {
  socket_ = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (socket_ == nullptr) return unexpected(errno_text("opening the netfilter netlink socket (are you root?)"));
  if (mnl_socket_bind(socket_, 0, MNL_SOCKET_AUTOPID) < 0) return unexpected(errno_text("binding netlink"));
  port_id_ = mnl_socket_get_portid(socket_);
  const int size = kSocketBufferBytes;
  // Force past rmem_max where we may (root); fall back to what the sysctl allows.
  if (setsockopt(mnl_socket_get_fd(socket_), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
    setsockopt(mnl_socket_get_fd(socket_), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  receive_buffer_.resize(kSlotBytes * kReceiveSlots);
  messages_.assign(kReceiveSlots, mmsghdr{});
  vectors_.resize(kReceiveSlots);
  for (std::size_t i = 0; i < kReceiveSlots; ++i) {
    vectors_[i] = iovec{receive_buffer_.data() + i * kSlotBytes, kSlotBytes};
    messages_[i].msg_hdr.msg_iov = &vectors_[i];
    messages_[i].msg_hdr.msg_iovlen = 1;
  }
  batch_buffer_.resize(kVerdictBatchBytes);

  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, options_.queue);
  nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
  if (auto ok = request(nlh); !ok) {
    return unexpected("binding queue " + std::to_string(options_.queue) + ": " + ok.error() +
                      " -- is another program bound to this queue? pick another with --queue");
  }
  // Conntrack info gives each control packet its NAT binding (the public address).
  // Kernels without CONFIG_NETFILTER_NETLINK_GLUE_CT refuse it (EOPNOTSUPP); the daemon then
  // asks ctnetlink once per connection instead.
  for (const bool with_conntrack : {true, false}) {
    nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, options_.queue);
    nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
    nfq_nlmsg_cfg_put_qmaxlen(nlh, kQueueMaxLength);
    std::uint32_t flags = with_conntrack ? NFQA_CFG_F_CONNTRACK : 0;
    if (options_.fail_open) flags |= NFQA_CFG_F_FAIL_OPEN;
    const std::uint32_t mask = NFQA_CFG_F_CONNTRACK | NFQA_CFG_F_FAIL_OPEN;
    mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
    mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(mask));
    auto ok = request(nlh);
    if (ok) {
      conntrack_attached_ = with_conntrack;
      break;
    }
    if (!with_conntrack || request_errno_ != EOPNOTSUPP) return unexpected("configuring the queue: " + ok.error());
  }
  batch_ = mnl_nlmsg_batch_start(batch_buffer_.data(), batch_buffer_.size() - 0xffff - 256);
  return true;
}

Result<bool, std::string> NetlinkQueue::request(nlmsghdr* nlh) {
  // Configuration is acknowledged, so that a refusal is reported at start, not lost.
  nlh->nlmsg_flags |= NLM_F_ACK;
  nlh->nlmsg_seq = ++sequence_;
  if (mnl_socket_sendto(socket_, nlh, nlh->nlmsg_len) < 0) return unexpected(errno_text("send"));
  pollfd p{mnl_socket_get_fd(socket_), POLLIN, 0};
  if (poll(&p, 1, 2000) != 1) return unexpected(std::string("no answer from the kernel within 2 s"));
  const ssize_t n = mnl_socket_recvfrom(socket_, receive_buffer_.data(), kSlotBytes);
  if (n < 0) return unexpected(errno_text("receive"));
  if (mnl_cb_run(receive_buffer_.data(), static_cast<std::size_t>(n), sequence_, port_id_, nullptr, nullptr) < 0) {
    request_errno_ = errno;
    return unexpected(errno_text("kernel refused"));
  }
  return true;
}

NetlinkQueue::~NetlinkQueue() {
  if (socket_ != nullptr) {
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
    nlmsghdr* nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, options_.queue);
    nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_UNBIND);
    mnl_socket_sendto(socket_, nlh, nlh->nlmsg_len);
    mnl_socket_close(socket_);
  }
  if (batch_ != nullptr) mnl_nlmsg_batch_stop(batch_);
}

int NetlinkQueue::fd() const { return mnl_socket_get_fd(socket_); }

int NetlinkQueue::receive_slots() {
  for (mmsghdr& m : messages_) m.msg_len = 0;
  return ::recvmmsg(fd(), messages_.data(), static_cast<unsigned>(messages_.size()), MSG_DONTWAIT, nullptr);
}

std::size_t NetlinkQueue::receive(const std::function<void(QueuedPacket&)>& handler) {
  std::size_t before = stats_.packets;
  Dispatch d{&handler, &stats_};
  while (stats_.packets - before < kMaxPacketsPerWake) {
    const int n = receive_slots();
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
      if (errno == ENOBUFS) {
        ++stats_.socket_overruns;  // messages lost; the packets behind them are dropped by the kernel
        continue;
      }
      ++stats_.receive_errors;
      stats_.last_errno = errno;
      break;
    }
    for (int i = 0; i < n; ++i) {
      const mmsghdr& m = messages_[static_cast<std::size_t>(i)];
      const iovec& slot = vectors_[static_cast<std::size_t>(i)];
      if ((m.msg_hdr.msg_flags & MSG_TRUNC) != 0) {
        answer_truncated({static_cast<const std::uint8_t*>(slot.iov_base), std::min<std::size_t>(m.msg_len, kSlotBytes)});
        continue;
      }
      if (mnl_cb_run(slot.iov_base, m.msg_len, 0, port_id_, on_message, &d) < 0) {
        ++stats_.receive_errors;
        stats_.last_errno = errno;
      }
    }
    if (static_cast<std::size_t>(n) < kReceiveSlots) break;  // the socket had no more
  }
  return stats_.packets - before;
}

void NetlinkQueue::answer_truncated(std::span<const std::uint8_t> received) {
  ++stats_.truncated;
  if (const std::optional<std::uint32_t> id = truncated_packet_id(received)) {
    verdict(*id, unread_verdict(options_.fail_open));
  } else {
    ++stats_.truncated_unanswered;
  }
}

std::optional<std::uint32_t> truncated_packet_id(std::span<const std::uint8_t> received) {
  const auto u16_at = [&](std::size_t at) {
    std::uint16_t v;
    std::memcpy(&v, received.data() + at, sizeof v);
    return v;  // netlink's own fields are in host order
  };
  if (received.size() < NLMSG_HDRLEN + sizeof(nfgenmsg)) return std::nullopt;
  if (u16_at(4) != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)) return std::nullopt;
  std::size_t at = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));
  while (at + NLA_HDRLEN <= received.size()) {
    const std::size_t length = u16_at(at);
    if (length < NLA_HDRLEN) return std::nullopt;
    if ((u16_at(at + 2) & NLA_TYPE_MASK) == NFQA_PACKET_HDR) {
      std::uint32_t id;  // nfqnl_msg_packet_hdr.packet_id, big-endian
      if (length < NLA_HDRLEN + sizeof id || at + NLA_HDRLEN + sizeof id > received.size()) return std::nullopt;
      std::memcpy(&id, received.data() + at + NLA_HDRLEN, sizeof id);
      return ntohl(id);
    }
    at += NLA_ALIGN(length);
  }
  return std::nullopt;
}

void NetlinkQueue::verdict(std::uint32_t id, VerdictKind kind, std::span<const std::uint8_t> rewritten) {
  nlmsghdr* nlh = nfq_nlmsg_put(static_cast<char*>(mnl_nlmsg_batch_current(batch_)), NFQNL_MSG_VERDICT,
                                options_.queue);
  nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), kind == VerdictKind::Accept ? NF_ACCEPT : NF_DROP);
  if (!rewritten.empty()) nfq_nlmsg_verdict_put_pkt(nlh, rewritten.data(), static_cast<std::uint32_t>(rewritten.size()));
  ++stats_.verdicts;
  // The batch buffer keeps 64 KiB spare past its limit, so this message always fits; once
  // over the limit the batch goes out.
  if (!mnl_nlmsg_batch_next(batch_)) {
    flush();
  }
}

void NetlinkQueue::flush() {
  if (mnl_nlmsg_batch_is_empty(batch_)) return;
  if (mnl_socket_sendto(socket_, mnl_nlmsg_batch_head(batch_), mnl_nlmsg_batch_size(batch_)) < 0) {
    ++stats_.send_errors;
  }
  ++stats_.verdict_sends;
  mnl_nlmsg_batch_reset(batch_);
}

void NetlinkQueue::refresh_kernel_stats() {
  // queue_number peer_portid queue_total copy_mode copy_range queue_dropped user_dropped id_sequence 1
  std::ifstream in("/proc/net/netfilter/nfnetlink_queue");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    unsigned queue = 0, portid = 0, total = 0, mode = 0, range = 0;
    std::uint64_t queue_dropped = 0, user_dropped = 0;
    if (s >> queue >> portid >> total >> mode >> range >> queue_dropped >> user_dropped && queue == options_.queue) {
      stats_.kernel_queue_dropped = queue_dropped;
      stats_.kernel_user_dropped = user_dropped;
    }
  }
}

}  // namespace pptp::nft
