// A node's published calls kept for its next run (docs/ha.md, "A restarted active
// daemon"): written to the state file on the tick, read back at start to publish again the
// calls the restarted daemon adopted from the kernel's elements.
#include <cstdio>
#include <fstream>
#include <iterator>

#include "alg/daemon/ha_node.hpp"
#include "sync/table_file.hpp"

namespace pptp::daemon {

void HaNode::save_table() {
  if (!table_changed_ || state_file_.empty()) return;
  std::vector<sync::CallState> calls;
  calls.reserve(channel_.published().size());
  for (const auto& [key, s] : channel_.published().calls()) calls.push_back(s);
  const std::vector<std::uint8_t> bytes = sync::encode_table(calls);
  // Written aside and renamed: a daemon killed meanwhile leaves the previous table whole.
  const std::string aside = state_file_ + ".new";
  std::ofstream out(aside, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  const bool saved = out && std::rename(aside.c_str(), state_file_.c_str()) == 0;
  if (!saved && !save_failing_) {
    log_->warn("ha_state_save_failed file={} note=\"a restart cannot publish its adopted calls again\"", state_file_);
  }
  save_failing_ = !saved;
  table_changed_ = !saved;
}

std::size_t HaNode::republish_adopted(const std::vector<nat::CallBinding>& offloaded) {
  table_changed_ = true;  // this run's table replaces the previous one from here on
  if (state_file_.empty() || offloaded.empty()) return 0;
  std::ifstream in(state_file_, std::ios::binary);
  if (!in) return 0;
  const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto previous = sync::decode_table(bytes);
  if (!previous) {
    log_->warn("ha_state_unreadable file={} error={}", state_file_, sync::name_of(previous.error()));
    return 0;
  }
  const OffloadedKeys live(offloaded);
  std::vector<sync::CallState> adopted;
  for (sync::CallState& s : *previous) {
    if (live.contains(binding_of(s))) adopted.push_back(std::move(s));
  }
  republished_.publish(channel_, adopted);
  flush();
  log_->info("ha_republished_adopted calls={} previous_run={}", adopted.size(), previous->size());
  return adopted.size();
}

}  // namespace pptp::daemon
