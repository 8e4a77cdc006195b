// Builds a plugin process's environment in the order Vault and go-plugin layer it, so a Go
// plugin sees under bulwark the variables (and winning values) it would see under Vault. Pure.
//
// Layers, later entries winning (Vault >= 1.16, sdk/helper/pluginutil/run_config.go
// `generateCmd`, GH-25128; go-plugin HEAD dd3617ad client.go `Start` L638-718):
//
//   1. the host's own environment (Vault: os.Environ())           PluginEnvInput::host_env
//   2. the catalog entry's env ("K=V" given at registration)      PluginEnvInput::entry_env
//   3. the host's extra variables (Vault: the pluginutil.Env       PluginEnvInput::extra_env
//      RunOpt, which appends to the entry's env)
//   4. Vault's SDK variables, in this order:                      PluginEnvInput::vault
//        VAULT_PLUGIN_MLOCK_ENABLED=true      only when mlock is on
//        VAULT_VERSION=<version>
//        VAULT_PLUGIN_METADATA_MODE=<true|false>
//        VAULT_PLUGIN_AUTOMTLS_ENABLED=<true|false>
//        VAULT_UNWRAP_TOKEN=<jwt>             only when neither AutoMTLS nor metadata mode
//   5. go-plugin's variables, in this order:
//        <MagicCookieKey>=<MagicCookieValue>
//        PLUGIN_MIN_PORT=<n>
//        PLUGIN_MAX_PORT=<n>
//        PLUGIN_PROTOCOL_VERSIONS=<v1,v2,...>
//        PLUGIN_MULTIPLEX_GRPC=true           only with broker multiplexing (go-plugin >= v1.6.0)
//        PLUGIN_CLIENT_CERT=<PEM>             only with AutoMTLS (multi-line PEM in one value)
//        PLUGIN_UNIX_SOCKET_GROUP=<group>     only when set (hosts >= v1.5.1 send it; plugins
//                                             >= v1.5.0 chgrp the socket and make it 0660)
//        PLUGIN_UNIX_SOCKET_DIR=<dir>         only when set (hosts >= v1.5.1 send it for container
//                                             runners; plugins >= v1.5.0 put their socket there,
//                                             v1.0.1 always uses $TMPDIR)
//
// With VAULT_PLUGIN_USE_LEGACY_ENV_LAYERING=true Vault puts layer 1 after layer 4 instead (the
// host wins over the entry's env). That is the order Vault before 1.16 got from go-plugin, which
// appends os.Environ() after the caller's cmd.Env (v1.0.1 client.go L527-528; HEAD L655-658
// unless SkipHostEnv, which Vault >= 1.16 sets so that it can layer the host env itself).
// Containerised (OCI) plugins get no host layer; pass an empty host_env.
#ifndef BULWARK_PROTOCOL_PLUGIN_ENV_H_
#define BULWARK_PROTOCOL_PLUGIN_ENV_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bulwark::protocol {

// Names of the variables, as Vault (sdk/helper/pluginutil/env.go @0b1da103) and go-plugin
// (client.go, constants.go) spell them.
inline constexpr absl::string_view kEnvVaultMlockEnabled = "VAULT_PLUGIN_MLOCK_ENABLED";
inline constexpr absl::string_view kEnvVaultVersion = "VAULT_VERSION";
inline constexpr absl::string_view kEnvVaultMetadataMode = "VAULT_PLUGIN_METADATA_MODE";
inline constexpr absl::string_view kEnvVaultAutoMtlsEnabled = "VAULT_PLUGIN_AUTOMTLS_ENABLED";
inline constexpr absl::string_view kEnvVaultUnwrapToken = "VAULT_UNWRAP_TOKEN";
inline constexpr absl::string_view kEnvPluginMinPort = "PLUGIN_MIN_PORT";
inline constexpr absl::string_view kEnvPluginMaxPort = "PLUGIN_MAX_PORT";
inline constexpr absl::string_view kEnvPluginProtocolVersions = "PLUGIN_PROTOCOL_VERSIONS";
inline constexpr absl::string_view kEnvPluginMultiplexGrpc = "PLUGIN_MULTIPLEX_GRPC";
inline constexpr absl::string_view kEnvPluginClientCert = "PLUGIN_CLIENT_CERT";
inline constexpr absl::string_view kEnvPluginUnixSocketGroup = "PLUGIN_UNIX_SOCKET_GROUP";
inline constexpr absl::string_view kEnvPluginUnixSocketDir = "PLUGIN_UNIX_SOCKET_DIR";

