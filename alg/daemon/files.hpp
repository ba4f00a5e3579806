// The daemon's files (pid, status): written whole and private. A new temporary file in the
// same directory (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600: they hold PPP names and inside
// addresses) is renamed over the target, so readers see a whole file and nothing follows a
// symlink planted at a predictable name.
#pragma once

#include <string>
#include <string_view>

#include "alg/core/result.hpp"

namespace pptp::daemon {

Result<bool, std::string> write_private_file(const std::string& path, std::string_view content);

}  // namespace pptp::daemon
