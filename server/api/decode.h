// Request decoding for the API layer, with no core and no I/O: which endpoint a request names,
// which operation its method means, its data (query or JSON/form body) and its token, and the
// typed bodies of the sys/ and auth/token/ endpoints. Pure functions, so the fuzz target
// (api_request_fuzzer.cc) covers every byte a client controls before the core sees it.
//
// Errors are absl::Status values carrying the HTTP status to answer (HttpStatusFor); their
// messages name the problem and never echo a token or body bytes.
#ifndef BULWARK_SERVER_API_DECODE_H_
#define BULWARK_SERVER_API_DECODE_H_

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/catalog/plugin_entry.h"
#include "core/mount/mount_table.h"
#include "core/token/token_store.h"
#include "server/http/message.h"

namespace bulwark::api {

using Json = nlohmann::json;

// Deepest JSON nesting a request body may have (checked before parsing).
inline constexpr size_t kJsonDepthMax = 64;

// The endpoints the API serves. kLogical is everything routed to a mount through the node.
enum class Route {
  kSysInit,
  kSysSealStatus,
  kSysUnseal,
  kSysSeal,
  kSysHealth,
  kSysLeader,
  kSysStepDown,
  kSysRotate,         // sys/rotate: a new barrier key term
  kSysMounts,         // sys/mounts
  kSysMount,          // sys/mounts/<path>
  kSysMountTune,      // sys/mounts/<path>/tune
  kSysCatalog,        // sys/plugins/catalog
  kSysCatalogType,    // sys/plugins/catalog/<type>
  kSysCatalogEntry,   // sys/plugins/catalog/<type>/<name>
  kSysCatalogLegacy,  // sys/plugins/catalog/<name> (no type): deprecated in Vault
  kSysPluginsReload,  // sys/plugins/reload/backend
  kSysMetrics,
  kSysWrappingUnwrap,      // sys/wrapping/unwrap
  kSysLeasesRenew,         // sys/leases/renew[/<lease_id>], sys/renew[/<lease_id>]
  kSysLeasesRevoke,        // sys/leases/revoke[/<lease_id>], sys/revoke[/<lease_id>]
  kSysLeasesRevokePrefix,  // sys/leases/revoke-prefix/<prefix>
  kSysLeasesLookup,        // sys/leases/lookup (PUT), sys/leases/lookup/<prefix> (LIST)
  kSysAudit,               // sys/audit (list)
  kSysAuditDevice,         // sys/audit/<path> (enable, disable)
  kSysAuditHash,           // sys/audit-hash/<path>
  kSysUnknown,             // any other sys/ path: 404 once authorised
  kTokenLookupSelf,
  kTokenCreate,
  kTokenRevokeSelf,
  kTokenUnknown,  // any other auth/token/ path
  kLogical,
};
// A stable name for logs and metric labels ("sys/init", "logical", ...).
absl::string_view RouteName(Route route);

// Vault's logical operations, from the HTTP method (and ?list=).
enum class Operation { kRead, kList, kUpdate, kPatch, kDelete, kHead };
absl::string_view OperationName(Operation op);  // "read", "list", "update", ...

struct ApiRequest {
  Route route = Route::kLogical;
  Operation operation = Operation::kRead;
  // The path below /v1/, e.g. "secret/foo"; list operations end in '/' (Vault appends it).
  std::string path;
  // The endpoint's path parameter: a mount path for kSysMount/kSysMountTune, a plugin name for
  // the catalog routes, a lease id or prefix for the sys/leases routes.
  std::string param;
  catalog::PluginType plugin_type = catalog::PluginType::kSecret;
  // The request's data: the query parameters (read, list, delete, head; "list" removed) or the
  // body (update, patch). Always a JSON object.
  Json data = Json::object();
  // X-Vault-Token, else the credentials of "Authorization: Bearer ..."; "" when neither.
  std::string token;
};

// Decodes `request`. Errors (as HTTP statuses): 404 for a path outside /v1/ or empty below it;
// 400 for a path with control characters, empty, "." or ".." segments, a ?list= that is not a
// boolean, malformed or too deeply nested JSON, a JSON body that is not an object, or
// X-Vault-Wrap-TTL (response wrapping is not offered); 405 for a method the endpoint does not
// take; 415 for PATCH without application/merge-patch+json.
absl::StatusOr<ApiRequest> DecodeRequest(const http::Request& request);

// ---- HTTP statuses on absl::Status -------------------------------------------------------------

// A status that answers with `http_status` and `message` ("" gives Vault's `{"errors":[]}`).
absl::Status HttpError(int http_status, absl::string_view message);
// The HTTP status for `status`: the one HttpError attached, else by canonical code (400
// invalid argument / already exists / out of range, 403 permission denied, 404 not found, 405
// unimplemented, 429 resource exhausted, 503 unavailable or the node's not-serving states,
// 500 otherwise).
int HttpStatusFor(const absl::Status& status);

// ---- Small parsers, Go's rules ------------------------------------------------------------------

// strconv.ParseBool: 1 t T TRUE true True 0 f F FALSE false False.
std::optional<bool> ParseGoBool(absl::string_view text);
// Vault's parseutil.ParseDurationSecond: an integer number of seconds (JSON number or string),
// or a Go duration string ("90s", "1h30m"), or days ("7d").
absl::StatusOr<absl::Duration> ParseDurationSecond(const Json& value, absl::string_view field);

// ---- Endpoint bodies ----------------------------------------------------------------------------

struct InitBody {
  int secret_shares = 0;
  int secret_threshold = 0;
};
// sys/init: checks Vault's seal-configuration rules with Vault's messages ("invalid seal
// configuration: shares must be at least one", ...); PGP keys and recovery parameters are
// refused (400).
absl::StatusOr<InitBody> DecodeInit(const Json& data);

struct UnsealBody {
  std::string key;  // Decoded bytes of the share (hex first, then base64).
  bool reset = false;
};
// sys/unseal: field names match case-insensitively (Vault's untagged Go struct).
absl::StatusOr<UnsealBody> DecodeUnseal(const Json& data);

// sys/mounts/<path> (POST). `path` is the route's parameter.
absl::StatusOr<mount::EnableRequest> DecodeMountEnable(absl::string_view path, const Json& data);
// sys/mounts/<path>/tune (POST).
absl::StatusOr<mount::TuneRequest> DecodeMountTune(const Json& data);

// sys/plugins/catalog/<type>/<name> (PUT/POST).
absl::StatusOr<catalog::RegisterRequest> DecodePluginRegister(catalog::PluginType type,
                                                              absl::string_view name,
                                                              const Json& data);

// sys/audit/<path> (PUT/POST): {"type":"file","description":"...","options":{"file_path":..}}.
// Option values may be JSON strings, numbers or booleans (kept as their text).
struct AuditEnableBody {
  std::string type;
  std::string description;
  std::map<std::string, std::string> options;
};
absl::StatusOr<AuditEnableBody> DecodeAuditEnable(const Json& data);

struct ReloadBody {
  std::optional<std::string> plugin;
  std::vector<std::string> mounts;
  bool global = false;  // scope "global": Vault answers 202.
};
absl::StatusOr<ReloadBody> DecodeReload(const Json& data);

struct TokenCreateBody {
  token::CreateRequest request;
  std::vector<std::string> ignored;  // Recognised Vault parameters bulwark does not apply.
};
absl::StatusOr<TokenCreateBody> DecodeTokenCreate(const Json& data);

struct HealthQuery {
  bool standby_ok = false;
  bool perf_standby_ok = false;
  int active_code = 200;
  int standby_code = 429;
  int dr_secondary_code = 472;
  int perf_standby_code = 473;
  int sealed_code = 503;
  int uninit_code = 501;
};
// sys/health's query: a bad boolean or code is 400 with `{"errors":[]}`.
absl::StatusOr<HealthQuery> DecodeHealthQuery(const Json& data);

// JSON text of `value` that never throws: invalid UTF-8 is replaced.
std::string Dump(const Json& value);

}  // namespace bulwark::api

#endif  // BULWARK_SERVER_API_DECODE_H_
