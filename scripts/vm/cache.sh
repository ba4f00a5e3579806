# shellcheck shell=bash disable=SC2034 # kernel_package, kernel_version: for the caller
# Sourced by image.sh and kernel.sh: their cache in $PPTP_ALG_VM_CACHE (outside the clone)
# and Debian's kernel package. The caller sets `cache` and `say`.

# Prints DIR and ends the script when DIR's build is ready; otherwise returns.
ready_or_continue() {  # dir
  if [ -f "$1/ready" ]; then
    say "cached: $1"
    echo "$1"
    exit 0
  fi
}

# One build at a time (another may finish the same one meanwhile: ask ready_or_continue again),
# in a work directory of the cache that goes at exit; sets `work`.
lock_cache_and_work() {
  mkdir -p "${cache:?}"
  exec 9>"$cache/.lock"
  flock 9
  work=$(mktemp -d "$cache/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
}

# Debian 12's stock kernel (the standard flavour behind linux-image-amd64) and
# busybox-static, downloaded into $work/debs and unpacked into $work/kernel and
# $work/busybox; sets `kernel_package` and `kernel_version`.
download_kernel() {
  kernel_package=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  if [ -z "$kernel_package" ]; then  # a clean machine may have no package lists yet
    apt-get update -qq
    kernel_package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  fi
  [ -n "$kernel_package" ] || { echo "vm: apt-cache knows no linux-image-amd64" >&2; exit 1; }
  mkdir -p "$work/debs" "$work/kernel" "$work/busybox"
  (cd "$work/debs" && apt-get download "$kernel_package" busybox-static >/dev/null 2>&1) \
    || { echo "vm: apt-get download $kernel_package busybox-static failed" >&2; exit 1; }
  dpkg-deb -x "$work"/debs/linux-image-*.deb "$work/kernel"
  dpkg-deb -x "$work"/debs/busybox-static_*.deb "$work/busybox"
  kernel_version=$(basename "$work"/kernel/lib/modules/*)
}
