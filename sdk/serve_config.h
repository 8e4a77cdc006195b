// What a plugin learns from its launch environment before it serves, as go-plugin's `Serve`
// reads it: the magic cookie, the app-protocol version, AutoMTLS, where to listen, and Vault's
// mlock and metadata-mode switches. Pure (the environment comes through a lookup function), so
// every rule is testable without starting a process.
#ifndef BULWARK_SDK_SERVE_CONFIG_H_
#define BULWARK_SDK_SERVE_CONFIG_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "protocol/wire_names.h"

namespace bulwark::sdk {

// Vault's handshakes (cookies and protocol versions), defined in protocol/wire_names.h.
using protocol::kVaultBackendCookieKey;
using protocol::kVaultBackendCookieValue;
using protocol::kVaultBackendProtocolVersion;
using protocol::kVaultDatabaseCookieKey;
using protocol::kVaultDatabaseCookieValue;
using protocol::kVaultDatabaseMultiplexedProtocolVersion;
using protocol::kVaultDatabaseProtocolVersion;

// Reads one environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(absl::string_view name)>;

// The process environment (getenv).
EnvLookup ProcessEnvLookup();

// What go-plugin prints to stderr, before exiting 1, when the cookie does not match
// (server.go `Serve`, v1.0.1 and HEAD), and when the plugin itself configured no cookie.
inline constexpr absl::string_view kNotAPluginMessage =
    "This binary is a plugin. These are not meant to be executed directly.\n"
    "Please execute the program that consumes these plugins, which will\n"
    "load any plugins automatically\n";
inline constexpr absl::string_view kMisconfiguredCookieMessage =
    "Misconfigured ServeConfig given to serve this plugin: no magic cookie\n"
    "key or value was set. Please notify the plugin author and report\n"
    "this as a bug.\n";

// Errors: kInvalidArgument when `key` or `value` is empty (the plugin is misconfigured;
// message kMisconfiguredCookieMessage); kFailedPrecondition when the environment's value of
// `key` is not `value` (message kNotAPluginMessage). Compared exactly, like go-plugin.
absl::Status CheckMagicCookie(const EnvLookup& env, absl::string_view key, absl::string_view value);

struct ServeEnv {
  // The negotiated app-protocol version: the highest of the plugin's versions that the host
  // offers in PLUGIN_PROTOCOL_VERSIONS.
  int app_version = 0;
  // PLUGIN_PROTOCOL_VERSIONS entries that are not integers (skipped; worth a warning).
  std::vector<std::string> invalid_version_entries;
  // PLUGIN_CLIENT_CERT: the host's AutoMTLS certificate (PEM); unset means no TLS.
  std::optional<std::string> client_cert_pem;
  // PLUGIN_MULTIPLEX_GRPC was set (non-empty): the handshake line gets a 7th field.
  bool multiplex_grpc = false;
  // Where the unix socket goes: PLUGIN_UNIX_SOCKET_DIR, else TMPDIR, else "/tmp" (first
  // non-empty). May be relative when the variable was.
  std::string socket_dir;
  // PLUGIN_UNIX_SOCKET_GROUP: a group name or numeric gid for the socket (mode 0660).
  std::optional<std::string> socket_group;
  // VAULT_PLUGIN_MLOCK_ENABLED == "true" (Vault's pluginutil.OptionallyEnableMlock).
  bool mlock = false;
  // VAULT_PLUGIN_METADATA_MODE == "true" (pluginutil.InMetadataMode).
  bool metadata_mode = false;
  // VAULT_UNWRAP_TOKEN (non-empty): the host wants Vault's legacy (pre-AutoMTLS) TLS flow, in
  // which the plugin unwraps its certificate at start-up (sdk/unwrap.h). A secret.
  std::optional<std::string> unwrap_token;
};

// Reads the environment (after CheckMagicCookie). Errors: kFailedPrecondition when the host
// offers none of `supported_versions` (the message lists both; go-plugin would print a line
// with its lowest version and let the host reject it, the SDK refuses at once); kInvalidArgument
// when PLUGIN_PROTOCOL_VERSIONS is oversized or `supported_versions` is empty or has
// duplicates.
absl::StatusOr<ServeEnv> ReadServeEnv(const EnvLookup& env,
                                      const std::vector<int>& supported_versions);

// PLUGIN_MIN_PORT..PLUGIN_MAX_PORT for the TCP fallback listener. An unset or empty variable is
// 0, and 0..0 means any free port, as in go-plugin. Errors: kInvalidArgument when a value is not
// a decimal integer in 0..65535, or min > max.
struct PortRange {
  int min = 0;
  int max = 0;
};
absl::StatusOr<PortRange> ReadPortRange(const EnvLookup& env);

}  // namespace bulwark::sdk

#endif  // BULWARK_SDK_SERVE_CONFIG_H_
