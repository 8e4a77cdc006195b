// Flag parsing as Go's flag package (and so Vault's CLI) does it.
#include "server/cli/flags.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Flags {
  FlagSet set;
  std::string address = "default";
  bool force = false;
  int shares = 5;
  absl::Duration ttl;
  std::vector<std::string> args, env;
  Flags() {
    set.String("address", &address, "");
    set.Bool("force", &force, "");
    set.Int("key-shares", &shares, "");
    set.Duration("ttl", &ttl, "");
    set.List("args", &args, /*split_commas=*/true, "");
    set.List("env", &env, /*split_commas=*/false, "");
  }
};

TEST(FlagsTest, EqualsAndSeparateValuesAndDoubleDash) {
  Flags f;
  auto rest = f.set.Parse({"-address=http://a:1", "--key-shares", "3", "path", "-force"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(f.address, "http://a:1");
  EXPECT_EQ(f.shares, 3);
  // Parsing stops at the first argument: a later "-force" is an argument, as in Go.
  EXPECT_FALSE(f.force);
  EXPECT_THAT(*rest, ElementsAre("path", "-force"));
  EXPECT_TRUE(f.set.WasSet("address"));
  EXPECT_FALSE(f.set.WasSet("force"));
}

TEST(FlagsTest, BoolsTakeNoSeparateValue) {
  Flags f;
  auto rest = f.set.Parse({"-force", "false"});
  ASSERT_TRUE(rest.ok());
  EXPECT_TRUE(f.force);
  EXPECT_THAT(*rest, ElementsAre("false"));
  Flags g;
  ASSERT_TRUE(g.set.Parse({"-force=false"}).ok());
  EXPECT_FALSE(g.force);
  Flags h;
  EXPECT_THAT(std::string(h.set.Parse({"-force=maybe"}).status().message()),
              HasSubstr("invalid boolean value \"maybe\" for -force"));
}

TEST(FlagsTest, DashAloneAndDoubleDashEndFlags) {
  Flags f;
  auto rest = f.set.Parse({"-force", "-", "-address=x"});
  ASSERT_TRUE(rest.ok());
  EXPECT_THAT(*rest, ElementsAre("-", "-address=x"));
  Flags g;
  rest = g.set.Parse({"--", "-force"});
  ASSERT_TRUE(rest.ok());
  EXPECT_FALSE(g.force);
  EXPECT_THAT(*rest, ElementsAre("-force"));
}

TEST(FlagsTest, ErrorsUseGoWording) {
  Flags f;
  EXPECT_EQ(f.set.Parse({"-bogus"}).status().message(), "flag provided but not defined: -bogus");
  EXPECT_EQ(f.set.Parse({"-address"}).status().message(), "flag needs an argument: -address");
  EXPECT_EQ(f.set.Parse({"-key-shares=five"}).status().message(),
            "invalid value \"five\" for flag -key-shares: parse error");
  EXPECT_EQ(f.set.Parse({"---x"}).status().message(), "bad flag syntax: ---x");
  EXPECT_THAT(std::string(f.set.Parse({"-ttl=soon"}).status().message()),
              HasSubstr("invalid value \"soon\" for flag -ttl"));
}

TEST(FlagsTest, ListsRepeatAndSplitCommasWhenAsked) {
  Flags f;
  ASSERT_TRUE(f.set.Parse({"-args=a,b", "-args", "c", "-env=K=V,W", "-env=X=Y"}).ok());
  EXPECT_THAT(f.args, ElementsAre("a", "b", "c"));
  EXPECT_THAT(f.env, ElementsAre("K=V,W", "X=Y"));
}

TEST(FlagsTest, DurationsTakeSecondsOrGoSyntax) {
  Flags f;
  ASSERT_TRUE(f.set.Parse({"-ttl=90"}).ok());
  EXPECT_EQ(f.ttl, absl::Seconds(90));
  ASSERT_TRUE(f.set.Parse({"-ttl=1h30m"}).ok());
  EXPECT_EQ(f.ttl, absl::Minutes(90));
  EXPECT_FALSE(ParseCliDuration("inf").has_value());
  EXPECT_FALSE(ParseCliDuration("").has_value());
}

TEST(FlagsTest, HelpIsNotAnError) {
  Flags f;
  auto rest = f.set.Parse({"-h"});
  ASSERT_TRUE(rest.ok());
  EXPECT_TRUE(f.set.help_requested());
  Flags g;
  ASSERT_TRUE(g.set.Parse({"--help"}).ok());
  EXPECT_TRUE(g.set.help_requested());
  EXPECT_THAT(g.set.Usage(), HasSubstr("-key-shares=<int>"));
}

}  // namespace
}  // namespace bulwark::cli
