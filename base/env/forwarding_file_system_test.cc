// Tests for ForwardingFileSystem: every call reaches the inner file system, every call passes the
// check (handles with the generation they were opened in), and exactly the mutating calls reach
// AfterMutation.
#include "base/env/forwarding_file_system.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/env/random.h"
#include "base/env/sim/sim_file_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

using ::testing::ElementsAre;

// Records what it sees; fails calls from generations before `floor_`, and turns the result of the
// `fail_mutation_`-th mutating call into kAborted.
class RecordingFileSystem final : public ForwardingFileSystem {
 public:
  explicit RecordingFileSystem(FileSystem& inner) : ForwardingFileSystem(inner) {}

  uint64_t generation() const override { return generation_; }
  absl::Status CheckCall(uint64_t generation, absl::string_view operation) const override {
    checked_.push_back(std::string(operation));
    if (generation < floor_) return absl::UnavailableError(absl::StrCat(operation, ": stale"));
    return absl::OkStatus();
  }
  absl::Status AfterMutation(absl::Status result) override {
    ++mutations_;
    if (mutations_ == fail_mutation_) return absl::AbortedError("injected");
    return result;
  }

  void NextGeneration() { floor_ = ++generation_; }

  mutable std::vector<std::string> checked_;
  uint64_t mutations_ = 0;
  uint64_t fail_mutation_ = 0;

 private:
  uint64_t generation_ = 0;
  uint64_t floor_ = 0;
};

class ForwardingFileSystemTest : public ::testing::Test {
 protected:
  ForwardingFileSystemTest() : random_(7), disk_(random_), fs_(disk_) {}
  SeededRandom random_;
  sim::SimFileSystem disk_;
  RecordingFileSystem fs_;
};

TEST_F(ForwardingFileSystemTest, ForwardsEveryCallAndCountsOnlyMutations) {
  ASSERT_TRUE(fs_.CreateDir("/d", 0700).ok());
  auto file = fs_.NewWritableFile("/d/f");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("hello").ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Close().ok());
  ASSERT_TRUE(fs_.Rename("/d/f", "/d/g").ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(fs_.CreateSymlink("g", "/d/link").ok());
  ASSERT_TRUE(fs_.SetMode("/d/g", 0644).ok());
  EXPECT_EQ(fs_.mutations_, 9u);

  // What went through is on the inner disk.
  EXPECT_EQ(*disk_.ReadFile("/d/g"), "hello");
  EXPECT_EQ(disk_.Stat("/d/g")->mode, 0644u);

  // Reads go through the wrapper and are not mutations.
  EXPECT_THAT(*fs_.ListDir("/d"), ElementsAre("g", "link"));
  EXPECT_EQ(fs_.Stat("/d/link")->size, 5u);
  EXPECT_EQ(fs_.Lstat("/d/link")->type, FileType::kSymlink);
  EXPECT_EQ(*fs_.RealPath("/d/link"), "/d/g");
  EXPECT_EQ(*fs_.ReadFile("/d/link"), "hello");
  auto exec = fs_.OpenForExec("/d/g");
  ASSERT_TRUE(exec.ok());
  EXPECT_EQ((*exec)->path(), "/d/g");
  char buf[5];
  EXPECT_EQ(*(*exec)->ReadAt(0, absl::MakeSpan(buf)), 5u);
  EXPECT_EQ(fs_.mutations_, 9u);

  ASSERT_TRUE(fs_.Remove("/d/link").ok());
  ASSERT_TRUE(fs_.Remove("/d/g").ok());
  ASSERT_TRUE(fs_.RemoveDir("/d").ok());
  EXPECT_EQ(fs_.mutations_, 12u);
  EXPECT_FALSE(disk_.Stat("/d").ok());
  EXPECT_THAT(fs_.checked_, ::testing::Contains("syncdir"));
}

TEST_F(ForwardingFileSystemTest, HandlesFromAnEarlierGenerationFail) {
  auto writer = fs_.NewWritableFile("/f");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("x").ok());
  ASSERT_TRUE((*writer)->Close().ok());
  auto reader = fs_.OpenForRead("/f");
  ASSERT_TRUE(reader.ok());
  auto writer2 = fs_.NewWritableFile("/g");
  ASSERT_TRUE(writer2.ok());
  const uint64_t before = fs_.mutations_;

  fs_.NextGeneration();
  char buf[1];
  EXPECT_EQ((*reader)->ReadAt(0, absl::MakeSpan(buf)).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ((*reader)->Stat().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*writer2)->Append("y").code(), absl::StatusCode::kUnavailable);
  // A refused call never reaches the inner file system, so it is not a mutation.
  EXPECT_EQ(fs_.mutations_, before);
  // Files opened in the new generation work.
  auto reader2 = fs_.OpenForRead("/f");
  ASSERT_TRUE(reader2.ok());
  EXPECT_EQ(*(*reader2)->ReadAt(0, absl::MakeSpan(buf)), 1u);
}

TEST_F(ForwardingFileSystemTest, TheCallerGetsWhatAfterMutationReturns) {
  fs_.fail_mutation_ = 1;
  // The create took effect on the disk, but the caller gets the hook's answer and no handle.
  auto file = fs_.NewWritableFile("/f");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(disk_.Stat("/f").ok());
  fs_.fail_mutation_ = 2;
  EXPECT_EQ(fs_.CreateDir("/d", 0700).code(), absl::StatusCode::kAborted);
  // An error from the inner file system is passed to the hook and through.
  EXPECT_EQ(fs_.CreateDir("/d", 0700).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(fs_.mutations_, 3u);
}

}  // namespace
}  // namespace bulwark
