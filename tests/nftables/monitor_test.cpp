// Which nf_tables notifications wake the table check (nftables/monitor.hpp): built as the
// kernel sends them, one or several per datagram, and cut short.
#include "nftables/monitor.hpp"

#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pptp::nft {
namespace {

constexpr std::string_view kOurs = "pptp_alg";

// Appends one notification: `type` of `family`, naming `table` in attribute `attribute`.
void add(std::vector<std::uint8_t>& datagram, int type, const std::string& table, int attribute = 1,
         int family = NFPROTO_IPV4) {
  std::vector<std::uint8_t> one(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(reinterpret_cast<char*>(one.data()), static_cast<std::uint16_t>(type),
                                        static_cast<std::uint16_t>(family), 0, 1);
  mnl_attr_put_strz(nlh, static_cast<std::uint16_t>(attribute), table.c_str());
  datagram.insert(datagram.end(), one.begin(), one.begin() + nlh->nlmsg_len);
}

TableNews classify(const std::vector<std::uint8_t>& d) { return classify_table_news(d, kOurs); }

TEST(TableNews, TheDeletionOfOurTableChainOrSetIsNews) {
  for (const auto& [type, attribute] : {std::pair<int, int>{NFT_MSG_DELTABLE, NFTA_TABLE_NAME},
                                        std::pair<int, int>{NFT_MSG_DELCHAIN, NFTA_CHAIN_TABLE},
                                        std::pair<int, int>{NFT_MSG_DELSET, NFTA_SET_TABLE}}) {
    std::vector<std::uint8_t> d;
    add(d, type, "pptp_alg", attribute);
    const TableNews n = classify(d);
    EXPECT_TRUE(n.removed) << type;
    EXPECT_FALSE(n.created);
    EXPECT_FALSE(n.malformed);
  }
}

TEST(TableNews, OurTableCreatedAgainIsNews) {
  std::vector<std::uint8_t> d;
  add(d, NFT_MSG_NEWTABLE, "pptp_alg");
  EXPECT_TRUE(classify(d).created);
  EXPECT_FALSE(classify(d).removed);
}

TEST(TableNews, OtherTablesFamiliesAndElementsAreNot) {
  std::vector<std::uint8_t> d;
  add(d, NFT_MSG_DELTABLE, "filter");
  add(d, NFT_MSG_DELTABLE, "pptp_alg_probe");
  add(d, NFT_MSG_DELTABLE, "pptp_alg", NFTA_TABLE_NAME, NFPROTO_INET);
  add(d, NFT_MSG_DELSETELEM, "pptp_alg", NFTA_SET_ELEM_LIST_TABLE);
  add(d, NFT_MSG_NEWCHAIN, "pptp_alg", NFTA_CHAIN_TABLE);
  const TableNews n = classify(d);
  EXPECT_EQ(n.messages, 5u);
  EXPECT_FALSE(n.removed);
  EXPECT_FALSE(n.created);
  EXPECT_FALSE(n.malformed);
}

TEST(TableNews, AFlushRulesetInOneDatagramIsFoundAfterOtherMessages) {
  std::vector<std::uint8_t> d;
  add(d, NFT_MSG_DELCHAIN, "pptplab_nat", NFTA_CHAIN_TABLE);
  add(d, NFT_MSG_DELTABLE, "pptplab_nat");
  add(d, NFT_MSG_DELTABLE, "pptp_alg");
  add(d, NFT_MSG_NEWTABLE, "pptplab_nat");
  const TableNews n = classify(d);
  EXPECT_EQ(n.messages, 4u);
  EXPECT_TRUE(n.removed);
  EXPECT_FALSE(n.created);
}

TEST(TableNews, ACutDatagramIsMalformedAndReadOnlyWithinItsBytes) {
  std::vector<std::uint8_t> whole;
  add(whole, NFT_MSG_DELTABLE, "pptp_alg");
  for (std::size_t keep = 0; keep < whole.size(); ++keep) {
    // A copy of exactly `keep` bytes: AddressSanitizer sees any read past it.
    const std::vector<std::uint8_t> cut(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(keep));
    const TableNews n = classify(cut);
    EXPECT_FALSE(n.removed) << keep;
    EXPECT_EQ(n.malformed, keep > 0) << keep;
  }
}

TEST(TableNews, AnUnterminatedNameIsMalformedNotNews) {
  std::vector<std::uint8_t> d;
  add(d, NFT_MSG_DELTABLE, "pptp_alg");
  d[d.size() - 4] = 'x';  // "pptp_alg\0" padded to 12 bytes: the NUL becomes a letter
  d[d.size() - 3] = 'x';
  d[d.size() - 2] = 'x';
  d[d.size() - 1] = 'x';
  const TableNews n = classify(d);
  EXPECT_FALSE(n.removed);
  EXPECT_TRUE(n.malformed);
}

}  // namespace
}  // namespace pptp::nft
