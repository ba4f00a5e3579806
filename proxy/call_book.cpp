#include "proxy/call_book.hpp"

#include <sys/random.h>

namespace pptp::proxy {

std::optional<std::uint16_t> CallBook::allocate() {
  if (in_use_ >= kCallIdSpace) return std::nullopt;
  std::uint16_t start = next_;
  if (std::uint16_t r = 0; order_ == CallIdOrder::Random && ::getrandom(&r, sizeof r, 0) == sizeof r) start = r;
  for (std::size_t tries = 0; tries < kCallIdSpace; ++tries) {
    const auto id = static_cast<std::uint16_t>(start + tries);
    if (!used_.test(id)) {
      used_.set(id);
      ++in_use_;
      next_ = static_cast<std::uint16_t>(id + 1);
      return id;
    }
  }
  return std::nullopt;
}

void CallBook::release(std::uint16_t call_id) {
  const bool routed = routed_.test(call_id);
  if (used_.test(call_id)) --in_use_;
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
