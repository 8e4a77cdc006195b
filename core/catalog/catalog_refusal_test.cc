// Every way a registration is refused over a simulated plugin directory, each with its own
// canonical code and catalog reason, and a message that names the field and the fix. Nothing
// refused reaches storage.
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status/check.h"
#include "core/catalog/catalog.h"
#include "core/catalog/catalog_error.h"
#include "core/catalog/catalog_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::catalog {
namespace {

using ::testing::HasSubstr;
using testing::MakeRequest;
using testing::SimWorld;
using ::testing::StartsWith;

constexpr char kContents[] = "#!plugin artifact bytes";

class CatalogRefusalTest : public ::testing::Test {
 protected:
  CatalogRefusalTest() {
    sha_ = world_.AddPlugin("good", kContents);
    CHECK_OK(world_.fs().CreateDir("/outside", 0755));
    CHECK_OK(world_.fs().WriteFileDurably("/outside/evil", kContents, 0755));
  }

  // Registers and expects the refusal; also checks that storage stayed empty. Returns the message.
  std::string ExpectRefused(Catalog& catalog, const RegisterRequest& request, absl::StatusCode code,
                            CatalogError error) {
    absl::StatusOr<CatalogEntryView> result = catalog.Register(request);
    EXPECT_FALSE(result.ok());
    const absl::Status status = result.status();
    EXPECT_EQ(status.code(), code) << status;
    EXPECT_EQ(CatalogErrorOf(status), error) << status;
    EXPECT_THAT(std::string(status.message()), StartsWith(std::string(CatalogErrorReason(error))));
    EXPECT_EQ(world_.storage().size(), 0u) << "a refused registration reached storage";
    EXPECT_EQ(catalog.entry_count(), 0u);
    return std::string(status.message());
  }

  RegisterRequest Request(absl::string_view command) {
    return MakeRequest(PluginType::kSecret, "p", "v1.0.0", command, sha_);
  }

  SimWorld world_;
  std::string sha_;
};

TEST_F(CatalogRefusalTest, GoodRegistrationSucceeds) {
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(world_.Options());
  absl::StatusOr<CatalogEntryView> view = catalog->Register(Request("good"));
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->sha256_hex, sha_);
  EXPECT_EQ(world_.storage().size(), 1u);
}

TEST_F(CatalogRefusalTest, NoPluginDirectoryConfigured) {
  CatalogOptions options = world_.Options();
  options.plugin_directory = "";
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(options);
  const std::string message =
      ExpectRefused(*catalog, Request("good"), absl::StatusCode::kFailedPrecondition,
                    CatalogError::kDirectoryNotConfigured);
  EXPECT_THAT(message, HasSubstr("set plugin_directory"));
}

TEST_F(CatalogRefusalTest, SymlinkedPluginDirectory) {
  CHECK_OK(world_.fs().CreateSymlink("/plugins", "/linked-plugins"));
  CatalogOptions options = world_.Options();
  options.plugin_directory = "/linked-plugins";
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(options);
  const std::string message =
      ExpectRefused(*catalog, Request("good"), absl::StatusCode::kFailedPrecondition,
                    CatalogError::kDirectoryIsSymlink);
  EXPECT_THAT(message, HasSubstr("/linked-plugins is a symbolic link"));
}

TEST_F(CatalogRefusalTest, PluginDirectoryUnderASymlinkedParent) {
  CHECK_OK(world_.fs().CreateDir("/real", 0755));
  CHECK_OK(world_.fs().CreateDir("/real/plugins", 0755));
  CHECK_OK(world_.fs().WriteFileDurably("/real/plugins/good", kContents, 0755));
  CHECK_OK(world_.fs().CreateSymlink("/real", "/alias"));
  CatalogOptions options = world_.Options();
  options.plugin_directory = "/alias/plugins";
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(options);
  const std::string message =
      ExpectRefused(*catalog, Request("good"), absl::StatusCode::kFailedPrecondition,
                    CatalogError::kDirectoryIsSymlink);
  EXPECT_THAT(message, HasSubstr("set plugin_directory to /real/plugins"));
}

