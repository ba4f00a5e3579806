// `pptp-alg inspect`: runs a capture through the same packet path as the daemon
// (track::handle_ipv4: reassembly, tracking, GRE matching) and reports what it found.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>

#include <nlohmann/json.hpp>

#include "alg/core/bytes.hpp"
#include "alg/core/result.hpp"
#include "alg/track/tracker.hpp"

namespace pptp::inspect {

inline constexpr std::size_t kMaxReportedAnomalies = 2000;  // the counters keep the full count
inline constexpr std::size_t kMaxReportedGreFlows = 1024;

class Inspector final : public track::TrackerObserver {
 public:
  Inspector();
  // One captured IPv4 packet. Packet numbers count every frame of the capture from 1, as
  // tshark and Wireshark do, so that reports point at the same frame.
  void on_packet(std::uint64_t packet_number, double time, Bytes ipv4);
  void on_non_ipv4_frame() { ++frames_other_; }
  // End of the capture: snapshot what is still live (left live, not closed).
  void finish();

  nlohmann::json to_json() const;
  std::string to_text() const;
  const track::Tracker& tracker() const { return tracker_; }

  // TrackerObserver
  void on_anomaly(const track::AnomalyEvent& e) override;
  void on_message(const track::ControlConnection& c, track::Direction d,
                  const wire::ControlMessage& m) override;
  void on_call_changed(const track::ControlConnection& c, const track::Call& call) override;
  void on_call_closed(const track::ControlConnection& c, const track::Call& call) override;
  void on_connection_closed(const track::ControlConnection& c) override;
  void on_gre(const track::ControlConnection* c, const track::Call* call, track::Direction d,
              const wire::Ipv4Packet& ip, const wire::GreHeader* header) override;

 private:
  struct ConnectionRecord {
    nlohmann::json summary;
    std::map<std::uint64_t, nlohmann::json> calls;  // by call id
  };
  struct GreFlow {
    std::uint64_t packets = 0;
    std::uint64_t first_packet = 0;
    std::string reason;
  };

  void snapshot(const track::ControlConnection& c);
  void snapshot(const track::ControlConnection& c, const track::Call& call);
  double relative(double t) const { return t - first_time_; }

  track::Tracker tracker_;
  std::uint64_t packet_number_ = 0;
  std::uint64_t frames_ = 0;
  std::uint64_t frames_other_ = 0;
  std::uint64_t control_segments_ = 0;
  std::uint64_t gre_packets_ = 0;
  double first_time_ = 0;
  double last_time_ = 0;
  bool have_time_ = false;
  std::string pending_gre_reason_;  // set by a GRE anomaly that is summarised per flow
  std::map<std::uint64_t, ConnectionRecord> connections_;
  nlohmann::json messages_ = nlohmann::json::array();
  nlohmann::json anomalies_ = nlohmann::json::array();
  std::uint64_t anomalies_dropped_ = 0;
  std::map<std::tuple<std::uint32_t, std::uint32_t, std::int32_t>, GreFlow> unmatched_gre_;
};

struct CaptureSummary {
  std::string file;
  std::uint64_t frames = 0;
};

// Reads a pcap or pcapng file into the inspector. The error says what to do.
Result<CaptureSummary, std::string> read_capture(const std::string& path, Inspector& inspector);

}  // namespace pptp::inspect
