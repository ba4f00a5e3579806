#!/usr/bin/env bash
# The VM tests (tests/vm/suite.sh) against a build of pptp-alg, with timings:
#   bash scripts/vm/test.sh [BUILD_DIR]        (default build/release; as root)
# Builds or reuses the cached image, boots Debian 12's stock kernel under qemu, runs the
# suite inside and copies its output back (to $PPTP_ALG_VM_OUT, default build dir/vm).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(cd "${1:-build/release}" && pwd)
daemon=$build/alg/pptp-alg
[ -x "$daemon" ] || { echo "vm-test: no $daemon (build the pptp-alg target first)" >&2; exit 1; }
out=${PPTP_ALG_VM_OUT:-$build/vm}
start=$SECONDS
bash scripts/vm/image.sh >/dev/null
image_s=$((SECONDS - start))
shares=()
case "$build/" in "$PWD"/*) ;; *) shares=(--share "$build") ;; esac
set +e
bash scripts/vm/run.sh --timeout "${PPTP_ALG_VM_TIMEOUT:-1500}" --out "$out" "${shares[@]}" -- \
  bash tests/vm/suite.sh "$daemon"
status=$?
set -e
vm_s=$((SECONDS - start - image_s))
boot=$(sed -n 's/.*vm-init: up after \([0-9.]*\) s.*/\1/p' "$out/console.log" | head -1)
echo "vm-test: image ${image_s}s (cached or built), VM ${vm_s}s (guest up after ${boot:-?}s), exit $status; logs in $out"
exit "$status"
