// Tests for FindJsonNestingBeyond.
#include "base/json/json_depth.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

using ::testing::Eq;
using ::testing::Optional;

TEST(JsonDepthTest, AcceptsNestingUpToTheLimit) {
  EXPECT_EQ(FindJsonNestingBeyond("", 0), std::nullopt);
  EXPECT_EQ(FindJsonNestingBeyond("42", 0), std::nullopt);
  EXPECT_EQ(FindJsonNestingBeyond(R"({"a":[1,{"b":2}]})", 3), std::nullopt);
  // Siblings do not add up: each closes before the next opens.
  EXPECT_EQ(FindJsonNestingBeyond("[[],[],[[]]]", 3), std::nullopt);
}

TEST(JsonDepthTest, ReportsTheFirstBracketBeyondTheLimit) {
  EXPECT_THAT(FindJsonNestingBeyond("{}", 0), Optional(Eq(0u)));
  EXPECT_THAT(FindJsonNestingBeyond(R"({"a":[1,{"b":2}]})", 2), Optional(Eq(8u)));
  EXPECT_THAT(FindJsonNestingBeyond("[[],[],[[]]]", 2), Optional(Eq(8u)));
}

TEST(JsonDepthTest, IgnoresBracketsInsideStrings) {
  EXPECT_EQ(FindJsonNestingBeyond(R"({"k":"[[[[{{{{"})", 1), std::nullopt);
  // An escaped quote does not end the string; an escaped backslash does not escape the quote.
  EXPECT_EQ(FindJsonNestingBeyond(R"(["a\"[[[", "b\\"])", 1), std::nullopt);
  EXPECT_THAT(FindJsonNestingBeyond(R"(["b\\", [])", 1), Optional(Eq(8u)));
}

TEST(JsonDepthTest, HostileNestingIsFoundWithoutRecursing) {
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  EXPECT_THAT(FindJsonNestingBeyond(deep, 256), Optional(Eq(256u)));
  EXPECT_EQ(FindJsonNestingBeyond(deep, 1000000), std::nullopt);
}

TEST(JsonDepthTest, StrayClosersDoNotGoNegative) {
  EXPECT_THAT(FindJsonNestingBeyond("]]]}[[", 1), Optional(Eq(5u)));
}

}  // namespace
}  // namespace bulwark
