#!/usr/bin/env bash
# Boots the test VM (Debian 12's stock kernel under qemu, software emulation) and runs a
# command in it as root; prints its output and exits with its status.
#   bash scripts/vm/run.sh [--timeout SECONDS] [--share DIR]... [--out DIR] [--systemd | --host-root [--iptables]] -- COMMAND...
# The clone (and each --share DIR) is mounted read-only at the same path inside, so paths
# of the host work there; the command starts in the current directory. /vm-out is
# writable and is the host's --out DIR (default: a new directory under /tmp, printed),
# which also gets console.log (the VM's serial console), output.log and rc.
# Exit status: the command's; 124 when it outlived the timeout (default 900 s); 125 when
# the VM did not report one. qemu is always ended (trap), also on a signal.
# PID 1 is scripts/vm/init.sh; with --systemd it is systemd, and init.sh runs as its service
# pptp-alg-vm.service (journald, dbus and systemctl are real; the boot takes longer).
# With --host-root there is no disk image: the kernel boots into the host's own / (read-only
# over 9p, a tmpfs overlay for writes, iptables hidden; kernel.sh), so the host's paths are
# all there and --share is not needed; the host must be Debian 12 (the CI smoke); with
# --iptables the host's iptables stays visible (the xtables backend).
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
timeout_s=900
out=
init=
host_root=0
keep_iptables=0
shares=("$repo")
while (($#)); do
  case "$1" in
    --timeout) timeout_s=$2; shift 2 ;;
    --share) shares+=("$(cd "$2" && pwd)"); shift 2 ;;
    --out) out=$2; shift 2 ;;
    --systemd) init=/lib/systemd/systemd; shift ;;
    --host-root) host_root=1; shift ;;
    --iptables) keep_iptables=1; shift ;;
    --) shift; break ;;
    *) echo "run.sh: unknown option $1 (usage: run.sh [--timeout S] [--share DIR]... [--out DIR] [--systemd | --host-root [--iptables]] -- COMMAND...)" >&2
       exit 2 ;;
  esac
done
(($#)) || { echo "run.sh: no command (run.sh -- COMMAND...)" >&2; exit 2; }
if ((host_root)); then
  image=$(bash "$here/kernel.sh" | tail -1)
  shares=()
  init=$here/init.sh
  disk=(-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap")
else
  image=$(bash "$here/image.sh" | tail -1)
  disk=(-drive "file=$image/root.img,if=virtio,format=raw,snapshot=on")
fi
if [ -z "$out" ]; then out=$(mktemp -d /tmp/pptp-alg-vm.XXXXXX); fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out/rc" "$out/output.log" "$out/console.log"

# The command, bounded inside too (so that its output and status come back before the
# outer limit ends qemu).
{
  echo "cd $(printf %q "$PWD") 2>/dev/null || cd /"
  printf 'exec timeout -k 10 %d' "$((timeout_s > 60 ? timeout_s - 30 : timeout_s))"
  printf ' %q' "$@"
  echo
} >"$out/command.sh"

virtfs=(-virtfs "local,path=$out,mount_tag=out,security_model=none")
mounts=()
for i in "${!shares[@]}"; do
  virtfs+=(-virtfs "local,path=${shares[$i]},mount_tag=s$i,security_model=none,readonly=on")
  mounts+=("s$i:${shares[$i]}")
done
append="console=ttyS0 panic=-1 quiet loglevel=4 pptp_alg_vm.shares=$(IFS=,; echo "${mounts[*]}")"
[ -z "$init" ] || append+=" pptp_alg_vm.init=$init"
((keep_iptables == 0)) || append+=" pptp_alg_vm.iptables=1"

qemu_pid=
stop_qemu() {
  if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
    kill "$qemu_pid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$qemu_pid" 2>/dev/null || true
  fi
}
trap stop_qemu EXIT
trap 'exit 130' INT TERM HUP

start=$SECONDS
echo "vm: booting $(sed -n 's/^kernel=//p' "$image/ready") (image $image, output in $out)" >&2
# One VM at a time on a shared machine: nice, 2 CPUs and 1 GiB at most, no network.
nice -n 10 qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024 -nodefaults -no-reboot \
  -display none -monitor none -serial "file:$out/console.log" -nic none \
  -kernel "$image/vmlinuz" -initrd "$image/initrd.img" -append "$append" \
  "${disk[@]}" "${virtfs[@]}" </dev/null &
qemu_pid=$!
touch "$out/console.log"
tail -n +1 -f --pid="$qemu_pid" "$out/console.log" &
deadline=$((SECONDS + timeout_s))
while kill -0 "$qemu_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 1; done
timed_out=0
kill -0 "$qemu_pid" 2>/dev/null && timed_out=1
stop_qemu
wait "$qemu_pid" 2>/dev/null || true
wait 2>/dev/null || true  # the tail
echo "vm: ended after $((SECONDS - start)) s" >&2
if ((timed_out)); then echo "vm: timed out after ${timeout_s}s" >&2; exit 124; fi
[ -s "$out/rc" ] || { echo "vm: the VM reported no exit status (see $out/console.log)" >&2; exit 125; }
exit "$(cat "$out/rc")"
