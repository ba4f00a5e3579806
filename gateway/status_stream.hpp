// The status file written straight from the snapshot, without a JSON tree (issue 17, memory
// per call): a tree of many small nodes per call, built and freed on the worker, left its
// chunks in the worker's heap arena (docs/performance.md, "s8: the status streamed"). The
// text is the one status_json(...).dump(1) gives, byte for byte (tests/gateway/
// status_stream_test.cpp): the top-level keys in order, the connections streamed between
// them, everything else (small, a fixed size) dumped by nlohmann.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/status_snapshot.hpp"

namespace pptp::gateway {

// Text handed on in pieces of about kStatusPieceBytes; `put` answers false when it could not
// take one (the file is not written), and nothing more is put.
inline constexpr std::size_t kStatusPieceBytes = 64 * 1024;

class StatusOut {
 public:
  // compact: on one line, as dump() without an indent writes it (the control socket's
  // answers are lines); else as dump(1) (the status file).
  explicit StatusOut(std::function<bool(std::string_view)> put, bool compact = false)
      : put_(std::move(put)), compact_(compact) {
    text_.reserve(kStatusPieceBytes);
  }
  bool compact() const { return compact_; }
  void append(std::string_view s) {
    text_.append(s);
    if (text_.size() >= kStatusPieceBytes) hand_on();
  }
  void append(char c) { text_.push_back(c); }
  void append_uint(std::uint64_t v);
  void append_string(std::string_view s);  // quoted and escaped as nlohmann's dump() does
  // Hands on what is left; false if any piece was refused.
  bool finish() {
    hand_on();
    return ok_;
  }

 private:
  void hand_on();
  std::function<bool(std::string_view)> put_;
  std::string text_;
  bool compact_;
  bool ok_ = true;
};

// `summary`: an object with every top-level key of the status but "connections" (status_
// summary_json, with whatever the daemon adds); the connections come from `connections`.
// Writes what (summary + {"connections": ...}).dump(1) + "\n" would; with a compact `out`,
// what its dump() would, with invalid UTF-8 replaced as the control socket's answers are.
void stream_status(const nlohmann::json& summary, const std::vector<ConnectionSnapshot>& connections, StatusOut& out);

}  // namespace pptp::gateway
