#include "base/storage/storage_errors.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

TEST(StorageErrorsTest, FencedIsDistinctFromReadOnlyAndFromOtherPreconditionFailures) {
  const absl::Status fenced = FencedError("lock revision 7");
  EXPECT_TRUE(IsFenced(fenced));
  EXPECT_FALSE(IsReadOnly(fenced));
  EXPECT_EQ(fenced.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StartsWith(fenced.message(), "fenced: this node no longer holds the lock"));
  EXPECT_TRUE(absl::StrContains(fenced.message(), "lock revision 7"));

  const absl::Status read_only = ReadOnlyError();
  EXPECT_TRUE(IsReadOnly(read_only));
  EXPECT_FALSE(IsFenced(read_only));
  EXPECT_EQ(read_only.message(), "cannot write to readonly storage");

  // Same code and text, no payload: not fenced (a sealed barrier is kFailedPrecondition too).
  EXPECT_FALSE(IsFenced(absl::FailedPreconditionError(fenced.message())));
  EXPECT_FALSE(IsReadOnly(absl::FailedPreconditionError(read_only.message())));
  EXPECT_FALSE(IsFenced(absl::OkStatus()));
}

TEST(StorageErrorsTest, TheKindSurvivesCopiesThatKeepThePayload) {
  absl::Status copy = FencedError("");
  absl::Status moved = std::move(copy);
  EXPECT_TRUE(IsFenced(moved));
  EXPECT_EQ(moved.message(), "fenced: this node no longer holds the lock");
}

}  // namespace
}  // namespace bulwark
