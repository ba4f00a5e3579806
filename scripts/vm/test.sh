#!/usr/bin/env bash
# The VM tests against a build of pptp-alg, with timings (as root):
#   bash scripts/vm/test.sh [BUILD_DIR]        (default build/release)
# Builds or reuses the cached image, boots Debian 12's stock kernel under qemu twice and
# copies the output back (to $PPTP_ALG_VM_OUT, default BUILD_DIR/vm/{suite,package}):
#   suite    tests/vm/suite.sh with init.sh as PID 1 (nft backend, no iptables)
#   package  tests/vm/test_package.py with systemd as PID 1: the .deb (cpack -G DEB in
#            BUILD_DIR; the pptp-alg and man_pages targets built) installed with dpkg
# PPTP_ALG_VM_ONLY=suite or =package runs one of them; =smoke runs the short suite only
# (suite.sh --smoke: the runtime libraries, the backend probe, the daemon's nft table).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(cd "${1:-build/release}" && pwd)
daemon=$build/alg/pptp-alg
[ -x "$daemon" ] || { echo "vm-test: no $daemon (build the pptp-alg target first)" >&2; exit 1; }
out=${PPTP_ALG_VM_OUT:-$build/vm}
only=${PPTP_ALG_VM_ONLY:-}
start=$SECONDS
if [ "$only" = smoke ]; then
  bash scripts/vm/kernel.sh >/dev/null
  echo "vm-test: kernel and initramfs $((SECONDS - start))s (cached or built)"
else
  bash scripts/vm/image.sh >/dev/null
  echo "vm-test: image $((SECONDS - start))s (cached or built)"
fi
shares=()
case "$build/" in "$PWD"/*) ;; *) shares=(--share "$build") ;; esac
status=0
boot() {  # name, run.sh options and command...
  local name=$1 begin=$SECONDS rc=0 up
  shift
  bash scripts/vm/run.sh --timeout "${PPTP_ALG_VM_TIMEOUT:-1500}" --out "$out/$name" "${shares[@]}" "$@" || rc=$?
  up=$(sed -n 's/.*vm-init: up after \([0-9.]*\) s.*/\1/p' "$out/$name/console.log" | head -1)
  echo "vm-test: $name: VM $((SECONDS - begin))s (guest up after ${up:-?}s), exit $rc; logs in $out/$name"
  ((rc == 0)) || status=1
}
if [ "$only" = smoke ]; then  # no disk image: the host's / over 9p (run.sh --host-root)
  boot smoke --host-root -- bash tests/vm/suite.sh --smoke "$daemon"
fi
if [ "$only" = "" ] || [ "$only" = suite ]; then
  boot suite -- bash tests/vm/suite.sh "$daemon"
fi
if [ "$only" = "" ] || [ "$only" = package ]; then
  rm -f "$build"/pptp-alg_*.deb
  (cd "$build" && cpack -G DEB >/dev/null)
  deb=$(ls "$build"/pptp-alg_*.deb)
  boot package --systemd -- env PPTP_ALG_DEB="$deb" /usr/bin/python3 tests/vm/test_package.py -v
fi
echo "vm-test: ${SECONDS}s in all, exit $status"
exit "$status"
