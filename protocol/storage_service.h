// Vault's pb.Storage served over a Storage&: the one implementation of the host's side of the
// plugin's storage calls, used by the core's per-mount host services and by the SDK's in-memory
// test host alike, so both answer exactly as Vault's GRPCStorageServer does.
#ifndef BULWARK_PROTOCOL_STORAGE_SERVICE_H_
#define BULWARK_PROTOCOL_STORAGE_SERVICE_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/storage/storage.h"

namespace bulwark::protocol {

// Most keys one List returns to a plugin; more is an error naming the limit.
inline constexpr size_t kListKeysMax = 100000;

// Not thread-safe: calls must be serialized, like calls on the Storage beneath.
class StorageService {
 public:
  // `storage` outlives the service. Every key the plugin names is confined beneath `prefix`,
  // which is empty or ends in '/' (e.g. "logical/<mount uuid>/"): the storage key rules (no "..",
  // no empty segments) make escaping it impossible.
  StorageService(Storage& storage, std::string prefix);

  // Whether `method` is one of pb.Storage's four (Get, Put, Delete, List).
  static bool Serves(absl::string_view method);

  // Serves one pb.Storage call from its serialized request. Storage errors and keys that break
  // the rules travel in the reply's `err` string, as in Vault (the call itself succeeds); a
  // missing entry is a Get reply without `entry`. List returns the keys one level below the
  // prefix, folders with a trailing '/', sorted (Vault's logical.Storage List).
  // Errors: kInvalidArgument when the request does not parse (names the method);
  // kUnimplemented for a method that is not pb.Storage's.
  absl::StatusOr<std::string> Handle(absl::string_view method, absl::string_view request);

 private:
  absl::StatusOr<std::string> Key(absl::string_view key) const;

  Storage& storage_;
  const std::string prefix_;
};

}  // namespace bulwark::protocol

#endif  // BULWARK_PROTOCOL_STORAGE_SERVICE_H_
