// Reading a plugin's launch environment the way go-plugin and Vault's SDK do.
#include "sdk/serve_config.h"

#include <stdlib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status/status_macros.h"
#include "protocol/handshake.h"
#include "protocol/plugin_env.h"

namespace bulwark::sdk {
namespace {

std::string Get(const EnvLookup& env, absl::string_view name) { return env(name).value_or(""); }

absl::StatusOr<int> ParsePort(const EnvLookup& env, absl::string_view name) {
  const std::string text = Get(env, name);
  if (text.empty()) return 0;
  int port = 0;
  if (!absl::SimpleAtoi(text, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("couldn't get value from ", name, ": ",
                                                   protocol::QuoteForError(text),
                                                   " is not a port number (0-65535)"));
  }
  return port;
}

}  // namespace

EnvLookup ProcessEnvLookup() {
  return [](absl::string_view name) -> std::optional<std::string> {
    const char* value = ::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

absl::Status CheckMagicCookie(const EnvLookup& env, absl::string_view key,
                              absl::string_view value) {
  if (key.empty() || value.empty()) {
    return absl::InvalidArgumentError(kMisconfiguredCookieMessage);
  }
  if (env(key) != std::optional<std::string>(std::string(value))) {
    return absl::FailedPreconditionError(kNotAPluginMessage);
  }
  return absl::OkStatus();
}

absl::StatusOr<ServeEnv> ReadServeEnv(const EnvLookup& env,
                                      const std::vector<int>& supported_versions) {
  ServeEnv out;
  const std::string offered = Get(env, protocol::kEnvPluginProtocolVersions);
  ASSIGN_OR_RETURN(protocol::NegotiatedVersion negotiated,
                   protocol::NegotiateProtocolVersion(offered, supported_versions));
  if (!negotiated.matched) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no common plugin protocol version: the host offers ",
        offered.empty() ? std::string("none") : protocol::QuoteForError(offered),
        " (PLUGIN_PROTOCOL_VERSIONS), this plugin speaks ", absl::StrJoin(supported_versions, ","),
        "; use a host that supports version ", absl::StrJoin(supported_versions, " or ")));
  }
  out.app_version = negotiated.version;
  out.invalid_version_entries = std::move(negotiated.invalid_entries);

  if (std::optional<std::string> cert = env(protocol::kEnvPluginClientCert);
      cert.has_value() && !cert->empty()) {
    out.client_cert_pem = std::move(cert);
  }
  out.multiplex_grpc = !Get(env, protocol::kEnvPluginMultiplexGrpc).empty();
  out.socket_dir = Get(env, protocol::kEnvPluginUnixSocketDir);
  if (out.socket_dir.empty()) out.socket_dir = Get(env, "TMPDIR");
  if (out.socket_dir.empty()) out.socket_dir = "/tmp";
  if (std::string group = Get(env, protocol::kEnvPluginUnixSocketGroup); !group.empty()) {
    out.socket_group = std::move(group);
  }
  out.mlock = Get(env, protocol::kEnvVaultMlockEnabled) == "true";
  out.metadata_mode = Get(env, protocol::kEnvVaultMetadataMode) == "true";
  if (std::string token = Get(env, protocol::kEnvVaultUnwrapToken); !token.empty()) {
    out.unwrap_token = std::move(token);
  }
  return out;
}

absl::StatusOr<PortRange> ReadPortRange(const EnvLookup& env) {
  PortRange range;
  ASSIGN_OR_RETURN(range.min, ParsePort(env, protocol::kEnvPluginMinPort));
  ASSIGN_OR_RETURN(range.max, ParsePort(env, protocol::kEnvPluginMaxPort));
  if (range.min > range.max) {
    return absl::InvalidArgumentError(absl::StrCat("PLUGIN_MIN_PORT value of ", range.min,
                                                   " is greater than PLUGIN_MAX_PORT value of ",
                                                   range.max));
  }
  return range;
}

}  // namespace bulwark::sdk
