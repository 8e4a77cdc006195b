// Layering of a plugin's launch environment (see plugin_env.h for the order and its sources).
#include "protocol/plugin_env.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status/status_macros.h"

namespace bulwark::protocol {
namespace {

constexpr absl::string_view kPemCertificateBegin = "-----BEGIN CERTIFICATE-----";

bool HasNul(absl::string_view s) { return s.find('\0') != absl::string_view::npos; }

absl::Status CheckEnvList(const std::vector<std::string>& env, absl::string_view list_name) {
  for (size_t i = 0; i < env.size(); ++i) {
    const absl::string_view entry = env[i];
    const size_t eq = entry.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("plugin env: ", list_name, "[", i,
                                                     "] is not of the form KEY=value (no '=')"));
    }
    if (eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("plugin env: ", list_name, "[", i, "] has an empty key"));
    }
    if (HasNul(entry)) {
      return absl::InvalidArgumentError(absl::StrCat("plugin env: ", list_name, "[", i, "] (",
                                                     entry.substr(0, eq), ") contains a NUL byte"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckOptionalValue(const std::optional<std::string>& value, absl::string_view name) {
  if (!value.has_value()) return absl::OkStatus();
  if (value->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("plugin env: ", name, " is set but empty; leave it unset instead"));
  }
  if (HasNul(*value)) {
    return absl::InvalidArgumentError(absl::StrCat("plugin env: ", name, " contains a NUL byte"));
  }
  return absl::OkStatus();
}

absl::Status CheckVault(const VaultPluginEnv& vault, bool has_client_cert) {
  if (vault.vault_version.empty()) {
    return absl::InvalidArgumentError(
        "plugin env: vault_version is empty (old Vault SDK plugins would fall back to net/rpc)");
  }
  if (HasNul(vault.vault_version)) {
    return absl::InvalidArgumentError("plugin env: vault_version contains a NUL byte");
  }
  if (vault.automtls != has_client_cert) {
    return absl::InvalidArgumentError(absl::StrCat(
        "plugin env: VAULT_PLUGIN_AUTOMTLS_ENABLED would be ", vault.automtls ? "true" : "false",
        " but PLUGIN_CLIENT_CERT is ", has_client_cert ? "set" : "not set",
        "; Vault enables go-plugin AutoMTLS exactly when it tells the plugin so"));
  }
  const bool needs_token = !vault.automtls && !vault.metadata_mode;
  if (needs_token && !vault.unwrap_token.has_value()) {
    return absl::InvalidArgumentError(
        "plugin env: without AutoMTLS and outside metadata mode a Vault plugin needs "
        "VAULT_UNWRAP_TOKEN (the legacy TLS path), but unwrap_token is not set");
  }
  if (!needs_token && vault.unwrap_token.has_value()) {
    return absl::InvalidArgumentError(
        "plugin env: unwrap_token is set, but Vault sends VAULT_UNWRAP_TOKEN only when neither "
        "AutoMTLS nor metadata mode is on");
  }
  return CheckOptionalValue(vault.unwrap_token, "unwrap_token");
}

absl::Status CheckGoPlugin(const PluginEnvInput& in) {
  if (in.magic_cookie_key.empty()) {
    return absl::InvalidArgumentError("plugin env: magic_cookie_key is empty");
  }
  if (in.magic_cookie_key.find('=') != std::string::npos || HasNul(in.magic_cookie_key)) {
    return absl::InvalidArgumentError(
        absl::StrCat("plugin env: magic_cookie_key contains '=' or a NUL byte"));
  }
  if (in.magic_cookie_value.empty()) {
    // go-plugin's Serve exits with "Misconfigured ServeConfig" on an empty cookie.
    return absl::InvalidArgumentError("plugin env: magic_cookie_value is empty");
  }
  if (HasNul(in.magic_cookie_value)) {
    return absl::InvalidArgumentError("plugin env: magic_cookie_value contains a NUL byte");
  }
  if (in.offered_versions.empty()) {
    return absl::InvalidArgumentError("plugin env: offered_versions is empty");
  }
  if (in.offered_versions.size() > kOfferedVersionsMax) {
    return absl::InvalidArgumentError(absl::StrCat("plugin env: offered_versions has ",
                                                   in.offered_versions.size(), " entries; at most ",
                                                   kOfferedVersionsMax, " are allowed"));
  }
  std::set<int> seen;
  for (int v : in.offered_versions) {
    if (v < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("plugin env: offered version ", v, " is negative"));
    }
    if (!seen.insert(v).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("plugin env: offered version ", v, " is listed twice"));
    }
  }
  if (in.min_port < 0 || in.max_port > 65535 || in.min_port > in.max_port) {
    return absl::InvalidArgumentError(absl::StrCat("plugin env: port range ", in.min_port, "-",
                                                   in.max_port,
                                                   " is not within 0-65535 with min <= max"));
  }
  RETURN_IF_ERROR(CheckOptionalValue(in.client_cert_pem, "client_cert_pem"));
  if (in.client_cert_pem.has_value() &&
      !absl::StartsWith(*in.client_cert_pem, kPemCertificateBegin)) {
    return absl::InvalidArgumentError(
        "plugin env: client_cert_pem does not start with \"-----BEGIN CERTIFICATE-----\"");
  }
  RETURN_IF_ERROR(CheckOptionalValue(in.unix_socket_group, "unix_socket_group"));
  RETURN_IF_ERROR(CheckOptionalValue(in.unix_socket_dir, "unix_socket_dir"));
  return absl::OkStatus();
}

void Append(std::vector<std::string>& out, const std::vector<std::string>& layer) {
  out.insert(out.end(), layer.begin(), layer.end());
}

void AppendVar(std::vector<std::string>& out, absl::string_view key, absl::string_view value) {
  out.push_back(absl::StrCat(key, "=", value));
}

// Layer 4, run_config.go generateCmd.
void AppendVault(std::vector<std::string>& out, const VaultPluginEnv& vault) {
  if (vault.mlock) AppendVar(out, kEnvVaultMlockEnabled, "true");
  AppendVar(out, kEnvVaultVersion, vault.vault_version);
  AppendVar(out, kEnvVaultMetadataMode, vault.metadata_mode ? "true" : "false");
  AppendVar(out, kEnvVaultAutoMtlsEnabled, vault.automtls ? "true" : "false");
  if (vault.unwrap_token.has_value()) AppendVar(out, kEnvVaultUnwrapToken, *vault.unwrap_token);
}

// Layer 5, go-plugin client.go Start.
void AppendGoPlugin(std::vector<std::string>& out, const PluginEnvInput& in) {
  int min_port = in.min_port;
  int max_port = in.max_port;
  if (min_port == 0 && max_port == 0) {
    min_port = kDefaultMinPort;
    max_port = kDefaultMaxPort;
  }
  std::vector<int> versions = in.offered_versions;
  std::sort(versions.begin(), versions.end());
  AppendVar(out, in.magic_cookie_key, in.magic_cookie_value);
  AppendVar(out, kEnvPluginMinPort, absl::StrCat(min_port));
  AppendVar(out, kEnvPluginMaxPort, absl::StrCat(max_port));
  AppendVar(out, kEnvPluginProtocolVersions, absl::StrJoin(versions, ","));
  if (in.multiplex_grpc) AppendVar(out, kEnvPluginMultiplexGrpc, "true");
  if (in.client_cert_pem.has_value()) AppendVar(out, kEnvPluginClientCert, *in.client_cert_pem);
  if (in.unix_socket_group.has_value()) {
    AppendVar(out, kEnvPluginUnixSocketGroup, *in.unix_socket_group);
  }
  if (in.unix_socket_dir.has_value()) AppendVar(out, kEnvPluginUnixSocketDir, *in.unix_socket_dir);
}

// The key of an env entry as Go's dedupEnv reads it: up to the first '=', except that a
// leading '=' belongs to the key. Empty when there is no '='.
absl::string_view EnvKey(absl::string_view kv, bool* has_eq) {
  size_t i = kv.find('=');
  if (i == 0) {
    const size_t next = kv.find('=', 1);
    i = next == absl::string_view::npos ? 0 : next;
  }
  *has_eq = i != absl::string_view::npos;
  return *has_eq ? kv.substr(0, i) : absl::string_view();
}

}  // namespace

