#include "nat/rewrite.hpp"

#include "nat/checksum.hpp"

namespace pptp::nat {

namespace {
constexpr std::size_t kIpSourceOffset = 12;
constexpr std::size_t kIpDestinationOffset = 16;

std::size_t ip_header_length(std::span<const std::uint8_t> packet) { return wire::ipv4_header_length(packet[0]); }

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
    case T::WanErrorNotify:
    case T::SetLinkInfo:  // from the PAC only Windows sends it: its Peer's Call ID is the PNS's
      return {CallIdRewrite::ToInside, spec.peer_call_id_offset};
    case T::CallDisconnectNotify: return {CallIdRewrite::DisconnectCallId, spec.call_id_offset};
    default: return {};
  }
}

void StreamPatches::add(std::uint32_t sequence, std::uint16_t value) {
  for (std::size_t i = 0; i < count_; ++i) {
    if (ring_[i].sequence == sequence) {
      ring_[i].value = value;
      return;
    }
  }
  if (count_ == ring_.size()) {
    // Serial arithmetic: remember the furthest byte a dropped patch covered.
    const std::uint32_t end = ring_[next_].sequence + 2;
    if (!evicted_end_ || static_cast<std::int32_t>(end - *evicted_end_) > 0) evicted_end_ = end;
  }
  ring_[next_] = StreamPatch{sequence, value};
  next_ = (next_ + 1) % ring_.size();
  count_ = std::min(count_ + 1, ring_.size());
}

std::optional<std::uint16_t> StreamPatches::find(std::uint32_t sequence) const {
  for (std::size_t i = 0; i < count_; ++i) {
    if (ring_[i].sequence == sequence) return ring_[i].value;
  }
  return std::nullopt;
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

TcpPayload tcp_payload_of(Bytes packet, const wire::Ipv4Packet& ip, const wire::TcpSegment& tcp) {
  TcpPayload at;
  at.ip_header_length = ip.header_length;
  at.offset = static_cast<std::size_t>(tcp.payload.data() - packet.data());
  at.length = tcp.payload.size();
  at.sequence = tcp.sequence + (tcp.has(wire::tcp_flags::kSyn) ? 1 : 0);  // data after the SYN
  return at;
}

std::optional<TcpPayload> tcp_payload_of(Bytes packet) {
  const auto ip = wire::parse_ipv4(packet);
  if (!ip || ip->protocol != wire::kIpProtocolTcp) return std::nullopt;
  const auto tcp = wire::parse_tcp(ip->payload);
  if (!tcp) return std::nullopt;
  return tcp_payload_of(packet, *ip, *tcp);
}

bool patch_tcp_payload(std::span<std::uint8_t> packet, const TcpPayload& at, const StreamPatches& patches) {
  if (patches.size() == 0 || at.length == 0 || at.offset + at.length > packet.size()) return false;
  if (!patches.apply(at.sequence, packet.subspan(at.offset, at.length))) return false;
  update_tcp_checksum(packet, at.ip_header_length);
  return true;
}

}  // namespace pptp::nat
