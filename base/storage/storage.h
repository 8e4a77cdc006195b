// Storage: the key/value interface shared by physical backends (in-memory, file) and by the
// barrier, which presents an encrypted view of a physical backend with the same interface.
// Components behind the barrier (catalog, mount table) depend only on this.
#ifndef BULWARK_BASE_STORAGE_STORAGE_H_
#define BULWARK_BASE_STORAGE_STORAGE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bulwark {

// Keys are non-empty byte strings of at most kStorageKeyBytesMax bytes, '/'-separated like
// Vault's storage paths (no NUL bytes, no empty segments, no "." or ".." segments); values are
// at most kStorageValueBytesMax bytes.
inline constexpr size_t kStorageKeyBytesMax = 1024;
inline constexpr size_t kStorageValueBytesMax = 4 << 20;

// Checks `key` against the rules above; InvalidArgument naming the rule it breaks.
absl::Status ValidateStorageKey(absl::string_view key);

// Synchronous; single-threaded (called from the event loop). Errors common to every method:
//   kInvalidArgument     a key or value that breaks the rules above
//   kFailedPrecondition  the barrier is sealed (barrier views only)
//   kDataLoss            stored bytes are corrupt or fail to authenticate
//   others               as returned by the underlying FileSystem (kUnavailable, ...)
class Storage {
 public:
  virtual ~Storage() = default;

  // The value at `key`, or nullopt if there is none.
  virtual absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) = 0;

  // Stores `value` at `key`, replacing any value. When Put returns OK the write is durable
  // (it survives a crash of the machine) and a later Get returns it; when it fails, the old
  // value or the new one is there, never a mix.
  virtual absl::Status Put(absl::string_view key, absl::string_view value) = 0;

  // Removes `key`; OK if it did not exist. Durable when it returns OK.
  virtual absl::Status Delete(absl::string_view key) = 0;

  // Keys that start with `prefix`, sorted bytewise, as full keys.
  virtual absl::StatusOr<std::vector<std::string>> List(absl::string_view prefix) = 0;
};

}  // namespace bulwark

#endif  // BULWARK_BASE_STORAGE_STORAGE_H_
