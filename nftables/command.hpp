// Talking to nf_tables and running iptables. nft scripts (the language `nft -f` reads) are run
// in this process through libnftables, the library behind the nft program: no process to
// start. iptables (the xtables backend) and ip (proxy mode) are programs: found once, by
// absolute path in a fixed list of system directories (never through PATH, which a caller
// may have pointed anywhere: the daemon runs them as root), and started without a shell.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "alg/core/result.hpp"

namespace pptp::nft {

enum class NftMode : std::uint8_t {
  Apply,  // one transaction: all of the script or nothing
  Check,  // `nft --check`: the kernel validates the transaction, nothing changes
};
// Runs an nft script in-process (libnftables; needs CAP_NET_ADMIN, no exec). Returns what it
// printed (a listing), or nft's error message. Putting the table back after a firewall
// reload took 1.4-2.2 s at load 10 with an `nft -f` process, nearly all of it the process
// (issue 15: within a second).
Result<std::string, std::string> run_nft(std::string_view script, NftMode mode = NftMode::Apply);

// Where nft and iptables are looked for, in this order.
inline constexpr std::array<std::string_view, 4> kToolDirectories{"/usr/sbin", "/sbin", "/usr/bin",
                                                                  "/bin"};

// nft: only named in scripts for an operator (describe_rules); the daemon uses run_nft().
// iptables-save and -restore: the xtables backend's rules in one process (xtables.cpp).
enum class Tool : std::uint8_t { Nft, Iptables, Ip, IptablesSave, IptablesRestore };  // ip: iproute2 (proxy mode)

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
