// The ip table's input chain (rules.cpp's nft_table() writes it into every backend's table):
// a server's TCP/1723 segment to the router that no connection owns is dropped, not reset.
#pragma once

#include <sstream>
#include <string_view>

namespace pptp::nft {

inline constexpr std::string_view kChainInput = "input", kChainControlStray = "control_stray";

// Chains control_stray and input (the first jumped to from the second, so declared first).
void input_chain(std::ostringstream& s);

}  // namespace pptp::nft
