#!/usr/bin/env bash
# Installs what pptp-alg needs to build and test on Debian 12 (run as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(
  build-essential cmake clang libclang-rt-14-dev     # compilers, libFuzzer and sanitizer runtimes
  libgtest-dev libgmock-dev                           # tests
  nlohmann-json3-dev libcli11-dev                     # inspect's JSON and the command line
  libnetfilter-queue-dev libmnl-dev libnftnl-dev libboost-dev libspdlog-dev libyaml-cpp-dev  # daemon layers
  libcap-ng-dev                                       # the daemon drops to CAP_NET_ADMIN
  libsystemd-dev                                      # the service manager's notify protocol (sd_notify)
  dpkg-dev systemd adduser man-db                     # the package: cpack's shlibdeps, systemd-analyze, its user, man
  tshark python3 python3-scapy                        # golden/tshark checks, crafted captures
  pkg-config nftables iptables conntrack iproute2     # the router's rules, the lab's namespaces
  pptpd pptp-linux                                    # real PPTP peers for the lab and E2E tests
  libssl-dev                                          # HA sync: HMAC-SHA256 from libcrypto (docs/ha.md)
  keepalived conntrackd                               # the HA failover test bed (tests/e2e/test_ha_e2e.py)
  libnftables-dev                                     # the table loaded in-process, no nft process (issue 15)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  apt-get update -qq
  # tshark asks whether non-root users may capture; the answer does not matter here.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all build and test packages present"
