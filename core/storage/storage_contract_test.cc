// The Storage contract, run against every physical backend: InMemoryStorage, FileStorage over the
// simulated file system, and FileStorage over the real POSIX file system (under $TEST_TMPDIR).
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/env/file_system.h"
#include "base/env/posix/posix_file_system.h"
#include "base/env/random.h"
#include "base/env/sim/sim_file_system.h"
#include "base/storage/in_memory_storage.h"
#include "base/storage/storage.h"
#include "core/storage/file_storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Optional;

// One backend under test. File backends keep their data directory inside `root`, which holds
// nothing else, so a test can check that no write ever lands outside the data directory.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual Storage& storage() = 0;
  // Every path under root (recursively, as "a/b" relative to root, directories included), or
  // nullopt for a backend without files.
  virtual std::optional<std::vector<std::string>> Tree() { return std::nullopt; }
};

class InMemoryBackend final : public Backend {
 public:
  Storage& storage() override { return storage_; }

 private:
  InMemoryStorage storage_;
};

// Lists `dir` recursively through `fs`, without following symlinks.
void ListTree(FileSystem& fs, const std::string& root, const std::string& relative,
              std::vector<std::string>& out) {
  const std::string dir = relative.empty() ? root : JoinPath(root, relative);
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir(dir);
  ASSERT_TRUE(names.ok()) << names.status();
  for (const std::string& name : *names) {
    const std::string child = relative.empty() ? name : absl::StrCat(relative, "/", name);
    out.push_back(child);
    absl::StatusOr<FileInfo> info = fs.Lstat(JoinPath(root, child));
    ASSERT_TRUE(info.ok()) << info.status();
    if (info->type == FileType::kDirectory) ListTree(fs, root, child, out);
  }
}

class FileBackend final : public Backend {
 public:
  FileBackend(FileSystem& fs, std::string root) : fs_(fs), root_(std::move(root)) {
    absl::StatusOr<std::unique_ptr<FileStorage>> storage =
        FileStorage::Open(fs_, JoinPath(root_, "data"));
    EXPECT_TRUE(storage.ok()) << storage.status();
    if (storage.ok()) storage_ = *std::move(storage);
  }
  Storage& storage() override { return *storage_; }
  std::optional<std::vector<std::string>> Tree() override {
    std::vector<std::string> out;
    ListTree(fs_, root_, "", out);
    return out;
  }

 private:
  FileSystem& fs_;
  std::string root_;
  std::unique_ptr<FileStorage> storage_;
};

class SimFileBackend final : public Backend {
 public:
  SimFileBackend() : random_(1), fs_(random_) {
    EXPECT_TRUE(fs_.CreateDir("/root", 0700).ok());
    backend_ = std::make_unique<FileBackend>(fs_, "/root");
  }
  Storage& storage() override { return backend_->storage(); }
  std::optional<std::vector<std::string>> Tree() override { return backend_->Tree(); }

 private:
  SeededRandom random_;
  sim::SimFileSystem fs_;
  std::unique_ptr<FileBackend> backend_;
};

class PosixFileBackend final : public Backend {
 public:
  PosixFileBackend() {
    static int counter = 0;
    const char* tmp = std::getenv("TEST_TMPDIR");
    const std::string root =
        absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/storage_contract_", ++counter);
    EXPECT_TRUE(fs_.CreateDir(root, 0700).ok()) << root;
    backend_ = std::make_unique<FileBackend>(fs_, root);
  }
  Storage& storage() override { return backend_->storage(); }
  std::optional<std::vector<std::string>> Tree() override { return backend_->Tree(); }

 private:
  PosixFileSystem fs_;
  std::unique_ptr<FileBackend> backend_;
};

struct BackendParam {
  std::string name;
  std::function<std::unique_ptr<Backend>()> make;
};

class StorageContractTest : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override { backend_ = GetParam().make(); }
  Storage& storage() { return backend_->storage(); }

  std::unique_ptr<Backend> backend_;
};

INSTANTIATE_TEST_SUITE_P(
    AllBackends, StorageContractTest,
    ::testing::Values(BackendParam{"InMemory", [] { return std::make_unique<InMemoryBackend>(); }},
                      BackendParam{"FileOnSim", [] { return std::make_unique<SimFileBackend>(); }},
                      BackendParam{"FileOnPosix",
                                   [] { return std::make_unique<PosixFileBackend>(); }}),
    [](const ::testing::TestParamInfo<BackendParam>& info) { return info.param.name; });

TEST_P(StorageContractTest, GetOfMissingKeyIsNullopt) {
  absl::StatusOr<std::optional<std::string>> got = storage().Get("missing");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, std::nullopt);
}

TEST_P(StorageContractTest, PutThenGetRoundTrips) {
  const std::string binary("\0\x01\xff\n value", 10);
  ASSERT_TRUE(storage().Put("a/b", binary).ok());
  ASSERT_TRUE(storage().Put("empty", "").ok());
  EXPECT_THAT(*storage().Get("a/b"), Optional(binary));
  EXPECT_THAT(*storage().Get("empty"), Optional(std::string()));
}

TEST_P(StorageContractTest, PutReplacesTheValue) {
  ASSERT_TRUE(storage().Put("k", "a much longer first value").ok());
  ASSERT_TRUE(storage().Put("k", "second").ok());
  EXPECT_THAT(*storage().Get("k"), Optional(std::string("second")));
  EXPECT_THAT(*storage().List(""), ElementsAre("k"));
}

