#!/usr/bin/env bash
# The command line against the packaged configuration file, bash completion and man page:
# the file is valid and has a key for every daemon flag that `--help` lists; the completion
# offers every flag and subcommand of `--help` and of each subcommand's `--help` (and the
# values of a flag with a fixed set); the man page has an entry for every daemon flag and
# subcommand, every subcommand's flags in its synopsis, and every key; usage errors exit 2
# (docs/daemon.md).
# Usage: check-cli.sh PPTP_ALG CONFIG_FILE [COMPLETION [MAN_PAGE]]
# (default: packaging/bash-completion/pptp-alg and packaging/man/pptp-alg.8 beside this script)
set -uo pipefail
alg=$1
conf=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
completion=${3:-$here/bash-completion/pptp-alg}
manpage=${4:-$here/man/pptp-alg.8}
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
  "--ha-commit-timeout 601" "--proxy-calls 7" "--proxy --proxy-outside a/b" "--proxy-outside wan0"; do
  # shellcheck disable=SC2086
  "$alg" $usage >/dev/null 2>&1
  status=$?
  [ "$status" -eq 2 ] || { echo "FAIL: 'pptp-alg $usage' exited $status, not 2"; fail=1; }
done
# A value out of range says what to give.
out=$("$alg" --ha-commit-timeout 0 2>&1)
[[ "$out" == *"give seconds from 1 to 600"* ]] || { echo "FAIL: --ha-commit-timeout 0 said: $out"; fail=1; }
out=$("$alg" --proxy --proxy-outside eth0:1 2>&1)
[[ "$out" == *"'eth0:1' is not an interface name"* ]] || { echo "FAIL: --proxy-outside eth0:1 said: $out"; fail=1; }
out=$("$alg" rules --proxy --proxy-outside wan0,ppp0 2>&1)
[[ "$out" == *"-t nat -A PPTP_ALG_PROXY -i ppp0 -j RETURN"* ]] || { echo "FAIL: rules --proxy-outside: $out"; fail=1; }
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
# rules reads the configuration file's keys, a flag wins over its key; an include that
# could not load is refused.
keys=$(mktemp)
printf 'syn-limit: 5\nfail-open: true\n' >"$keys"
out=$("$alg" rules --config "$keys" 2>&1)
[[ "$out" == *"over 5/second"* && "$out" == *"fail open"* ]] || { echo "FAIL: rules --config keys: $out"; fail=1; }
out=$("$alg" rules --config "$keys" --syn-limit 7 2>&1)
[[ "$out" == *"over 7/second"* ]] || { echo "FAIL: rules flag over key: $out"; fail=1; }
rm -f "$keys"
for usage in "rules --format nft --backend xtables" "rules --format nft --proxy"; do
  # shellcheck disable=SC2086
  "$alg" $usage >/dev/null 2>&1
  status=$?
  [ "$status" -eq 2 ] || { echo "FAIL: 'pptp-alg $usage' exited $status, not 2"; fail=1; }
