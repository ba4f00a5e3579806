#include "nftables/table_watch.hpp"

#include "nftables/command.hpp"
#include "nftables/input_rules.hpp"
#include "nftables/queue_target.hpp"

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace pptp::nft {

namespace {
int on_table(const nlmsghdr* nlh, void* data) {
  auto* handle = static_cast<std::optional<std::uint64_t>*>(data);
  nftnl_table* t = nftnl_table_alloc();
  if (t == nullptr) return MNL_CB_ERROR;
  if (nftnl_table_nlmsg_parse(nlh, t) == 0 && nftnl_table_is_set(t, NFTNL_TABLE_HANDLE)) {
    *handle = nftnl_table_get_u64(t, NFTNL_TABLE_HANDLE);
  }
  nftnl_table_free(t);
  return MNL_CB_OK;
}

// A chain's answer: that it came is all we need (parsing it as a table aborts in libnftnl).
int on_chain(const nlmsghdr*, void*) { return MNL_CB_OK; }
}  // namespace

std::vector<std::string_view> table_chains(Backend backend, const RuleOptions& options) {
  // With the fast path, fast_in carries the server's GRE rule too (rules.cpp).
  std::vector<std::string_view> chains{options.fast_path ? "fast_in" : "prerouting", kChainInput};
  if (queues_in_table(backend)) chains.push_back("forward");
  if (backend == Backend::Compat) chains.push_back(kChainToQueue);
  return chains;
}

Result<bool, std::string> reload_vanished_table(Backend backend, const RuleOptions& options) {
  if (auto loaded = run_nft(nft_table(backend, options)); !loaded) {
    return unexpected("nft could not load table " + std::string(kTableName) + ": " + loaded.error());
  }
  if (backend == Backend::Compat) return arm_queue_target(kTableName, options);
  return true;
}

Result<std::unique_ptr<TableWatch>, std::string> TableWatch::open() {
  std::unique_ptr<TableWatch> w(new TableWatch());
  w->socket_ = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (w->socket_ == nullptr || mnl_socket_bind(w->socket_, 0, MNL_SOCKET_AUTOPID) < 0) {
    return unexpected(std::string("cannot open a netfilter netlink socket: ") + std::strerror(errno));
  }
  return w;
}

TableWatch::~TableWatch() {
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

Result<bool, std::string> TableWatch::ask(const void* request, std::size_t length, std::uint32_t seq, bool table) {
  if (mnl_socket_sendto(socket_, request, length) < 0) {
    return unexpected(std::string("netlink send: ") + std::strerror(errno));
  }
  std::vector<char> buffer(MNL_SOCKET_BUFFER_SIZE);
  const unsigned port = mnl_socket_get_portid(socket_);
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(socket_, buffer.data(), buffer.size());
    if (n < 0) return unexpected(std::string("netlink receive: ") + std::strerror(errno));
    const int r = mnl_cb_run(buffer.data(), static_cast<std::size_t>(n), seq, port, table ? on_table : on_chain,
                             &last_handle_);
    if (r == MNL_CB_STOP) return true;  // the object, then the ACK
    if (r < 0) {
      if (errno == ENOENT) return false;
      return unexpected(std::string("netlink: ") + std::strerror(errno));
    }
  }
}

Result<TableState, std::string> TableWatch::look(const std::vector<std::string_view>& chains) {
  std::vector<char> request(MNL_SOCKET_BUFFER_SIZE);
  const std::string table(kTableName);
  TableState state;
  {
    const std::uint32_t seq = sequence_++;
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(request.data(), NFT_MSG_GETTABLE, NFPROTO_IPV4, NLM_F_ACK, seq);
    mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, table.c_str());
    last_handle_.reset();
    auto found = ask(nlh, nlh->nlmsg_len, seq, true);
    if (!found) return unexpected(found.error());
    if (!*found) return state;
    state.handle = last_handle_;
    if (!state.handle) state.handle = 0;  // there, without a handle attribute: still there
  }
  for (std::string_view chain : chains) {
    const std::uint32_t seq = sequence_++;
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(request.data(), NFT_MSG_GETCHAIN, NFPROTO_IPV4, NLM_F_ACK, seq);
    mnl_attr_put_strz(nlh, NFTA_CHAIN_TABLE, table.c_str());
    mnl_attr_put_strz(nlh, NFTA_CHAIN_NAME, std::string(chain).c_str());
    auto found = ask(nlh, nlh->nlmsg_len, seq, false);
    if (!found) return unexpected(found.error());
    if (!*found) return state;
  }
  state.chains_complete = true;
  return state;
}

}  // namespace pptp::nft
