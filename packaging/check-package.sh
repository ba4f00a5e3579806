#!/usr/bin/env bash
# The Debian package on this machine, as an administrator would meet it (run as root):
# build it from BUILD_DIR (cpack), install it with dpkg, verify the unit, run the installed
# binary through the installed configuration file the way the unit runs it (user pptp-alg,
# CAP_NET_ADMIN and CAP_NET_RAW, /run/pptp-alg) in a network namespace of its own and in the
# demo lab (check-lab.py), then purge it and find nothing left: no file, no user, no nft
# table or iptables rule.
# Usage: check-package.sh BUILD_DIR
set -euo pipefail
build=$1
unit=/lib/systemd/system/pptp-alg.service
conf=/etc/pptp-alg/pptp-alg.conf
say() { printf 'check-package: %s\n' "$*"; }
fail() { say "FAIL: $*"; exit 1; }

if dpkg-query -W -f='${Status}' pptp-alg 2>/dev/null | grep -q 'ok installed'; then
  fail "pptp-alg is installed on this machine; this check would purge it"
fi
getent passwd pptp-alg >/dev/null && fail "a user pptp-alg exists before the install"

(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls -t "$build"/pptp-alg_*.deb | head -1)
say "built $deb"
depends=$(dpkg-deb -f "$deb" Depends)
say "Depends: $depends"
if grep -qE -- '-dev\b|gtest|gmock|cmake|tshark|python|clang|g\+\+' <<<"$depends"; then
  fail "a build or test package in Depends"
fi
# The table is loaded through libnftables; iptables only for the xtables backend and proxy mode.
grep -q 'libnftables1' <<<"$depends" || fail "libnftables1 not in Depends"
grep -qw 'iptables' <<<"$depends" && fail "iptables in Depends (nft-backend routers do not need it)"
[ "$(dpkg-deb -f "$deb" Recommends)" = iptables ] || fail "iptables not recommended"

ruleset_before=$(nft list tables; iptables-save 2>/dev/null | grep -c PPTP_ALG || true)
installed=0
cleanup() { ((installed)) && dpkg --purge pptp-alg >/dev/null 2>&1 || true; }
trap cleanup EXIT
dpkg -i "$deb" >/dev/null
installed=1
files=$(dpkg -L pptp-alg)

for f in /usr/sbin/pptp-alg $unit $conf /etc/pptp-alg/rules.yaml /usr/share/man/man8/pptp-alg.8.gz \
  /usr/share/man/man5/rules.yaml.5.gz /usr/share/bash-completion/completions/pptp-alg; do
  [ -e "$f" ] || fail "$f not installed"
done
# keepalived's notify script for an HA pair (docs/ha.md), run by keepalived as it is: its
# `check` (a vrrp_script) passes while no daemon answers (a dead daemon is no failover).
notify=/usr/lib/pptp-alg/pptp-alg-ha-notify
[ -x "$notify" ] || fail "$notify not installed executable"
"$notify" check --socket /nonexistent/control || fail "$notify check with no daemon answering"
getent passwd pptp-alg >/dev/null || fail "no system user pptp-alg"
[ "$(stat -c %U:%G:%a /etc/pptp-alg/pptp-alg.conf)" = root:pptp-alg:640 ] || fail "config file owner/mode"

systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
say "systemd-analyze security: $(systemd-analyze security --offline=true "$unit" 2>/dev/null | tail -1)"
man --warnings -l /usr/share/man/man8/pptp-alg.8.gz /usr/share/man/man5/rules.yaml.5.gz >/dev/null \
  || fail "man pages"
/usr/sbin/pptp-alg --version
/usr/sbin/pptp-alg check --config "$conf" || fail "pptp-alg check --config $conf"
/usr/sbin/pptp-alg check /etc/pptp-alg/rules.yaml >/dev/null || fail "the installed rules.yaml is invalid"

