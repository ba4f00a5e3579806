#!/bin/sh
# /init of the smoke VM's initramfs (busybox sh; kernel.sh fills in @VERSION@ and @MODULES@):
# mounts the host's / (9p tag "hostroot", read-only) under a tmpfs overlay, so the guest
# runs the host's Debian 12 userland on Debian's stock kernel and its writes stay in RAM;
# binds the kernel's modules in, hides iptables (the smoke proves the nft backend without
# it; pptp_alg_vm.iptables=1 keeps it), and hands over to the init that pptp_alg_vm.init=
# names (run.sh: scripts/vm/init.sh).
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
fail() { echo "initrd: $*"; sleep 1; echo o >/proc/sysrq-trigger; sleep 10; }
for m in virtio_pci 9pnet_virtio 9p overlay; do modprobe "$m" || fail "modprobe $m"; done
i=0
until mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro hostroot /lower; do
  i=$((i + 1)); [ "$i" -lt 20 ] || fail "cannot mount the host's / over 9p"; sleep 0.25
done
mount -t tmpfs -o size=512m tmpfs /rw && mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot \
  || fail "cannot mount the overlay"
# A bind mount, not a link: the cache may be under /tmp, which the guest's init covers.
mkdir -p /newroot/usr/lib/modules/@VERSION@ &&
  mount --bind /lower@MODULES@ /newroot/usr/lib/modules/@VERSION@ || fail "no modules in @MODULES@"
if [ ! -e /newroot/usr/sbin/modprobe ]; then  # the kernel's module loader (host without kmod)
  cp /bin/busybox /newroot/usr/sbin/busybox-vm && ln -s busybox-vm /newroot/usr/sbin/modprobe
fi
grep -q 'pptp_alg_vm.iptables=1' /proc/cmdline ||  # run.sh --iptables keeps it (the xtables backend)
for f in /newroot/usr/sbin/iptables* /newroot/usr/sbin/ip6tables* /newroot/usr/sbin/xtables* \
  /newroot/usr/sbin/arptables* /newroot/usr/sbin/ebtables*; do
  [ -e "$f" ] || [ -L "$f" ] && rm -f "$f"
done
init=/sbin/init
for arg in $(cat /proc/cmdline); do case $arg in pptp_alg_vm.init=*) init=${arg#*=} ;; esac; done
umount /proc /sys; mount --move /dev /newroot/dev 2>/dev/null || umount /dev
exec switch_root /newroot "$init"
