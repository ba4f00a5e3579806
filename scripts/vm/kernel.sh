#!/usr/bin/env bash
# The smoke VM's boot files (no disk image): Debian 12's stock kernel and an initramfs that
# boots into the host's own root file system. Prints their directory on the last line:
#   vmlinuz     Debian's stock kernel (linux-image-amd64, standard flavour), from its .deb
#   initrd.img  busybox-static, the modules that mount the host's / read-only over virtio-9p
#               (virtio_pci, 9pnet_virtio, 9p) and a tmpfs overlay for writes (overlay)
#   lib/modules/VERSION   all the kernel's modules with a modules.dep (busybox depmod); the
#               guest sees them at this path through the host's / and links them to its
#               /lib/modules/VERSION
# The host's userland must be Debian 12 (the users' binaries; only the kernel differs).
# Cached in $PPTP_ALG_VM_CACHE (default /var/cache/pptp-alg-vm), keyed by a hash of this
# script; rebuilt when missing. Needs root, apt (apt-get download) and Debian's mirror.
# Cold: one 70 MB download and about 30 s of unpacking. Usage: kernel.sh [--rebuild]
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
here=$(cd "$(dirname "$0")" && pwd)
cache=${PPTP_ALG_VM_CACHE:-/var/cache/pptp-alg-vm}
key=$(cat "$here/kernel.sh" "$here/cache.sh" "$here/hostroot-init.sh" | sha256sum | cut -c1-16)
dir=$cache/hostroot-$key
say() { printf 'vm-kernel: [%4ds] %s\n' "$SECONDS" "$*" >&2; }
# shellcheck source=scripts/vm/cache.sh
. "$here/cache.sh"

if [ "${1:-}" = --rebuild ]; then rm -rf "$dir"; fi
ready_or_continue "$dir"
[ "$(id -u)" -eq 0 ] || { echo "vm-kernel: needs root (device nodes, apt)" >&2; exit 1; }
grep -q '^VERSION_ID="12"' /etc/os-release ||
  echo "vm-kernel: warning: the host is not Debian 12; the VM runs the host's userland" >&2
bash "$here/host-deps.sh" smoke
lock_cache_and_work
ready_or_continue "$dir"

say "downloading the kernel (linux-image-amd64) and busybox-static"
download_kernel
package=$kernel_package version=$kernel_version
mkdir -p "$work/image"
busybox=$work/busybox/bin/busybox
say "kernel $version ($package): modules.dep"
"$busybox" depmod -b "$work/kernel" "$version"  # the host may have no kmod
modules=$work/kernel/lib/modules/$version

say "initramfs: busybox, 9p and overlay"
initrd=$work/initrd
mkdir -p "$initrd"/{bin,dev,proc,sys,lower,rw,newroot,lib/modules/"$version"}
mknod -m 600 "$initrd/dev/console" c 5 1
cp "$busybox" "$initrd/bin/busybox"
for applet in sh mount mkdir modprobe ln cp rm switch_root sleep echo cat; do ln -s busybox "$initrd/bin/$applet"; done
# The four modules and what they need (modules.dep lists every dependency of a module).
wanted='virtio_pci|9pnet_virtio|9p|overlay'
awk -F': ?' -v w="^($wanted)\\.ko$" '{n = split($1, p, "/")} p[n] ~ w' "$modules/modules.dep" >"$initrd/lib/modules/$version/modules.dep"
awk '{sub(":", ""); for (i = 1; i <= NF; i++) print $i}' "$initrd/lib/modules/$version/modules.dep" | sort -u |
  while read -r ko; do
    mkdir -p "$initrd/lib/modules/$version/$(dirname "$ko")"
    cp "$modules/$ko" "$initrd/lib/modules/$version/$ko"
  done
sed -e "s|@VERSION@|$version|g" -e "s|@MODULES@|$dir/lib/modules/$version|g" "$here/hostroot-init.sh" >"$initrd/init"
chmod 755 "$initrd/init"
(cd "$initrd" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/image/initrd.img"

cp "$work/kernel/boot/vmlinuz-$version" "$work/image/vmlinuz"
mkdir -p "$work/image/lib/modules"
mv "$modules" "$work/image/lib/modules/"
printf 'kernel=%s\npackage=%s\nkey=%s\nbuilt=%s\nseconds=%s\n' "$version" "$package" "$key" \
  "$(date -u +%FT%TZ)" "$SECONDS" >"$work/image/ready"
rm -rf "$dir"
mv "$work/image" "$dir"
# Boot files of older recipes go (each is ~400 MiB).
find "$cache" -maxdepth 1 -name 'hostroot-*' ! -name "$(basename "$dir")" -exec rm -rf {} +
say "built $dir in ${SECONDS}s"
echo "$dir"
