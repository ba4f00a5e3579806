// Prints table netdev pptp_alg_fast's script (nftables/netdev_fastpath.hpp) for the devices
// named as arguments: what e2e/test_netdev_rules_e2e.py loads, so that it tests the rules
// the daemon's code writes, not a copy.
#include <iostream>
#include <string>
#include <vector>

#include "nftables/netdev_fastpath.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> devices;
  for (int i = 1; i < argc; ++i) {
    if (!pptp::nft::valid_device_name(argv[i])) {
      std::cerr << "not a device name: " << argv[i] << "\n";
      return 2;
    }
    devices.emplace_back(argv[i]);
  }
  std::cout << pptp::nft::netdev_table_script(devices);
  return 0;
}
