// The tag of a sync message: HMAC-SHA256 with the pair's shared key, from OpenSSL's
// libcrypto (a well-kept implementation; we write no cryptography of our own).
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "alg/core/bytes.hpp"
#include "sync/message.hpp"

namespace pptp::sync {

using Tag = std::array<std::uint8_t, kTagBytes>;
// Empty when libcrypto fails (no digest): nothing is sent and nothing is accepted.
std::optional<Tag> compute_tag(Key key, Bytes data);
// Constant time, so that a forger learns nothing from how long a refusal took.
bool tag_matches(Key key, Bytes data, Bytes tag);

}  // namespace pptp::sync
