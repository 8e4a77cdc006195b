// Tests for line splitting with a cap.
#include "base/env/line_splitter.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace bulwark {
namespace {

using Lines = std::vector<std::pair<std::string, bool>>;

Lines Split(size_t cap, const std::vector<std::string>& chunks) {
  LineSplitter splitter(cap);
  Lines out;
  auto fn = [&out](absl::string_view line, bool truncated) {
    out.emplace_back(std::string(line), truncated);
  };
  for (const std::string& chunk : chunks) splitter.Feed(chunk, fn);
  splitter.Finish(fn);
  return out;
}

TEST(LineSplitterTest, SplitsAcrossChunks) {
  EXPECT_EQ(Split(100, {"he", "llo\nwor", "ld\n", "\n"}),
            (Lines{{"hello", false}, {"world", false}, {"", false}}));
}

TEST(LineSplitterTest, FinishFlushesUnterminatedLine) {
  EXPECT_EQ(Split(100, {"a\nb"}), (Lines{{"a", false}, {"b", false}}));
  EXPECT_EQ(Split(100, {}), Lines{});
}

TEST(LineSplitterTest, LineOfExactlyTheCapIsNotTruncated) {
  EXPECT_EQ(Split(4, {"abcd", "\nx\n"}), (Lines{{"abcd", false}, {"x", false}}));
}

TEST(LineSplitterTest, LongLineIsTruncatedAndItsTailDropped) {
  EXPECT_EQ(Split(4, {"abcdefgh\nnext\n"}), (Lines{{"abcd", true}, {"next", false}}));
  // The same when the overflow arrives in pieces, and the tail spans several chunks.
  EXPECT_EQ(Split(4, {"ab", "cde", "fgh", "ijk\n", "ok\n"}),
            (Lines{{"abcd", true}, {"ok", false}}));
  // An unterminated overlong line at the end.
  EXPECT_EQ(Split(3, {"abcdef"}), (Lines{{"abc", true}}));
}

TEST(LineSplitterTest, MemoryIsBoundedByTheCap) {
  LineSplitter splitter(16);
  size_t lines = 0;
  std::string big(1 << 20, 'x');
  splitter.Feed(big, [&](absl::string_view line, bool truncated) {
    EXPECT_EQ(line.size(), 16u);
    EXPECT_TRUE(truncated);
    ++lines;
  });
  EXPECT_EQ(lines, 1u);
}

}  // namespace
}  // namespace bulwark
