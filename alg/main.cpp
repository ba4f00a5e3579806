// pptp-alg: command-line entry point.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "alg/inspect/inspector.hpp"
#include "alg/version.hpp"

namespace {

int run_inspect(const std::string& capture, bool as_json) {
  pptp::inspect::Inspector inspector;
  auto summary = pptp::inspect::read_capture(capture, inspector);
  if (!summary) {
    std::fprintf(stderr, "pptp-alg inspect: %s\n", summary.error().c_str());
    return 2;
  }
  if (as_json) {
    std::cout << inspector.to_json().dump(2) << "\n";
  } else {
    std::cout << "capture: " << capture << "\n" << inspector.to_text();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pptp-alg " PPTP_ALG_VERSION
      ": PPTP application-level gateway for Linux edge firewalls (RFC 2637).\n"
      "Tracks PPTP control connections (TCP/1723) and their calls' enhanced GRE."};
  app.set_version_flag("--version", "pptp-alg " PPTP_ALG_VERSION);
  app.require_subcommand(1);

  std::string capture;
  bool as_json = false;
  CLI::App* inspect = app.add_subcommand(
      "inspect",
      "Read a capture (pcap or pcapng) and report the PPTP control connections, calls (Call IDs "
      "on both sides, state, GRE packets per direction, user names) and every protocol "
      "violation with its packet number. Exit status: 0 report printed, 2 capture unreadable.");
  inspect->add_option("capture", capture, "capture file (pcap or pcapng)")->required();
  inspect->add_flag("--json", as_json, "print the report as JSON (stable keys, for scripts)");

  CLI11_PARSE(app, argc, argv);
  if (inspect->parsed()) return run_inspect(capture, as_json);
  return 1;
}
