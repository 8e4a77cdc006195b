// `bulwark server` flags, parsed Go-flag style as Vault's CLI does.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"

namespace bulwark::server {
namespace {

TEST(ServerFlagsTest, DevFlagsInEitherForm) {
  absl::StatusOr<ServerFlags> f =
      ParseServerFlags({"-dev", "-dev-root-token-id=root", "--dev-listen-address", "127.0.0.1:0",
                        "-dev-plugin-dir=/p", "-log-level=debug"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->dev);
  EXPECT_EQ(f->dev_root_token_id, "root");
  EXPECT_EQ(f->dev_listen_address, "127.0.0.1:0");
  EXPECT_EQ(f->dev_plugin_dir, "/p");
  EXPECT_EQ(f->log_level, LogLevel::kDebug);
  EXPECT_EQ(ParseServerFlags({"-dev"})->dev_listen_address, "127.0.0.1:8200");
  EXPECT_FALSE(f->dev_disable_plugin_automtls);
  EXPECT_TRUE(
      ParseServerFlags({"-dev", "-dev-disable-plugin-automtls"})->dev_disable_plugin_automtls);
  EXPECT_FALSE(ParseServerFlags({"-dev", "-dev-disable-plugin-automtls=false"})
                   ->dev_disable_plugin_automtls);
}

TEST(ServerFlagsTest, ConfigFile) {
  EXPECT_EQ(ParseServerFlags({"-config=/etc/b.json"})->config_path, "/etc/b.json");
  EXPECT_EQ(ParseServerFlags({"-config", "/etc/b.json"})->config_path, "/etc/b.json");
}

TEST(ServerFlagsTest, MistakesAreNamed) {
  EXPECT_EQ(ParseServerFlags({"-dev", "-bogus"}).status().message(),
            "flag provided but not defined: -bogus");
  EXPECT_EQ(ParseServerFlags({"-config"}).status().message(), "flag needs an argument: -config");
  EXPECT_EQ(ParseServerFlags({}).status().message(),
            "a configuration file must be given with -config (or use -dev)");
  EXPECT_EQ(ParseServerFlags({"-dev", "-config=x"}).status().message(),
            "-dev and -config cannot be used together");
  EXPECT_THAT(std::string(ParseServerFlags({"-dev", "stray"}).status().message()),
              ::testing::HasSubstr("unexpected argument"));
  EXPECT_THAT(std::string(ParseServerFlags({"-dev", "-log-level=loud"}).status().message()),
              ::testing::HasSubstr("unknown log level"));
  EXPECT_TRUE(ParseServerFlags({"-help"})->help);
}

}  // namespace
}  // namespace bulwark::server
