// Tests for the simulated file system's durability model. (The behaviour it shares with the
// real file system is covered by //base/env/testing:file_system_contract_test.)
#include "base/env/sim/sim_file_system.h"

#include <set>
#include <string>

#include "base/env/random.h"
#include "gtest/gtest.h"

namespace bulwark::sim {
namespace {

absl::Status WriteFile(SimFileSystem& fs, const std::string& path, const std::string& data,
                       bool sync) {
  auto file = fs.NewWritableFile(path);
  if (!file.ok()) return file.status();
  if (absl::Status s = (*file)->Append(data); !s.ok()) return s;
  if (sync) {
    if (absl::Status s = (*file)->Sync(); !s.ok()) return s;
  }
  return (*file)->Close();
}

class SimFileSystemCrashTest : public ::testing::Test {
 protected:
  SimFileSystemCrashTest() : random_(5), fs_(random_) {
    EXPECT_TRUE(fs_.CreateDir("/data", 0700).ok());
    EXPECT_TRUE(fs_.SyncDir("/").ok());
  }
  SeededRandom random_;
  SimFileSystem fs_;
};

TEST_F(SimFileSystemCrashTest, SyncedDataSurvivesAndUnsyncedIsDropped) {
  ASSERT_TRUE(WriteFile(fs_, "/data/synced", "kept", /*sync=*/true).ok());
  ASSERT_TRUE(WriteFile(fs_, "/data/unsynced", "lost", /*sync=*/false).ok());
  ASSERT_TRUE(fs_.SyncDir("/data").ok());
  fs_.Crash(CrashMode::kDropUnsynced);
  EXPECT_EQ(*fs_.ReadFile("/data/synced"), "kept");
  // The entry was synced, the contents were not: an empty file, as on a real disk.
  EXPECT_EQ(*fs_.ReadFile("/data/unsynced"), "");
}

TEST_F(SimFileSystemCrashTest, EntryWithoutDirectorySyncIsLost) {
  ASSERT_TRUE(WriteFile(fs_, "/data/file", "bytes", /*sync=*/true).ok());
  fs_.Crash(CrashMode::kDropUnsynced);
  EXPECT_EQ(fs_.Stat("/data/file").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SimFileSystemCrashTest, RenameIsDurableOnlyAfterDirectorySync) {
  ASSERT_TRUE(WriteFile(fs_, "/data/v", "old", true).ok());
  ASSERT_TRUE(fs_.SyncDir("/data").ok());
  ASSERT_TRUE(WriteFile(fs_, "/data/v.tmp", "new", true).ok());
  ASSERT_TRUE(fs_.Rename("/data/v.tmp", "/data/v").ok());
  fs_.Crash(CrashMode::kDropUnsynced);
  EXPECT_EQ(*fs_.ReadFile("/data/v"), "old");

  ASSERT_TRUE(WriteFile(fs_, "/data/v.tmp", "new", true).ok());
  ASSERT_TRUE(fs_.Rename("/data/v.tmp", "/data/v").ok());
  ASSERT_TRUE(fs_.SyncDir("/data").ok());
  fs_.Crash(CrashMode::kDropUnsynced);
  EXPECT_EQ(*fs_.ReadFile("/data/v"), "new");
  EXPECT_EQ(fs_.Stat("/data/v.tmp").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SimFileSystemCrashTest, HandlesOpenedBeforeACrashFail) {
  auto file = fs_.NewWritableFile("/data/f");
  ASSERT_TRUE(file.ok());
  fs_.Crash(CrashMode::kDropUnsynced);
  EXPECT_EQ((*file)->Append("x").code(), absl::StatusCode::kUnavailable);
}

// Over many seeds a torn crash leaves either the synced contents or a prefix of the new ones
// that extends the synced prefix, and both outcomes (and a strictly partial one) occur.
TEST(SimFileSystemTornTest, TornAppendKeepsSyncedPrefix) {
  std::set<std::string> outcomes;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    SeededRandom random(seed);
    SimFileSystem fs(random);
    ASSERT_TRUE(fs.WriteFileDurably("/log", "AAAA").ok());
    auto file = fs.NewWritableFile("/log");
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->Append("AAAA").ok());
    ASSERT_TRUE((*file)->Sync().ok());
    ASSERT_TRUE((*file)->Append("BBBBBBBB").ok());
    fs.Crash(CrashMode::kTearUnsynced);
    std::string after = *fs.ReadFile("/log");
    ASSERT_EQ(after.substr(0, 4), "AAAA") << "seed " << seed;
    ASSERT_LE(after.size(), 12u);
    ASSERT_EQ(after.find_first_not_of('B', 4), std::string::npos) << "seed " << seed;
    outcomes.insert(after);
  }
  EXPECT_TRUE(outcomes.count("AAAA"));
  EXPECT_TRUE(outcomes.count("AAAABBBBBBBB"));
  EXPECT_GT(outcomes.size(), 3u);
}

TEST(SimFileSystemTornTest, TornDirectoryKeepsAllOrNoneOfItsChanges) {
  std::set<std::string> outcomes;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    SeededRandom random(seed);
    SimFileSystem fs(random);
    ASSERT_TRUE(fs.WriteFileDurably("/a", "1").ok());
    ASSERT_TRUE(fs.Rename("/a", "/b").ok());
    fs.Crash(CrashMode::kTearUnsynced);
    const bool a = fs.Stat("/a").ok(), b = fs.Stat("/b").ok();
    ASSERT_NE(a, b) << "a rename must be all or nothing; seed " << seed;
    outcomes.insert(a ? "a" : "b");
  }
  EXPECT_EQ(outcomes.size(), 2u);
}

}  // namespace
}  // namespace bulwark::sim
