// Key validation shared by every Storage implementation (the rules are stated in storage.h).
#include "base/storage/storage.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace bulwark {
namespace {

// Keys are quoted in messages C-escaped and cut to this many bytes, so a hostile key cannot
// flood a log or inject control characters.
constexpr size_t kKeyInMessageBytesMax = 96;

std::string Quote(absl::string_view key) {
  const bool cut = key.size() > kKeyInMessageBytesMax;
  return absl::StrCat("\"", absl::CHexEscape(key.substr(0, kKeyInMessageBytesMax)),
                      cut ? "\"..." : "\"");
}

}  // namespace

absl::Status ValidateStorageKey(absl::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("storage key is empty");
  if (key.size() > kStorageKeyBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("storage key ", Quote(key), " is ", key.size(),
                                                   " bytes; the limit is ", kStorageKeyBytesMax));
  }
  const size_t nul = key.find('\0');
  if (nul != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("storage key ", Quote(key), " contains a NUL byte at offset ", nul));
  }
  size_t start = 0;
  while (true) {
    const size_t end = std::min(key.find('/', start), key.size());
    const absl::string_view segment = key.substr(start, end - start);
    if (segment.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("storage key ", Quote(key),
                       " has an empty segment (a leading, trailing or doubled '/')"));
    }
    if (segment == "." || segment == "..") {
      return absl::InvalidArgumentError(absl::StrCat("storage key ", Quote(key), " has a \"",
                                                     segment, "\" segment, which is not allowed"));
    }
    if (end == key.size()) break;
    start = end + 1;
  }
  return absl::OkStatus();
}

}  // namespace bulwark
