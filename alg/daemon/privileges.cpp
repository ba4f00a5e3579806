// libcap-ng does the capability work: the order of setresuid, keep-caps and the ambient
// set is easy to get wrong by hand.
#include "alg/daemon/privileges.hpp"

#include <cap-ng.h>
#include <linux/capability.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

namespace pptp::daemon {

Result<Account, std::string> find_account(const std::string& user) {
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  const int rc = ::getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (rc != 0 || found == nullptr) {
    return unexpected("no user '" + user + "' (create it, e.g. adduser --system " + user + ", or name another)");
  }
  return Account{found->pw_uid, found->pw_gid};
}

Result<std::string, std::string> drop_privileges(const Account* account) {
  capng_clear(CAPNG_SELECT_ALL);
  const auto all = static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_INHERITABLE |
                                             CAPNG_BOUNDING_SET | CAPNG_AMBIENT);
  if (capng_update(CAPNG_ADD, all, CAP_NET_ADMIN) != 0) return unexpected(std::string("capng_update failed"));
  if (account != nullptr && ::geteuid() == 0) {
    const int rc = capng_change_id(static_cast<int>(account->uid), static_cast<int>(account->gid),
                                   static_cast<capng_flags_t>(CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING));
    if (rc != 0) return unexpected("capng_change_id failed (" + std::to_string(rc) + ")");
  } else {
    // The bounding set first: it needs CAP_SETPCAP, which goes with the rest (and which a
    // systemd unit does not give: there the unit's CapabilityBoundingSet= does it).
    (void)capng_apply(CAPNG_SELECT_BOUNDS);
    if (capng_apply(CAPNG_SELECT_CAPS) != 0) return unexpected(std::string("capng_apply failed: ") + std::strerror(errno));
  }
  // Ambient: what the nft and iptables children inherit.
  if (capng_apply(CAPNG_SELECT_AMBIENT) != 0) {
    return unexpected(std::string("could not keep CAP_NET_ADMIN for child processes: ") + std::strerror(errno));
  }
  return describe_privileges();
}

std::string describe_privileges() {
  std::ifstream in("/proc/self/status");
  std::string line, out;
  for (const char* key : {"Uid:", "Gid:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"}) {
    in.clear();
    in.seekg(0);
    while (std::getline(in, line)) {
      if (line.rfind(key, 0) != 0) continue;
      std::string value = line.substr(std::strlen(key));
      value.erase(0, value.find_first_not_of(" \t"));
      for (char& c : value) c = c == '\t' ? ',' : c;
      std::string name(key, std::strlen(key) - 1);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out += (out.empty() ? "" : " ") + name + "=" + value;
      break;
    }
  }
  return out;
}

}  // namespace pptp::daemon
