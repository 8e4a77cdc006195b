// FileStorage beyond the Storage contract: persistence across reopen, cleanup of leftover
// temporaries, files it does not own, and detection of corrupt records.
#include "core/storage/file_storage.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/env/random.h"
#include "base/env/sim/sim_file_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

class FileStorageTest : public ::testing::Test {
 protected:
  FileStorageTest() : random_(7), fs_(random_) {}

  std::unique_ptr<FileStorage> Open() {
    absl::StatusOr<std::unique_ptr<FileStorage>> storage = FileStorage::Open(fs_, kDir);
    EXPECT_TRUE(storage.ok()) << storage.status();
    return storage.ok() ? *std::move(storage) : nullptr;
  }
  std::string PathOf(absl::string_view key) {
    return JoinPath(kDir, FileStorage::FileNameForKey(key));
  }

  static constexpr absl::string_view kDir = "/var/bulwark";
  SeededRandom random_;
  sim::SimFileSystem fs_;
};

TEST_F(FileStorageTest, CreatesTheDataDirectoryDurably) {
  ASSERT_TRUE(fs_.CreateDir("/var", 0755).ok());
  ASSERT_TRUE(fs_.SyncDir("/").ok());
  ASSERT_NE(Open(), nullptr);
  fs_.Crash(sim::CrashMode::kDropUnsynced);
  EXPECT_EQ(fs_.Stat(kDir)->type, FileType::kDirectory);
}

TEST_F(FileStorageTest, RejectsADataDirectoryThatIsAFile) {
  ASSERT_TRUE(fs_.CreateDir("/var", 0755).ok());
  ASSERT_TRUE(fs_.WriteFileDurably(kDir, "not a dir").ok());
  EXPECT_EQ(FileStorage::Open(fs_, kDir).status().code(), absl::StatusCode::kFailedPrecondition);
}

class OpenedFileStorageTest : public FileStorageTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs_.CreateDir("/var", 0755).ok());
    ASSERT_TRUE(fs_.SyncDir("/").ok());
    storage_ = Open();
    ASSERT_NE(storage_, nullptr);
  }
  std::unique_ptr<FileStorage> storage_;
};

TEST_F(OpenedFileStorageTest, AcknowledgedWritesSurviveACrashAndReopen) {
  ASSERT_TRUE(storage_->Put("a/1", "one").ok());
  ASSERT_TRUE(storage_->Put("a/2", "two").ok());
  ASSERT_TRUE(storage_->Put("b", "bee").ok());
  ASSERT_TRUE(storage_->Delete("a/2").ok());
  fs_.Crash(sim::CrashMode::kTearUnsynced);
  storage_ = Open();
  ASSERT_NE(storage_, nullptr);
  EXPECT_THAT(*storage_->List(""), ElementsAre("a/1", "b"));
  EXPECT_THAT(*storage_->Get("a/1"), Optional(std::string("one")));
  EXPECT_EQ(*storage_->Get("a/2"), std::nullopt);
}

TEST_F(OpenedFileStorageTest, OpenRemovesLeftoverTemporariesAndIgnoresForeignFiles) {
  ASSERT_TRUE(storage_->Put("k", "v").ok());
  const std::string temp = absl::StrCat(PathOf("other"), ".tmp");
  ASSERT_TRUE(fs_.WriteFileDurably(temp, "half a reco").ok());
  ASSERT_TRUE(fs_.WriteFileDurably(JoinPath(kDir, "README"), "operator notes").ok());
  ASSERT_TRUE(fs_.CreateDir(JoinPath(kDir, "lost+found"), 0700).ok());
  storage_ = Open();
  ASSERT_NE(storage_, nullptr);
  EXPECT_EQ(fs_.Stat(temp).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(fs_.Stat(JoinPath(kDir, "README")).ok());
  EXPECT_THAT(*storage_->List(""), ElementsAre("k"));
  EXPECT_EQ(*storage_->Get("other"), std::nullopt);
  // The removal was made durable.
  fs_.Crash(sim::CrashMode::kDropUnsynced);
  EXPECT_EQ(fs_.Stat(temp).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(OpenedFileStorageTest, AFlippedBitInARecordIsDataLossNamingTheKey) {
  ASSERT_TRUE(storage_->Put("secret/path", "value bytes").ok());
  std::string record = *fs_.ReadFile(PathOf("secret/path"));
  record[record.size() - 40] ^= 0x04;  // Inside the value.
  ASSERT_TRUE(fs_.WriteFileDurably(PathOf("secret/path"), record).ok());
  absl::Status status = storage_->Get("secret/path").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()), HasSubstr("secret/path"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("checksum"));
}

TEST_F(OpenedFileStorageTest, ATruncatedRecordIsDataLossAtGetAndAtOpen) {
  ASSERT_TRUE(storage_->Put("k", "value").ok());
  std::string record = *fs_.ReadFile(PathOf("k"));
  ASSERT_TRUE(fs_.WriteFileDurably(PathOf("k"), record.substr(0, record.size() - 1)).ok());
  EXPECT_EQ(storage_->Get("k").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(FileStorage::Open(fs_, kDir).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(OpenedFileStorageTest, ARecordMovedToAnotherKeysNameIsDataLoss) {
  ASSERT_TRUE(storage_->Put("a", "for a").ok());
  ASSERT_TRUE(storage_->Put("b", "for b").ok());
  ASSERT_TRUE(fs_.WriteFileDurably(PathOf("b"), *fs_.ReadFile(PathOf("a"))).ok());
  EXPECT_EQ(storage_->Get("b").status().code(), absl::StatusCode::kDataLoss);
  absl::Status open = FileStorage::Open(fs_, kDir).status();
  EXPECT_EQ(open.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(open.message()), HasSubstr("does not hash to its file name"));
}

TEST_F(OpenedFileStorageTest, PutSyncsBeforeAcknowledging) {
  const uint64_t before = fs_.sync_count();
  ASSERT_TRUE(storage_->Put("k", "v").ok());
  EXPECT_EQ(fs_.sync_count() - before, 2u);  // The record, then the directory.
}

}  // namespace
}  // namespace bulwark
