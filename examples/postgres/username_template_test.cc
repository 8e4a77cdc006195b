// Vault's username templates: the default renders what DefaultUsername makes, the functions do
// what Vault's do, and templates outside the subset are refused when parsed.
#include "examples/postgres/username_template.h"

#include "base/env/random.h"
#include "examples/postgres/postgres.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::examples::postgres {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

const absl::Time kNow = absl::FromUnixSeconds(1765050000);

std::string Render(absl::string_view text,
                   const sdk::UsernameMetadata& metadata = {"token-abc", "readonly"}) {
  absl::StatusOr<UsernameTemplate> t = UsernameTemplate::Parse(text);
  if (!t.ok()) return "parse error: " + std::string(t.status().message());
  SeededRandom random(7);
  absl::StatusOr<std::string> out = t->Render(metadata, random, kNow);
  return out.ok() ? *out : "render error: " + std::string(out.status().message());
}

TEST(UsernameTemplateTest, DefaultTemplateMatchesDefaultUsername) {
  const sdk::UsernameMetadata metadata = {"token-with-a-long-name", "a-role-name-too-long"};
  SeededRandom random(7);
  EXPECT_EQ(Render(kDefaultUsernameTemplate, metadata), DefaultUsername(metadata, random, kNow));
  EXPECT_THAT(Render(kDefaultUsernameTemplate, metadata),
              MatchesRegex("v-token-wi-a-role-n-[0-9A-Za-z]{20}-1765050000"));
}

TEST(UsernameTemplateTest, Functions) {
  EXPECT_EQ(Render("{{.RoleName}}_{{.DisplayName | replace \"-\" \"_\" | uppercase}}"),
            "readonly_TOKEN_ABC");
  EXPECT_EQ(Render("{{ .DisplayName | truncate 3 }}-{{unix_time}}-{{unix_time_millis}}"),
            "tok-1765050000-1765050000000");
  EXPECT_EQ(Render("{{\"ABC\" | lowercase}}{{sha256 \"x\" | truncate 8}}{{base64 \"hi\"}}"),
            "abc2d711642aGk=");
  EXPECT_EQ(Render("{{truncate_sha256 12 \"abcdefghijklmnop\"}}"),
            "abcd"
            "f39dac6c");
  EXPECT_THAT(Render("{{random 5}}"), MatchesRegex("[0-9A-Za-z]{5}"));
  EXPECT_THAT(Render("{{uuid}}"),
              MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
  EXPECT_EQ(Render("{{printf \"%s/%d%%\" .RoleName 5}}"), "readonly/5%");
  EXPECT_EQ(Render("plain"), "plain");
}

TEST(UsernameTemplateTest, RefusesWhatItDoesNotKnow) {
  EXPECT_THAT(Render("{{if .RoleName}}x{{end}}"), HasSubstr("unknown name \"if\""));
  EXPECT_THAT(Render("{{.Other}}"), HasSubstr("unknown name \".Other\""));
  EXPECT_THAT(Render("{{.RoleName"), HasSubstr("expected }}"));
  EXPECT_THAT(Render("{{truncate 3}}"), HasSubstr("truncate takes 2 argument(s), got 1"));
  EXPECT_THAT(Render("{{.RoleName | .DisplayName}}"), HasSubstr("cannot take arguments"));
  EXPECT_THAT(Render("{{truncate -1 .RoleName}}"), HasSubstr("unknown name \"-1\""));
  EXPECT_THAT(Render("{{truncate \"x\" .RoleName}}"), HasSubstr("truncate needs a length >= 0"));
  EXPECT_THAT(Render("{{printf \"%q\" .RoleName}}"), HasSubstr("printf supports"));
  EXPECT_THAT(Render("{{(((((((((((((((((((x)))))))))))))))))))}}"),
              HasSubstr("nested too deeply"));
}

}  // namespace
}  // namespace bulwark::examples::postgres
