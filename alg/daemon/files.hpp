// The daemon's files (pid, status): written whole and private. A new temporary file in the
// same directory (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600: they hold PPP names and inside
// addresses) is renamed over the target, so readers see a whole file and nothing follows a
// symlink planted at a predictable name.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "alg/core/result.hpp"

namespace pptp::daemon {

Result<bool, std::string> write_private_file(const std::string& path, std::string_view content);

// The same with the content in pieces: `write` calls `put` for each (put answers false when
// it could not write one) and answers whether every piece was put. A file of many calls
// then needs no text of its whole size (the status: docs/daemon.md).
using PutPiece = std::function<bool(std::string_view)>;
Result<bool, std::string> write_private_file(const std::string& path, const std::function<bool(const PutPiece&)>& write);

}  // namespace pptp::daemon