std::vector<std::string> DedupEnvLastWins(const std::vector<std::string>& env) {
  std::vector<std::string> out;
  out.reserve(env.size());
  std::set<absl::string_view> seen;
  for (size_t n = env.size(); n > 0; --n) {
    const std::string& kv = env[n - 1];
    bool has_eq = false;
    const absl::string_view key = EnvKey(kv, &has_eq);
    if (!has_eq) {
      if (!kv.empty()) out.push_back(kv);
      continue;
    }
    if (!seen.insert(key).second) continue;
    out.push_back(kv);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

absl::StatusOr<std::vector<std::string>> BuildPluginEnv(const PluginEnvInput& input) {
  RETURN_IF_ERROR(CheckEnvList(input.host_env, "host_env"));
  RETURN_IF_ERROR(CheckEnvList(input.entry_env, "entry_env"));
  RETURN_IF_ERROR(CheckEnvList(input.extra_env, "extra_env"));
  RETURN_IF_ERROR(CheckGoPlugin(input));
  if (input.vault.has_value()) {
    RETURN_IF_ERROR(CheckVault(*input.vault, input.client_cert_pem.has_value()));
  }

  std::vector<std::string> env;
  env.reserve(input.host_env.size() + input.entry_env.size() + input.extra_env.size() + 16);
  if (!input.legacy_env_layering) Append(env, input.host_env);
  Append(env, input.entry_env);
  Append(env, input.extra_env);
  if (input.vault.has_value()) AppendVault(env, *input.vault);
  if (input.legacy_env_layering) Append(env, input.host_env);
  AppendGoPlugin(env, input);
  return DedupEnvLastWins(env);
}

}  // namespace bulwark::protocol
