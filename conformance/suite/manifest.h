// The plugin manifest: what a plugin claims (its type, the protocol versions it speaks, the
// optional profiles it implements, performance limits), read from JSON and strictly validated:
// an unknown key, a wrong type or an unknown profile is an error that names it, so a typo can
// never silently weaken a certification.
//
//   {
//     "manifest_version": 1,
//     "name": "kv",
//     "type": "secret",                  // "secret", "auth" or "database"
//     "protocol_versions": [5],          // app-protocol versions the plugin offers
//     "profiles": ["multiplexing"],      // optional profiles claimed
//     "env": ["KV_MODE=strict"],         // extra environment for every launch (catalog env)
//     "backend": {                       // required for secret/auth: the probe (BackendProbe)
//       "write_path": "conformance/probe", "write_data": {"value": "x"},
//       "read_fields": {"value": "x"},   // optional: what a read answers (default write_data)
//       "idempotent_writes": true,       // optional (default true)
//       "delete": true                   // optional (default true)
//     },
//     "database": {                      // required for database plugins
//       "config": {"connection_url": "{{scratch_dir}}/db"},   // the Initialize config
//       "unreachable_config": {...},     // optional: a config whose database cannot be reached
//       "creation_statements": ["..."]   // optional: sent with every NewUser
//     },
//     "performance": {                   // optional limits; absent = reported only
//       "max_startup_ms": 500, "max_p50_us": 2000, "max_p99_us": 20000,
//       "max_idle_rss_kib": 65536
//     }
//   }
#ifndef BULWARK_CONFORMANCE_SUITE_MANIFEST_H_
#define BULWARK_CONFORMANCE_SUITE_MANIFEST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bulwark::conformance {

inline constexpr int kManifestVersion = 1;
// Longest manifest accepted, and most entries in each list.
inline constexpr size_t kManifestBytesMax = 64 * 1024;
inline constexpr size_t kManifestListMax = 64;

enum class PluginType { kSecret, kAuth, kDatabase };
absl::string_view PluginTypeName(PluginType type);  // "secret", "auth", "database"

struct PerformanceLimits {
  std::optional<double> max_startup_ms;
  std::optional<double> max_p50_us;
  std::optional<double> max_p99_us;
  std::optional<uint64_t> max_idle_rss_kib;
};

// The backend probe (docs/conformance.md, "The backend probe"): a path a backend plugin lets the
// suite write and read, what it sends there and what it must read back. The suite writes
// write_data with "create" the first time and "update" after; reads with "read"; deletes with
// "delete" when the probe has one.
struct BackendProbe {
  std::string write_path;
  std::string write_data_json;  // A JSON object, compact.
  // The fields (compact JSON objects) a read of write_path answers after the 1st, 2nd, ... write
  // to it in a fresh mount. The default, [write_data], is a key/value store's echo. A read must
  // carry each field with that value; other fields are free.
  std::vector<std::string> read_fields_json;
  // Whether writing write_data again leaves what a read answers unchanged. When false (a counter)
  // read_fields_json has at least 2 entries, and after more writes than it has entries the
  // values are unknown to the suite.
  bool idempotent_writes = true;
  // Whether "delete" of write_path removes it (a read then finds nothing). When false, delete
  // must be refused in band and change nothing.
  bool deletable = true;

  // The fields a read must answer after `writes` (>= 1) writes: read_fields_json[writes - 1],
  // its last entry for later writes when writes are idempotent, else nullopt (unknown).
  std::optional<std::string> ReadFieldsAfter(size_t writes) const;
  // One line per check the suite adapts to this probe ("Backend.ConcurrentRequests: ..."):
  // empty for a key/value probe (idempotent, deletable). Records and certificates carry them.
  std::vector<std::string> Adaptations() const;
};

struct Manifest {
  std::string name;
  PluginType type = PluginType::kSecret;
  std::vector<int> protocol_versions;
  std::vector<std::string> profiles;  // Optional profiles claimed, sorted, no duplicates.
  std::vector<std::string> env;       // "KEY=VALUE", passed to every launch.
  PerformanceLimits performance;
  BackendProbe backend_probe;  // Required (non-empty write_path) for secret and auth.
  // Required for database plugins: the Initialize config (a JSON object, compact). Every
  // "{{scratch_dir}}" in its string values is replaced by a fresh empty directory per test,
  // every "{{env:NAME}}" by the suite's environment variable NAME (see ExpandDatabaseConfig).
  std::string database_config_json;
  // Optional: an Initialize config (same expansion) whose database cannot be reached, for the
  // tests of connection verification. Empty: the config with {{scratch_dir}} pointing at a
  // directory that does not exist.
  std::string database_unreachable_config_json;
  // Optional: the statements every NewUser carries (a plugin like Vault's PostgreSQL one has
  // no default creation statement).
  std::vector<std::string> database_creation_statements;

  bool is_backend() const { return type != PluginType::kDatabase; }
  bool Claims(absl::string_view profile) const;
  // The magic cookie key and value a host sets for this plugin type (Vault's).
  std::string cookie_key() const;
  std::string cookie_value() const;
};

// Parses and validates a manifest. Errors (kInvalidArgument, naming the key and the problem):
// not a JSON object, unknown key, wrong type, manifest_version not 1, missing name/type/
// protocol_versions, a type other than secret/auth/database, a protocol version outside 1..99,
// a profile that is not optional ("multiplexing") or repeated, an env entry without '=', a
// backend probe whose read_fields is not a non-empty object or a non-empty array of them, or
// whose idempotent_writes is false without read_fields for 2 writes, a negative or non-finite
// limit, input longer than kManifestBytesMax or lists longer than
// kManifestListMax.
absl::StatusOr<Manifest> ParseManifest(absl::string_view json_text);

// The manifest as reports show it: the parsed JSON with every "env" value and every string in
// "database.config" and "database.unreachable_config" replaced by "(redacted)" (they may hold
// test credentials). Deterministic, so
// records of one run compare equal. `json_text` must be a manifest ParseManifest accepted.
std::string RedactedManifestJson(absl::string_view json_text);

// The database config with every "{{scratch_dir}}" replaced by `scratch_dir` and every
// "{{env:NAME}}" by the environment variable NAME (JSON-escaped; "" when unset: the suite
// refuses to start then, see MissingDatabaseEnv).
std::string ExpandDatabaseConfig(const Manifest& manifest, absl::string_view scratch_dir);
// The same for the unreachable configuration (see database_unreachable_config_json).
std::string ExpandUnreachableDatabaseConfig(const Manifest& manifest,
                                            absl::string_view scratch_dir);
// The NAMEs of "{{env:NAME}}" references in the database configs that are not set, sorted.
std::vector<std::string> MissingDatabaseEnv(const Manifest& manifest);

}  // namespace bulwark::conformance

#endif  // BULWARK_CONFORMANCE_SUITE_MANIFEST_H_
