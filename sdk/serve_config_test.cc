// Tests of how a plugin reads its launch environment: cookie, versions, TLS, socket directory,
// ports, Vault's switches.
#include "sdk/serve_config.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::sdk {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](absl::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(CheckMagicCookieTest, ExactMatchOnly) {
  EXPECT_TRUE(CheckMagicCookie(Env({{"K", "v"}}), "K", "v").ok());
  for (const auto& env : {Env({}), Env({{"K", "v "}}), Env({{"K", ""}}), Env({{"k", "v"}})}) {
    absl::Status status = CheckMagicCookie(env, "K", "v");
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(status.message(), kNotAPluginMessage);
  }
  EXPECT_EQ(CheckMagicCookie(Env({}), "", "v").message(), kMisconfiguredCookieMessage);
  EXPECT_EQ(CheckMagicCookie(Env({}), "K", "").code(), absl::StatusCode::kInvalidArgument);
}

TEST(CheckMagicCookieTest, GoPluginText) {
  EXPECT_THAT(std::string(kNotAPluginMessage),
              ::testing::StartsWith("This binary is a plugin. These are not meant to be executed "
                                    "directly.\n"));
}

TEST(ReadServeEnvTest, Defaults) {
  absl::StatusOr<ServeEnv> env = ReadServeEnv(Env({{"PLUGIN_PROTOCOL_VERSIONS", "5"}}), {5});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->app_version, 5);
  EXPECT_FALSE(env->client_cert_pem.has_value());
  EXPECT_FALSE(env->multiplex_grpc);
  EXPECT_EQ(env->socket_dir, "/tmp");
  EXPECT_FALSE(env->socket_group.has_value());
  EXPECT_FALSE(env->mlock);
  EXPECT_FALSE(env->metadata_mode);
  EXPECT_FALSE(env->unwrap_token.has_value());
}

TEST(ReadServeEnvTest, HighestCommonVersionAndInvalidEntries) {
  absl::StatusOr<ServeEnv> env =
      ReadServeEnv(Env({{"PLUGIN_PROTOCOL_VERSIONS", "4,x,6,5"}}), {3, 4, 5});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->app_version, 5);
  EXPECT_THAT(env->invalid_version_entries, ElementsAre("x"));
}

TEST(ReadServeEnvTest, NoCommonVersionIsAnError) {
  for (const char* offered : {"3,4", "", "6"}) {
    absl::StatusOr<ServeEnv> env = ReadServeEnv(Env({{"PLUGIN_PROTOCOL_VERSIONS", offered}}), {5});
    ASSERT_FALSE(env.ok()) << offered;
    EXPECT_EQ(env.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(env.status().message(), HasSubstr("no common plugin protocol version"));
  }
  EXPECT_EQ(ReadServeEnv(Env({{"PLUGIN_PROTOCOL_VERSIONS", "5"}}), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ReadServeEnvTest, Everything) {
  absl::StatusOr<ServeEnv> env = ReadServeEnv(Env({{"PLUGIN_PROTOCOL_VERSIONS", "5"},
                                                   {"PLUGIN_CLIENT_CERT", "-----BEGIN..."},
                                                   {"PLUGIN_MULTIPLEX_GRPC", "false"},
                                                   {"PLUGIN_UNIX_SOCKET_DIR", "/run/p"},
                                                   {"TMPDIR", "/var/tmp"},
                                                   {"PLUGIN_UNIX_SOCKET_GROUP", "vault"},
                                                   {"VAULT_PLUGIN_MLOCK_ENABLED", "true"},
                                                   {"VAULT_PLUGIN_METADATA_MODE", "true"},
                                                   {"VAULT_UNWRAP_TOKEN", "eyJ..."}}),
                                              {5});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->client_cert_pem, "-----BEGIN...");
  // go-plugin prints the 7th field whenever the variable is non-empty, even "false".
  EXPECT_TRUE(env->multiplex_grpc);
  EXPECT_EQ(env->socket_dir, "/run/p");
  EXPECT_EQ(env->socket_group, "vault");
  EXPECT_TRUE(env->mlock);
  EXPECT_TRUE(env->metadata_mode);
  EXPECT_EQ(env->unwrap_token, "eyJ...");
}

TEST(ReadServeEnvTest, SocketDirFallsBackToTmpdir) {
  absl::StatusOr<ServeEnv> env = ReadServeEnv(
      Env({{"PLUGIN_PROTOCOL_VERSIONS", "5"}, {"PLUGIN_UNIX_SOCKET_DIR", ""}, {"TMPDIR", "/x"}}),
      {5});
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->socket_dir, "/x");
}

TEST(ReadServeEnvTest, VaultSwitchesNeedExactlyTrue) {
  absl::StatusOr<ServeEnv> env = ReadServeEnv(Env({{"PLUGIN_PROTOCOL_VERSIONS", "5"},
                                                   {"VAULT_PLUGIN_MLOCK_ENABLED", "1"},
                                                   {"VAULT_PLUGIN_METADATA_MODE", "TRUE"}}),
                                              {5});
  ASSERT_TRUE(env.ok());
  EXPECT_FALSE(env->mlock);
  EXPECT_FALSE(env->metadata_mode);
}

TEST(ReadPortRangeTest, ParsesLikeGoPlugin) {
  absl::StatusOr<PortRange> range = ReadPortRange(Env({}));
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->min, 0);
  EXPECT_EQ(range->max, 0);
  range = ReadPortRange(Env({{"PLUGIN_MIN_PORT", "10000"}, {"PLUGIN_MAX_PORT", "25000"}}));
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->min, 10000);
  EXPECT_EQ(range->max, 25000);
  EXPECT_THAT(
      ReadPortRange(Env({{"PLUGIN_MIN_PORT", "9"}, {"PLUGIN_MAX_PORT", "8"}})).status().message(),
      HasSubstr("greater than PLUGIN_MAX_PORT"));
  EXPECT_EQ(ReadPortRange(Env({{"PLUGIN_MIN_PORT", "x"}})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadPortRange(Env({{"PLUGIN_MAX_PORT", "70000"}})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace bulwark::sdk
