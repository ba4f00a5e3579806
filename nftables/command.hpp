// Running nft and iptables. They are found once, by absolute path in a fixed list of system
// directories (never through PATH, which a caller may have pointed anywhere: the daemon runs
// them as root), and started without a shell.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "alg/core/result.hpp"

namespace pptp::nft {

// Where nft and iptables are looked for, in this order.
inline constexpr std::array<std::string_view, 4> kToolDirectories{"/usr/sbin", "/sbin", "/usr/bin",
                                                                  "/bin"};

enum class Tool : std::uint8_t { Nft, Iptables, Ip };  // ip: iproute2 (proxy mode's policy route)

// The tool's absolute path (the first executable file of that name in kToolDirectories),
// looked up on the first call and kept; empty when there is none.
const std::string& tool_path(Tool tool);
// The path, or an error that names the directories searched and the package to install.
Result<std::string, std::string> require_tool(Tool tool);

using Command = std::vector<std::string>;  // argv; argv[0] an absolute path

// Runs `argv` with `input` on its standard input; returns its exit status, or -1 when it
// could not be started (argv[0] not an absolute path included). Output goes to `output`
// (stdout and stderr together).
int run_command(const Command& argv, std::string_view input, std::string& output);

// A command as an operator would type it (arguments with shell characters quoted).
std::string shell_line(const Command& c);

}  // namespace pptp::nft
