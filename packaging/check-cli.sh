#!/usr/bin/env bash
# The command line against the packaged configuration file: the file is valid, it has a key
# for every daemon flag that `--help` lists, and usage errors exit 2 (docs/daemon.md).
# Usage: check-cli.sh PPTP_ALG CONFIG_FILE
set -uo pipefail
alg=$1
conf=$2
fail=0
"$alg" check --config "$conf" >/dev/null || { echo "FAIL: check --config $conf"; fail=1; }
# The daemon's own flags: the options section of --help, without --help/--version/--config.
flags=$("$alg" --help | sed -n '/^Options:/,/^Subcommands:/p' | grep -oE '^ +--[a-z-]+' | tr -d ' ' \
  | grep -vxE -- '--(help|version|config)')
[ -n "$flags" ] || { echo "FAIL: no flags found in --help"; fail=1; }
for flag in $flags; do
  grep -qE "^#? ?${flag#--}:" "$conf" || { echo "FAIL: flag $flag has no key in $conf"; fail=1; }
  # A known key with a wrong value: an error about the value, not an unknown key.
  out=$("$alg" check --config <(echo "${flag#--}: [x]") 2>&1)
  [[ "$out" == *":1:"*"expected"* ]] || { echo "FAIL: key ${flag#--} not read: $out"; fail=1; }
done
for usage in "--no-such-flag" "--queue" "--log-level loud" "inspect" "no-such-command" "--ha-commit-timeout 0" \
  "--ha-commit-timeout 601"; do
  # shellcheck disable=SC2086
  "$alg" $usage >/dev/null 2>&1
  status=$?
  [ "$status" -eq 2 ] || { echo "FAIL: 'pptp-alg $usage' exited $status, not 2"; fail=1; }
done
# A value out of range says what to give.
out=$("$alg" --ha-commit-timeout 0 2>&1)
[[ "$out" == *"give seconds from 1 to 600"* ]] || { echo "FAIL: --ha-commit-timeout 0 said: $out"; fail=1; }
"$alg" --version >/dev/null || { echo "FAIL: --version"; fail=1; }
# ctl: a subcommand is required, kill takes exactly one selector, no daemon is exit 1.
for usage in "ctl" "ctl kill" "ctl kill --user a --call 3" "ctl frobnicate" "rules --format xml"; do
  # shellcheck disable=SC2086
  "$alg" $usage >/dev/null 2>&1
  status=$?
  [ "$status" -eq 2 ] || { echo "FAIL: 'pptp-alg $usage' exited $status, not 2"; fail=1; }
done
"$alg" ctl --socket /nonexistent/control calls >/dev/null 2>&1
[ $? -eq 1 ] || { echo "FAIL: ctl without a daemon did not exit 1"; fail=1; }
# Output captured first: `cmd | grep -q` under pipefail fails when grep's early exit gives the
# writer SIGPIPE (it did in CI once the table grew).
include=$("$alg" rules --format nft)
grep -q "^table ip pptp_alg {" <<<"$include" || { echo "FAIL: rules --format nft"; fail=1; }
if grep -qE "^(flush|delete)" <<<"$include"; then echo "FAIL: the include flushes"; fail=1; fi
bad=$("$alg" check --config <(printf 'queue: 0\nfail-open: maybe\n') 2>&1)
[[ "$bad" == *":2:12: expected true or false"* ]] || { echo "FAIL: error position: $bad"; fail=1; }
# Flags win over keys, keys over defaults: a daemon in a network namespace of its own (root).
if [ "$(id -u)" -eq 0 ] && unshare --net true 2>/dev/null; then
  keys=$(mktemp)
  printf 'queue: 7\nstatus-file: /nonexistent/status.json\nallow-unknown-gre: true\nlog-level: info\n' >"$keys"
  log=$(timeout -s TERM 2 unshare --net "$alg" --config "$keys" --queue 9 --status-file '' 2>&1)
  rm -f "$keys"
  [[ "$log" == *"starting "*"queue=9 "*"allow_unknown_gre=true"* && "$log" == *"status_file=-"* ]] \
    || { echo "FAIL: flags over keys: $log"; fail=1; }
fi
[ "$fail" -eq 0 ] && echo "check-cli: $(echo "$flags" | wc -w) flags, each with a key; usage errors exit 2"
exit "$fail"