TEST_F(CatalogRefusalTest, MissingPluginDirectory) {
  CatalogOptions options = world_.Options();
  options.plugin_directory = "/nowhere";
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(options);
  ExpectRefused(*catalog, Request("good"), absl::StatusCode::kFailedPrecondition,
                CatalogError::kDirectoryInvalid);
}

TEST_F(CatalogRefusalTest, ParentReferenceEscape) {
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(world_.Options());
  const std::string message =
      ExpectRefused(*catalog, Request("../outside/evil"), absl::StatusCode::kInvalidArgument,
                    CatalogError::kCommandParentReference);
  EXPECT_THAT(message,
              HasSubstr("command \"../outside/evil\": must be a path inside the plugin directory "
                        "without \"..\"; copy the plugin into the plugin directory"));
}

TEST_F(CatalogRefusalTest, SymlinkEscape) {
  CHECK_OK(world_.fs().CreateSymlink("/outside/evil", "/plugins/escape"));
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(world_.Options());
  const std::string message =
      ExpectRefused(*catalog, Request("escape"), absl::StatusCode::kPermissionDenied,
                    CatalogError::kCommandOutsideDirectory);
  EXPECT_THAT(message,
              HasSubstr("resolves to /outside/evil, outside the plugin directory /plugins"));
}

TEST_F(CatalogRefusalTest, RelativeSymlinkEscapeThroughASubdirectory) {
  CHECK_OK(world_.fs().CreateDir("/plugins/sub", 0755));
  CHECK_OK(world_.fs().CreateSymlink("../../outside/evil", "/plugins/sub/escape"));
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(world_.Options());
  ExpectRefused(*catalog, Request("sub/escape"), absl::StatusCode::kPermissionDenied,
                CatalogError::kCommandOutsideDirectory);
}

TEST_F(CatalogRefusalTest, SymlinkInsideTheDirectoryIsAllowed) {
  CHECK_OK(world_.fs().CreateSymlink("good", "/plugins/alias"));
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(world_.Options());
  absl::StatusOr<CatalogEntryView> view = catalog->Register(Request("alias"));
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->command, "alias");
}

TEST_F(CatalogRefusalTest, WrongHash) {
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(world_.Options());
  RegisterRequest request = Request("good");
  request.sha256 = testing::Sha256Hex("something else");
  const std::string message = ExpectRefused(
      *catalog, request, absl::StatusCode::kFailedPrecondition, CatalogError::kSha256Mismatch);
  EXPECT_THAT(message, HasSubstr(absl::StrCat("/plugins/good has SHA-256 ", sha_, ", not ",
                                              request.sha256)));
  EXPECT_THAT(message, HasSubstr("register it again"));
}

TEST_F(CatalogRefusalTest, DirectoryInsteadOfFile) {
  CHECK_OK(world_.fs().CreateDir("/plugins/dir", 0755));
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(world_.Options());
  const std::string message =
      ExpectRefused(*catalog, Request("dir"), absl::StatusCode::kFailedPrecondition,
                    CatalogError::kCommandNotRegularFile);
  EXPECT_THAT(message, HasSubstr("is a directory, not a regular file"));
}

TEST_F(CatalogRefusalTest, MissingFile) {
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(world_.Options());
  const std::string message = ExpectRefused(
      *catalog, Request("missing"), absl::StatusCode::kNotFound, CatalogError::kCommandNotFound);
  EXPECT_THAT(message, HasSubstr("/plugins/missing does not exist"));
}

TEST_F(CatalogRefusalTest, DanglingSymlink) {
  CHECK_OK(world_.fs().CreateSymlink("/nowhere/x", "/plugins/dangling"));
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(world_.Options());
  ExpectRefused(*catalog, Request("dangling"), absl::StatusCode::kNotFound,
                CatalogError::kCommandNotFound);
}

