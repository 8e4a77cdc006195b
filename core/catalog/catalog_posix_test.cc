// The catalog over the real file system (PosixFileSystem) in $TEST_TMPDIR: a registration that
// must succeed, with permission checks on, and the refusals that depend on real symlink and mode
// semantics.
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/crypto/sha256.h"
#include "base/env/file_system.h"
#include "base/env/posix/posix_file_system.h"
#include "base/storage/in_memory_storage.h"
#include "core/catalog/catalog.h"
#include "core/catalog/catalog_error.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::catalog {
namespace {

constexpr char kContents[] = "#!/bin/sh\necho plugin\n";

class CatalogPosixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr) << "run under bazel test";
    const std::string root =
        JoinPath(tmp, ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(fs_.CreateDir(root, 0755).ok());
    absl::StatusOr<std::string> real_root = fs_.RealPath(root);
    ASSERT_TRUE(real_root.ok()) << real_root.status();
    root_ = *real_root;
    dir_ = JoinPath(root_, "plugins");
    ASSERT_TRUE(fs_.CreateDir(dir_, 0755).ok());
    ASSERT_TRUE(fs_.SetMode(dir_, 0755).ok());  // Whatever the umask did.
    WriteFile(JoinPath(dir_, "my-plugin"), kContents, 0755);
    sha_ = crypto::HexEncode(crypto::Sha256::Hash(kContents));
  }

  void WriteFile(const std::string& path, absl::string_view contents, uint32_t mode) {
    absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_.NewWritableFile(path);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Append(contents).ok());
    ASSERT_TRUE((*file)->Sync().ok());
    ASSERT_TRUE((*file)->Close().ok());
    ASSERT_TRUE(fs_.SetMode(path, mode).ok());
  }

  CatalogOptions Options() const {
    CatalogOptions options;
    options.plugin_directory = dir_;
    return options;
  }

  std::unique_ptr<Catalog> Open(CatalogOptions options) {
    absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Open(storage_, fs_, options);
    EXPECT_TRUE(catalog.ok()) << catalog.status();
    return catalog.ok() ? std::move(*catalog) : nullptr;
  }

  RegisterRequest Request(absl::string_view command) const {
    RegisterRequest request;
    request.type = PluginType::kSecret;
    request.name = "my-plugin";
    request.version = "1.0.0";
    request.command = std::string(command);
    request.sha256 = sha_;
    return request;
  }

  PosixFileSystem fs_;
  InMemoryStorage storage_;
  std::string root_, dir_, sha_;
};

TEST_F(CatalogPosixTest, RegistersAndOpensForLaunchWithChecksOn) {
  absl::StatusOr<FileInfo> info = fs_.Stat(JoinPath(dir_, "my-plugin"));
  ASSERT_TRUE(info.ok());
  CatalogOptions options = Options();
  options.check_permissions = true;
  options.expected_uid = info->uid;
  std::unique_ptr<Catalog> catalog = Open(options);
  ASSERT_NE(catalog, nullptr);
  absl::StatusOr<CatalogEntryView> view = catalog->Register(Request("my-plugin"));
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->version, "v1.0.0");
  EXPECT_EQ(view->sha256_hex, sha_);

  absl::StatusOr<LaunchSpec> spec =
      catalog->GetForLaunch(PluginType::kSecret, "my-plugin", "v1.0.0");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->path, JoinPath(dir_, "my-plugin"));
  ASSERT_NE(spec->executable, nullptr);
  absl::StatusOr<FileInfo> opened = spec->executable->Stat();
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->type, FileType::kRegular);
  EXPECT_EQ(opened->size, sizeof(kContents) - 1);
}

TEST_F(CatalogPosixTest, RealSymlinkRefusals) {
  const std::string outside = JoinPath(root_, "outside");
  WriteFile(outside, kContents, 0755);
  ASSERT_TRUE(fs_.CreateSymlink(outside, JoinPath(dir_, "escape")).ok());
  std::unique_ptr<Catalog> catalog = Open(Options());
  ASSERT_NE(catalog, nullptr);
  absl::Status status = catalog->Register(Request("escape")).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_EQ(CatalogErrorOf(status), CatalogError::kCommandOutsideDirectory);

  const std::string linked_dir = JoinPath(root_, "linked-plugins");
  ASSERT_TRUE(fs_.CreateSymlink(dir_, linked_dir).ok());
  CatalogOptions options = Options();
  options.plugin_directory = linked_dir;
  std::unique_ptr<Catalog> linked = Open(options);
  ASSERT_NE(linked, nullptr);
  status = linked->Register(Request("my-plugin")).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_EQ(CatalogErrorOf(status), CatalogError::kDirectoryIsSymlink);
}

TEST_F(CatalogPosixTest, RealModeChecks) {
  WriteFile(JoinPath(dir_, "open-plugin"), kContents, 0757);
  CatalogOptions options = Options();
  options.check_permissions = true;
  std::unique_ptr<Catalog> catalog = Open(options);
  ASSERT_NE(catalog, nullptr);
  const absl::Status status = catalog->Register(Request("open-plugin")).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_EQ(CatalogErrorOf(status), CatalogError::kWritableByOthers);
  EXPECT_EQ(CatalogErrorOf(catalog->Register(Request(".")).status()),
            CatalogError::kInvalidCommand);
  ASSERT_TRUE(fs_.CreateDir(JoinPath(dir_, "a-dir"), 0755).ok());
  EXPECT_EQ(CatalogErrorOf(catalog->Register(Request("a-dir")).status()),
            CatalogError::kCommandNotRegularFile);
  EXPECT_EQ(CatalogErrorOf(catalog->Register(Request("missing")).status()),
            CatalogError::kCommandNotFound);
}

}  // namespace
}  // namespace bulwark::catalog
