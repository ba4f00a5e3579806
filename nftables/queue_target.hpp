// The queue rule of Backend::Compat (rules.hpp): the xtables NFQUEUE target inside our own
// nft table, through nft_compat, as iptables-nft itself adds it. For kernels without the
// nft `queue` expression (CONFIG_NFT_QUEUE unset) but with nft_compat and xt_NFQUEUE: the
// queue rules stay in table ip pptp_alg, and no iptables base chain (raw PREROUTING,
// mangle FORWARD) costs every forwarded packet its hook (issue 17).
//
// nft's language cannot write this rule where the kernel lacks nft_queue (its `queue`
// statement is the nft expression), so the nft script declares chain to_queue with a
// placeholder verdict and this puts the target at its head through libnftnl. `nft list`
// shows it as `queue num N [bypass]`, with a warning that the table "is managed by
// iptables-nft" (nft says that of any table holding an xtables expression).
#pragma once

#include <string>
#include <string_view>

#include "alg/core/result.hpp"
#include "nftables/rules.hpp"

namespace pptp::nft {

// One transaction: the chain's rules replaced by the NFQUEUE target (queue number, bypass
// when fail-open) and the placeholder after it (drop when fail-closed, accept when
// fail-open: what the queue does when no daemon listens). Idempotent: arming twice leaves one target.
Result<bool, std::string> arm_queue_target(std::string_view table, const RuleOptions& options);

// Whether the kernel takes the target: a probe table (no base chain: no packet meets it)
// created, armed and deleted.
bool queue_target_works();

}  // namespace pptp::nft
