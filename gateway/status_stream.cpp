// The status streamed from its snapshot (status_stream.hpp): the connections' part written
// as nlohmann's dump(1) writes it (objects' keys in their sorted order, one space of indent a
// level), so that readers of the file see no change but its cost.
#include "gateway/status_stream.hpp"

#include <charconv>

namespace pptp::gateway {

void StatusOut::hand_on() {
  if (ok_ && !text_.empty()) ok_ = put_(text_);
  text_.clear();
}

void StatusOut::append_uint(std::uint64_t v) {
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof digits, v);
  append(std::string_view(digits, static_cast<std::size_t>(r.ptr - digits)));
}

void StatusOut::append_string(std::string_view s) {
  // Bytes past ASCII (rare: a policy's names are read from its file as they are) go through
  // nlohmann itself, invalid UTF-8 replaced by U+FFFD as the control socket's answers are:
  // passed through, a Latin-1 rules.yaml made `ctl status` invalid JSON (s34 review).
  for (const char ch : s) {
    if (static_cast<unsigned char>(ch) >= 0x80) {
      append(nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      return;
    }
  }
  // RFC 8259 section 7, with nlohmann's choices: the short escapes where JSON has them, other
  // control characters as \u00xx, everything else as it is.
  static constexpr char kHex[] = "0123456789abcdef";
  append('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': append("\\\""); break;
      case '\\': append("\\\\"); break;
      case '\b': append("\\b"); break;
      case '\f': append("\\f"); break;
      case '\n': append("\\n"); break;
      case '\r': append("\\r"); break;
      case '\t': append("\\t"); break;
      default:
        if (c < 0x20) {
          const char u[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
          append(std::string_view(u, sizeof u));
        } else {
          append(ch);
        }
    }
  }
  append('"');
}

namespace {

void indent(StatusOut& out, int depth) {
  if (out.compact()) return;
  for (int i = 0; i < depth; ++i) out.append(' ');
}

// An object or an array being written at `depth`: its members one a line, one level deeper.
class Nested {
 public:
  Nested(StatusOut& out, int depth, char open, char close) : out_(out), depth_(depth), close_(close) { out_.append(open); }
  StatusOut& element() {
    if (!first_) out_.append(',');
    if (!out_.compact()) out_.append('\n');
    first_ = false;
    indent(out_, depth_ + 1);
    return out_;
  }
  StatusOut& key(std::string_view k) {
    element().append_string(k);
    out_.append(out_.compact() ? ":" : ": ");
    return out_;
  }
  int inner() const { return depth_ + 1; }
  ~Nested() {
    if (!first_ && !out_.compact()) {
      out_.append('\n');
      indent(out_, depth_);
    }
    out_.append(close_);
  }
  Nested(const Nested&) = delete;
  Nested& operator=(const Nested&) = delete;

 private:
  StatusOut& out_;
  int depth_;
  char close_;
  bool first_ = true;
};

void put_address(StatusOut& out, wire::Ipv4Address address) {
  const std::uint32_t a = address.value;
  out.append_uint(a >> 24);
  out.append('.');
  out.append_uint((a >> 16) & 0xff);
  out.append('.');
  out.append_uint((a >> 8) & 0xff);
  out.append('.');
  out.append_uint(a & 0xff);
}

void put_endpoint(StatusOut& out, const wire::Endpoint& e) {
  out.append('"');
  put_address(out, e.address);
  out.append(':');
  out.append_uint(e.port);
  out.append('"');
}

void put_call_id(StatusOut& out, const std::optional<std::uint16_t>& id) {
  if (id) {
    out.append_uint(*id);
  } else {
    out.append("null");
  }
}

void put_gre(StatusOut& out, int depth, const track::GreFlowStats& s) {
  Nested o(out, depth, '{', '}');
  o.key("packets").append_uint(s.packets);
  o.key("payload_bytes").append_uint(s.payload_bytes);
}

// call_json's fields (status_view.cpp), in their sorted order.
void put_call(StatusOut& out, int depth, const CallSnapshot& call) {
  Nested o(out, depth, '{', '}');
  o.key("fast_path").append(call.fast_path ? "true" : "false");
  put_gre(o.key("gre_to_pac"), o.inner(), call.gre_to_pac);
  put_gre(o.key("gre_to_pns"), o.inner(), call.gre_to_pns);
  o.key("id").append_uint(call.id);
  o.key("origin").append_string(track::name_of(call.origin));
  put_call_id(o.key("outside_call_id"), call.outside_call_id);
  put_call_id(o.key("pac_call_id"), call.pac_call_id);
  put_call_id(o.key("pns_call_id"), call.pns_call_id);
  if (const auto& p = call.policy) {
    Nested policy(o.key("policy"), o.inner(), '{', '}');
    policy.key("rule").append_string(p->rule);
    if (p->user.empty()) {
      policy.key("user").append("null");
    } else {
      policy.key("user").append_string(p->user);
    }
    policy.key("verdict").append_string(policy::name_of(p->outcome));
  }
  o.key("state").append_string(track::name_of(call.state));
  if (call.user) {
    o.key("user").append_string(*call.user);
  } else {
    o.key("user").append("null");
  }
}

// connections_json's fields (status_view.cpp), in their sorted order.
void put_connections(StatusOut& out, int depth, const std::vector<ConnectionSnapshot>& connections) {
  Nested list(out, depth, '[', ']');
  for (const ConnectionSnapshot& c : connections) {
    Nested o(list.element(), list.inner(), '{', '}');
    {
      Nested calls(o.key("calls"), o.inner(), '[', ']');
      for (const CallSnapshot& call : c.calls) put_call(calls.element(), calls.inner(), call);
    }
    o.key("id").append_uint(c.id);
    StatusOut& outside = o.key("outside");
    outside.append('"');
    if (c.outside) put_address(outside, *c.outside);
    outside.append('"');
    put_endpoint(o.key("pac"), c.pac);
    put_endpoint(o.key("pns"), c.pns);
    o.key("state").append_string(track::name_of(c.state));
  }
}

// A small value of the summary at `depth`, as dump(1) writes it there: its lines indented
// one space a level (a JSON string holds no raw newline, so every newline is the layout's).
void put_dumped(StatusOut& out, int depth, const nlohmann::json& value) {
  if (out.compact()) {
    out.append(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  const std::string text = value.dump(1);
  std::size_t from = 0;
  for (std::size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', from)) {
    out.append(std::string_view(text).substr(from, nl + 1 - from));
    indent(out, depth);
    from = nl + 1;
  }
  out.append(std::string_view(text).substr(from));
}

}  // namespace

void stream_status(const nlohmann::json& summary, const std::vector<ConnectionSnapshot>& connections, StatusOut& out) {
  static constexpr std::string_view kConnections = "connections";
  {
    Nested top(out, 0, '{', '}');
    bool streamed = false;
    for (const auto& [key, value] : summary.items()) {
      if (!streamed && kConnections < key) {
        put_connections(top.key(kConnections), top.inner(), connections);
        streamed = true;
      }
      put_dumped(top.key(key), top.inner(), value);
    }
    if (!streamed) put_connections(top.key(kConnections), top.inner(), connections);
  }
  if (!out.compact()) out.append('\n');
}

}  // namespace pptp::gateway
