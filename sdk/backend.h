// What a C++ plugin author implements: a Vault logical backend (secrets engine or auth method),
// one object per plugin instance (mount), with Vault's request, response and error model.
// Nothing here knows about gRPC: the same backend runs under ServeBackend (serve.h) and in the
// simulator through BackendDispatcher (dispatcher.h). Including it also gives the storage
// client (storage_client.h) and RETURN_IF_ERROR / ASSIGN_OR_RETURN (base/status), which a
// handler uses to return a storage or validation error as it is.
//
//   class Echo : public sdk::Backend {
//    public:
//     sdk::HandleResult HandleRequest(const sdk::Request& req) override {
//       if (req.operation() != sdk::Operation::kRead) return sdk::UnsupportedOperationError();
//       return sdk::Response::WithData({{"path", req.path()}});
//     }
//   };
#ifndef BULWARK_SDK_BACKEND_H_
#define BULWARK_SDK_BACKEND_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/log/log.h"
#include "base/status/status_macros.h"  // RETURN_IF_ERROR, ASSIGN_OR_RETURN: part of the SDK API.
#include "proto/vault/backend.pb.h"
#include "sdk/storage_client.h"

namespace bulwark::sdk {

// --- Operations ------------------------------------------------------------------------------

// Vault's logical.Operation values (sdk/logical/request.go).
enum class Operation {
  kUnknown,  // Anything else; Request::operation_name() has the text.
  kCreate,
  kRead,
  kUpdate,
  kPatch,
  kDelete,
  kList,
  kHelp,
  kAliasLookahead,
  kResolveRole,
  kHeader,
  kRenew,
  kRevoke,
  kRollback,
};

// "create", "read", ..., "alias-lookahead", "resolve-role", "header"; "" for kUnknown.
absl::string_view OperationName(Operation operation);
// The inverse of OperationName; kUnknown for any other text.
Operation ParseOperation(absl::string_view name);

// logical.BackendType, what pb.Backend/Type reports.
enum class BackendType : uint32_t { kUnknown = 0, kLogical = 1, kCredential = 2 };

// --- Errors ----------------------------------------------------------------------------------

// pb.ProtoError.err_type values (Vault sdk/plugin/pb/translation.go). They decide the HTTP
// status Vault answers with.
enum class ErrorType : uint32_t {
  kUnknown = 0,               // errors.New(msg): HTTP 500, message shown.
  kUser = 1,                  // errutil.UserError: 400, message shown.
  kInternal = 2,              // errutil.InternalError: 500.
  kCoded = 3,                 // logical.CodedError(code, msg): that HTTP code, message shown.
  kBadRequest = 4,            // logical.StatusBadRequest: 400, message shown.
  kUnsupportedOperation = 5,  // logical.ErrUnsupportedOperation: 405. Sentinel (see below).
  kUnsupportedPath = 6,       // logical.ErrUnsupportedPath: 404. Sentinel.
  kInvalidRequest = 7,        // logical.ErrInvalidRequest: 400. Sentinel.
  kPermissionDenied = 8,      // logical.ErrPermissionDenied: 403. Sentinel.
  kMultiAuthzPending = 9,     // logical.ErrMultiAuthzPending. Sentinel.
  kUnrecoverable = 10,        // logical.ErrUnrecoverable. Sentinel.
};

// Vault turns the sentinel types (5-10) back into fixed Go errors and drops the message. So
// that a client still learns what was wrong, the dispatcher also sends a sentinel error's
// message as an error response (data {"error": message}, Vault's logical.ErrorResponse) when
// the handler returned no response: Vault's HTTP layer shows that text with the sentinel's
// status code, as for the framework's `logical.ErrorResponse(msg), logical.ErrInvalidRequest`.

// A backend's logical errors are absl::Status values carrying the Vault error type as a
// payload, so they flow through RETURN_IF_ERROR / ASSIGN_OR_RETURN like any other status. The
// canonical code is the closest absl one, for readers and logs; the payload decides the wire.
// Annotate() from base/status makes a new status and drops the payload (the error then
// travels as kUnknown with the annotated text): re-create a logical error instead.
absl::Status UserError(absl::string_view message);                  // kInvalidArgument
absl::Status InternalError(absl::string_view message);              // kInternal
absl::Status CodedError(int http_code, absl::string_view message);  // from the HTTP code
absl::Status BadRequestError(absl::string_view message);            // kInvalidArgument
absl::Status UnsupportedOperationError(absl::string_view message = "unsupported operation");
absl::Status UnsupportedPathError(absl::string_view message = "unsupported path");
absl::Status InvalidRequestError(absl::string_view message);  // kInvalidArgument
absl::Status PermissionDeniedError(absl::string_view message = "permission denied");
absl::Status MultiAuthzPendingError(absl::string_view message = "request is pending");
absl::Status UnrecoverableError(absl::string_view message);  // kInternal

// A logical error as it goes on the wire.
struct LogicalError {
  ErrorType type = ErrorType::kUnknown;
  std::string message;
  int64_t http_code = 0;  // Only for kCoded.
};

// The logical error a non-OK status stands for: its payload when it came from one of the
// functions above, otherwise kUnknown with the status message (no code prefix), which is how
// Vault treats a plain Go error. REQUIRES: !status.ok().
LogicalError ToLogicalError(const absl::Status& status);
// The same as pb.ProtoError.
pb::ProtoError ToProtoError(const absl::Status& status);

// --- Requests and responses ------------------------------------------------------------------

// Largest request data accepted (Vault's default max_request_size is 32 MiB) and deepest JSON
// nesting (the parser recurses, so the depth bounds its stack use).
inline constexpr size_t kRequestDataBytesMax = 32 * 1024 * 1024;
inline constexpr size_t kRequestDataDepthMax = 256;

// One logical request (pb.Request) with its data parsed.
class Request {
 public:
  // Parses `proto.data()`, Vault's JSON text of the request data: an object, "null" or "" (no
  // data; data() is then an empty object). Errors: kInvalidArgument when the data is not JSON,
  // not an object, nested deeper than kRequestDataDepthMax or larger than kRequestDataBytesMax.
  // The message names the position, never the data.
  static absl::StatusOr<Request> FromProto(pb::Request proto);

