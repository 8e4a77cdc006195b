// The audit broker and its file device: Vault's sys/audit. Every request the API serves while
// the node is unsealed and a device is enabled is written as one JSON line before it runs, and
// its response as another after it; every string value in request data and response, and every
// token and accessor, is replaced by "hmac-sha256:<hex>", the HMAC-SHA256 of the string under the
// device's salt. Salts and the device table live behind the barrier (kTableKey): they are
// loaded at unseal and forgotten at seal, so nothing in an audit file can be checked against a
// guess without the unsealed server (sys/audit-hash).
//
// Fail-closed (Vault's rule): when devices are enabled and none of them records the request,
// LogRequest fails and the caller must not run the request; likewise for LogResponse, whose
// failure the caller turns into an error answer.
//
// Files are reached only through the Env's FileSystem (NewAppendableFile). Entries are appended
// with no fsync per line (Vault's file device alike). Single-threaded: the node's event loop.
#ifndef BULWARK_CORE_AUDIT_AUDIT_H_
#define BULWARK_CORE_AUDIT_AUDIT_H_

#include <cstddef>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/crypto/hmac.h"
#include "base/env/env.h"
#include "base/log/log.h"
#include "base/storage/storage.h"

namespace bulwark::audit {

using Json = nlohmann::json;

// Storage key (behind the barrier) of the device table, salts included.
inline constexpr absl::string_view kTableKey = "core/audit/table";
inline constexpr absl::string_view kHashPrefix = "hmac-sha256:";
// Named limits: devices in the table, bytes of a salt, bytes of one option value.
inline constexpr size_t kDevicesMax = 16;
inline constexpr size_t kSaltBytes = 32;
inline constexpr size_t kOptionBytesMax = 4096;

// "hmac-sha256:" + hex(HMAC-SHA256(salt, value)).
std::string HashString(const crypto::HmacSha256Key& salt, absl::string_view value);
std::string HashString(absl::string_view salt, absl::string_view value);
// Replaces every string in `value` — object members and array elements, at any depth — by its
// HashString. Object keys, numbers, booleans and nulls are kept. Iterative: any depth is safe.
void HashStrings(const crypto::HmacSha256Key& salt, Json& value);
void HashStrings(absl::string_view salt, Json& value);

// What sys/audit lists for one device (never its salt).
struct DeviceView {
  std::string path;  // "file/" (always ends in '/').
  std::string type;  // "file".
  std::string description;
  std::map<std::string, std::string> options;
};

// One request (and, for LogResponse, its answer) as the API saw it.
struct AuditRecord {
  absl::Time time;
  std::string request_id;
  std::string operation;  // "read", "update", ...
  std::string path;       // Below /v1/, e.g. "secret/foo".
  std::string remote_address;
  const Json* data = nullptr;  // Request data (query or body); null for none.
  // The caller's token and what it resolved to ("" when there was none or it is not valid).
  std::string client_token;
  std::string accessor;
  std::string display_name;
  std::vector<std::string> policies;
  // Response only.
  int status_code = 0;
  const Json* response = nullptr;  // The answer's JSON body; null for none.
  std::string response_text;       // A body that is not JSON (hashed as one string).
  std::string error;               // The answer's error text ("" on success); never a secret.
};

class AuditBroker {
 public:
  // `barrier` holds the table; every reference must outlive the broker.
  AuditBroker(Env& env, Storage& barrier, LogSink& log);
  ~AuditBroker();
  AuditBroker(const AuditBroker&) = delete;
  AuditBroker& operator=(const AuditBroker&) = delete;

  // At unseal: reads the table and opens every device. A device whose file does not open stays
  // enabled (its writes fail, so requests fail closed until the file can be written or the
  // device is disabled); the failure is logged. Errors: the table is unreadable or corrupt.
  absl::Status Load();
  // At seal: closes every device and forgets the table and its salts.
  void Unload();

  // True when at least one device is enabled: the API's one check on the request path.
  // Also true after a Load that failed: then every write fails (fail-closed) until a Load works.
  bool enabled() const { return !devices_.empty() || !load_error_.ok(); }

  // sys/audit/<path> (PUT). `path` is normalised to end in '/'. Errors (kInvalidArgument):
  // empty or malformed path, "path already in use", type other than "file", a missing or
  // relative file_path, an unknown option, log_raw; kFailedPrecondition when the file cannot be
  // opened for appending (nothing is stored then); kResourceExhausted past kDevicesMax; storage
  // errors as they are.
  absl::Status Enable(absl::string_view path, absl::string_view type, absl::string_view description,
                      const std::map<std::string, std::string>& options);
  // sys/audit/<path> (DELETE). kNotFound when no device is there... the API answers 204 anyway.
  absl::Status Disable(absl::string_view path);
  // Devices in path order.
  std::vector<DeviceView> List() const;
  // sys/audit-hash/<path>: HashString under that device's salt. kNotFound for no such device.
  absl::StatusOr<std::string> Hash(absl::string_view path, absl::string_view input) const;

  // Writes the entry to every device. OK when there are no devices or at least one wrote it;
  // otherwise kInternal naming each device's failure (never an entry's content).
  absl::Status LogRequest(const AuditRecord& record);
  absl::Status LogResponse(const AuditRecord& record);

 private:
  struct Device;

  absl::Status LoadTable();
  absl::Status Write(bool response, const AuditRecord& record);
  absl::Status Store() const;
  void Log(LogLevel level, std::string message,
           std::vector<std::pair<std::string, std::string>> fields = {});

  Env& env_;
  Storage& barrier_;
  LogSink& log_;
  std::map<std::string, std::unique_ptr<Device>> devices_;  // By path.
  absl::Status load_error_;  // The last Load's error; OK after Unload.
};

// Normalises a device path ("file" -> "file/"); kInvalidArgument for an empty path or one with
// empty, "." or ".." segments or control characters.
absl::StatusOr<std::string> NormalizeDevicePath(absl::string_view path);

}  // namespace bulwark::audit

#endif  // BULWARK_CORE_AUDIT_AUDIT_H_
