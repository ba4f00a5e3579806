// Least privilege (issue "Bounded under attack"): once its sockets are open and its rules are
// in, the daemon keeps CAP_NET_ADMIN alone and, started as root with a user named, runs as
// that user. CAP_NET_ADMIN stays in the ambient set, so the nft and iptables the daemon runs
// at exit to remove its rules still have it. Under systemd (User= and AmbientCapabilities=
// CAP_NET_ADMIN) the process already is the user: only the other capabilities go.
#pragma once

#include <string>
#include <sys/types.h>

#include "alg/core/result.hpp"

namespace pptp::daemon {

struct Account {
  uid_t uid = 0;
  gid_t gid = 0;
};
// The user's ids from the password database; an error that says what to do.
Result<Account, std::string> find_account(const std::string& user);

// Drops every capability but CAP_NET_ADMIN; with `account`, becomes that user (and its
// group, without supplementary groups). Returns what the process has now, as a log text.
Result<std::string, std::string> drop_privileges(const Account* account);

// The capability sets and ids of this process as /proc/self/status shows them.
std::string describe_privileges();

}  // namespace pptp::daemon