TEST_F(CatalogRefusalTest, WorldWritableFileWhenCheckIsOn) {
  world_.AddPlugin("writable", kContents, 0777);
  CatalogOptions options = world_.Options();
  options.check_permissions = true;
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(options);
  const std::string message =
      ExpectRefused(*catalog, Request("writable"), absl::StatusCode::kPermissionDenied,
                    CatalogError::kWritableByOthers);
  EXPECT_THAT(message, HasSubstr("chmod go-w /plugins/writable"));
  // The same file is accepted with the check off.
  std::unique_ptr<Catalog> lax = world_.OpenCatalog(world_.Options());
  EXPECT_TRUE(lax->Register(Request("writable")).ok());
}

TEST_F(CatalogRefusalTest, GroupWritableDirectoryWhenCheckIsOn) {
  CHECK_OK(world_.fs().SetMode("/plugins", 0775));
  CatalogOptions options = world_.Options();
  options.check_permissions = true;
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(options);
  const std::string message =
      ExpectRefused(*catalog, Request("good"), absl::StatusCode::kPermissionDenied,
                    CatalogError::kWritableByOthers);
  EXPECT_THAT(message, HasSubstr("plugin directory /plugins"));
}

TEST_F(CatalogRefusalTest, WrongOwnerWhenCheckIsOn) {
  world_.fs().set_uid(1234);
  world_.AddPlugin("foreign", kContents, 0755);
  world_.fs().set_uid(0);
  CatalogOptions options = world_.Options();
  options.check_permissions = true;
  options.expected_uid = 0;
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(options);
  const std::string message =
      ExpectRefused(*catalog, Request("foreign"), absl::StatusCode::kPermissionDenied,
                    CatalogError::kOwnerMismatch);
  EXPECT_THAT(message, HasSubstr("owned by uid 1234, not by uid 0"));
  EXPECT_TRUE(catalog->Register(Request("good")).ok());
}

TEST_F(CatalogRefusalTest, AbsoluteCommand) {
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(world_.Options());
  const std::string message =
      ExpectRefused(*catalog, Request("/outside/evil"), absl::StatusCode::kInvalidArgument,
                    CatalogError::kCommandAbsolute);
  EXPECT_THAT(message, HasSubstr("must be relative to the plugin directory"));
}

TEST_F(CatalogRefusalTest, ArtifactTooLarge) {
  world_.AddPlugin("big", std::string(4096, 'x'));
  CatalogOptions options = world_.Options();
  options.artifact_bytes_max = 1024;
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(options);
  RegisterRequest request = Request("big");
  request.sha256 = testing::Sha256Hex(std::string(4096, 'x'));
  ExpectRefused(*catalog, request, absl::StatusCode::kResourceExhausted,
                CatalogError::kArtifactTooLarge);
}

TEST_F(CatalogRefusalTest, InvalidInputsNeverReachStorage) {
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(world_.Options());
  RegisterRequest r = Request("good");
  r.name = "bad/name";
  ExpectRefused(*catalog, r, absl::StatusCode::kInvalidArgument, CatalogError::kInvalidName);
  r = Request("good");
  r.version = "1.0";
  ExpectRefused(*catalog, r, absl::StatusCode::kInvalidArgument, CatalogError::kInvalidVersion);
  r = Request("good");
  r.version = "v1.0.0+builtin";
  ExpectRefused(*catalog, r, absl::StatusCode::kInvalidArgument, CatalogError::kReservedVersion);
  r = Request("good");
  r.sha256 = "abc";
  ExpectRefused(*catalog, r, absl::StatusCode::kInvalidArgument, CatalogError::kInvalidSha256);
  r = Request("good");
  r.env = {"NOEQUALS"};
  ExpectRefused(*catalog, r, absl::StatusCode::kInvalidArgument, CatalogError::kInvalidEnv);
  r = Request("good");
  r.args = std::vector<std::string>(kArgsMax + 1, "x");
  ExpectRefused(*catalog, r, absl::StatusCode::kInvalidArgument, CatalogError::kInvalidArgs);
  r = Request("good");
  r.command = "a b";
  ExpectRefused(*catalog, r, absl::StatusCode::kInvalidArgument, CatalogError::kInvalidCommand);
}

