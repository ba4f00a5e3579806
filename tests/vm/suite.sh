#!/usr/bin/env bash
# The tests that run inside the test VM (Debian 12's stock kernel), as root:
#   bash scripts/vm/run.sh -- bash tests/vm/suite.sh build/release/alg/pptp-alg
# 1. the kernel's nft features that pptp-alg uses (nft_features.sh);
# 2. pptp-alg's runtime libraries resolve, and it picks the nft backend by itself;
# 3. the scripted E2E of tests/e2e/test_nat_e2e.py with the nft backend (a subset, or the
#    tests named in PPTP_ALG_VM_E2E, e.g. "CollidingCallIds FastPath");
# 4. the queue's bypass: fail-open and fail-closed with the daemon killed;
# 5. real PPP: pppd on both ends, PAP, CHAP-MD5, MS-CHAPv2 with MPPE, CHAP rechallenges
#    (test_real_ppp.py);
# 6. the kernel helper side by side (test_nat_e2e.py KernelHelperReference);
# 7. the xtables backend: iptables installed from its .deb (the image keeps it) unless there,
#    the daemon started with --backend xtables (xtables_daemon.sh), the scripted E2E again
#    (PPTP_ALG_VM_E2E_XTABLES; empty skips it), fail-open (step 4) and real PPP (step 5).
# --cells: steps 2 (libraries), 6 and 7 only (the matrix's cells beside the smoke).
# --smoke (the short run for CI, docs/e2e.md; run.sh --host-root): step 2, step 3 with
# FastPath's first test (two scripted clients with colliding Call IDs and a pptp-linux
# client through the daemon's nft table and its queue statements, their calls offloaded
# to the fast path's maps, all removed at the end) and step 4's fail-open test
# (PPTP_ALG_VM_SMOKE_E2E and PPTP_ALG_VM_SMOKE_FAIL_OPEN name others).
# Ends with "N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
smoke=0
cells=0
if [ "${1:-}" = --smoke ]; then smoke=1; shift; fi
if [ "${1:-}" = --cells ]; then cells=1; shift; fi
daemon=$(cd "$(dirname "${1:?usage: suite.sh PATH/TO/pptp-alg}")" && pwd)/$(basename "$1")
# By default the tests that pass in the VM (docs/e2e.md, "In a Debian 12 VM").
e2e=${PPTP_ALG_VM_E2E-CollidingCallIds.test_two_clients_same_call_id_and_a_pptp_linux_client \
CallLifecycle.test_several_calls_on_one_connection_with_collisions \
CallLifecycle.test_incoming_calls_placed_by_the_server \
FastPath.test_an_established_calls_gre_leaves_the_queue_and_its_elements_go_with_it WithoutFastPath Rules}
e2e_xtables=${PPTP_ALG_VM_E2E_XTABLES-CollidingCallIds.test_two_clients_same_call_id_and_a_pptp_linux_client \
FastPath.test_an_established_calls_gre_leaves_the_queue_and_its_elements_go_with_it WithoutFastPath Rules}
fail_open=QueueWithoutDaemon
if ((smoke)); then
  e2e=${PPTP_ALG_VM_SMOKE_E2E-FastPath.test_an_established_calls_gre_leaves_the_queue_and_its_elements_go_with_it}
  fail_open=${PPTP_ALG_VM_SMOKE_FAIL_OPEN-QueueWithoutDaemon.test_fail_open_passes_control_connections_when_the_daemon_is_gone}
fi
# Emulated CPUs start pptpd's PPP program (python3) seconds late: the scripted clients count
# their calls' data from the server's first LCP frame, not from the call's set-up.
export PPTPLAB_AWAIT_SERVER_LCP=1 PPTPLAB_TIME_SCALE=3
passed=0
failed=0
failures=()
step() {  # name, command...
  local name=$1 start=$SECONDS
  shift
  printf '\n=== vm: %s\n' "$name"
  if "$@"; then passed=$((passed + 1)); status=ok; else failed=$((failed + 1)); failures+=("$name"); status=FAILED; fi
  printf '=== vm: %s: %s in %ds\n' "$name" "$status" "$((SECONDS - start))"
  [ "$status" = ok ]
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
((smoke || cells)) || step "nft features of $(uname -r)" bash "$here/nft_features.sh" "$daemon"
step "runtime libraries" libraries
if ((cells == 0)); then
  step "backend auto-detected: nft" auto_backend
  # shellcheck disable=SC2086 # a list of test names
  step "E2E (test_nat_e2e.py, nft backend): $e2e" env PPTP_ALG="$daemon" /usr/bin/python3 \
    "$here/../e2e/test_nat_e2e.py" -v $e2e
  # shellcheck disable=SC2086 # a list of test names
  step "queue bypass without a daemon (test_fail_open.py): $fail_open" env PPTP_ALG="$daemon" /usr/bin/python3 \
    "$here/test_fail_open.py" -v $fail_open
fi
if ((smoke)); then
  echo "vm: smoke: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
fi
if ((cells == 0)); then
  step "real PPP: pppd on both ends, PAP, CHAP-MD5, MS-CHAPv2 + MPPE (test_real_ppp.py)" env PPTP_ALG="$daemon" \
    /usr/bin/python3 "$here/test_real_ppp.py" -v
fi
step "kernel helper side by side (test_nat_e2e.py KernelHelperReference, nft backend)" env PPTP_ALG="$daemon" \
  /usr/bin/python3 "$here/../e2e/test_nat_e2e.py" -v KernelHelperReference
xtables_ready() {  # iptables as apt would install it (the image keeps its .deb), the backend forced
  command -v iptables >/dev/null || dpkg -i /var/cache/pptp-alg-vm/iptables_*.deb >/dev/null || return 1
  local rules
  rules=$("${xtables[@]}" "$here/xtables_daemon.sh" rules) && grep -q "^# pptp-alg rules, backend xtables" <<<"$rules"
}
xtables=(env PPTP_ALG_REAL="$daemon" PPTP_ALG="$here/xtables_daemon.sh")
if step "the xtables backend forced (iptables)" xtables_ready; then
  echo "vm: $(iptables --version)"
  if [ -n "$e2e_xtables" ]; then
    # shellcheck disable=SC2086 # a list of test names
    step "E2E with the xtables backend: $e2e_xtables" "${xtables[@]}" /usr/bin/python3 \
      "$here/../e2e/test_nat_e2e.py" -v $e2e_xtables
  fi
  step "queue bypass without a daemon, xtables backend (test_fail_open.py)" env PPTP_ALG="$daemon" \
    PPTP_ALG_BACKEND=xtables /usr/bin/python3 "$here/test_fail_open.py" -v
  step "real PPP, xtables backend (test_real_ppp.py)" "${xtables[@]}" /usr/bin/python3 "$here/test_real_ppp.py" -v
fi
echo
if ((failed)); then printf 'vm: failed: %s\n' "${failures[@]}"; fi
echo "vm: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
