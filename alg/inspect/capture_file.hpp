// Reads capture files: classic pcap (microsecond and nanosecond, either byte order) and
// pcapng (several sections and interfaces, each with its own link type and time resolution).
// libpcap refuses pcapng files whose interfaces differ in snapshot length; this reader does
// not, and it never trusts a length field beyond named bounds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "alg/core/bytes.hpp"
#include "alg/core/result.hpp"

namespace pptp::inspect {

inline constexpr std::size_t kMaxCaptureBlockLength = 1 << 20;  // a block or record, bytes
inline constexpr std::size_t kMaxCaptureInterfaces = 256;

struct CaptureRecord {
  int link_type = 0;  // LINKTYPE_ value
  double time = 0;    // seconds since the epoch
  Bytes data;         // valid until the next call to next()
};

// Parses a capture held in memory, record by record. Pure: no I/O.
class CaptureParser {
 public:
  explicit CaptureParser(Bytes file) : file_(file) {}
  // nullopt at the end; an error for a damaged file (says where).
  Result<std::optional<CaptureRecord>, std::string> next();

 private:
  struct Interface {
    int link_type;
    double tick;  // seconds per timestamp unit
  };
  Result<std::optional<CaptureRecord>, std::string> next_pcap();
  Result<std::optional<CaptureRecord>, std::string> next_pcapng();
  std::uint32_t u32(std::size_t at) const;
  std::uint16_t u16(std::size_t at) const;
  std::string where() const;

  enum class Format : std::uint8_t { Unknown, Pcap, Pcapng };
  Bytes file_;
  std::size_t pos_ = 0;
  Format format_ = Format::Unknown;
  bool swapped_ = false;
  double pcap_tick_ = 1e-6;
  int pcap_link_type_ = 0;
  std::vector<Interface> interfaces_;
};

// Loads a file into memory for the parser.
Result<std::vector<std::uint8_t>, std::string> load_file(const std::string& path);

}  // namespace pptp::inspect
