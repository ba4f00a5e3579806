#!/usr/bin/env bash
# The host's tools for the test VM (Debian 12 packages): qemu (software emulation, no KVM
# needed), debootstrap, cpio for the initramfs, e2fsprogs for the root image. With the
# argument "smoke" only what the smoke VM needs (kernel.sh, run.sh --host-root): qemu, cpio.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
wanted=(qemu-system-x86 debootstrap cpio e2fsprogs)
[ "${1:-}" != smoke ] || wanted=(qemu-system-x86 cpio)
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "vm host-deps: installing ${missing[*]}" >&2
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
