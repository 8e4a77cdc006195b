// `bulwark server`: the production composition root. It builds the posix Env and its event loop,
// the storage (FileStorage, or in memory for -dev), the node with the gRPC plugin transport for
// external plugins and the built-in kv engine in-process, the API layer and the HTTP transport,
// and runs until SIGTERM or SIGINT: then it stops accepting, lets in-flight requests finish (for
// up to kDrainGrace, after which the node's shutdown fails them), stops every plugin
// (Node::Shutdown), closes the transport and exits 0. A second signal exits at once with 1.
#ifndef BULWARK_SERVER_SERVER_H_
#define BULWARK_SERVER_SERVER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/log/log.h"

namespace bulwark::server {

// The built-in kv engine: its catalog name and version. -dev mounts it at secret/.
inline constexpr char kBuiltinKv[] = "kv";
inline constexpr char kBuiltinKvVersion[] = "v0.1.0+builtin";
// How long in-flight requests may run on after a shutdown signal before the node stops.
inline constexpr absl::Duration kDrainGrace = absl::Seconds(30);
// How long the transport may take to write the last answers and close.
inline constexpr absl::Duration kCloseGrace = absl::Seconds(5);

struct ServerFlags {
  std::string config_path;  // -config
  bool dev = false;         // -dev
  std::string dev_root_token_id;
  std::string dev_listen_address = "127.0.0.1:8200";
  std::string dev_plugin_dir;
  bool dev_disable_plugin_automtls = false;  // -dev-disable-plugin-automtls
  std::optional<LogLevel> log_level;         // -log-level, over the config's log_level.
  bool help = false;
};

// The variables of Vault's API client that the server passes on to plugins it runs without
// AutoMTLS, so that they can reach and trust api_addr when they unwrap their certificate.
inline constexpr const char* kPluginClientEnvVars[] = {
    "VAULT_CACERT",     "VAULT_CAPATH",      "VAULT_CLIENT_CERT",
    "VAULT_CLIENT_KEY", "VAULT_SKIP_VERIFY", "VAULT_TLS_SERVER_NAME",
};

// Parses the arguments after "server", Go-flag style as Vault's CLI: "-name", "--name",
// "-name=value" or "-name value" (booleans take no separate value). Errors: kInvalidArgument
// ("flag provided but not defined: -x", a missing value, -dev with -config, neither given).
absl::StatusOr<ServerFlags> ParseServerFlags(const std::vector<std::string>& args);

// Runs `bulwark server` with the arguments after "server". Returns the exit code: 0 after a
// graceful shutdown, 1 when the flags, the configuration or the start fail (the reason on
// stderr). Prints the banner (and, with -dev, the unseal key and root token, as Vault does) on
// stdout; logs go to stderr.
int ServerMain(const std::vector<std::string>& args);

}  // namespace bulwark::server

#endif  // BULWARK_SERVER_SERVER_H_
