// A key/value secrets engine written against the C++ SDK: JSON objects stored under keys in the
// host's storage (over the broker, never in plugin memory), as Vault's kv version 1 does.
#ifndef BULWARK_EXAMPLES_KV_KV_BACKEND_H_
#define BULWARK_EXAMPLES_KV_KV_BACKEND_H_

#include <cstddef>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sdk/backend.h"

namespace bulwark::examples::kv {

// Limits. A key is a '/'-separated path; each segment is 1+ of [A-Za-z0-9._-], and neither "."
// nor "..". Values are JSON objects with 1..kFieldsMax fields, each name 1..kFieldNameBytesMax
// bytes, stored as compact JSON of at most kValueBytesMax bytes.
inline constexpr size_t kKeyBytesMax = 512;
inline constexpr size_t kKeySegmentsMax = 32;
inline constexpr size_t kFieldsMax = 256;
inline constexpr size_t kFieldNameBytesMax = 256;
inline constexpr size_t kValueBytesMax = 64 * 1024;

// The pure-RPC benchmark path: create/update return the request data unchanged and touch no
// storage, as examples/goplugin's "echo" does, so both plugins can be timed on the same call.
// It shadows a key of the same name.
inline constexpr absl::string_view kEchoPath = "echo";

// Checks a key against the rules above. Errors: kInvalidArgument as a UserError (Vault 400)
// whose message names the key (quoted, cut) and the offending character or segment.
absl::Status ValidateKey(absl::string_view key);

// Paths and operations (relative to the mount):
//   create/update <key>   store the request data, a non-empty JSON object     -> no response
//   read <key>            the stored object, or no response (Vault: 404)      -> data
//   delete <key>          remove it (OK when absent)                          -> no response
//   list "" or <prefix>/  the keys directly under the prefix, sub-folders with a trailing '/'
//                         -> {"keys": [...]}; a list path without '/' is treated as a prefix
//   create/update echo    the request data back, no storage (kEchoPath)       -> data
// Errors, as Vault error types:
//   UserError (1)             invalid key
//   CodedError 413 (3)        the stored JSON would exceed kValueBytesMax
//   UnsupportedOperation (5)  any other operation (patch, help, renew, ...); on kEchoPath,
//                             anything but create and update
//   UnsupportedPath (6)       read/write/delete of the mount root "" or of a path ending '/'
//   InvalidRequest (7)        no data, or too many fields, or a bad field name
//   kUnknown (0)              storage failures, with the host's text unchanged (e.g.
//                             "cannot write to readonly storage" on a performance standby)
// HandleExistenceCheck reports whether the key exists, so Vault can authorise create and
// update separately. Thread-safe: every request goes straight to storage, nothing is cached.
class KvBackend final : public sdk::Backend {
 public:
  explicit KvBackend(const sdk::BackendConfig& config);

  sdk::HandleResult HandleRequest(const sdk::Request& request) override;
  absl::StatusOr<sdk::ExistenceCheck> HandleExistenceCheck(const sdk::Request& request) override;
  void Cleanup() override;

 private:
  sdk::HandleResult Read(absl::string_view key);
  sdk::HandleResult Write(absl::string_view key, const nlohmann::json& data);
  sdk::HandleResult Delete(absl::string_view key);
  sdk::HandleResult List(absl::string_view path);
  sdk::HandleResult Echo(const sdk::Request& request);

  const std::shared_ptr<sdk::StorageClient> storage_;
  LogSink* const log_;
};

// The factory ServeBackend and the simulator use.
sdk::BackendFactory KvBackendFactory();

}  // namespace bulwark::examples::kv

#endif  // BULWARK_EXAMPLES_KV_KV_BACKEND_H_
