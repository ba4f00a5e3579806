#!/usr/bin/env bash
# The tests that run inside the test VM (Debian 12's stock kernel), as root:
#   bash scripts/vm/run.sh -- bash tests/vm/suite.sh build/release/alg/pptp-alg
# 1. the kernel's nft features that pptp-alg uses (nft_features.sh);
# 2. pptp-alg's runtime libraries resolve, and it picks the nft backend by itself;
# 3. the scripted E2E of tests/e2e/test_nat_e2e.py with the nft backend (a subset, or the
#    tests named in PPTP_ALG_VM_E2E, e.g. "CollidingCallIds FastPath");
# 4. the queue's bypass: fail-open and fail-closed with the daemon killed.
# Ends with "N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
daemon=$(cd "$(dirname "${1:?usage: suite.sh PATH/TO/pptp-alg}")" && pwd)/$(basename "$1")
# By default the tests that pass in the VM; those with pptpd's short calls do not yet
# (docs/e2e.md, "In a Debian 12 VM": python3 starts too slowly under emulation).
e2e=${PPTP_ALG_VM_E2E:-CallLifecycle.test_several_calls_on_one_connection_with_collisions \
CallLifecycle.test_incoming_calls_placed_by_the_server Rules}
passed=0
failed=0
failures=()
step() {  # name, command...
  local name=$1 start=$SECONDS
  shift
  printf '\n=== vm: %s\n' "$name"
  if "$@"; then passed=$((passed + 1)); status=ok; else failed=$((failed + 1)); failures+=("$name"); status=FAILED; fi
  printf '=== vm: %s: %s in %ds\n' "$name" "$status" "$((SECONDS - start))"
}
libraries() {
  ! ldd "$daemon" | grep "not found"
}
auto_backend() {  # the daemon's own probe finds the nft queue statement on this kernel
  local rules  # captured first: grep -q's early exit would give the writer SIGPIPE (pipefail)
  rules=$("$daemon" rules) && grep -q "^# pptp-alg rules, backend nft" <<<"$rules" &&
    ! command -v iptables  # and it could use no other
}
echo "vm: kernel $(uname -r), $(nproc) CPUs, nft $(nft --version | awk '{print $2}'), $(python3 --version)"
step "nft features of $(uname -r)" bash "$here/nft_features.sh" "$daemon"
step "runtime libraries" libraries
step "backend auto-detected: nft" auto_backend
# shellcheck disable=SC2086 # a list of test names
step "E2E (test_nat_e2e.py, nft backend): $e2e" env PPTP_ALG="$daemon" /usr/bin/python3 \
  "$here/../e2e/test_nat_e2e.py" -v $e2e
step "queue bypass without a daemon (test_fail_open.py)" env PPTP_ALG="$daemon" /usr/bin/python3 \
  "$here/test_fail_open.py" -v
echo
if ((failed)); then printf 'vm: failed: %s\n' "${failures[@]}"; fi
echo "vm: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