// go-plugin's port range when both ends are 0 (client.go NewClient: 10000 and 25000). Plugins
// use it only for TCP listeners (Windows); on Unix they listen on a socket.
inline constexpr int kDefaultMinPort = 10000;
inline constexpr int kDefaultMaxPort = 25000;

// Most versions that may be offered in PLUGIN_PROTOCOL_VERSIONS.
inline constexpr size_t kOfferedVersionsMax = 64;

// Layer 4: what Vault's SDK adds for its plugins. Absent for plain go-plugin plugins.
struct VaultPluginEnv {
  std::string vault_version;  // e.g. "1.16.0". Required: an empty VAULT_VERSION makes old
                              // Vault SDK plugins fall back to net/rpc (pluginutil.GRPCSupport).
  bool mlock = false;         // Vault's mlock setting.
  bool metadata_mode = false;
  bool automtls = true;  // Must match whether PluginEnvInput::client_cert_pem is set.
  // The response-wrapping JWT of the legacy TLS path. Required exactly when neither automtls
  // nor metadata_mode is set, and forbidden otherwise.
  std::optional<std::string> unwrap_token;
};

struct PluginEnvInput {
  // Layer 1. Vault passes its whole os.Environ(); bulwark's host decides what to pass.
  std::vector<std::string> host_env;
  // VAULT_PLUGIN_USE_LEGACY_ENV_LAYERING: put host_env after the Vault layer (host wins).
  bool legacy_env_layering = false;
  // Layer 2: the catalog entry's env.
  std::vector<std::string> entry_env;
  // Layer 3: variables the host adds for this launch.
  std::vector<std::string> extra_env;
  // Layer 4.
  std::optional<VaultPluginEnv> vault;

  // Layer 5: go-plugin's handshake configuration.
  std::string magic_cookie_key;       // e.g. "VAULT_BACKEND_PLUGIN"
  std::string magic_cookie_value;     // e.g. "6669da05-b1c8-4f49-97d9-c8e5bed98e20"
  std::vector<int> offered_versions;  // e.g. {5}; written in ascending order.
  int min_port = kDefaultMinPort;     // Both 0 means the defaults, as in go-plugin.
  int max_port = kDefaultMaxPort;
  bool multiplex_grpc = false;  // Ask for gRPC broker multiplexing (Vault: OCI plugins only).
  // The host's AutoMTLS certificate, PEM ("-----BEGIN CERTIFICATE-----..."), if AutoMTLS.
  std::optional<std::string> client_cert_pem;
  std::optional<std::string> unix_socket_group;  // A group name or gid.
  std::optional<std::string> unix_socket_dir;
};

// Returns the complete child environment, "KEY=value" entries, layered as described at the top
// of this file and then de-duplicated like Go's exec.Cmd (DedupEnvLastWins), which is what a
// Vault-launched plugin actually receives. Deterministic: the same input gives the same output.
//
// Errors (InvalidArgument; messages name the variable or list index, never a value, because
// catalog env values may be secrets):
//   - an env entry (host_env, entry_env, extra_env) with no '=', an empty key, or a NUL byte;
//   - an empty or '='-containing magic cookie key, an empty cookie value;
//   - offered_versions empty, longer than kOfferedVersionsMax, negative or duplicated;
//   - ports outside 0-65535 or min_port > max_port (go-plugin plugins exit on that);
//   - client_cert_pem, unix_socket_group or unix_socket_dir set but empty, or not a PEM
//     certificate (client_cert_pem), or any value with a NUL byte;
//   - vault set with an empty vault_version, with automtls disagreeing with client_cert_pem,
//     or with unwrap_token present when it must not be, or absent when it must be.
absl::StatusOr<std::vector<std::string>> BuildPluginEnv(const PluginEnvInput& input);

// Removes entries whose key appears again later, keeping the remaining entries in their order,
// as Go's os/exec dedupEnv does (go1.19 src/os/exec/exec.go): when a key repeats, the child
// sees the last value. Needed because a C child's getenv() returns the *first* match of an
// execve environment with duplicates, and Go's os.Getenv the first too (syscall copyenv).
// The key of an entry is the text before its first '=' (a leading '=' belongs to the key, as in
// Go); entries without '=' are kept as they are, except empty ones, which are dropped, again as
// in Go. Never fails.
std::vector<std::string> DedupEnvLastWins(const std::vector<std::string>& env);

}  // namespace bulwark::protocol

#endif  // BULWARK_PROTOCOL_PLUGIN_ENV_H_
