#include "nftables/input_rules.hpp"

#include "nftables/rules.hpp"

#include <string>

namespace pptp::nft {

// A server's segment to this router that conntrack has no entry for (kCounterControlStray):
// e.g. a retransmission reaching a pair's new master before conntrackd's commit (docs/ha.md);
// or one conntrack finds invalid, which no NAT undoes. Reset by the router's stack, the
// server would drop a connection its client still has; dropped (before conntrack confirms a
// half-made entry), its next try reaches the client once the entry is back (a FIN or data
// without an entry is invalid, an ACK is picked up as new). Left alone: SYN and RST (no stream
// to keep), and what a socket of this router owns (proxy mode, a PNS on the router), in any
// state: `socket transparent` reads TIME_WAIT and request sockets too, `socket wildcard`
// matches none of them. A listener on every address (wildcard) would reset it: dropped.
// Before the admin's filter chains (priority filter - 10): a `reject with tcp reset` of
// theirs would otherwise answer first.
void input_chain(std::ostringstream& s) {
  std::string drop = "counter name \"";  // appended: GCC 12's false -Wrestrict (bug 105329)
  drop += kCounterControlStray;
  drop += "\" drop\n";
  s << "  chain " << kChainControlStray << " {\n"
    << "    socket wildcard 1 " << drop
    << "    socket transparent 0 return\n"
    << "    socket transparent 1 return\n"
    << "    " << drop
    << "  }\n"
    << "  chain " << kChainInput << " {\n"
    << "    type filter hook input priority filter - 10; policy accept;\n"
    << "    tcp sport 1723 tcp flags & (syn | rst) == 0 ct state new,invalid jump " << kChainControlStray << "\n"
    << "  }\n";
}

}  // namespace pptp::nft
