// Tests for the plugin launch environment: the exact order and content of every layer for
// Vault's launch modes, go-plugin's optional variables, collision rules and input validation.
#include "protocol/plugin_env.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::protocol {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kCertPem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

// A Vault backend launch with AutoMTLS, the common case (Vault >= 1.12, backend protocol 5).
PluginEnvInput VaultBackendInput() {
  PluginEnvInput in;
  in.host_env = {"PATH=/usr/bin", "HOME=/var/lib/vault"};
  in.entry_env = {"PLUGIN_SETTING=1"};
  in.vault = VaultPluginEnv{};
  in.vault->vault_version = "1.16.0";
  in.vault->automtls = true;
  in.magic_cookie_key = "VAULT_BACKEND_PLUGIN";
  in.magic_cookie_value = "6669da05-b1c8-4f49-97d9-c8e5bed98e20";
  in.offered_versions = {5};
  in.client_cert_pem = kCertPem;
  return in;
}

std::vector<std::string> Build(const PluginEnvInput& in) {
  absl::StatusOr<std::vector<std::string>> env = BuildPluginEnv(in);
  EXPECT_TRUE(env.ok()) << env.status();
  return env.value_or(std::vector<std::string>{});
}

void ExpectInvalid(const PluginEnvInput& in, absl::string_view fragment) {
  absl::StatusOr<std::vector<std::string>> env = BuildPluginEnv(in);
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(env.status().message()), HasSubstr(std::string(fragment)));
}

TEST(BuildPluginEnvTest, VaultAutoMtlsExactOrder) {
  EXPECT_THAT(
      Build(VaultBackendInput()),
      ElementsAre("PATH=/usr/bin", "HOME=/var/lib/vault", "PLUGIN_SETTING=1",
                  "VAULT_VERSION=1.16.0", "VAULT_PLUGIN_METADATA_MODE=false",
                  "VAULT_PLUGIN_AUTOMTLS_ENABLED=true",
                  "VAULT_BACKEND_PLUGIN=6669da05-b1c8-4f49-97d9-c8e5bed98e20",
                  "PLUGIN_MIN_PORT=10000", "PLUGIN_MAX_PORT=25000", "PLUGIN_PROTOCOL_VERSIONS=5",
                  std::string("PLUGIN_CLIENT_CERT=") + kCertPem));
}

TEST(BuildPluginEnvTest, VaultLegacyTlsWithMlockExactOrder) {
  // Mirrors Vault's run_config_test "non-metadata mode, not-AutoMTLS" (mlock on, unwrap token).
  PluginEnvInput in = VaultBackendInput();
  in.host_env = {"PATH=/usr/bin"};
  in.entry_env = {"initial=true"};
  in.vault->mlock = true;
  in.vault->automtls = false;
  in.vault->unwrap_token = "testtoken";
  in.client_cert_pem.reset();
  EXPECT_THAT(
      Build(in),
      ElementsAre("PATH=/usr/bin", "initial=true", "VAULT_PLUGIN_MLOCK_ENABLED=true",
                  "VAULT_VERSION=1.16.0", "VAULT_PLUGIN_METADATA_MODE=false",
                  "VAULT_PLUGIN_AUTOMTLS_ENABLED=false", "VAULT_UNWRAP_TOKEN=testtoken",
                  "VAULT_BACKEND_PLUGIN=6669da05-b1c8-4f49-97d9-c8e5bed98e20",
                  "PLUGIN_MIN_PORT=10000", "PLUGIN_MAX_PORT=25000", "PLUGIN_PROTOCOL_VERSIONS=5"));
}

