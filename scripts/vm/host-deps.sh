#!/usr/bin/env bash
# The host's tools for the test VM (Debian 12 packages): qemu (software emulation, no KVM
# needed), debootstrap, cpio for the initramfs, e2fsprogs for the root image.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
missing=()
for p in qemu-system-x86 debootstrap cpio e2fsprogs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "vm host-deps: installing ${missing[*]}" >&2
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
