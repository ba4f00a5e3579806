// gre_flood: sends enhanced GRE (RFC 2637 section 4.1) as fast as one core can, with
// sendmmsg on a raw socket, for the benchmark (bench/run_bench.py). Not a test and not
// part of the daemon.
//
//   gre_flood --source 198.51.100.3 --destination 198.51.100.1 --key 7 --payload 64 --seconds 5
//
// Prints one JSON line: {"sent": N, "seconds": S, "send_errors": E}.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kBatch = 64;
constexpr std::size_t kMaxPayload = 1400;

struct Options {
  std::string source, destination;
  std::uint16_t key = 0;
  std::size_t payload = 64;
  double seconds = 5;
  int keys = 1;  // cycle through this many consecutive keys (many calls)
  std::vector<std::uint16_t> key_list;  // or through these (--key-file)
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "gre_flood: %s\nusage: gre_flood --source A --destination B (--key K [--keys N] | --key-file F) "
               "[--payload BYTES] [--seconds S]\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage(("missing value for " + a).c_str());
    const char* v = argv[++i];
    if (a == "--source") o.source = v;
    else if (a == "--destination") o.destination = v;
    else if (a == "--key") o.key = static_cast<std::uint16_t>(std::strtoul(v, nullptr, 0));
    else if (a == "--keys") o.keys = std::max(1, std::atoi(v));
    else if (a == "--key-file") {
      FILE* f = std::fopen(v, "r");
      if (f == nullptr) usage("cannot read --key-file");
      unsigned k = 0;
      while (std::fscanf(f, "%u", &k) == 1) o.key_list.push_back(static_cast<std::uint16_t>(k));
      std::fclose(f);
      if (o.key_list.empty()) usage("--key-file holds no keys");
    }
    else if (a == "--payload") o.payload = std::strtoul(v, nullptr, 0);
    else if (a == "--seconds") o.seconds = std::strtod(v, nullptr);
    else usage(("unknown option " + a).c_str());
  }
  if (o.source.empty() || o.destination.empty()) usage("--source and --destination are required");
  if (o.payload < 4 || o.payload > kMaxPayload) usage("--payload must be 4 to 1400");
  if (o.key_list.empty()) {
    for (int k = 0; k < o.keys; ++k) o.key_list.push_back(static_cast<std::uint16_t>(o.key + k));
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const int fd = socket(AF_INET, SOCK_RAW, IPPROTO_GRE);
  if (fd < 0) {
    std::perror("gre_flood: raw socket (root?)");
    return 1;
  }
  sockaddr_in local{}, peer{};
  local.sin_family = peer.sin_family = AF_INET;
  if (inet_pton(AF_INET, o.source.c_str(), &local.sin_addr) != 1 ||
      inet_pton(AF_INET, o.destination.c_str(), &peer.sin_addr) != 1) {
    usage("addresses must be IPv4");
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&peer), sizeof peer) != 0) {
    std::perror("gre_flood: bind/connect");
    return 1;
  }
  // One buffer per batch slot: GRE header (K and S bits, version 1, PPP), sequence, a PPP
  // frame; the key cycles through the calls' keys, the sequence counts up.
  const std::size_t frame = 12 + o.payload;
  std::vector<std::vector<std::uint8_t>> slots(kBatch, std::vector<std::uint8_t>(frame));
  for (auto& f : slots) {
    const std::uint8_t header[] = {0x30, 0x01, 0x88, 0x0b, static_cast<std::uint8_t>(o.payload >> 8),
                                   static_cast<std::uint8_t>(o.payload)};
    std::memcpy(f.data(), header, sizeof header);
    f[12] = 0xff;
    f[13] = 0x03;
    f[14] = 0x00;
    f[15] = 0x21;
  }
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  std::uint64_t sent = 0, errors = 0;
  std::uint32_t sequence = 0;
  std::size_t next_key = 0;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(o.seconds);
  while (std::chrono::steady_clock::now() < end) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      auto& f = slots[i];
      const std::uint16_t key = o.key_list[next_key];
      next_key = (next_key + 1) % o.key_list.size();
      f[6] = static_cast<std::uint8_t>(key >> 8);
      f[7] = static_cast<std::uint8_t>(key);
      const std::uint32_t s = htonl(sequence++);
      std::memcpy(f.data() + 8, &s, 4);
      iov[i] = {f.data(), f.size()};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = sendmmsg(fd, msgs.data(), static_cast<unsigned>(kBatch), 0);
    if (n < 0) {
      ++errors;
      continue;
    }
    sent += static_cast<std::uint64_t>(n);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"sent\": %llu, \"seconds\": %.3f, \"send_errors\": %llu}\n", static_cast<unsigned long long>(sent),
              seconds, static_cast<unsigned long long>(errors));
  close(fd);
  return 0;
}
