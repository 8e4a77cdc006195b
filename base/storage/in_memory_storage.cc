// InMemoryStorage (see in_memory_storage.h).
#include "base/storage/in_memory_storage.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status/status_macros.h"

namespace bulwark {

absl::StatusOr<std::optional<std::string>> InMemoryStorage::Get(absl::string_view key) {
  RETURN_IF_ERROR(ValidateStorageKey(key));
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

absl::Status InMemoryStorage::Put(absl::string_view key, absl::string_view value) {
  RETURN_IF_ERROR(ValidateStorageKey(key));
  if (value.size() > kStorageValueBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("storage value is ", value.size(),
                                                   " bytes; the limit is ", kStorageValueBytesMax));
  }
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    entries_.emplace(std::string(key), std::string(value));
  } else {
    it->second.assign(value.data(), value.size());  // Reuses the buffer when it is big enough.
  }
  return absl::OkStatus();
}

absl::Status InMemoryStorage::Delete(absl::string_view key) {
  RETURN_IF_ERROR(ValidateStorageKey(key));
  auto it = entries_.find(key);
  if (it != entries_.end()) entries_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> InMemoryStorage::List(absl::string_view prefix) {
  std::vector<std::string> keys;
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && absl::StartsWith(it->first, prefix); ++it) {
    keys.push_back(it->first);
  }
  return keys;
}

}  // namespace bulwark
