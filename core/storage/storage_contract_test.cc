// The Storage contract (core/storage/testing/storage_contract.h) run against InMemoryStorage,
// FileStorage over the simulated file system, and FileStorage over the real POSIX file system
// (under $TEST_TMPDIR). EtcdStorage runs it in //server/etcd.
#include "core/storage/testing/storage_contract.h"

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

using storage_testing::Backend;
using storage_testing::BackendParam;
using storage_testing::StorageContractTest;

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

INSTANTIATE_TEST_SUITE_P(
    AllBackends, StorageContractTest,
    ::testing::Values(BackendParam{"InMemory", [] { return std::make_unique<InMemoryBackend>(); }},
                      BackendParam{"FileOnSim", [] { return std::make_unique<SimFileBackend>(); }},
                      BackendParam{"FileOnPosix",
                                   [] { return std::make_unique<PosixFileBackend>(); }}),
    storage_testing::BackendName);

}  // namespace
}  // namespace bulwark
