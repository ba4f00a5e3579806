#!/usr/bin/env bash
# The main job: build pptp-alg and run the demo lab in network namespaces. Five PPTP
# clients behind one masquerading router (three forced onto the same Call ID, two real
# pptp-linux clients) reach a real PPTP server (pptpd): first without pptp-alg (they fail),
# then with it (each gets its own data back). Prints the daemon's live table of control
# connections and calls, then removes everything it made. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "demo: building"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j "$(nproc)" --target pptp-alg >/dev/null
/usr/bin/python3 tests/e2e/demo.py build/release/alg/pptp-alg
