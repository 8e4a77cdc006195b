// The fuzz targets' view of their input bytes: single bytes, and fields of a 2-byte
// little-endian length followed by that many bytes (cut to what is left). Past the end every
// byte is 0 and every field empty, so any input decodes.
#ifndef BULWARK_CORE_CATALOG_FUZZ_READER_H_
#define BULWARK_CORE_CATALOG_FUZZ_READER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace bulwark::fuzz {

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : in_(reinterpret_cast<const char*>(data), size) {}

  uint8_t Byte() {
    if (in_.empty()) return 0;
    const uint8_t b = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return b;
  }

  std::string Field() {
    const size_t length = static_cast<size_t>(Byte()) | static_cast<size_t>(Byte()) << 8;
    const absl::string_view field = in_.substr(0, length);
    in_.remove_prefix(field.size());
    return std::string(field);
  }

 private:
  absl::string_view in_;
};

}  // namespace bulwark::fuzz

#endif  // BULWARK_CORE_CATALOG_FUZZ_READER_H_
