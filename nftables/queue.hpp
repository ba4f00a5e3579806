// NFQUEUE I/O with libnetfilter_queue's libmnl API: bind a queue, receive packets with
// their conntrack NAT binding, send verdicts (with the rewritten packet where it changed)
// batched into one sendmsg per burst. Non-blocking; the daemon's event loop waits on fd().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <sys/socket.h>  // mmsghdr
#include <sys/uio.h>

#include "alg/core/counter_list.hpp"
#include "alg/core/result.hpp"
#include "alg/wire/ip.hpp"

struct mnl_socket;
struct nlmsghdr;
struct mnl_nlmsg_batch;

namespace pptp::nft {

inline constexpr std::uint32_t kQueueMaxLength = 8192;          // packets the kernel holds for us
inline constexpr int kSocketBufferBytes = 8 * 1024 * 1024;      // receive buffer (SO_RCVBUFFORCE)
inline constexpr std::size_t kMaxPacketsPerWake = 256;          // then verdicts go out
// Messages per recvmmsg: fewer than this back means the socket is empty, so a wake costs no
// extra receive that returns EAGAIN. Each slot holds the largest message (a 64 KiB packet).
inline constexpr std::size_t kReceiveSlots = 8;
inline constexpr std::size_t kVerdictBatchBytes = 256 * 1024;

struct QueueOptions {
  std::uint16_t queue = 0;
  bool fail_open = false;  // the kernel accepts packets when the queue is full
};

struct QueuedPacket {
  std::uint32_t id = 0;
  std::span<std::uint8_t> payload;  // the IPv4 packet; may be rewritten in place
  // The reply tuple's destination of the packet's conntrack entry: for a masqueraded
  // connection, the public address the server sees.
  std::optional<wire::Ipv4Address> conntrack_reply_destination;
  std::uint32_t mark = 0;
};

// Declared once (alg/core/counter_list.hpp): the fields and the status file's "queue" keys.
#define PPTP_QUEUE_COUNTERS(X)                                                                   \
  X(packets, "packets", "packets received from the queue")                                     \
  X(verdicts, "verdicts", "verdicts sent")                                                     \
  X(verdict_sends, "verdict_sends", "sendmsg calls: verdicts / this = batching")               \
  X(socket_overruns, "socket_overruns", "ENOBUFS: the kernel dropped messages for us")         \
  X(receive_errors, "receive_errors", "receive errors")                                        \
  X(truncated, "truncated", "messages larger than a slot: their packet's verdict given unread")  \
  X(truncated_unanswered, "truncated_unanswered", "truncated before the packet id: left queued") \
  X(send_errors, "send_errors", "send errors")                                                 \
  X(kernel_queue_dropped, "kernel_queue_dropped", "queue full (/proc/net/netfilter/nfnetlink_queue)") \
  X(kernel_user_dropped, "kernel_user_dropped", "netlink could not deliver (the same file)")

struct QueueStats {
  PPTP_QUEUE_COUNTERS(PPTP_COUNTER_FIELD)
  int last_errno = 0;  // of the last receive error
};

template <class F>
void visit_queue_counters(const QueueStats& c, F&& f) {
  PPTP_QUEUE_COUNTERS(PPTP_COUNTER_VISIT)
}

enum class VerdictKind : std::uint8_t { Accept, Drop };

// A message longer than its receive slot (MSG_TRUNC) still needs its verdict, or its packet
// waits in the kernel's queue, holding a place of kQueueMaxLength, until the queue overflows.
// Its packet id is in NFQA_PACKET_HDR, the first attribute the kernel puts (nfnetlink_queue's
// nfqnl_build_packet_message): read from the bytes that came, none if they stop before it.
std::optional<std::uint32_t> truncated_packet_id(std::span<const std::uint8_t> received);
// The verdict of a packet that could not be read whole: what the operator chose for packets
// the daemon cannot judge (--fail-open: accept; otherwise drop, as with the queue full).
inline VerdictKind unread_verdict(bool fail_open) { return fail_open ? VerdictKind::Accept : VerdictKind::Drop; }

class NetlinkQueue {
 public:
  static Result<std::unique_ptr<NetlinkQueue>, std::string> open(const QueueOptions& options);
  ~NetlinkQueue();
  NetlinkQueue(const NetlinkQueue&) = delete;
  NetlinkQueue& operator=(const NetlinkQueue&) = delete;

  int fd() const;
  // Reads what is ready without blocking and calls `handler` for each packet. Returns the
  // number of packets read.
  std::size_t receive(const std::function<void(QueuedPacket&)>& handler);
  // Queues a verdict; `rewritten` carries the new packet bytes when they changed.
  void verdict(std::uint32_t id, VerdictKind kind, std::span<const std::uint8_t> rewritten = {});
  // Sends the queued verdicts.
  void flush();
  void refresh_kernel_stats();
  const QueueStats& stats() const { return stats_; }
  // Whether packets come with their conntrack entry (the kernel may not offer it).
  bool conntrack_attached() const { return conntrack_attached_; }

 private:
  explicit NetlinkQueue(const QueueOptions& options) : options_(options) {}
  Result<bool, std::string> configure();
  Result<bool, std::string> request(struct nlmsghdr* nlh);
  // One recvmmsg into the slots: the messages read, or -1 (errno).
  int receive_slots();
  // A message cut short (MSG_TRUNC): its packet's verdict, given unread.
  void answer_truncated(std::span<const std::uint8_t> received);

  QueueOptions options_;
  mnl_socket* socket_ = nullptr;
  std::uint32_t port_id_ = 0;
  std::uint32_t sequence_ = 0;
  int request_errno_ = 0;
  std::vector<char> receive_buffer_;  // kReceiveSlots slots; the first also for request()
  std::vector<mmsghdr> messages_;
  std::vector<iovec> vectors_;
  std::vector<char> batch_buffer_;
  mnl_nlmsg_batch* batch_ = nullptr;
  QueueStats stats_;
  bool conntrack_attached_ = false;
};

}  // namespace pptp::nft