# What the unit does, without systemd as PID 1: the runtime directory, the user, the one
# capability, the config file; in a new network namespace so this host's rules stay as
# they are. `status`, `reload` and `ctl` find the daemon with no flags; the control socket
# refuses a user outside the daemon's group.
install -d -m 0750 -o pptp-alg -g pptp-alg /run/pptp-alg
unshare --net bash -euo pipefail -c '
  log=$(mktemp)
  setpriv --reuid=pptp-alg --regid=pptp-alg --init-groups --inh-caps=-all,+net_admin,+net_raw \
    --ambient-caps=-all,+net_admin,+net_raw --bounding-set=-all,+net_admin,+net_raw -- \
    /usr/sbin/pptp-alg --config /etc/pptp-alg/pptp-alg.conf >"$log" 2>&1 &
  daemon=$!
  for _ in $(seq 50); do [ -s /run/pptp-alg/status.json ] && break; sleep 0.1; done
  ok=1
  grep -q " ready " "$log" || { echo "no ready line"; ok=0; }
  # The raw GRE socket that keeps calls alive across `nft flush ruleset` needs CAP_NET_RAW.
  grep -q "gre_sink_unavailable" "$log" && { echo "no raw GRE socket"; ok=0; }
  nft list table ip pptp_alg >/dev/null || { echo "no table ip pptp_alg"; ok=0; }
  /usr/sbin/pptp-alg status >/dev/null || { echo "pptp-alg status (no flags) failed"; ok=0; }
  /usr/sbin/pptp-alg reload >/dev/null || { echo "pptp-alg reload (no flags) failed"; ok=0; }
  /usr/sbin/pptp-alg ctl calls >/dev/null || { echo "pptp-alg ctl calls (no flags) failed"; ok=0; }
  # Captured first: `cmd | grep -q` under pipefail fails when the writer gets SIGPIPE.
  answer=$(/usr/sbin/pptp-alg ctl reload) || true
  grep -q "reload" <<<"$answer" || { echo "pptp-alg ctl reload failed"; ok=0; }
  metrics=$(/usr/sbin/pptp-alg ctl metrics) || true
  grep -q "^pptp_alg_queue_packets_total " <<<"$metrics" || { echo "pptp-alg ctl metrics: no queue counter"; ok=0; }
  [ "$(stat -c %a /run/pptp-alg/control)" = 660 ] || { echo "control socket mode not 0660"; ok=0; }
  if setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/sbin/pptp-alg ctl calls >/dev/null 2>&1; then
    echo "the control socket answered user nobody"; ok=0
  fi
  sleep 0.3
  kill -TERM "$daemon"
  wait "$daemon" || { echo "daemon exit status $?"; ok=0; }
  [ "$ok" = 1 ] || cat "$log"
  rm -f "$log"
  [ "$ok" = 1 ]
' || fail "the installed daemon, run as the unit runs it"
say "installed daemon ran as user pptp-alg with CAP_NET_ADMIN through $conf; status, reload and ctl found it"
# The demo lab, trimmed, with the installed binary and only its configuration file: two
# calls through it, and through a firewall reload (`flush ruleset`) meanwhile.
/usr/bin/python3 "$(dirname "$0")/check-lab.py" "$(dirname "$0")/.." || fail "the demo lab with the installed daemon"
rm -rf /run/pptp-alg  # systemd removes the RuntimeDirectory when the service stops
say "demo lab: two calls through the installed daemon survived a firewall reload"

dpkg --purge pptp-alg >/dev/null
installed=0
left=()
while read -r f; do
  [ -e "$f" ] && [ ! -d "$f" ] && left+=("$f")
done <<<"$files"
[ -e /etc/pptp-alg ] && left+=(/etc/pptp-alg)
[ -e /run/pptp-alg ] && left+=(/run/pptp-alg)
# Not dpkg's files, the maintainer scripts': the unit's enablement and its state.
while read -r f; do left+=("$f"); done < <(find /etc/systemd /var/lib/systemd -name 'pptp-alg*' 2>/dev/null)
((${#left[@]} == 0)) || fail "left after purge: ${left[*]}"
getent passwd pptp-alg >/dev/null && fail "user pptp-alg left after purge"
getent group pptp-alg >/dev/null && fail "group pptp-alg left after purge"
ruleset_after=$(nft list tables; iptables-save 2>/dev/null | grep -c PPTP_ALG || true)
[ "$ruleset_before" = "$ruleset_after" ] || fail "nft tables or iptables rules changed: $ruleset_after"
say "purged: no file, user, group, table or rule left ($(wc -l <<<"$files") paths checked)"
