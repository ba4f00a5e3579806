// The proxy's own map of the fast path (proxy_fastpath.hpp): proxy_out_key in table ip
// pptp_alg, router . server . A : S, the Key of the client's GRE on its way to the server.
// Written through netlink with libnftnl, one batch per change, like the transparent mode's
// sets (nftables/fastpath.cpp), whose element layout it shares (nftables/fastpath_keys.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "alg/core/result.hpp"
#include "proxy/proxy_fastpath.hpp"

struct mnl_socket;

namespace pptp::proxy {

class KeyMap {
 public:
  static Result<std::unique_ptr<KeyMap>, std::string> open();
  ~KeyMap();
  KeyMap(const KeyMap&) = delete;
  KeyMap& operator=(const KeyMap&) = delete;
  // Adds the calls' elements (refresh: re-arms existing ones' timeout in place).
  Result<bool, std::string> put(const std::vector<ProxyFastCall>& calls, bool refresh);
  // One that already expired is no error.
  Result<bool, std::string> remove(const ProxyFastCall& call);

 private:
  KeyMap() = default;
  Result<bool, std::string> send(std::uint16_t type, std::uint16_t flags, const std::vector<ProxyFastCall>& calls,
                                 bool refresh);
  mnl_socket* socket_ = nullptr;
  std::uint32_t sequence_ = 1;
  int last_errno_ = 0;  // of the last failed send()
};

}  // namespace pptp::proxy
