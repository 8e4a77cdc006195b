// Table and JSON output, byte for byte as Vault's CLI prints them.
#include "server/cli/output.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::cli {
namespace {

using nlohmann::json;

TEST(OutputTest, GoValueFormatsLikePercentV) {
  EXPECT_EQ(GoValue(json("s")), "s");
  EXPECT_EQ(GoValue(json(3600)), "3600");
  EXPECT_EQ(GoValue(json(true)), "true");
  EXPECT_EQ(GoValue(json()), "<nil>");
  EXPECT_EQ(GoValue(json::array({"a", 1, "b"})), "[a 1 b]");
  EXPECT_EQ(GoValue(json{{"z", 1}, {"a", json::array({"x"})}}), "map[a:[x] z:1]");
  EXPECT_EQ(GoQuotedList(json::array({"default", "a\"b"})), R"(["default" "a\"b"])");
  EXPECT_EQ(GoQuotedList(json()), "[]");
}

TEST(OutputTest, HumanDurationDropsZeroTails) {
  EXPECT_EQ(HumanDuration(0), "0s");
  EXPECT_EQ(HumanDuration(45), "45s");
  EXPECT_EQ(HumanDuration(60), "1m");
  EXPECT_EQ(HumanDuration(90), "1m30s");
  EXPECT_EQ(HumanDuration(3600), "1h");
  EXPECT_EQ(HumanDuration(3661), "1h1m1s");
  EXPECT_EQ(HumanDuration(3605), "1h5s");
  EXPECT_EQ(HumanDuration(2764800), "768h");
  EXPECT_TRUE(LooksLikeDuration("ttl"));
  EXPECT_TRUE(LooksLikeDuration("max_lease_ttl"));
  EXPECT_TRUE(LooksLikeDuration("token_period"));
  EXPECT_FALSE(LooksLikeDuration("ttlx"));
}

TEST(OutputTest, ColumnsPadAllButTheLastCellWithFourSpaces) {
  EXPECT_EQ(Table({"Key", "Value"}, {{"a", "1"}, {"longer_key", ""}}),
            "Key           Value\n"
            "---           -----\n"
            "a             1\n"
            "longer_key    n/a");
  EXPECT_EQ(Columns({{"\u221e", "x"}, {"ab", "y"}}), "\u221e     x\nab    y");
}

TEST(OutputTest, SecretTableShowsLeaseAuthAndSortedData) {
  json secret = json::parse(R"({
    "request_id": "r", "lease_id": "", "renewable": false, "lease_duration": 2764800,
    "data": {"zeta": "z", "alpha": 1, "ttl": 90, "list": ["a", "b"]},
    "wrap_info": null, "warnings": null, "auth": null})");
  EXPECT_EQ(SecretTable(secret),
            "Key                 Value\n"
            "---                 -----\n"
            "refresh_interval    768h\n"
            "alpha               1\n"
            "list                [a b]\n"
            "ttl                 1m30s\n"
            "zeta                z");
  json token = json::parse(R"({"data": null, "lease_duration": 0, "auth": {
    "client_token": "hvs.X", "accessor": "acc", "lease_duration": 0, "renewable": false,
    "token_policies": ["root"], "policies": ["root"], "metadata": {"user": "u"}}})");
  EXPECT_EQ(SecretTable(token),
            "Key                  Value\n"
            "---                  -----\n"
            "token                hvs.X\n"
            "token_accessor       acc\n"
            "token_duration       \u221e\n"
            "token_renewable      false\n"
            "token_policies       [\"root\"]\n"
            "identity_policies    []\n"
            "policies             [\"root\"]\n"
            "token_meta_user      u");
  EXPECT_EQ(SecretTable(json::parse(R"({"data": {}, "lease_duration": 0})")), "");
}

TEST(OutputTest, KeysTableSortsAndWarningsAreListed) {
  EXPECT_EQ(KeysTable({"b/", "a"}), "Keys\n----\na\nb/");
  EXPECT_EQ(WarningsText(json::parse(R"({"warnings": ["careful"]})")),
            "WARNING! The following warnings were returned from Vault:\n\n  * careful\n\n");
  EXPECT_EQ(WarningsText(json::parse(R"({"warnings": null})")), "");
}

TEST(OutputTest, FieldAccessorsNeverThrowOnTheWrongType) {
  json o = json::parse(R"({"s": 1, "i": "x", "b": null})");
  EXPECT_EQ(StringField(o, "s"), "");
  EXPECT_EQ(IntField(o, "i"), 0);
  EXPECT_TRUE(BoolField(o, "b", true));
  EXPECT_EQ(StringField(json::array(), "s"), "");
  EXPECT_EQ(PrettyJson(json{{"a", 1}}), "{\n  \"a\": 1\n}");
}

}  // namespace
}  // namespace bulwark::cli
