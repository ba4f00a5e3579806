#include "nftables/queue_target.hpp"

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/xt_NFQUEUE.h>

#include <memory>
#include <vector>

extern "C" {
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
}

#include "nftables/command.hpp"
#include "nftables/netlink_batch.hpp"

namespace pptp::nft {

namespace {
constexpr std::string_view kProbeTable = "pptp_alg_probe";
// xt_NFQUEUE's revision 3 (queue number, total, flags): the one iptables-nft 1.8 writes.
constexpr std::uint32_t kNfqueueRevision = 3;

struct RuleDeleter {
  void operator()(nftnl_rule* r) const { nftnl_rule_free(r); }
};
using RulePtr = std::unique_ptr<nftnl_rule, RuleDeleter>;

RulePtr make_rule(const std::string& table) {
  RulePtr r(nftnl_rule_alloc());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, table.c_str());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, std::string(kChainToQueue).c_str());
  nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, NFPROTO_IPV4);
  return r;
}

RulePtr target_rule(const std::string& table, const RuleOptions& o) {
  RulePtr r = make_rule(table);
  nftnl_expr* e = nftnl_expr_alloc("target");
  nftnl_expr_set_str(e, NFTNL_EXPR_TG_NAME, "NFQUEUE");
  nftnl_expr_set_u32(e, NFTNL_EXPR_TG_REV, kNfqueueRevision);
  // libnftnl keeps the pointer and frees it with the expression.
  auto* info = static_cast<xt_NFQ_info_v3*>(calloc(1, sizeof(xt_NFQ_info_v3)));
  info->queuenum = o.queue;
  info->queues_total = 1;
  info->flags = o.fail_open ? NFQ_FLAG_BYPASS : 0;
  nftnl_expr_set(e, NFTNL_EXPR_TG_INFO, info, sizeof(xt_NFQ_info_v3));
  nftnl_rule_add_expr(r.get(), e);
  return r;
}

RulePtr verdict_rule(const std::string& table, const RuleOptions& o) {
  RulePtr r = make_rule(table);
  nftnl_expr* e = nftnl_expr_alloc("immediate");
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, o.fail_open ? NF_ACCEPT : NF_DROP);
  nftnl_rule_add_expr(r.get(), e);
  return r;
}

void add_message(mnl_nlmsg_batch* batch, std::uint16_t type, std::uint16_t flags, std::uint32_t seq,
                 nftnl_rule* rule) {
  nlmsghdr* nlh = nftnl_rule_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(batch)), type,
                                             NFPROTO_IPV4, flags, seq);
  nftnl_rule_nlmsg_build_payload(nlh, rule);
  mnl_nlmsg_batch_next(batch);
}
}  // namespace

Result<bool, std::string> arm_queue_target(std::string_view table_name, const RuleOptions& o) {
  std::unique_ptr<mnl_socket, decltype(&mnl_socket_close)> socket(mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC),
                                                                  &mnl_socket_close);
  if (!socket || mnl_socket_bind(socket.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
    return unexpected(errno_text("netlink socket for nftables", errno) + " (are you root?)");
  }
  const std::string table(table_name);
  const RulePtr all = make_rule(table), target = target_rule(table, o), verdict = verdict_rule(table, o);
  std::vector<char> buffer(MNL_SOCKET_BUFFER_SIZE);
  mnl_nlmsg_batch* batch = mnl_nlmsg_batch_start(buffer.data(), buffer.size());
  std::uint32_t seq = 1;
  nftnl_batch_begin(static_cast<char*>(mnl_nlmsg_batch_current(batch)), seq++);
  mnl_nlmsg_batch_next(batch);
  const std::uint32_t first = seq;
  add_message(batch, NFT_MSG_DELRULE, NLM_F_ACK, seq++, all.get());  // a rule without handle: all of the chain's
  add_message(batch, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, seq++, target.get());
  add_message(batch, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, seq++, verdict.get());
  const std::uint32_t last = seq - 1;
  nftnl_batch_end(static_cast<char*>(mnl_nlmsg_batch_current(batch)), seq++);
  mnl_nlmsg_batch_next(batch);
  int last_errno = 0;
  auto r = send_and_ack(socket.get(), mnl_nlmsg_batch_head(batch), mnl_nlmsg_batch_size(batch), first, last,
                        last_errno);
  mnl_nlmsg_batch_stop(batch);
  if (!r) {
    return unexpected("the NFQUEUE target in chain " + std::string(kChainToQueue) + " of table ip " + table + ": " +
                      r.error() + " (does the kernel have nft_compat and xt_NFQUEUE?)");
  }
  return true;
}

bool queue_target_works() {
  const std::string table = "ip " + std::string(kProbeTable);
  if (!run_nft("table " + table + " {\n  chain " + std::string(kChainToQueue) + " {\n  }\n}\n")) return false;
  const bool works = static_cast<bool>(arm_queue_target(kProbeTable, RuleOptions{}));
  (void)run_nft("delete table " + table);
  return works;
}

}  // namespace pptp::nft