  // A request made in code, as a host would send it, for a backend's unit tests and for tools:
  // `Request::Make(Operation::kUpdate, "notes/a", {{"value", "x"}})`. CHECK-fails when
  // `operation` is kUnknown or `data` is not a JSON object (programming errors).
  static Request Make(Operation operation, absl::string_view path,
                      nlohmann::json data = nlohmann::json::object());

  Operation operation() const { return operation_; }
  const std::string& operation_name() const { return proto_.operation(); }
  // Relative to the mount, e.g. "foo/bar" for a request to <mount>/foo/bar.
  const std::string& path() const { return proto_.path(); }
  // Always a JSON object.
  const nlohmann::json& data() const { return data_; }
  // Everything else Vault sends: client token, headers, mount point, connection, ...
  const pb::Request& proto() const { return proto_; }

 private:
  Request(pb::Request proto, nlohmann::json data);

  pb::Request proto_;
  nlohmann::json data_;
  Operation operation_;
};

// A logical response (pb.Response).
struct Response {
  nlohmann::json data;  // An object, or null for none.
  std::vector<std::string> warnings;
  std::string redirect;
  std::map<std::string, std::vector<std::string>> headers;
  std::optional<pb::Secret> secret;  // For secrets with leases.
  std::optional<pb::Auth> auth;      // For auth methods.

  static Response WithData(nlohmann::json data);
  // Vault's logical.ErrorResponse: data {"error": message}. Vault answers 400 with the message
  // unless an error type says otherwise.
  static Response ErrorResponse(absl::string_view message);

