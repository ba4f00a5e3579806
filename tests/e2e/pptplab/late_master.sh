#!/bin/sh
# late_master.sh SECONDS NOTIFY STATE [ARG]...: keepalived's notify NOTIFY, run SECONDS late
# when STATE is master (its conntrackd commit and promotion, as on a loaded node); the other
# states and the check script at once (the HA bed, docs/ha.md).
seconds=$1
notify=$2
shift 2
[ "$1" = master ] && sleep "$seconds"
exec "$notify" "$@"
