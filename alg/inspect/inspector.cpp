#include "alg/inspect/inspector.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "alg/inspect/capture_file.hpp"
#include "alg/inspect/link_layer.hpp"
#include "alg/track/packet_path.hpp"

namespace pptp::inspect {

using nlohmann::json;
using track::Anomaly;
using track::Direction;

namespace {

// Microsecond resolution keeps the JSON stable across platforms.
double round_us(double t) { return std::round(t * 1e6) / 1e6; }

struct JsonFieldWriter {
  json& out;
  void u8(std::string_view n, std::uint8_t v) { out[std::string(n)] = v; }
  void u16(std::string_view n, std::uint16_t v) { out[std::string(n)] = v; }
  void u32(std::string_view n, std::uint32_t v) { out[std::string(n)] = v; }
  void reserved8(std::string_view n, std::uint8_t v) { out[std::string(n)] = v; }
  void reserved16(std::string_view n, std::uint16_t v) { out[std::string(n)] = v; }
  void length16(std::string_view n, std::uint16_t v) { out[std::string(n)] = v; }
  template <std::size_t N>
  void text(std::string_view n, const wire::FixedField<N>& f) {
    const std::string_view t = f.text();
    out[std::string(n)] = printable(Bytes(reinterpret_cast<const std::uint8_t*>(t.data()), t.size()));
  }
};

std::string printable_text(std::string_view s) {
  return printable(Bytes(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

json gre_stats(const track::GreFlowStats& s) {
  return json{{"packets", s.packets},
              {"payload_bytes", s.payload_bytes},
              {"ack_only", s.ack_only},
              {"sequence_backwards", s.sequence_backwards}};
}

template <class T>
json optional_json(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json auth_name_json(const std::optional<track::AuthName>& n) {
  if (!n) return nullptr;
  return json{{"name", printable_text(n->name)},
              {"method", std::string(wire::name_of(n->method))},
              {"identifier", n->identifier},
              {"sent", std::string(track::name_of(n->sent))}};
}

}  // namespace

Inspector::Inspector() : tracker_(*this) {}

void Inspector::on_packet(std::uint64_t packet_number, double time, Bytes ipv4) {
  packet_number_ = packet_number;
  ++frames_;
  if (!have_time_) {
    first_time_ = time;
    have_time_ = true;
  }
  last_time_ = time;
  const track::PacketOutcome out = track::handle_ipv4(tracker_, time, ipv4);
  if (out.kind == track::PacketKind::Control) ++control_segments_;
  if (out.kind == track::PacketKind::Gre) ++gre_packets_;
  if (out.kind == track::PacketKind::Other) ++frames_other_;
}

void Inspector::on_anomaly(const track::AnomalyEvent& e) {
  const bool gre_flow = e.connection == nullptr &&
                        (e.anomaly == Anomaly::GreUnknownCall || e.anomaly == Anomaly::GreNotPptp ||
                         e.anomaly == Anomaly::GreMalformed);
  if (gre_flow) {
    pending_gre_reason_ = std::string(track::name_of(e.anomaly));
    return;  // summarised per flow in "unmatched_gre"
  }
  if (anomalies_.size() >= kMaxReportedAnomalies) {
    ++anomalies_dropped_;
    return;
  }
  json a{{"packet", packet_number_},
         {"anomaly", std::string(track::name_of(e.anomaly))},
         {"detail", e.detail},
         {"connection", e.connection != nullptr ? json(e.connection->id) : json(nullptr)},
         {"direction", e.direction ? json(std::string(track::name_of(*e.direction))) : json(nullptr)}};
  anomalies_.push_back(std::move(a));
}

void Inspector::on_message(const track::ControlConnection& c, Direction d, const wire::ControlMessage& m) {
  json fields = json::object();
  JsonFieldWriter w{fields};
  wire::visit_fields(m, w);
  messages_.push_back(json{{"packet", packet_number_},
                           {"connection", c.id},
                           {"direction", std::string(track::name_of(d))},
                           {"type", static_cast<int>(m.type())},
                           {"name", std::string(m.spec().name)},
                           {"fields", std::move(fields)}});
  snapshot(c);
}

void Inspector::on_call_changed(const track::ControlConnection& c, const track::Call& call) {
  snapshot(c, call);
}
void Inspector::on_call_closed(const track::ControlConnection& c, const track::Call& call) {
  snapshot(c, call);
}
void Inspector::on_connection_closed(const track::ControlConnection& c) { snapshot(c); }

void Inspector::on_gre(const track::ControlConnection*, const track::Call*, Direction,
                       const wire::Ipv4Packet& ip, const wire::GreHeader* header) {
  if (pending_gre_reason_.empty()) return;  // matched
  const std::int32_t key = header != nullptr ? header->call_id : -1;
  const auto flow_key = std::make_tuple(ip.source.value, ip.destination.value, key);
  auto it = unmatched_gre_.find(flow_key);
  if (it == unmatched_gre_.end()) {
    if (unmatched_gre_.size() >= kMaxReportedGreFlows) {
      pending_gre_reason_.clear();
      return;
    }
    it = unmatched_gre_.emplace(flow_key, GreFlow{0, packet_number_, pending_gre_reason_}).first;
  }
  ++it->second.packets;
  pending_gre_reason_.clear();
}

void Inspector::snapshot(const track::ControlConnection& c) {
  ConnectionRecord& r = connections_[c.id];
  r.summary = json{
      {"id", c.id},
      {"pns", wire::to_string(c.pns)},
      {"pac", wire::to_string(c.pac)},
      {"state", std::string(track::name_of(c.state))},
      {"close_reason", c.close_reason.empty() ? json(nullptr) : json(c.close_reason)},
      {"start_result_code", optional_json(c.start_result_code)},
      {"pns_host_name", printable_text(c.pns_host_name)},
      {"pac_host_name", printable_text(c.pac_host_name)},
      {"pns_vendor", printable_text(c.pns_vendor)},
      {"pac_vendor", printable_text(c.pac_vendor)},
      {"messages", json{{"pns_to_pac", c.messages[0]}, {"pac_to_pns", c.messages[1]}}},
      {"stream", json{{"pns_to_pac", std::string(stream::name_of(c.streams[0].state()))},
                      {"pac_to_pns", std::string(stream::name_of(c.streams[1].state()))}}},
      {"opened_at", round_us(relative(c.opened_at))},
  };
  for (const auto& call : c.calls) snapshot(c, *call);
}

void Inspector::snapshot(const track::ControlConnection& c, const track::Call& call) {
  // `user` is only ever a name the PAC accepted; what was merely claimed or refused is
  // reported beside it (docs/inspect.md).
  json user = auth_name_json(call.user);
  if (call.user) user["established"] = "accepted_by_pac";
  const json authentication{{"succeeded", optional_json(call.auth_succeeded)},
                            {"accepted_exchanges", call.authentications},
                            {"first_claim", auth_name_json(call.first_claim)},
                            {"rejected", auth_name_json(call.rejected)}};
  connections_[c.id].calls[call.id] = json{
      {"id", call.id},
      {"origin", std::string(track::name_of(call.origin))},
      {"state", std::string(track::name_of(call.state))},
      {"pns_call_id", optional_json(call.pns_call_id)},
      {"pac_call_id", optional_json(call.pac_call_id)},
      {"call_serial_number", call.call_serial_number},
      {"reply_result_code", optional_json(call.reply_result_code)},
      {"disconnect_result_code", optional_json(call.disconnect_result_code)},
      {"close_reason", call.close_reason.empty() ? json(nullptr) : json(call.close_reason)},
      {"wan_errors_reported", call.wan_errors_reported},
      {"set_link_info", call.set_link_info_count},
      {"user", user},
      {"authentication", authentication},
      {"gre", json{{"pns_to_pac", gre_stats(call.gre[0])}, {"pac_to_pns", gre_stats(call.gre[1])}}},
  };
}

void Inspector::finish() {
  tracker_.for_each_connection([&](const track::ControlConnection& c) {
    if (c.state != track::ConnectionState::Closed) snapshot(c);
  });
}

json Inspector::to_json() const {
  json conns = json::array();
  for (const auto& [id, r] : connections_) {
    json c = r.summary;
    json calls = json::array();
    for (const auto& [cid, call] : r.calls) calls.push_back(call);
    c["calls"] = std::move(calls);
    conns.push_back(std::move(c));
  }
  json gre = json::array();
  for (const auto& [k, f] : unmatched_gre_) {
    const auto& [src, dst, key] = k;
    gre.push_back(json{{"source", wire::to_string(wire::Ipv4Address{src})},
                       {"destination", wire::to_string(wire::Ipv4Address{dst})},
                       {"call_id", key >= 0 ? json(key) : json(nullptr)},
                       {"reason", f.reason},
                       {"packets", f.packets},
                       {"first_packet", f.first_packet}});
  }
  json counters = json::object();
  for (const auto& info : track::kAnomalyTable) {
    const std::uint64_t n = tracker_.counters()[static_cast<std::size_t>(info.anomaly)];
    if (n != 0) counters[std::string(info.name)] = n;
  }
  return json{{"packets", json{{"ipv4", frames_},
                               {"control_segments", control_segments_},
                               {"gre", gre_packets_},
                               {"other", frames_other_}}},
              {"duration", round_us(last_time_ - first_time_)},
              {"control_connections", std::move(conns)},
              {"messages", messages_},
              {"unmatched_gre", std::move(gre)},
              {"anomalies", anomalies_},
              {"anomalies_not_listed", anomalies_dropped_},
              {"anomaly_counters", std::move(counters)}};
}

std::string Inspector::to_text() const {
  const json j = to_json();
  std::ostringstream o;
  const json& p = j["packets"];
  o << "packets: " << p["ipv4"] << " IPv4 (" << p["control_segments"] << " PPTP control segments, "
    << p["gre"] << " GRE, " << p["other"] << " other), " << j["duration"].get<double>() << " s\n";
  for (const json& c : j["control_connections"]) {
    o << "\ncontrol connection " << c["id"] << ": PNS " << c["pns"].get<std::string>() << " -> PAC "
      << c["pac"].get<std::string>() << "  state " << c["state"].get<std::string>();
    if (!c["close_reason"].is_null()) o << " (" << c["close_reason"].get<std::string>() << ")";
    o << "\n  messages " << c["messages"]["pns_to_pac"] << " from PNS, " << c["messages"]["pac_to_pns"]
      << " from PAC";
    if (!c["pns_host_name"].get<std::string>().empty() || !c["pac_host_name"].get<std::string>().empty()) {
      o << "; hosts \"" << c["pns_host_name"].get<std::string>() << "\" / \""
        << c["pac_host_name"].get<std::string>() << "\"";
    }
    o << "\n";
    for (const json& call : c["calls"]) {
      const auto id_text = [](const json& v) { return v.is_null() ? std::string("-") : v.dump(); };
      o << "  call " << call["id"] << " " << call["origin"].get<std::string>() << ": PNS Call ID "
        << id_text(call["pns_call_id"]) << ", PAC Call ID " << id_text(call["pac_call_id"]) << ", state "
        << call["state"].get<std::string>();
      if (!call["close_reason"].is_null()) o << " (" << call["close_reason"].get<std::string>() << ")";
      o << "\n    GRE PNS->PAC " << call["gre"]["pns_to_pac"]["packets"] << " packets, PAC->PNS "
        << call["gre"]["pac_to_pns"]["packets"] << " packets";
      if (!call["user"].is_null()) {
        const json& u = call["user"];
        o << "; user \"" << u["name"].get<std::string>() << "\" (" << u["method"].get<std::string>();
        if (!u["succeeded"].is_null()) o << (u["succeeded"].get<bool>() ? ", accepted" : ", rejected");
        o << ")";
      }
      o << "\n";
    }
  }
  if (!j["unmatched_gre"].empty()) {
    o << "\nGRE that matches no call:\n";
    for (const json& g : j["unmatched_gre"]) {
      o << "  " << g["source"].get<std::string>() << " -> " << g["destination"].get<std::string>()
        << " Call ID " << (g["call_id"].is_null() ? std::string("-") : g["call_id"].dump()) << ": "
        << g["packets"] << " packets from packet " << g["first_packet"] << " ("
        << g["reason"].get<std::string>() << ")\n";
    }
  }
  if (!j["anomalies"].empty()) {
    o << "\nanomalies:\n";
    for (const json& a : j["anomalies"]) {
      o << "  packet " << a["packet"] << ": " << a["anomaly"].get<std::string>();
      if (!a["connection"].is_null()) o << " (connection " << a["connection"] << ")";
      o << ": " << a["detail"].get<std::string>() << "\n";
    }
    if (j["anomalies_not_listed"].get<std::uint64_t>() != 0) {
      o << "  ... and " << j["anomalies_not_listed"] << " more (see the counters)\n";
    }
  }
  if (!j["anomaly_counters"].empty()) {
    o << "\nanomaly counters:";
    for (const auto& [name, n] : j["anomaly_counters"].items()) o << " " << name << "=" << n;
    o << "\n";
  }
  return o.str();
}

Result<CaptureSummary, std::string> read_capture(const std::string& path, Inspector& inspector) {
  auto file = load_file(path);
  if (!file) return unexpected("cannot read capture: " + file.error());
  CaptureParser parser(*file);
  CaptureSummary summary{path, 0};
  while (true) {
    auto record = parser.next();
    if (!record) {
      inspector.finish();
      return unexpected("capture " + path + " is damaged after frame " + std::to_string(summary.frames) +
                        ": " + record.error() + " (the frames before it were read)");
    }
    if (!record->has_value()) break;
    const CaptureRecord& r = **record;
    ++summary.frames;
    const auto ip = link_type_supported(r.link_type) ? ipv4_in_frame(r.link_type, r.data) : std::nullopt;
    if (ip) {
      inspector.on_packet(summary.frames, r.time, *ip);
    } else {
      inspector.on_non_ipv4_frame();
    }
  }
  inspector.finish();
  return summary;
}

}  // namespace pptp::inspect
