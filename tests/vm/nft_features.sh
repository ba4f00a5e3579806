#!/usr/bin/env bash
# shellcheck disable=SC2317 # the checks are called through check()
# The nftables features pptp-alg's rules and fast path use, tried on the running kernel in
# a namespace of its own (removed at exit): the queue statement (both spellings), the
# daemon's whole table (`pptp-alg rules`), raw payload (@th) keys in typeof maps, elements
# with timeouts and counters. Prints one line per feature ("ok" or "MISSING: why") and
# exits with the number missing. Run as root: nft_features.sh PATH/TO/pptp-alg
set -uo pipefail
daemon=${1:?usage: nft_features.sh PATH/TO/pptp-alg}
ns=nftfeat$$
ip netns add "$ns" || exit 100
trap 'ip netns del "$ns"' EXIT
nsnft() { ip netns exec "$ns" nft "$@"; }
missing=0
check() {  # name, command...
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    printf '%-58s ok\n' "$name"
  else
    printf '%-58s MISSING: %s\n' "$name" "$(echo "$out" | grep -m1 -i error || echo "$out" | head -1)"
    missing=$((missing + 1))
  fi
}
in_chain() {  # a rule, checked in a filter chain
  printf 'table ip t {\n chain c {\n  type filter hook prerouting priority 0;\n  %s\n }\n}\n' "$1" | nsnft -c -f -
}
table_of() {  # backend: the nft script that `pptp-alg rules` prints, without its shell wrapper
  "$daemon" rules --backend "$1" --fail-open | sed -n '/^table ip pptp_alg {/,/^}/p'
}
listed() {  # map or set, words that the listing of its element must show
  local text
  text=$(nsnft list map ip pptp_alg "$1" 2>/dev/null || nsnft list set ip pptp_alg "$1") || return 1
  shift
  for w in "$@"; do grep -q -- "$w" <<<"$text" || { echo "error: no '$w' in: $text"; return 1; }; done
}

check "queue statement: queue num 0 bypass" in_chain "meta l4proto gre queue num 0 bypass"
check "queue statement: queue flags bypass to 0" in_chain "ip protocol gre queue flags bypass to 0"
check "pptp-alg table, backend nft (queue in its chains)" nsnft -f - < <(table_of nft)
if ! nsnft list table ip pptp_alg >/dev/null 2>&1; then
  check "pptp-alg table, backend xtables (no queue statement)" nsnft -f - < <(table_of xtables)
fi
key="198.51.100.2 . 198.51.100.1 . 7"
check "typeof map, @th key: element with timeout" \
  nsnft add element ip pptp_alg fast_in_plain "{ $key timeout 30s : 192.0.2.11 }"
check "  ... listed with its timeout and counter" listed fast_in_plain "timeout 30s" "expires" "counter packets 0"
check "typeof map, @th key and @th value (translated Call ID)" \
  nsnft add element ip pptp_alg fast_in_call_id "{ 198.51.100.2 . 192.0.2.11 . 7 timeout 30s : 300 }"
check "typeof set, @th key: element with timeout" \
  nsnft add element ip pptp_alg fast_out "{ 192.0.2.11 . 198.51.100.2 . 300 timeout 30s }"
check "  ... listed with its timeout and counter" listed fast_out "timeout 30s" "counter packets 0"
check "element refreshed (timeout re-armed)" \
  nsnft add element ip pptp_alg fast_out "{ 192.0.2.11 . 198.51.100.2 . 300 timeout 60s }"
check "element deleted" nsnft delete element ip pptp_alg fast_out "{ 192.0.2.11 . 198.51.100.2 . 300 }"
echo "nft features: $missing missing on $(uname -r) (nft $(nft --version | awk '{print $2}'))"
exit "$missing"
