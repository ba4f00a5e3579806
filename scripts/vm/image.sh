#!/usr/bin/env bash
# Builds (or finds) the test VM's image from Debian 12 packages only, and prints its
# directory on the last line:
#   vmlinuz     Debian's stock kernel (linux-image-amd64), from its .deb
#   initrd.img  busybox-static and the modules that mount the root disk (virtio, ext4)
#   root.img    ext4: debootstrap --variant=minbase + scripts/vm/packages.txt + the kernel's
#               modules + scripts/vm/init.sh as /sbin/pptp-alg-vm-init (PID 1, or a
#               systemd service with run.sh --systemd) + iptables as a .deb only
# Cached in $PPTP_ALG_VM_CACHE (default /var/cache/pptp-alg-vm, outside the clone), keyed
# by a hash of this recipe; rebuilt when missing. Needs root, debootstrap, e2fsprogs and
# Debian's mirror. Usage: image.sh [--rebuild]
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
here=$(cd "$(dirname "$0")" && pwd)
cache=${PPTP_ALG_VM_CACHE:-/var/cache/pptp-alg-vm}
suite=bookworm
mirror=${PPTP_ALG_VM_MIRROR:-http://deb.debian.org/debian}
key=$(cat "$here/image.sh" "$here/cache.sh" "$here/init.sh" "$here/packages.txt" | sha256sum | cut -c1-16)
image=$cache/$suite-$key
say() { printf 'vm-image: [%4ds] %s\n' "$SECONDS" "$*" >&2; }
# shellcheck source=scripts/vm/cache.sh
. "$here/cache.sh"
# What a boot with systemd as PID 1 (run.sh --systemd) needs in the tree: the runner unit
# (init.sh as a service, enabled), no getty (no udev: its tty devices never appear), pptpd
# not started on its own (the tests start their own), and iptables as a .deb only: the
# default suite runs on a system without it, the package's test installs it (its Depends).
systemd_boot() {  # root
  cat >"$1/etc/systemd/system/pptp-alg-vm.service" <<'UNIT'
[Unit]
Description=pptp-alg test VM: the host's command, then power off
After=basic.target network.target dbus.service systemd-journald.socket
[Service]
Type=exec
ExecStart=/sbin/pptp-alg-vm-init
StandardInput=null
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target
UNIT
  mkdir -p "$1/etc/systemd/system/multi-user.target.wants"
  ln -sf /etc/systemd/system/pptp-alg-vm.service "$1/etc/systemd/system/multi-user.target.wants/"
  for unit in getty@tty1.service serial-getty@ttyS0.service getty.target pptpd.service; do
    ln -sf /dev/null "$1/etc/systemd/system/$unit"
  done
  mkdir -p "$1/var/cache/pptp-alg-vm"
  cp "$cache"/debs/iptables_*.deb "$1/var/cache/pptp-alg-vm/"
  chroot "$1" dpkg --purge iptables >/dev/null
}

if [ "${1:-}" = --rebuild ]; then rm -rf "$image"; fi
ready_or_continue "$image"
[ "$(id -u)" -eq 0 ] || { echo "vm-image: needs root (debootstrap, device nodes)" >&2; exit 1; }
bash "$here/host-deps.sh"
lock_cache_and_work
ready_or_continue "$image"
root=$work/root
# Stage 1, cached on its own (keyed by the suite and the package list): the debootstrapped
# tree, the slow part (about 10 minutes on a busy 2-core machine).
base=$cache/base-$suite-$(sha256sum <"$here/packages.txt" | cut -c1-16).tar
mapfile -t packages < <(sed -e 's/#.*//' -e '/^\s*$/d' "$here/packages.txt")
if [ ! -f "$base" ]; then
  say "debootstrap $suite minbase with ${#packages[@]} packages (progress in $work/debootstrap.log)"
  mkdir -p "$cache/debs"  # the downloaded packages, kept across recipes
  nice -n 10 debootstrap --variant=minbase --cache-dir="$cache/debs" --include="$(IFS=,; echo "${packages[*]}")" \
    "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -cf "$base.tmp" . && mv "$base.tmp" "$base"
  say "debootstrap done, kept as $base"
else
  say "debootstrapped tree: $base"
  mkdir -p "$root" && tar -C "$root" -xf "$base"
fi

say "downloading the kernel (linux-image-amd64) and busybox-static"
download_kernel
version=$kernel_version
say "kernel $version ($kernel_package)"

mkdir -p "$root/lib/modules"
cp -a "$work/kernel/lib/modules/$version" "$root/lib/modules/"
chroot "$root" depmod "$version"  # the image's own kmod (the host may have none)
install -m 755 "$here/init.sh" "$root/sbin/pptp-alg-vm-init"
echo pptp-alg-vm >"$root/etc/hostname"
systemd_boot "$root"

say "initramfs: busybox and the modules for the root disk"
initrd=$work/initrd
mkdir -p "$initrd"/{bin,dev,proc,sys,newroot,modules}
mknod -m 600 "$initrd/dev/console" c 5 1
cp "$work/busybox/bin/busybox" "$initrd/bin/busybox"
for applet in sh mount insmod switch_root sleep echo cat; do ln -s busybox "$initrd/bin/$applet"; done
chroot "$root" modprobe -a -S "$version" --show-depends virtio_pci virtio_blk crc32c_generic ext4 \
  | awk -v root="$root" '$1 == "insmod" && !seen[$2]++ {print root $2}' >"$work/initrd-modules"
while read -r ko; do
  cp "$ko" "$initrd/modules/"
  echo "insmod /modules/$(basename "$ko")" >>"$work/insmods"
done <"$work/initrd-modules"
{
  echo '#!/bin/sh'
  echo 'mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev'
  cat "$work/insmods"
  echo 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do [ -b /dev/vda ] && break; sleep 0.25; done'
  echo 'mount -t ext4 -o rw /dev/vda /newroot || { echo "initrd: cannot mount /dev/vda"; sleep 2; echo o >/proc/sysrq-trigger; }'
  # PID 1 of the root: init.sh, or what pptp_alg_vm.init= names (run.sh --systemd)
  echo 'init=/sbin/pptp-alg-vm-init'
  echo 'for arg in $(cat /proc/cmdline); do case $arg in pptp_alg_vm.init=*) init=${arg#*=} ;; esac; done'
  echo 'umount /proc /sys; mount --move /dev /newroot/dev 2>/dev/null || umount /dev'
  echo 'exec switch_root /newroot "$init"'
} >"$initrd/init"
chmod 755 "$initrd/init"
(cd "$initrd" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.img"

say "root.img: ext4 from the tree ($(du -sm "$root" | cut -f1) MiB)"
size_mb=$(($(du -sm "$root" | cut -f1) * 3 / 2 + 256))
mkfs.ext4 -q -F -L pptp-alg-vm -d "$root" "$work/root.img" "${size_mb}M"

mkdir -p "$work/image"
mv "$work/root.img" "$work/initrd.img" "$work/image/"
cp "$work/kernel/boot/vmlinuz-$version" "$work/image/vmlinuz"
printf 'kernel=%s\npackage=%s\nkey=%s\nbuilt=%s\nseconds=%s\n' "$version" "$kernel_package" "$key" \
  "$(date -u +%FT%TZ)" "$SECONDS" >"$work/image/ready"
rm -rf "$image"
mv "$work/image" "$image"
# Images of older recipes go (each is ~1 GiB); the cached tree and packages stay.
find "$cache" -maxdepth 1 -name "$suite-*" ! -name "$(basename "$image")" -exec rm -rf {} +
say "built $image in ${SECONDS}s"
echo "$image"
