#!/usr/bin/env bash
# Every test of pptp-alg: release build with unit, golden and tshark tests; the Debian
# package built, installed, verified and purged; the unit tests and the end-to-end suites
# that feed the daemon hostile input under AddressSanitizer + UndefinedBehaviorSanitizer; every libFuzzer target for a bounded time (FUZZ_SECONDS each,
# default 30) from a seed corpus cut from the captures; a smoke test in a VM (Debian 12's
# stock kernel over this host's /). With PPTP_ALG_VM=1, also the full VM tests
# (scripts/vm/test.sh: a debootstrapped image, the nft and xtables backends, real PPP,
# the package under systemd).
# Warnings are errors here (PPTP_ALG_WERROR), not in users' builds.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)
fuzz_seconds=${FUZZ_SECONDS:-30}
bash scripts/install-deps.sh

# Each step's start, with the minutes:seconds since the run began (for CI's time budget).
step() { printf '\n=== [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
passed=0
failed=0
failures=()
record() {  # name, status
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

# The release build as users build it (RelWithDebInfo's -O2 -DNDEBUG) without its debug
# information: a fifth less compile time (alg/daemon/daemon.cpp 59.6 s with -g, 44.9 s
# without, at load 8), and the package strips it anyway (CPACK_STRIP_FILES).
step "release build"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG" \
  -DPPTP_ALG_WERROR=ON >/dev/null
cmake --build build/release -j "$jobs"
step "unit, golden and tshark tests (release)"
set +e
(cd build/release && ctest --output-on-failure -j "$jobs" -LE e2e); record "ctest release" $?
set -e

# The end-to-end suites mostly wait on their peers (e2e_nat: 36 CPU-s in 224 s), so they run
# three at a time while the sanitizer tree builds beside them at a lower priority: the
# build takes the cores the suites leave idle (about 7 minutes saved against one after the
# other). Its output goes to build/sanitize-build.log, printed if it fails.
sanitize_build_log=build/sanitize-build.log
mkdir -p build
step "sanitizer build (clang: ASan + UBSan, libFuzzer targets) in the background"
# File by file (PPTP_ALG_UNITY=OFF), where the release tree compiles in batches: a source that
# compiles only beside the others of its batch (an include it lacks) fails here. Its time
# hides behind the suites' (s34: in batches it was done 8 minutes into their 15).
cmake -S . -B build/sanitize -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DPPTP_ALG_FUZZ=ON \
  -DPPTP_ALG_UNITY=OFF -DPPTP_ALG_WERROR=ON >/dev/null
nice -n 10 cmake --build build/sanitize -j "$jobs" >"$sanitize_build_log" 2>&1 &
sanitize_build=$!
step "end-to-end suites (release), three at a time"
set +e
(cd build/release && ctest --output-on-failure -j 3 -L e2e); record "ctest release e2e" $?
set -e

# The VM smoke (docs/e2e.md): Debian 12's stock kernel under qemu booted into this host's
# own / over 9p (no disk image; the kernel's .deb cached in /var/cache/pptp-alg-vm), the nft
# backend without iptables, FastPath with colliding Call IDs, fail-open with the daemon
# killed. About 5 minutes cold on a loaded 2-core machine; PPTP_ALG_VM_SMOKE=0 skips it.
if [ "${PPTP_ALG_VM_SMOKE:-1}" = 1 ]; then
  step "VM smoke: Debian 12's stock kernel over the host's / (scripts/vm/test.sh, smoke)"
  set +e
  PPTP_ALG_VM_ONLY=smoke bash scripts/vm/test.sh build/release; record "vm-smoke" $?
  set -e
fi

if [ "${PPTP_ALG_VM:-0}" = 1 ]; then  # opt-in: Debian 12's stock kernel in qemu (docs/e2e.md)
  step "VM: Debian 12's stock kernel, nft backend (scripts/vm/test.sh)"
  set +e
  bash scripts/vm/test.sh build/release; record "vm" $?
  set -e
fi

step "Debian package: build (cpack), install (dpkg -i), verify, run, purge"
set +e
bash packaging/check-package.sh build/release; record "package" $?
set -e

# One sanitizer build for the tests and the fuzzers (started above): clang (its -O0 build of
# this tree takes about a quarter less CPU than GCC's, and GCC's warnings are the release
# build's), ASan + UBSan, every library instrumented for libFuzzer, the fuzzed ones at -O2.
step "sanitizer build: waiting for it"
if ! wait "$sanitize_build"; then
  tail -60 "$sanitize_build_log"
  echo "the sanitizer build failed (whole output: $sanitize_build_log)"
  record "sanitizer build" 1
  echo "test-all: $passed passed, $failed failed in $((SECONDS / 60)) min $((SECONDS % 60)) s"
  exit 1
fi
# Every unit, golden and fuzz-corpus test, and the end-to-end suites that feed the daemon
# hostile input (integrity, flood, proxy); the rest (label "slow") ran in the release stage.
step "tests (ASan + UBSan; label slow left out)"
set +e
(cd build/sanitize && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j 3 -LE slow); record "ctest sanitize" $?
set -e

seeds=build/sanitize/seeds
rm -rf "$seeds"
captures=(tests/data/pcaps/*.pcap*)
[ -d ../shared/pcaps ] && captures+=(../shared/pcaps/*)
/usr/bin/python3 tests/tools/make_seed_corpus.py "$seeds" "${captures[@]}" 2>/dev/null
# One fuzzer, its last lines into build/sanitize/fuzz_NAME.log (with a crash: the frames in
# this tree and the input's file, to add to tests/fuzz/regressions/NAME/); its exit status.
fuzz_one() {  # target (run in the background: its own shell)
  set +e
  local corpus=build/sanitize/corpus/$1
  mkdir -p "$corpus" "$seeds/$1"
  timeout $((fuzz_seconds + 120)) build/sanitize/tests/fuzz/fuzz_$1 -max_total_time="$fuzz_seconds" \
    -max_len=8192 -print_final_stats=0 -artifact_prefix=build/sanitize/ "$corpus" "$seeds/$1" 2>&1 \
    | grep -E "^(Done|==|SUMMARY)|ERROR|Test unit written|^ +#[0-9]+ .* $PWD/" | tail -16 >"build/sanitize/fuzz_$1.log"
  return "${PIPESTATUS[0]}"
}
# Two at a time: each fuzzer is one process, the machine has $jobs cores.
fuzzers=(control_message gre_ppp reassembler tracker gateway capture auth_follower sync_message table_file)
for ((i = 0; i < ${#fuzzers[@]}; i += jobs)); do
  batch=("${fuzzers[@]:i:jobs}")
  step "fuzz ${batch[*]} for ${fuzz_seconds}s"
  pids=()
  for target in "${batch[@]}"; do fuzz_one "$target" & pids+=($!); done
  for k in "${!batch[@]}"; do
    set +e
    wait "${pids[k]}"
    status=$?
    set -e
    if [ "$status" -eq 0 ]; then echo "fuzz_${batch[k]}: $(tail -1 "build/sanitize/fuzz_${batch[k]}.log")"
    else echo "fuzz_${batch[k]} failed ($status):"; cat "build/sanitize/fuzz_${batch[k]}.log"; fi
    record "fuzz_${batch[k]}" "$status"
  done
done

echo
if ((failed)); then echo "failed: ${failures[*]}"; fi
echo "test-all: $passed passed, $failed failed in $((SECONDS / 60)) min $((SECONDS % 60)) s"
[ "$failed" -eq 0 ]
