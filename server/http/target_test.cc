// ParseTarget: decoding of path and query, and each refusal with the problem it names.
#include "server/http/target.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;

Target Parse(absl::string_view target) {
  absl::StatusOr<Target> parsed = ParseTarget(target);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *std::move(parsed) : Target{};
}

// The error message for `target`, which must be refused with InvalidArgument.
std::string Refusal(absl::string_view target) {
  absl::StatusOr<Target> parsed = ParseTarget(target);
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << target;
  return std::string(parsed.status().message());
}

TEST(ParseTargetTest, PlainPathHasNoQuery) {
  const Target t = Parse("/v1/sys/seal-status");
  EXPECT_EQ(t.path, "/v1/sys/seal-status");
  EXPECT_THAT(t.query, IsEmpty());
}

TEST(ParseTargetTest, RootAndTrailingSlashArePaths) {
  EXPECT_EQ(Parse("/").path, "/");
  EXPECT_EQ(Parse("/v1/secret/").path, "/v1/secret/");
}

TEST(ParseTargetTest, PathIsPercentDecodedButPlusStays) {
  EXPECT_EQ(Parse("/v1/secret/a%20b+c%2Fd%e2%82%ac").path, "/v1/secret/a b+c/d\xe2\x82\xac");
}

TEST(ParseTargetTest, QueryIsDecodedInOrder) {
  const Target t = Parse("/v1/sys/health?standbyok=true&x=%2Fy&z=a+b&flag&&dup=1&dup=2&=v&k=");
  EXPECT_EQ(t.path, "/v1/sys/health");
  EXPECT_THAT(t.query, ElementsAre(Pair("standbyok", "true"), Pair("x", "/y"), Pair("z", "a b"),
                                   Pair("flag", ""), Pair("dup", "1"), Pair("dup", "2"),
                                   Pair("", "v"), Pair("k", "")));
}

TEST(ParseTargetTest, ValueKeepsLaterEqualsSigns) {
  EXPECT_THAT(Parse("/a?k=x=y").query, ElementsAre(Pair("k", "x=y")));
}

TEST(ParseTargetTest, EmptyQueryIsNoParameters) {
  const Target t = Parse("/a?");
  EXPECT_EQ(t.path, "/a");
  EXPECT_THAT(t.query, IsEmpty());
}

TEST(ParseTargetTest, DotsInsideNamesAreFine) {
  EXPECT_EQ(Parse("/v1/secret/.hidden/a..b/...").path, "/v1/secret/.hidden/a..b/...");
}

TEST(ParseTargetTest, RefusesEmptyAndNonAbsoluteTargets) {
  EXPECT_THAT(Refusal(""), HasSubstr("empty"));
  EXPECT_THAT(Refusal("v1/sys/health"), HasSubstr("not an absolute path"));
  EXPECT_THAT(Refusal("*"), HasSubstr("not an absolute path"));
  EXPECT_THAT(Refusal("http://example.com/v1/sys/health"), HasSubstr("not an absolute path"));
  EXPECT_THAT(Refusal("?a=b"), HasSubstr("not an absolute path"));
}

TEST(ParseTargetTest, RefusesBadPercentEncodingNamingTheByte) {
  EXPECT_THAT(Refusal("/v1/a%zz"), HasSubstr("bad percent-encoding at byte 5"));
  EXPECT_THAT(Refusal("/v1/a%4"), HasSubstr("bad percent-encoding at byte 5"));
  EXPECT_THAT(Refusal("/v1/a%"), HasSubstr("bad percent-encoding"));
  EXPECT_THAT(Refusal("/a?k=%g1"), HasSubstr("bad percent-encoding at byte 5"));
  EXPECT_THAT(Refusal("/a?x=1&%"), HasSubstr("bad percent-encoding at byte 7"));
}

TEST(ParseTargetTest, RefusesDotSegmentsRawOrEncoded) {
  for (const char* target : {"/v1/../sys/seal", "/v1/./sys", "/..", "/.", "/v1/secret/..",
                             "/v1/%2e%2e/sys", "/v1/%2E/sys", "/v1/a%2f..%2fsys", "/v1/.%2e?x=1"}) {
    EXPECT_THAT(Refusal(target), HasSubstr("segment")) << target;
  }
  EXPECT_THAT(Refusal("/v1/../x"), HasSubstr("\"..\" segment"));
  EXPECT_THAT(Refusal("/v1/./x"), HasSubstr("\".\" segment"));
}

TEST(ParseTargetTest, DotsInTheQueryAreData) {
  EXPECT_THAT(Parse("/a?path=../..").query, ElementsAre(Pair("path", "../..")));
}

TEST(ParseTargetTest, RefusesNulAndControlCharacters) {
  EXPECT_THAT(Refusal("/v1/a%00b"), HasSubstr("NUL byte (%00) at byte 5"));
  EXPECT_THAT(Refusal("/a?k=%00"), HasSubstr("NUL byte"));
  EXPECT_THAT(Refusal("/v1/a%0Ab"), HasSubstr("control character (%0A) at byte 5"));
  EXPECT_THAT(Refusal("/v1/a%7f"), HasSubstr("control character (%7F)"));
  EXPECT_THAT(Refusal("/a?k=%1b"), HasSubstr("query has a control character"));
  EXPECT_THAT(Refusal(absl::string_view("/a\0b", 4)), HasSubstr("NUL byte at byte 2"));
  EXPECT_THAT(Refusal("/a\tb"), HasSubstr("control character at byte 2"));
  EXPECT_THAT(Refusal("/a\x7f"), HasSubstr("control character at byte 2"));
}

TEST(ParseTargetTest, RefusesSpacesNonAsciiAndFragments) {
  EXPECT_THAT(Refusal("/a b"), HasSubstr("space at byte 2"));
  EXPECT_THAT(Refusal("/a\xc3\xa9"), HasSubstr("non-ASCII byte at byte 2"));
  EXPECT_THAT(Refusal("/a#frag"), HasSubstr("fragment"));
}

TEST(ParseTargetTest, MessagesNeverRepeatTheTarget) {
  for (const char* target : {"/v1/s3cr3tvalue%zz", "/v1/s3cr3tvalue/../x", "/x?s3cr3tvalue=%00",
                             "s3cr3tvalue", "/s3cr3tvalue#x"}) {
    EXPECT_THAT(Refusal(target), Not(HasSubstr("s3cr3t"))) << target;
  }
}

}  // namespace
}  // namespace bulwark::http
