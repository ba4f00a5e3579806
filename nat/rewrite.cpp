#include "nat/rewrite.hpp"

#include "nat/checksum.hpp"

namespace pptp::nat {

namespace {
constexpr std::size_t kIpSourceOffset = 12;
constexpr std::size_t kIpDestinationOffset = 16;
constexpr std::size_t kTcpSequenceOffset = 4;
constexpr std::size_t kTcpDataOffset = 12;

std::size_t ip_header_length(std::span<const std::uint8_t> packet) {
  return static_cast<std::size_t>(packet[0] & 0x0f) * 4;
}

void after_address_change(std::span<std::uint8_t> packet) {
  const std::size_t ihl = ip_header_length(packet);
  update_ipv4_header_checksum(packet, ihl);
  // The TCP checksum covers the addresses through the pseudo header.
  if (packet[9] == wire::kIpProtocolTcp && packet.size() >= ihl + 20) update_tcp_checksum(packet, ihl);
}
}  // namespace

CallIdField call_id_field(wire::ControlMessageType type, bool from_pns) {
  using T = wire::ControlMessageType;
  const wire::MessageSpec& spec = wire::spec_of(type);
  if (from_pns) {
    switch (type) {
      case T::OutgoingCallRequest:
      case T::IncomingCallReply: return {CallIdRewrite::Allocate, spec.call_id_offset};
      case T::CallClearRequest: return {CallIdRewrite::ToOutside, spec.call_id_offset};
      default: return {};
    }
  }
  switch (type) {
    case T::OutgoingCallReply:
    case T::IncomingCallConnected:
    case T::WanErrorNotify: return {CallIdRewrite::ToInside, spec.peer_call_id_offset};
    case T::CallDisconnectNotify: return {CallIdRewrite::DisconnectCallId, spec.call_id_offset};
    default: return {};
  }
}

void StreamPatches::add(std::uint32_t sequence, std::uint16_t value) {
  ring_[next_] = StreamPatch{sequence, value};
  next_ = (next_ + 1) % ring_.size();
  count_ = std::min(count_ + 1, ring_.size());
}

bool StreamPatches::apply(std::uint32_t sequence, std::span<std::uint8_t> payload) const {
  bool changed = false;
  for (std::size_t i = 0; i < count_; ++i) {
    const StreamPatch& p = ring_[i];
    const std::array<std::uint8_t, 2> bytes{static_cast<std::uint8_t>(p.value >> 8),
                                            static_cast<std::uint8_t>(p.value)};
    for (std::uint32_t k = 0; k < 2; ++k) {
      // Serial arithmetic: the offset of the patched byte inside this segment.
      const std::uint32_t offset = p.sequence + k - sequence;
      if (offset >= payload.size()) continue;
      if (payload[offset] != bytes[k]) {
        payload[offset] = bytes[k];
        changed = true;
      }
    }
  }
  return changed;
}

void set_ipv4_source(std::span<std::uint8_t> packet, wire::Ipv4Address address) {
  store_u32(packet.data() + kIpSourceOffset, address.value);
  after_address_change(packet);
}

void set_ipv4_destination(std::span<std::uint8_t> packet, wire::Ipv4Address address) {
  store_u32(packet.data() + kIpDestinationOffset, address.value);
  after_address_change(packet);
}

void set_gre_call_id(std::span<std::uint8_t> packet, std::uint16_t call_id) {
  // No checksum covers the GRE header in PPTP.
  store_u16(packet.data() + ip_header_length(packet) + wire::kGreCallIdOffset, call_id);
}

bool patch_tcp_payload(std::span<std::uint8_t> packet, const StreamPatches& patches) {
  if (patches.size() == 0) return false;
  const std::size_t ihl = ip_header_length(packet);
  const std::size_t total = std::min<std::size_t>(load_u16(packet.data() + 2), packet.size());
  std::uint8_t* tcp = packet.data() + ihl;
  const std::size_t tcp_header = static_cast<std::size_t>(tcp[kTcpDataOffset] >> 4) * 4;
  if (ihl + tcp_header >= total) return false;
  std::uint32_t sequence = load_u32(tcp + kTcpSequenceOffset);
  if ((tcp[13] & wire::tcp_flags::kSyn) != 0) ++sequence;  // data after the SYN
  const std::span<std::uint8_t> payload = packet.subspan(ihl + tcp_header, total - ihl - tcp_header);
  if (!patches.apply(sequence, payload)) return false;
  update_tcp_checksum(packet, ihl);
  return true;
}

}  // namespace pptp::nat
