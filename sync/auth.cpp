#include "sync/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace pptp::sync {

std::optional<Tag> compute_tag(Key key, Bytes data) {
  Tag tag{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(), tag.data(), &length) ==
          nullptr ||
      length != kTagBytes)
    return std::nullopt;
  return tag;
}

bool tag_matches(Key key, Bytes data, Bytes tag) {
  if (tag.size() != kTagBytes) return false;
  const auto expected = compute_tag(key, data);
  return expected && CRYPTO_memcmp(expected->data(), tag.data(), kTagBytes) == 0;
}

}  // namespace pptp::sync
