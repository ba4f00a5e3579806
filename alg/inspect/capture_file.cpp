#include "alg/inspect/capture_file.hpp"

#include <cmath>
#include <cstring>
#include <fstream>

namespace pptp::inspect {

namespace {
constexpr std::uint32_t kPcapMagicMicro = 0xa1b2c3d4;
constexpr std::uint32_t kPcapMagicNano = 0xa1b23c4d;
constexpr std::uint32_t kPcapngSectionHeader = 0x0A0D0D0A;
constexpr std::uint32_t kPcapngByteOrderMagic = 0x1A2B3C4D;
constexpr std::uint32_t kPcapngInterface = 1;
constexpr std::uint32_t kPcapngObsoletePacket = 2;
constexpr std::uint32_t kPcapngSimplePacket = 3;
constexpr std::uint32_t kPcapngEnhancedPacket = 6;
constexpr std::uint16_t kOptionEnd = 0;
constexpr std::uint16_t kOptionTsResol = 9;
constexpr std::size_t kPcapHeader = 24;
constexpr std::size_t kPcapRecordHeader = 16;
constexpr std::uint64_t kMaxCaptureFileBytes = 4ULL << 30;

std::uint32_t swap32(std::uint32_t v) { return __builtin_bswap32(v); }

double tick_from_tsresol(std::uint8_t v) {
  const int exp = v & 0x7f;
  if (exp > 30) return 1e-6;  // absurd: fall back to the default rather than divide by zero
  return (v & 0x80) != 0 ? std::ldexp(1.0, -exp) : std::pow(10.0, -exp);
}
}  // namespace

std::uint32_t CaptureParser::u32(std::size_t at) const {
  std::uint32_t v;
  std::memcpy(&v, file_.data() + at, 4);  // little-endian host assumed (x86_64, arm64)
  return swapped_ ? swap32(v) : v;
}

std::uint16_t CaptureParser::u16(std::size_t at) const {
  std::uint16_t v;
  std::memcpy(&v, file_.data() + at, 2);
  return swapped_ ? static_cast<std::uint16_t>((v >> 8) | (v << 8)) : v;
}

std::string CaptureParser::where() const { return "at byte " + std::to_string(pos_); }

Result<std::optional<CaptureRecord>, std::string> CaptureParser::next() {
  if (format_ == Format::Unknown) {
    if (file_.size() < 4) return unexpected(std::string("not a capture file: too short"));
    std::uint32_t magic;
    std::memcpy(&magic, file_.data(), 4);
    if (magic == kPcapMagicMicro || magic == kPcapMagicNano || swap32(magic) == kPcapMagicMicro ||
        swap32(magic) == kPcapMagicNano) {
      if (file_.size() < kPcapHeader) return unexpected(std::string("pcap header truncated"));
      swapped_ = magic != kPcapMagicMicro && magic != kPcapMagicNano;
      const std::uint32_t m = swapped_ ? swap32(magic) : magic;
      pcap_tick_ = m == kPcapMagicNano ? 1e-9 : 1e-6;
      pcap_link_type_ = static_cast<int>(u32(20) & 0x0fffffff);
      pos_ = kPcapHeader;
      format_ = Format::Pcap;
    } else if (magic == kPcapngSectionHeader) {
      format_ = Format::Pcapng;
    } else {
      return unexpected(std::string("not a pcap or pcapng file (unknown magic number)"));
    }
  }
  return format_ == Format::Pcap ? next_pcap() : next_pcapng();
}

Result<std::optional<CaptureRecord>, std::string> CaptureParser::next_pcap() {
  if (pos_ == file_.size()) return std::optional<CaptureRecord>{};
  if (file_.size() - pos_ < kPcapRecordHeader) return unexpected("record header cut " + where());
  const std::uint32_t sec = u32(pos_);
  const std::uint32_t frac = u32(pos_ + 4);
  const std::uint32_t caplen = u32(pos_ + 8);
  if (caplen > kMaxCaptureBlockLength || caplen > file_.size() - pos_ - kPcapRecordHeader) {
    return unexpected("record length " + std::to_string(caplen) + " runs past the file " + where());
  }
  CaptureRecord r;
  r.link_type = pcap_link_type_;
  r.time = sec + frac * pcap_tick_;
  r.data = file_.subspan(pos_ + kPcapRecordHeader, caplen);
  pos_ += kPcapRecordHeader + caplen;
  return std::optional<CaptureRecord>(r);
}

Result<std::optional<CaptureRecord>, std::string> CaptureParser::next_pcapng() {
  while (true) {
    if (pos_ == file_.size()) return std::optional<CaptureRecord>{};
    if (file_.size() - pos_ < 12) return unexpected("block header cut " + where());
    std::uint32_t type;
    std::memcpy(&type, file_.data() + pos_, 4);
    if (type == kPcapngSectionHeader) {
      // A new section sets the byte order and forgets the interfaces.
      std::uint32_t bom;
      std::memcpy(&bom, file_.data() + pos_ + 8, 4);
      if (bom == kPcapngByteOrderMagic) {
        swapped_ = false;
      } else if (swap32(bom) == kPcapngByteOrderMagic) {
        swapped_ = true;
      } else {
        return unexpected("section header with a bad byte-order magic " + where());
      }
      interfaces_.clear();
    } else {
      type = u32(pos_);
    }
    const std::uint32_t length = u32(pos_ + 4);
    if (length < 12 || length % 4 != 0 || length > kMaxCaptureBlockLength || length > file_.size() - pos_) {
      return unexpected("block length " + std::to_string(length) + " is damaged " + where());
    }
    const Bytes body = file_.subspan(pos_ + 8, length - 12);
    const std::size_t body_at = pos_ + 8;
    pos_ += length;

    if (type == kPcapngInterface) {
      if (body.size() < 8) return unexpected(std::string("interface block too short"));
      if (interfaces_.size() >= kMaxCaptureInterfaces) return unexpected(std::string("too many interfaces"));
      Interface ifc{u16(body_at), 1e-6};
      for (std::size_t o = 8; o + 4 <= body.size();) {
        const std::uint16_t code = u16(body_at + o);
        const std::uint16_t len = u16(body_at + o + 2);
        if (code == kOptionEnd || o + 4 + len > body.size()) break;
        if (code == kOptionTsResol && len >= 1) ifc.tick = tick_from_tsresol(body[o + 4]);
        o += 4 + ((len + 3u) & ~3u);
      }
      interfaces_.push_back(ifc);
      continue;
    }
    std::uint32_t ifindex = 0;
    std::uint64_t ts = 0;
    std::size_t data_at = 0;
    std::uint32_t caplen = 0;
    if (type == kPcapngEnhancedPacket || type == kPcapngObsoletePacket) {
      if (body.size() < 20) return unexpected(std::string("packet block too short"));
      ifindex = type == kPcapngEnhancedPacket ? u32(body_at) : u16(body_at);
      ts = (std::uint64_t{u32(body_at + 4)} << 32) | u32(body_at + 8);
      caplen = u32(body_at + 12);
      data_at = 20;
    } else if (type == kPcapngSimplePacket) {
      if (body.size() < 4) return unexpected(std::string("simple packet block too short"));
      caplen = static_cast<std::uint32_t>(std::min<std::size_t>(u32(body_at), body.size() - 4));
      data_at = 4;
    } else {
      continue;  // statistics, name resolution, custom blocks: not packets
    }
    if (ifindex >= interfaces_.size()) {
      return unexpected("packet on undeclared interface " + std::to_string(ifindex) + " " + where());
    }
    if (caplen > body.size() - data_at) return unexpected("packet length runs past its block " + where());
    CaptureRecord r;
    r.link_type = interfaces_[ifindex].link_type;
    r.time = static_cast<double>(ts) * interfaces_[ifindex].tick;
    r.data = body.subspan(data_at, caplen);
    return std::optional<CaptureRecord>(r);
  }
}

Result<std::vector<std::uint8_t>, std::string> load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return unexpected("cannot open " + path + ": " + std::strerror(errno));
  const std::streamoff size = in.tellg();
  if (size < 0 || static_cast<std::uint64_t>(size) > kMaxCaptureFileBytes) {
    return unexpected(path + " is larger than 4 GiB: cut it first (editcap -c)");
  }
  std::vector<std::uint8_t> data(static_cast<std::size_t>(size));
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(data.data()), size)) return unexpected("cannot read " + path);
  return data;
}

}  // namespace pptp::inspect
