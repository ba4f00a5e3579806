#!/bin/bash
# PID 1 of the test VM (installed as /sbin/pptp-alg-vm-init), or with systemd as PID 1 its
# service pptp-alg-vm.service (run.sh --systemd): mounts the kernel's file systems (as PID 1)
# and the host's shares, runs /vm-out/command.sh as root, writes its exit status to
# /vm-out/rc and powers the VM off. Shares come from the kernel command line:
#   pptp_alg_vm.shares=TAG:PATH,TAG:PATH   (read-only, mounted at PATH)
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1
if [ $$ -eq 1 ]; then  # without systemd: what it would have done
  mount -t proc proc /proc
  mount -t sysfs sysfs /sys
  mount -t devtmpfs devtmpfs /dev 2>/dev/null
  mkdir -p /dev/pts /dev/shm
  # What udev or systemd would make: bash's process substitution needs /dev/fd.
  ln -sfn /proc/self/fd /dev/fd
  ln -sf /proc/self/fd/0 /dev/stdin
  ln -sf /proc/self/fd/1 /dev/stdout
  ln -sf /proc/self/fd/2 /dev/stderr
  mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
  mount -t tmpfs tmpfs /run
  mount -t tmpfs tmpfs /tmp
  mount -o remount,rw /
  hostname pptp-alg-vm
  ip link set lo up
fi
mkdir -p /run/pptp /run/lock  # pptp-linux's socket directory (the package ships no tmpfiles.d)
echo 1 >/proc/sys/kernel/sysrq
power_off() { sync; echo o >/proc/sysrq-trigger; sleep 10; }
trap power_off EXIT
modprobe 9pnet_virtio && modprobe 9p || echo "vm-init: no 9p modules" >/dev/console
mount9p() {  # tag, path, options
  mkdir -p "$2" && mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144,$3" "$1" "$2"
}
mount9p out /vm-out rw || { echo "vm-init: cannot mount the output share" >/dev/console; exit 1; }
shares=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^pptp_alg_vm\.shares=//p')
IFS=, read -ra list <<<"$shares"
for s in "${list[@]}"; do
  mount9p "${s%%:*}" "${s#*:}" ro || echo "vm-init: cannot mount ${s#*:}" >/dev/console
done
echo "vm-init: python3 starts in $( { TIMEFORMAT=%R; time python3 -c pass; } 2>&1) s" >/dev/console
echo "vm-init: up after $(cut -d' ' -f1 /proc/uptime) s, kernel $(uname -r)" >/dev/console
bash /vm-out/command.sh </dev/null 2>&1 | tee /vm-out/output.log >/dev/console
echo "${PIPESTATUS[0]}" >/vm-out/rc