TEST(BuildPluginEnvTest, VaultMetadataModeWithoutTlsHasNoToken) {
  // Mirrors run_config_test "metadata mode, not-AutoMTLS".
  PluginEnvInput in = VaultBackendInput();
  in.host_env.clear();
  in.entry_env = {"initial=true"};
  in.vault->metadata_mode = true;
  in.vault->automtls = false;
  in.client_cert_pem.reset();
  in.offered_versions = {4, 3};
  EXPECT_THAT(Build(in),
              ElementsAre("initial=true", "VAULT_VERSION=1.16.0", "VAULT_PLUGIN_METADATA_MODE=true",
                          "VAULT_PLUGIN_AUTOMTLS_ENABLED=false",
                          "VAULT_BACKEND_PLUGIN=6669da05-b1c8-4f49-97d9-c8e5bed98e20",
                          "PLUGIN_MIN_PORT=10000", "PLUGIN_MAX_PORT=25000",
                          "PLUGIN_PROTOCOL_VERSIONS=3,4"));
}

TEST(BuildPluginEnvTest, LegacyLayeringPutsHostAfterVaultLayer) {
  // Mirrors run_config_test with VAULT_PLUGIN_USE_LEGACY_ENV_LAYERING=true.
  PluginEnvInput in = VaultBackendInput();
  in.legacy_env_layering = true;
  in.host_env = {"PATH=/usr/bin"};
  in.entry_env = {"initial=true"};
  EXPECT_THAT(
      Build(in),
      ElementsAre("initial=true", "VAULT_VERSION=1.16.0", "VAULT_PLUGIN_METADATA_MODE=false",
                  "VAULT_PLUGIN_AUTOMTLS_ENABLED=true", "PATH=/usr/bin",
                  "VAULT_BACKEND_PLUGIN=6669da05-b1c8-4f49-97d9-c8e5bed98e20",
                  "PLUGIN_MIN_PORT=10000", "PLUGIN_MAX_PORT=25000", "PLUGIN_PROTOCOL_VERSIONS=5",
                  std::string("PLUGIN_CLIENT_CERT=") + kCertPem));
}

TEST(BuildPluginEnvTest, EntryEnvWinsOverHostByDefaultAndLosesInLegacyMode) {
  PluginEnvInput in = VaultBackendInput();
  in.host_env = {"A=host", "PATH=/usr/bin"};
  in.entry_env = {"A=entry"};
  std::vector<std::string> env = Build(in);
  EXPECT_THAT(env, testing::Contains("A=entry"));
  EXPECT_THAT(env, Not(testing::Contains("A=host")));
  // The surviving entry takes the place of its last occurrence.
  EXPECT_EQ(env[0], "PATH=/usr/bin");
  EXPECT_EQ(env[1], "A=entry");

  in.legacy_env_layering = true;
  env = Build(in);
  EXPECT_THAT(env, testing::Contains("A=host"));
  EXPECT_THAT(env, Not(testing::Contains("A=entry")));
}

TEST(BuildPluginEnvTest, ProtocolVariablesAlwaysWin) {
  PluginEnvInput in = VaultBackendInput();
  in.host_env = {"PLUGIN_MIN_PORT=1", "VAULT_VERSION=0.1.0"};
  in.entry_env = {"VAULT_BACKEND_PLUGIN=forged", "PLUGIN_CLIENT_CERT=forged"};
  in.extra_env = {"VAULT_PLUGIN_AUTOMTLS_ENABLED=false"};
  in.legacy_env_layering = true;  // Host last before go-plugin: still loses to go-plugin.
  const std::vector<std::string> env = Build(in);
  EXPECT_THAT(env, testing::Contains("PLUGIN_MIN_PORT=10000"));
  EXPECT_THAT(env, testing::Contains("VAULT_BACKEND_PLUGIN=6669da05-b1c8-4f49-97d9-c8e5bed98e20"));
  EXPECT_THAT(env, testing::Contains(std::string("PLUGIN_CLIENT_CERT=") + kCertPem));
  EXPECT_THAT(env, testing::Contains("VAULT_PLUGIN_AUTOMTLS_ENABLED=true"));
  // In legacy mode the host's VAULT_VERSION overrides the SDK's, exactly as in Vault.
  EXPECT_THAT(env, testing::Contains("VAULT_VERSION=0.1.0"));
  for (const std::string& kv : env) {
    EXPECT_THAT(kv, Not(HasSubstr("forged")));
  }
}

