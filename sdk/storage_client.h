// A typed client for Vault's pb.Storage service over a HostConnection: what a backend uses to
// keep its state in the host's (encrypted) storage instead of its own memory.
#ifndef BULWARK_SDK_STORAGE_CLIENT_H_
#define BULWARK_SDK_STORAGE_CLIENT_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "protocol/host_connection.h"
#include "protocol/wire_names.h"

namespace bulwark::sdk {

// pb.Storage's full method names, defined in protocol/wire_names.h.
using protocol::kStorageDeleteMethod;
using protocol::kStorageGetMethod;
using protocol::kStorageListMethod;
using protocol::kStoragePutMethod;

// The error strings Vault's storage returns when a write is not allowed
// (sdk/logical/storage.go): on a performance standby, and while the mount is being set up.
// Vault finds them by substring in a backend's error text to forward the request to the active
// node, so the SDK passes them through unchanged.
inline constexpr absl::string_view kErrReadOnly = "cannot write to readonly storage";
inline constexpr absl::string_view kErrSetupReadOnly = "cannot write to storage during setup";

// One stored value (pb.StorageEntry).
struct StorageEntry {
  std::string key;
  std::string value;       // Opaque bytes.
  bool seal_wrap = false;  // Ask the host to seal-wrap the value (Enterprise feature in Vault).

  friend bool operator==(const StorageEntry& a, const StorageEntry& b) {
    return a.key == b.key && a.value == b.value && a.seal_wrap == b.seal_wrap;
  }
};

// Thread-safe if the HostConnection is (every HostConnection must be). Copying is cheap and
// shares the connection.
//
// Error codes of every method:
//   - what HostConnection::Call returned (kUnavailable, kDeadlineExceeded, ...), with the
//     operation and key named in front of the message;
//   - the host's own error string (the reply's `err` field), as the message *unchanged*:
//     kFailedPrecondition for kErrReadOnly and kErrSetupReadOnly, kUnknown for anything else
//     (the host reports no code);
//   - kInternal when the reply is not a valid message.
// Return such errors from a handler as they are (RETURN_IF_ERROR): the host then sees the same
// text, which Vault needs to forward writes from a standby.
class StorageClient {
 public:
  explicit StorageClient(std::shared_ptr<protocol::HostConnection> connection);

  // The entry under `key`, or nullopt when there is none.
  absl::StatusOr<std::optional<StorageEntry>> Get(absl::string_view key) const;

  // Stores `entry`, replacing any entry with the same key.
  absl::Status Put(const StorageEntry& entry) const;
  // Stores `value` under `key` (not seal-wrapped), replacing any entry with the same key.
  absl::Status Put(absl::string_view key, absl::string_view value) const;

  // Removes the entry under `key`; OK when there was none.
  absl::Status Delete(absl::string_view key) const;

  // The keys directly under `prefix` (Vault's semantics): for every key starting with `prefix`,
  // the rest up to and including its next '/', de-duplicated, so "a/b/c" listed under "a/" gives
  // "b/". Order is the host's (Vault: sorted).
  absl::StatusOr<std::vector<std::string>> List(absl::string_view prefix) const;

 private:
  std::shared_ptr<protocol::HostConnection> connection_;
};

}  // namespace bulwark::sdk

#endif  // BULWARK_SDK_STORAGE_CLIENT_H_