  // data is sent as compact JSON ("null" when null); strings that are not UTF-8 are repaired
  // with U+FFFD rather than failing the request.
  pb::Response ToProto() const;
};

// What HandleRequest returns: a response; no response (std::nullopt: Vault answers a read with
// 404 and a write with 204); or an error (a logical error from the functions above, or any
// other status, which Vault shows as a 500 with its message).
using HandleResult = absl::StatusOr<std::optional<Response>>;

// HandleExistenceCheck's answer: whether the backend checks existence for this path at all,
// and if so whether the target exists (Vault then authorises a write as create or update).
struct ExistenceCheck {
  bool check_found = false;
  bool exists = false;
};

// Paths with special handling (logical.Paths). Entries are path patterns relative to the
// mount ("login", "config/*").
struct SpecialPaths {
  std::vector<std::string> root;             // Need sudo.
  std::vector<std::string> unauthenticated;  // Need no token.
  std::vector<std::string> local_storage;    // Not replicated.
  std::vector<std::string> seal_wrap_storage;
  std::vector<std::string> write_forwarded_storage;
  std::vector<std::string> binary;
  std::vector<std::string> limited;
  std::vector<std::string> allow_snapshot_read;
};

// --- The backend -----------------------------------------------------------------------------

// What a backend gets when its instance is set up (pb.Backend/Setup).
struct BackendConfig {
  // pb.SetupArgs.Config: the mount's configuration as the host passes it (Vault: plugin_name,
  // plugin_type, plugin_version, ...).
  std::map<std::string, std::string> config;
  std::string backend_uuid;
  // The instance's multiplex id; "" when the plugin does not multiplex.
  std::string multiplex_id;
  // The host's storage for this instance, over its own brokered connection. Never null. Usable
  // until the instance is cleaned up; the backend may keep the pointer.
  std::shared_ptr<StorageClient> storage;
  // Where the backend logs. Never null; outlives the backend. Never log request data, tokens
  // or other secrets.
  LogSink* log = nullptr;
};

// One plugin instance. Thread-safety: REQUIRED. The host sends requests concurrently, so
// HandleRequest, HandleExistenceCheck, InvalidateKey and the accessors may run on several
// threads at once, also while Initialize or Cleanup runs; protect mutable state with a mutex.
// Exceptions escaping a method are caught by the dispatcher and reported as an internal error
// (their text is not sent or logged, as it may contain request data).
class Backend {
 public:
  virtual ~Backend() = default;

  // pb.Backend/Initialize: called once after Setup, when the mount is ready (Vault: after
  // mounting, and after a reload). Storage may be written here. Default: OK.
  virtual absl::Status Initialize() { return absl::OkStatus(); }

  // pb.Backend/HandleRequest: one logical request.
  virtual HandleResult HandleRequest(const Request& request) = 0;

  // pb.Backend/HandleExistenceCheck, for create/update requests. Default: no check
  // (check_found false), so Vault treats every write as an update.
  virtual absl::StatusOr<ExistenceCheck> HandleExistenceCheck(const Request& request) {
    (void)request;
    return ExistenceCheck{};
  }

  // pb.Backend/SpecialPaths. Default: none.
  virtual SpecialPaths special_paths() const { return {}; }

  // pb.Backend/Type. Default: a secrets engine.
  virtual BackendType type() const { return BackendType::kLogical; }

  // pb.Backend/Cleanup: the instance is going away (unmount, seal, reload). No request for
  // this instance starts after it, but requests already running may still finish.
  virtual void Cleanup() {}

  // pb.Backend/InvalidateKey: a storage key changed behind the backend's back (replication,
  // standby); drop anything cached for it.
  virtual void InvalidateKey(absl::string_view key) { (void)key; }
};

// Creates a backend for a new instance (pb.Backend/Setup). Called concurrently for different
// instances. An error is reported to the host in SetupReply.err (Vault fails the mount with it).
using BackendFactory =
    std::function<absl::StatusOr<std::unique_ptr<Backend>>(const BackendConfig& config)>;

// Logs one record to `sink` (a BackendConfig::log). Fields are key/value pairs.
void Log(LogSink* sink, LogLevel level, absl::string_view message,
         std::vector<std::pair<std::string, std::string>> fields = {});

}  // namespace bulwark::sdk

#endif  // BULWARK_SDK_BACKEND_H_