TEST(BuildPluginEnvTest, ExtraEnvSitsBetweenEntryAndVaultLayers) {
  PluginEnvInput in = VaultBackendInput();
  in.host_env.clear();
  in.entry_env = {"X=entry", "E=1"};
  in.extra_env = {"X=extra", "F=2"};
  const std::vector<std::string> env = Build(in);
  EXPECT_THAT(std::vector<std::string>(env.begin(), env.begin() + 4),
              ElementsAre("E=1", "X=extra", "F=2", "VAULT_VERSION=1.16.0"));
}

TEST(BuildPluginEnvTest, PlainGoPluginWithAllOptionalVariables) {
  PluginEnvInput in;
  in.magic_cookie_key = "BASIC_PLUGIN";
  in.magic_cookie_value = "hello";
  in.offered_versions = {2, 1};
  in.min_port = 20000;
  in.max_port = 20010;
  in.multiplex_grpc = true;
  in.client_cert_pem = kCertPem;
  in.unix_socket_group = "1000";
  in.unix_socket_dir = "/run/plugins/plugin-dir123";
  EXPECT_THAT(
      Build(in),
      ElementsAre("BASIC_PLUGIN=hello", "PLUGIN_MIN_PORT=20000", "PLUGIN_MAX_PORT=20010",
                  "PLUGIN_PROTOCOL_VERSIONS=1,2", "PLUGIN_MULTIPLEX_GRPC=true",
                  std::string("PLUGIN_CLIENT_CERT=") + kCertPem, "PLUGIN_UNIX_SOCKET_GROUP=1000",
                  "PLUGIN_UNIX_SOCKET_DIR=/run/plugins/plugin-dir123"));
}

TEST(BuildPluginEnvTest, ZeroPortsMeanGoPluginDefaults) {
  PluginEnvInput in = VaultBackendInput();
  in.min_port = 0;
  in.max_port = 0;
  const std::vector<std::string> env = Build(in);
  EXPECT_THAT(env, testing::Contains("PLUGIN_MIN_PORT=10000"));
  EXPECT_THAT(env, testing::Contains("PLUGIN_MAX_PORT=25000"));
  in.min_port = 0;
  in.max_port = 5;
  EXPECT_THAT(Build(in), testing::Contains("PLUGIN_MIN_PORT=0"));
}

TEST(BuildPluginEnvTest, IsDeterministic) {
  EXPECT_EQ(Build(VaultBackendInput()), Build(VaultBackendInput()));
}

TEST(BuildPluginEnvTest, RejectsBadEnvEntriesWithoutEchoingValues) {
  PluginEnvInput in = VaultBackendInput();
  in.entry_env = {"OK=1", "NO_EQUALS_SECRET"};
  ExpectInvalid(in, "entry_env[1] is not of the form KEY=value");
  absl::StatusOr<std::vector<std::string>> env = BuildPluginEnv(in);
  EXPECT_THAT(std::string(env.status().message()), Not(HasSubstr("SECRET")));

  in = VaultBackendInput();
  in.host_env = {"=value"};
  ExpectInvalid(in, "host_env[0] has an empty key");

  in = VaultBackendInput();
  in.extra_env = {std::string("KEY=sec\0ret", 11)};
  ExpectInvalid(in, "extra_env[0] (KEY) contains a NUL byte");
  env = BuildPluginEnv(in);
  EXPECT_THAT(std::string(env.status().message()), Not(HasSubstr("sec")));
}

