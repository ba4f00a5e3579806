// The HA state file's decoder (sync/table_file.hpp): any bytes are refused or decoded, never
// crashing or reading past the file; whatever decodes encodes back to the same bytes (the
// format has one spelling per table) and fits the size a reader checks first. The first byte
// chooses the input: the bytes as they are, or the rest behind a valid magic and version, so
// that the records are reached without seeds (a random file rarely starts with "PHT1").
#include <algorithm>
#include <cstdlib>
#include <vector>

#include "sync/table_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pptp::sync;
  if (size == 0) {
    if (decode_table(pptp::Bytes()).has_value()) std::abort();
    return 0;
  }
  std::vector<std::uint8_t> file;
  if ((data[0] & 1) != 0) {
    file = encode_table({});
    file.resize(5);  // magic and version; the count comes from the input
  }
  file.insert(file.end(), data + 1, data + size);
  auto calls = decode_table(file);
  if (!calls) {
    (void)name_of(calls.error());
    return 0;
  }
  if (file.size() > max_table_bytes()) std::abort();
  const std::vector<std::uint8_t> again = encode_table(*calls);
  if (again != file) std::abort();
  auto back = decode_table(again);
  if (!back || *back != *calls) std::abort();
  return 0;
}