TEST_F(CatalogRefusalTest, BuiltinNameNeedsVersion) {
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(
      world_.Options({BuiltinPlugin{PluginType::kSecret, "kv", "v0.1.0+builtin"}}));
  RegisterRequest r = MakeRequest(PluginType::kSecret, "kv", "", "good", sha_);
  const std::string message = ExpectRefused(*catalog, r, absl::StatusCode::kAlreadyExists,
                                            CatalogError::kBuiltinNameRequiresVersion);
  EXPECT_THAT(message, HasSubstr("register it with a version"));
  // With a version it is allowed; another type with that name too.
  r.version = "v1.0.0";
  EXPECT_TRUE(catalog->Register(r).ok());
  EXPECT_TRUE(catalog->Register(MakeRequest(PluginType::kAuth, "kv", "", "good", sha_)).ok());
}

TEST_F(CatalogRefusalTest, CatalogFull) {
  CatalogOptions options = world_.Options();
  options.entries_max = 2;
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(options);
  ASSERT_TRUE(catalog->Register(MakeRequest(PluginType::kSecret, "a", "", "good", sha_)).ok());
  ASSERT_TRUE(catalog->Register(MakeRequest(PluginType::kSecret, "b", "", "good", sha_)).ok());
  // Replacing an entry does not need room.
  ASSERT_TRUE(catalog->Register(MakeRequest(PluginType::kSecret, "b", "", "good", sha_)).ok());
  absl::StatusOr<CatalogEntryView> full =
      catalog->Register(MakeRequest(PluginType::kSecret, "c", "", "good", sha_));
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(CatalogErrorOf(full.status()), CatalogError::kCatalogFull);
  EXPECT_EQ(world_.storage().size(), 2u);
}

TEST_F(CatalogRefusalTest, LaunchRefusesAReplacedBinary) {
  std::unique_ptr<Catalog> catalog = world_.OpenCatalog(world_.Options());
  ASSERT_TRUE(catalog->Register(Request("good")).ok());
  absl::StatusOr<LaunchSpec> spec = catalog->GetForLaunch(PluginType::kSecret, "p", "v1.0.0");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->path, "/plugins/good");
  ASSERT_NE(spec->executable, nullptr);
  world_.AddPlugin("good", "upgraded in place");
  absl::StatusOr<LaunchSpec> stale = catalog->GetForLaunch(PluginType::kSecret, "p", "v1.0.0");
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CatalogErrorOf(stale.status()), CatalogError::kSha256Mismatch);
}

TEST_F(CatalogRefusalTest, InvalidOptionsAreRefusedAtOpen) {
  auto open = [&](CatalogOptions options) {
    return Catalog::Open(world_.storage(), world_.fs(), std::move(options)).status();
  };
  for (const char* dir : {"plugins", "/plugins/", "/a//b", "/a/./b", "/a/../b"}) {
    CatalogOptions options = world_.Options();
    options.plugin_directory = dir;
    EXPECT_EQ(CatalogErrorOf(open(options)), CatalogError::kInvalidOptions) << dir;
  }
  CatalogOptions options = world_.Options();
  options.entries_max = 0;
  EXPECT_EQ(CatalogErrorOf(open(options)), CatalogError::kInvalidOptions);
  options = world_.Options({BuiltinPlugin{PluginType::kSecret, "kv", "v1.0.0"}});
  EXPECT_EQ(CatalogErrorOf(open(options)), CatalogError::kInvalidOptions);
  options = world_.Options({BuiltinPlugin{PluginType::kSecret, "kv", "v1.0.0+builtin"},
                            BuiltinPlugin{PluginType::kSecret, "kv", "v2.0.0+builtin"}});
  EXPECT_EQ(CatalogErrorOf(open(options)), CatalogError::kInvalidOptions);
  options = world_.Options();
  options.expected_uid = 0;
  EXPECT_EQ(CatalogErrorOf(open(options)), CatalogError::kInvalidOptions);
  options = world_.Options();
  options.storage_prefix = "no-slash";
  EXPECT_EQ(CatalogErrorOf(open(options)), CatalogError::kInvalidOptions);
}

}  // namespace
}  // namespace bulwark::catalog
