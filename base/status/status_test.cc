// Tests for the status macros and CHECK.
#include "absl/status/status.h"

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "base/status/check.h"
#include "base/status/quote.h"
#include "base/status/status_macros.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

absl::StatusOr<int> Parse(bool ok) {
  if (!ok) return absl::InvalidArgumentError("not a number");
  return 42;
}

absl::Status UseReturnIfError(absl::Status inner, int* reached) {
  RETURN_IF_ERROR(inner);
  *reached = 1;
  return absl::OkStatus();
}

absl::StatusOr<int> UseAssignOrReturn(bool ok) {
  ASSIGN_OR_RETURN(int value, Parse(ok));
  ASSIGN_OR_RETURN(const int again, Parse(ok));
  return value + again;
}

TEST(StatusMacrosTest, ReturnIfErrorPassesErrorsThrough) {
  int reached = 0;
  absl::Status status = UseReturnIfError(absl::NotFoundError("gone"), &reached);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(reached, 0);
  EXPECT_TRUE(UseReturnIfError(absl::OkStatus(), &reached).ok());
  EXPECT_EQ(reached, 1);
}

TEST(StatusMacrosTest, AssignOrReturnAssignsOrReturns) {
  absl::StatusOr<int> good = UseAssignOrReturn(true);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 84);
  absl::StatusOr<int> bad = UseAssignOrReturn(false);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "not a number");
}

TEST(StatusMacrosTest, AnnotateKeepsCodeAndPrefixesMessage) {
  absl::Status s = Annotate(absl::PermissionDeniedError("denied"), "open /x");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "open /x: denied");
  EXPECT_TRUE(Annotate(absl::OkStatus(), "ignored").ok());
}

TEST(CheckDeathTest, FailedCheckAbortsWithMessage) {
  int limit = 3;
  EXPECT_DEATH({ CHECK(limit > 5) << "limit was " << limit; },
               "CHECK failed: limit > 5 limit was 3");
  EXPECT_DEATH({ CHECK_OK(absl::InternalError("boom")); }, "INTERNAL: boom");
  EXPECT_DEATH({ CHECK_OK(Parse(false)); }, "not a number");
}

TEST(CheckDeathTest, PassingCheckEvaluatesNoMessage) {
  int evaluated = 0;
  auto side_effect = [&evaluated] { return ++evaluated; };
  CHECK(true) << side_effect();
  CHECK_OK(Parse(true)) << side_effect();
  EXPECT_EQ(evaluated, 0);
}

TEST(QuoteForErrorTest, EscapesAndCuts) {
  EXPECT_EQ(QuoteForError("a\"b\n"), "\"a\\\"b\\n\"");
  EXPECT_EQ(QuoteForError("abcdef", 3), "\"abc\"...(6 bytes)");
  EXPECT_EQ(QuoteForError("abc", 3), "\"abc\"");
  EXPECT_EQ(QuoteForError("\xff"), "\"\\xff\"");
  EXPECT_EQ(QuoteForError(std::string(kQuotedBytesMax + 1, 'x')),
            absl::StrCat("\"", std::string(kQuotedBytesMax, 'x'), "\"...(121 bytes)"));
}

}  // namespace
}  // namespace bulwark