done
# One daemon of a mode per network namespace: a second transparent one is refused (exit 1,
# naming the first's PID), a proxy beside it starts. In a namespace of its own (root), bounded.
if [ "$(id -u)" -eq 0 ] && unshare --net true 2>/dev/null; then
  out=$(timeout -s KILL 20 unshare --net bash -c '
    "$0" --status-file "" --control-socket none >/dev/null 2>&1 & first=$!
    sleep 1.5
    timeout -s KILL 5 "$0" --status-file "" --control-socket none --queue 1 2>&1; echo "second=$? first=$first"
    timeout -s TERM 2 "$0" --proxy --status-file "" --control-socket none 2>&1 | grep -c "ready mode=proxy"
    kill "$first"; wait "$first"' "$alg" 2>&1)
  [[ "$out" == *"runs in transparent mode in this network namespace"* && "$out" == *"second=1 "* ]] \
    || { echo "FAIL: a second transparent daemon: $out"; fail=1; }
  [[ "$(tail -1 <<<"$out")" == "1" ]] || { echo "FAIL: a proxy beside a transparent daemon: $out"; fail=1; }
fi
# A stale pid file naming another program: reload signals nothing (SIGHUP would end it).
sleep 30 &
other=$!
pidfile=$(mktemp)
echo "$other" >"$pidfile"
"$alg" reload --config /dev/null --pid-file "$pidfile" >/dev/null 2>&1
status=$?
kill -0 "$other" 2>/dev/null || { echo "FAIL: reload signalled PID $other, not a pptp-alg"; fail=1; }
[ "$status" -eq 1 ] || { echo "FAIL: reload of a stale pid file exited $status, not 1"; fail=1; }
kill "$other" 2>/dev/null
# A status file no daemon has written for minutes: status says so.
echo '{}' >"$pidfile"
touch -d '10 minutes ago' "$pidfile"
out=$("$alg" status --config /dev/null --file "$pidfile" 2>&1 >/dev/null)
[[ "$out" == *"is not running"* ]] || { echo "FAIL: a stale status file was not said: $out"; fail=1; }
rm -f "$pidfile"
include=$("$alg" rules --format nft)
grep -q "^table ip pptp_alg {" <<<"$include" || { echo "FAIL: rules --format nft"; fail=1; }
if grep -qE "^(flush|delete)" <<<"$include"; then echo "FAIL: the include flushes"; fail=1; fi
# check --config refuses what the daemon would refuse at start, as the daemon does (exit 2).
for conf_text in 'proxy-servers: 192.0.2.0/24' 'fast-path: netdev\nno-fast-path: true' \
  'ha-virtual-address: 198.51.100.1' 'metrics-listen: nonsense' 'ha-peer: nonsense' 'proxy-calls: 100' \
  'proxy: true\nha-peer: 192.0.2.2:1724\nha-listen: 192.0.2.1:1724\nha-key-file: /nonexistent'; do
  out=$("$alg" check --config <(printf "$conf_text\n") 2>&1)
  status=$?
  [ "$status" -eq 2 ] || { echo "FAIL: check --config '$conf_text' exited $status, not 2: $out"; fail=1; }
  # The daemon itself, in a network namespace of its own (root), bounded: it refuses at once.
  if [ "$(id -u)" -eq 0 ] && unshare --net true 2>/dev/null; then
    # shellcheck disable=SC2046
    timeout -s KILL 10 unshare --net "$alg" --status-file '' --control-socket none \
      $(printf "$conf_text" | sed -E 's/^([a-z-]+): (.*)$/--\1 \2/; s/ true$//') >/dev/null 2>&1
    status=$?
    [ "$status" -eq 2 ] || { echo "FAIL: the daemon with '$conf_text' exited $status, not 2"; fail=1; }
  fi
done
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

# --help, the completion and the man page: every flag and subcommand of `pptp-alg [SUB [SUB]]
# --help` is offered by the completion and written in the man page.
# The long flags of a --help text's Options section (-h,--help starts with -h: left out) and
# the names in its Subcommands section.
options_of() { sed -n '/^Options:/,/^[A-Z][A-Za-z]*:/p' <<<"$1" | grep -oE '^ +--[a-z][a-z-]*' | tr -d ' '; }
subcommands_of() { sed -n '/^Subcommands:/,/^[A-Z][A-Za-z]*:/p' <<<"$1" | grep -oE '^ +[a-z][a-z-]*' | tr -d ' '; }
# A flag's fixed set of values, as CLI11 prints it: "--log-level TEXT:{trace,debug,...}".
choices_of() {
  sed -n '/^Options:/,/^[A-Z][A-Za-z]*:/p' <<<"$1" | grep -E "^ +$2 [A-Z]+:\{" | sed -E 's/.*:\{([^}]*)\}.*/\1/' \
    | tr ',' ' '
}
# What the completion offers for the last of WORDS (pptp-alg ... CUR), one a line, run the way
# bash runs it for `complete -F`.
complete_fn=$(sed -nE 's/^complete -F ([A-Za-z_][A-Za-z0-9_]*) pptp-alg$/\1/p' "$completion")
[ -n "$complete_fn" ] || { echo "FAIL: completion $completion: no 'complete -F FUNCTION pptp-alg'"; fail=1; }
offered() {
  bash --norc --noprofile -c 'source "$1" || exit 1; fn=$2; shift 2; COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; "$fn" 2>/dev/null
    printf "%s\n" "${COMPREPLY[@]}"' _ "$completion" "$complete_fn" "$@"
}
# Roff made plain: \- is -, font changes and quotes go.
plain_man=$(sed -E -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/"//g' "$manpage")
# A section's .TP tags (the line after each .TP), and a subcommand's SYNOPSIS lines (from
# ".B pptp-alg SUB" to the next .br).
man_section() { awk -v s="$1" '/^\.SH /{on = ($0 == ".SH " s)} on' <<<"$plain_man"; }
man_tags() { man_section "$1" | awk 'tag {print; tag = 0} /^\.TP/ {tag = 1}'; }
man_synopsis_of() { man_section SYNOPSIS | awk -v s=".B pptp-alg $1" '$0 == s {on = 1} on && /^\.br/ {on = 0} on'; }
mentions() { grep -qE -- "(^|[^a-z-])$1([^a-z-]|\$)" <<<"$2"; }

checked_flags=0 checked_commands=0
# check_command WORD...: `pptp-alg WORD... --help` against the completion (and its subcommands).
check_command() {
  local help words offer flag sub choices c got
  help=$("$alg" "$@" --help 2>&1)
  words="pptp-alg${*:+ $*}"
  offer=$(offered pptp-alg "$@" --)
  for flag in $(options_of "$help"); do
    checked_flags=$((checked_flags + 1))
    grep -qxF -- "$flag" <<<"$offer" \
      || { echo "FAIL: completion $completion: '$words --<TAB>' does not offer $flag"; fail=1; }
    choices=$(choices_of "$help" "$flag")
    [ -n "$choices" ] || continue
    got=$(offered pptp-alg "$@" "$flag" '')
    for c in $choices; do
      grep -qxF -- "$c" <<<"$got" \
        || { echo "FAIL: completion $completion: '$words $flag <TAB>' does not offer $c"; fail=1; }
    done
  done
  offer=$(offered pptp-alg "$@" '')
  for sub in $(subcommands_of "$help"); do
    checked_commands=$((checked_commands + 1))
    grep -qxF -- "$sub" <<<"$offer" \
      || { echo "FAIL: completion $completion: '$words <TAB>' does not offer subcommand $sub"; fail=1; }
    check_command "$@" "$sub"
  done
}
check_command

# The man page: OPTIONS has an entry for every daemon flag (but --help), COMMANDS one for
# every subcommand, each subcommand's SYNOPSIS its flags and subcommands, CONFIGURATION FILE
# every key.
help=$("$alg" --help)
options_tags=$(man_tags OPTIONS)
for flag in $(options_of "$help" | grep -vxF -- --help); do
  mentions "$flag" "$options_tags" || { echo "FAIL: man page $manpage: OPTIONS has no entry for $flag"; fail=1; }
done
commands_tags=$(man_tags COMMANDS)
keys_section=$(man_section "CONFIGURATION FILE")
for flag in $flags; do
  mentions "${flag#--}" "$keys_section" \
    || { echo "FAIL: man page $manpage: CONFIGURATION FILE does not list key ${flag#--}"; fail=1; }
done
for sub in $(subcommands_of "$help"); do
  mentions "$sub" "$commands_tags" || { echo "FAIL: man page $manpage: COMMANDS has no entry for $sub"; fail=1; }
  synopsis=$(man_synopsis_of "$sub")
  [ -n "$synopsis" ] || { echo "FAIL: man page $manpage: SYNOPSIS has no line '.B pptp-alg $sub'"; fail=1; }
  sub_help=$("$alg" "$sub" --help)
  for flag in $(options_of "$sub_help"); do
    mentions "$flag" "$synopsis" || { echo "FAIL: man page $manpage: SYNOPSIS of $sub lacks $flag"; fail=1; }
  done
  for nested in $(subcommands_of "$sub_help"); do
    mentions "$nested" "$synopsis" \
      || { echo "FAIL: man page $manpage: SYNOPSIS of $sub lacks subcommand $nested"; fail=1; }
    for flag in $(options_of "$("$alg" "$sub" "$nested" --help)"); do
      mentions "$flag" "$synopsis" \
        || { echo "FAIL: man page $manpage: SYNOPSIS of $sub lacks $nested's $flag"; fail=1; }
    done
  done
done

[ "$fail" -eq 0 ] && echo "check-cli: $(echo "$flags" | wc -w) flags, each with a key and in the man page;" \
  "$checked_flags flags and $checked_commands subcommands of every --help completed; usage errors exit 2"
exit "$fail"