TEST_P(StorageContractTest, DeleteRemovesAndIsIdempotent) {
  ASSERT_TRUE(storage().Put("k", "v").ok());
  ASSERT_TRUE(storage().Delete("k").ok());
  EXPECT_EQ(*storage().Get("k"), std::nullopt);
  EXPECT_THAT(*storage().List(""), IsEmpty());
  EXPECT_TRUE(storage().Delete("k").ok());
  EXPECT_TRUE(storage().Delete("never/existed").ok());
}

TEST_P(StorageContractTest, ListReturnsFullKeysWithThePrefixSortedBytewise) {
  for (const char* key : {"b", "a/c", "a/b", "ab", "a/b/c", "\xff", "a", "A"}) {
    ASSERT_TRUE(storage().Put(key, "v").ok()) << key;
  }
  EXPECT_THAT(*storage().List(""), ElementsAre("A", "a", "a/b", "a/b/c", "a/c", "ab", "b", "\xff"));
  EXPECT_THAT(*storage().List("a/"), ElementsAre("a/b", "a/b/c", "a/c"));
  EXPECT_THAT(*storage().List("a/b"), ElementsAre("a/b", "a/b/c"));
  EXPECT_THAT(*storage().List("zzz"), IsEmpty());
  EXPECT_THAT(*storage().List("\xff"), ElementsAre("\xff"));
}

TEST_P(StorageContractTest, InvalidKeysAreRejectedByEveryMethod) {
  const std::vector<std::string> invalid = {"",
                                            "/abs",
                                            "trailing/",
                                            "a//b",
                                            ".",
                                            "..",
                                            "a/./b",
                                            "a/../b",
                                            "../../etc/passwd",
                                            "a/../../b",
                                            std::string("nul\0byte", 8),
                                            std::string(kStorageKeyBytesMax + 1, 'k')};
  for (const std::string& key : invalid) {
    SCOPED_TRACE(testing::PrintToString(key));
    EXPECT_EQ(ValidateStorageKey(key).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(storage().Put(key, "v").code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(storage().Get(key).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(storage().Delete(key).code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_THAT(*storage().List(""), IsEmpty());
}

TEST_P(StorageContractTest, KeyLengthLimitIsInclusive) {
  const std::string longest(kStorageKeyBytesMax, 'k');
  ASSERT_TRUE(storage().Put(longest, "v").ok());
  EXPECT_THAT(*storage().Get(longest), Optional(std::string("v")));
  EXPECT_THAT(*storage().List(""), ElementsAre(longest));
  const absl::Status too_long = storage().Put(longest + "k", "v");
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_long.message()), ::testing::HasSubstr("limit is 1024"));
}

TEST_P(StorageContractTest, ValueSizeLimitIsInclusiveAndAnOversizedPutChangesNothing) {
  const std::string largest(kStorageValueBytesMax, 'v');
  ASSERT_TRUE(storage().Put("big", largest).ok());
  EXPECT_THAT(*storage().Get("big"), Optional(largest));
  ASSERT_TRUE(storage().Put("k", "old").ok());
  const absl::Status too_big = storage().Put("k", largest + "v");
  EXPECT_EQ(too_big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_big.message()), ::testing::HasSubstr("limit"));
  EXPECT_THAT(*storage().Get("k"), Optional(std::string("old")));
}

TEST_P(StorageContractTest, HostileKeysNeverNameAPathOutsideTheDataDirectory) {
  // Traversal attempts that the key rules reject outright.
  for (const std::string& key :
       {std::string("../../etc/passwd"), std::string("a/../../b"), std::string("/etc/passwd"),
        std::string("..\0/x", 5), std::string("x\0/../../y", 10)}) {
    EXPECT_EQ(storage().Put(key, "pwned").code(), absl::StatusCode::kInvalidArgument);
  }
  // Valid keys that an escaping scheme or a path join could get wrong.
  const std::vector<std::string> hostile = {"%2e%2e/%2e%2e/etc/passwd",
                                            "..%2f..%2fetc",
                                            "...",
                                            "..a/b..",
                                            "%00",
                                            "%",
                                            "a%2fb",
                                            "k-0123",
                                            "x.tmp",
                                            "\\..\\..\\windows",
                                            "~/.ssh/authorized_keys",
                                            "\xc0\xae\xc0\xae/\xc0\xae\xc0\xae",
                                            "\n\r\t",
                                            std::string(300, 'x')};
  for (const std::string& key : hostile) {
    ASSERT_TRUE(storage().Put(key, key).ok()) << testing::PrintToString(key);
  }
  for (const std::string& key : hostile) {
    EXPECT_THAT(*storage().Get(key), Optional(key)) << testing::PrintToString(key);
  }
  std::vector<std::string> sorted = hostile;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(*storage().List(""), sorted);

  std::optional<std::vector<std::string>> tree = backend_->Tree();
  if (!tree.has_value()) return;  // No files to check.
  // Only the data directory and flat files directly inside it exist under the root.
  size_t files = 0;
  for (const std::string& path : *tree) {
    if (path == "data") continue;
    EXPECT_TRUE(absl::StartsWith(path, "data/")) << path;
    const std::string name = path.substr(5);
    EXPECT_EQ(name.find('/'), std::string::npos) << path;
    EXPECT_TRUE(absl::StartsWith(name, "k-")) << path;
    EXPECT_EQ(name.size(), 66u) << path;
    ++files;
  }
  EXPECT_EQ(files, hostile.size());
}

}  // namespace
}  // namespace bulwark
