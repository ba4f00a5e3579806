#!/bin/bash
# pptp-alg with its xtables backend (iptables) forced, for the lab's tests in the VM, where
# the daemon's own probe picks nft (the kernel has the nft queue statement):
#   PPTP_ALG_REAL=build/release/alg/pptp-alg PPTP_ALG=tests/vm/xtables_daemon.sh test_nat_e2e.py
# A daemon start and `rules` get --backend xtables; other subcommands (ctl, reload) go
# through unchanged.
daemon=${PPTP_ALG_REAL:?PPTP_ALG_REAL names the pptp-alg binary}
case "${1:-}" in
  -* | rules) exec "$daemon" "$@" --backend xtables ;;
  *) exec "$daemon" "$@" ;;
esac
