#!/usr/bin/env bash
# The main job, for now: build pptp-alg and inspect two captures that show what it tracks:
# four clients of one Poptop server, two of them with the same PNS Call ID (7), and a crafted
# control connection carrying three calls at once. The live lab (clients behind a NAT
# router running the daemon, a real PPTP server) replaces this when the daemon lands.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j "$(nproc)" --target pptp-alg
for capture in tests/data/pcaps/pptp-linux-poptop-4-calls.pcap tests/data/pcaps/crafted-lifecycle.pcap; do
  printf '\n$ pptp-alg inspect %s\n' "$capture"
  build/release/alg/pptp-alg inspect "$capture"
done