TEST(BuildPluginEnvTest, RejectsBadGoPluginSettings) {
  PluginEnvInput in = VaultBackendInput();
  in.magic_cookie_key = "";
  ExpectInvalid(in, "magic_cookie_key is empty");
  in = VaultBackendInput();
  in.magic_cookie_key = "A=B";
  ExpectInvalid(in, "magic_cookie_key contains '='");
  in = VaultBackendInput();
  in.magic_cookie_value = "";
  ExpectInvalid(in, "magic_cookie_value is empty");
  in = VaultBackendInput();
  in.offered_versions = {};
  ExpectInvalid(in, "offered_versions is empty");
  in = VaultBackendInput();
  in.offered_versions = {5, 5};
  ExpectInvalid(in, "listed twice");
  in = VaultBackendInput();
  in.offered_versions = {-1};
  ExpectInvalid(in, "negative");
  in = VaultBackendInput();
  in.offered_versions = std::vector<int>(kOfferedVersionsMax + 1, 1);
  ExpectInvalid(in, "at most 64");
  in = VaultBackendInput();
  in.min_port = 30000;
  ExpectInvalid(in, "port range 30000-25000");
  in = VaultBackendInput();
  in.max_port = 70000;
  ExpectInvalid(in, "port range");
  in = VaultBackendInput();
  in.client_cert_pem = "MIIB";
  ExpectInvalid(in, "does not start with");
  in = VaultBackendInput();
  in.unix_socket_dir = "";
  ExpectInvalid(in, "unix_socket_dir is set but empty");
  in = VaultBackendInput();
  in.unix_socket_group = std::string("a\0b", 3);
  ExpectInvalid(in, "unix_socket_group contains a NUL byte");
}

TEST(BuildPluginEnvTest, RejectsInconsistentVaultSettings) {
  PluginEnvInput in = VaultBackendInput();
  in.vault->vault_version = "";
  ExpectInvalid(in, "vault_version is empty");

  in = VaultBackendInput();
  in.client_cert_pem.reset();
  ExpectInvalid(in, "PLUGIN_CLIENT_CERT is not set");

  in = VaultBackendInput();
  in.vault->automtls = false;
  ExpectInvalid(in, "VAULT_PLUGIN_AUTOMTLS_ENABLED would be false but PLUGIN_CLIENT_CERT is set");

  in = VaultBackendInput();
  in.vault->automtls = false;
  in.client_cert_pem.reset();
  ExpectInvalid(in, "needs VAULT_UNWRAP_TOKEN");

  in = VaultBackendInput();
  in.vault->unwrap_token = "tok";
  ExpectInvalid(in, "only when neither AutoMTLS nor metadata mode");

  in = VaultBackendInput();
  in.vault->automtls = false;
  in.vault->metadata_mode = true;
  in.vault->unwrap_token = "tok";
  in.client_cert_pem.reset();
  ExpectInvalid(in, "only when neither AutoMTLS nor metadata mode");

  in = VaultBackendInput();
  in.vault->automtls = false;
  in.client_cert_pem.reset();
  in.vault->unwrap_token = "";
  ExpectInvalid(in, "unwrap_token is set but empty");
}

TEST(DedupEnvLastWinsTest, MatchesGoDedupEnv) {
  // Cases adapted from go1.19 src/os/exec/env_test.go TestDedupEnv (case-sensitive, as on Unix).
  EXPECT_THAT(DedupEnvLastWins({"k1=v1", "k2=v2", "K1=v3"}),
              ElementsAre("k1=v1", "k2=v2", "K1=v3"));  // Case-sensitive on Unix.
  EXPECT_THAT(DedupEnvLastWins({"k1=v1", "K1=V2", "k1=v3"}), ElementsAre("K1=V2", "k1=v3"));
  EXPECT_THAT(DedupEnvLastWins({"=a", "=b", "foo", "bar"}), ElementsAre("=b", "foo", "bar"));
  EXPECT_THAT(DedupEnvLastWins({"=a", "=b", "=c=d", "=c=e"}), ElementsAre("=b", "=c=e"));
  EXPECT_THAT(DedupEnvLastWins({"A=1", "", "B=2", "A=3"}), ElementsAre("B=2", "A=3"));
  EXPECT_THAT(DedupEnvLastWins({}), ElementsAre());
}

}  // namespace
}  // namespace bulwark::protocol
