#include "proxy/call_book.hpp"

namespace pptp::proxy {

std::optional<std::uint16_t> CallBook::allocate() {
  for (std::size_t tries = 0; tries < kCallIdSpace; ++tries) {
    const std::uint16_t id = next_++;
    if (!used_.test(id)) {
      used_.set(id);
      return id;
    }
  }
  return std::nullopt;
}

void CallBook::release(std::uint16_t call_id) {
  const bool routed = routed_.test(call_id);
  used_.reset(call_id);
  routed_.reset(call_id);
  if (routed && on_release_) on_release_(call_id);
}

void CallBook::set_route(std::uint16_t call_id, const GreRoute& route) {
  if (!used_.test(call_id)) return;
  (*routes_)[call_id] = route;
  routed_.set(call_id);
}

const GreRoute* CallBook::route(std::uint16_t call_id) const {
  return routed_.test(call_id) ? &(*routes_)[call_id] : nullptr;
}

}  // namespace pptp::proxy
