#!/bin/sh
# delayed.sh SECONDS COMMAND [ARG]...: COMMAND after SECONDS (the HA bed's slow commit
# command at a split brain's healing, docs/ha.md).
sleep "$1"
shift
exec "$@"
