// The immutable launch over the real machine: a signed plugin (the real ssh-keygen) is
// registered and verified for launch under the "required" policy, then a writer that opened the
// artifact before registration overwrites it in place, between the verification and the exec.
// With the sealed memfd copy (the default) the verified bytes run; with the original descriptor
// (ExecSnapshot::kOriginal, the control) the tampered bytes run, which shows the attack is real.
// Then the verified copies kept between launches (VerifiedArtifacts): an unchanged artifact's
// launches share one sealed copy, and any change to the file makes the next launch verify it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/crypto/sha256.h"
#include "base/env/posix/posix_env.h"
#include "base/env/posix/posix_file_system.h"
#include "base/storage/in_memory_storage.h"
#include "core/catalog/catalog.h"
#include "core/catalog/catalog_error.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::catalog {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::string_view kOriginal = "BULWARK-MARKER:original";
constexpr absl::string_view kTampered = "BULWARK-MARKER:tampered";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ImmutableLaunchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr);
    root_ = absl::StrCat(tmp, "/", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(std::system(absl::StrCat("rm -rf ", root_, " && mkdir -p ", root_,
                                       "/plugins && chmod 0755 ", root_, "/plugins")
                              .c_str()),
              0);
    absl::StatusOr<std::string> real = posix_.fs().RealPath(root_);
    ASSERT_TRUE(real.ok());
    root_ = *real;
    artifact_ = absl::StrCat(root_, "/plugins/marker");
    bytes_ = ReadAll(
        absl::StrCat(std::getenv("TEST_SRCDIR"), "/bulwark/core/catalog/testdata/marker_program"));
    ASSERT_FALSE(bytes_.empty());
    {
      std::ofstream out(artifact_, std::ios::binary);
      out << bytes_;
    }
    ASSERT_EQ(chmod(artifact_.c_str(), 0755), 0);
    marker_offset_ = bytes_.find(std::string(kOriginal));
    ASSERT_NE(marker_offset_, std::string::npos);
    ASSERT_EQ(bytes_.find(std::string(kOriginal), marker_offset_ + 1), std::string::npos);
    // The attacker's descriptor, opened before registration.
    writer_ = open(artifact_.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(writer_, 0);
    ASSERT_EQ(std::system(absl::StrCat("set -e; cd ", root_,
                                       "; ssh-keygen -q -N '' -t ed25519 -C ops -f key >/dev/null;"
                                       " ssh-keygen -q -Y sign -n bulwark-plugin -f key ",
                                       artifact_, " 2>/dev/null;",
                                       " printf 'ops@example.com %s\\n' \"$(cut -d' ' -f1,2 "
                                       "key.pub)\" > allowed_signers")
                              .c_str()),
              0);
    signature_ = ReadAll(artifact_ + ".sig");
    ASSERT_EQ(unlink((artifact_ + ".sig").c_str()), 0);
  }

  void TearDown() override {
    if (writer_ >= 0) close(writer_);
  }

  std::unique_ptr<Catalog> Open(
      FileSystem& fs, uint64_t verified_copies_bytes_max = kVerifiedCopiesBytesDefaultMax) {
    CatalogOptions options;
    options.verified_copies_bytes_max = verified_copies_bytes_max;
    options.plugin_directory = root_ + "/plugins";
    options.signature_policy = SignaturePolicy::kRequired;
    options.allowed_signers_file = root_ + "/allowed_signers";
    options.clock = &posix_.clock();
    absl::StatusOr<std::unique_ptr<Catalog>> c = Catalog::Open(storage_, fs, options);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  // Registers, verifies for launch, tampers through the early descriptor, then executes what
  // the launch verification returned. Returns the program's stdout lines.
  std::vector<std::string> RegisterTamperAndRun(Catalog& catalog) {
    Register(catalog);
    absl::StatusOr<LaunchSpec> spec = catalog.GetForLaunch(PluginType::kSecret, "marker");
    EXPECT_TRUE(spec.ok()) << spec.status();
    if (!spec.ok()) return {};
    // Between verification and exec: overwrite the marker in place, and let go of the file
    // (a writer still holding it would make exec of the original fail with ETXTBSY).
    EXPECT_EQ(
        pwrite(writer_, kTampered.data(), kTampered.size(), static_cast<off_t>(marker_offset_)),
        static_cast<ssize_t>(kTampered.size()));
    close(writer_);
    writer_ = -1;
    std::vector<std::string> out;
    std::optional<ProcessExit> exit;
    ProcessOptions options;
    options.argv = {"marker"};
    options.on_line = [&](OutputStream stream, absl::string_view line, bool) {
      if (stream == OutputStream::kStdout) out.emplace_back(line);
    };
    options.on_exit = [&](const ProcessExit& e) { exit = e; };
    absl::StatusOr<std::unique_ptr<Process>> p =
        posix_.launcher().Spawn(*spec->executable, std::move(options));
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return {};
    // A hang guard only: the program exits at once.
    EXPECT_TRUE(posix_.loop().RunUntil([&] { return exit.has_value(); }, absl::Seconds(60)));
    EXPECT_TRUE(exit.has_value() && exit->success());
    return out;
  }

  void Register(Catalog& catalog) {
    RegisterRequest r;
    r.type = PluginType::kSecret;
    r.name = "marker";
    r.command = "marker";
    r.sha256 = crypto::HexEncode(crypto::Sha256::Hash(bytes_));
    r.signature = signature_;
    absl::StatusOr<CatalogEntryView> view = catalog.Register(r);
    ASSERT_TRUE(view.ok()) << view.status();
  }

  // The inode of the sealed copy a launch would execute; 0 on error.
  static ino_t CopyInode(const LaunchSpec& spec) {
    const auto* file = dynamic_cast<const PosixExecutableFile*>(spec.executable.get());
    if (file == nullptr) return 0;
    absl::StatusOr<int> fd = file->ExecFd();
    struct stat st;
    if (!fd.ok() || fstat(*fd, &st) != 0) return 0;
    return st.st_ino;
  }

  // Verifies for launch and returns the copy's inode, or 0 with a test failure.
  ino_t LaunchInode(Catalog& catalog) {
    absl::StatusOr<LaunchSpec> spec = catalog.GetForLaunch(PluginType::kSecret, "marker");
    EXPECT_TRUE(spec.ok()) << spec.status();
    return spec.ok() ? CopyInode(*spec) : 0;
  }

  // Replaces the artifact by rename with `bytes` (a new inode, as an upgrade would).
  void ReplaceWith(absl::string_view bytes) {
    const std::string next = artifact_ + ".next";
    {
      std::ofstream out(next, std::ios::binary);
      out << bytes;
    }
    ASSERT_EQ(chmod(next.c_str(), 0755), 0);
    ASSERT_EQ(rename(next.c_str(), artifact_.c_str()), 0);
  }

  PosixEnv posix_;
  InMemoryStorage storage_;
  std::string root_, artifact_, bytes_, signature_;
  size_t marker_offset_ = 0;
  int writer_ = -1;
};

TEST_F(ImmutableLaunchTest, TheVerifiedBytesRunFromASealedCopy) {
  std::unique_ptr<Catalog> catalog = Open(posix_.fs());
  ASSERT_NE(catalog, nullptr);
  const std::vector<std::string> out = RegisterTamperAndRun(*catalog);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], kOriginal);
  // What the plugin sees as its executable.
  EXPECT_EQ(out[1], "/memfd:bulwark:marker (deleted)");
  // The file on disk did change: the next launch refuses it.
  absl::Status next = catalog->GetForLaunch(PluginType::kSecret, "marker").status();
  EXPECT_EQ(CatalogErrorOf(next), CatalogError::kSha256Mismatch) << next;
}

TEST_F(ImmutableLaunchTest, ControlTheOriginalDescriptorRunsTheTamperedBytes) {
  PosixFileSystem original(ExecSnapshot::kOriginal);
  std::unique_ptr<Catalog> catalog = Open(original);
  ASSERT_NE(catalog, nullptr);
  const std::vector<std::string> out = RegisterTamperAndRun(*catalog);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], kTampered);
  EXPECT_THAT(out[1], StartsWith(artifact_));
}

TEST_F(ImmutableLaunchTest, LaunchesOfAnUnchangedArtifactShareOneVerifiedCopy) {
  std::unique_ptr<Catalog> catalog = Open(posix_.fs());
  ASSERT_NE(catalog, nullptr);
  Register(*catalog);
  const ino_t first = LaunchInode(*catalog);
  ASSERT_NE(first, 0u);
  // Not hashed again: the same sealed copy (a verification makes a new one).
  EXPECT_EQ(LaunchInode(*catalog), first);
  EXPECT_EQ(LaunchInode(*catalog), first);
  // With no room for kept copies, every launch verifies and copies again.
  std::unique_ptr<Catalog> uncached = Open(posix_.fs(), 0);
  ASSERT_NE(uncached, nullptr);
  const ino_t a = LaunchInode(*uncached);
  const ino_t b = LaunchInode(*uncached);
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
}

TEST_F(ImmutableLaunchTest, AnyChangeToTheFileMakesTheNextLaunchVerifyIt) {
  std::unique_ptr<Catalog> catalog = Open(posix_.fs());
  ASSERT_NE(catalog, nullptr);
  Register(*catalog);
  ino_t previous = LaunchInode(*catalog);
  ASSERT_NE(previous, 0u);
  // chmod moves the change time: verified again (a new copy), still the pinned bytes.
  ASSERT_EQ(chmod(artifact_.c_str(), 0750), 0);
  ino_t now = LaunchInode(*catalog);
  EXPECT_NE(now, 0u);
  EXPECT_NE(now, previous);
  previous = now;
  // The same bytes under a new inode: verified again.
  ReplaceWith(bytes_);
  now = LaunchInode(*catalog);
  EXPECT_NE(now, 0u);
  EXPECT_NE(now, previous);
  // Other bytes under a new inode: refused, though a verified copy of the pinned bytes is kept.
  std::string other = bytes_;
  other.replace(marker_offset_, kTampered.size(), std::string(kTampered));
  ReplaceWith(other);
  absl::Status refused = catalog->GetForLaunch(PluginType::kSecret, "marker").status();
  EXPECT_EQ(CatalogErrorOf(refused), CatalogError::kSha256Mismatch) << refused;
  // Gone: not found, as without kept copies.
  ReplaceWith(bytes_);
  EXPECT_NE(LaunchInode(*catalog), 0u);
  ASSERT_EQ(unlink(artifact_.c_str()), 0);
  absl::Status missing = catalog->GetForLaunch(PluginType::kSecret, "marker").status();
  EXPECT_EQ(CatalogErrorOf(missing), CatalogError::kCommandNotFound) << missing;
}

TEST_F(ImmutableLaunchTest, KeptCopiesStayWithinTheirByteLimit) {
  const std::string second = absl::StrCat(root_, "/plugins/second");
  ASSERT_EQ(std::system(absl::StrCat("cp ", artifact_, " ", second).c_str()), 0);
  VerifiedArtifacts verified(bytes_.size());  // Room for one.
  ArtifactPolicy policy;
  policy.plugin_directory = root_ + "/plugins";
  policy.artifact_bytes_max = kArtifactBytesDefaultMax;
  const std::string sha = crypto::HexEncode(crypto::Sha256::Hash(bytes_));
  for (const char* command : {"marker", "marker", "second", "second", "marker"}) {
    absl::StatusOr<OpenedArtifact> opened = verified.Open(posix_.fs(), policy, command, sha);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_LE(verified.bytes(), bytes_.size());
    EXPECT_EQ(verified.kept(), 1u);
  }
  // marker, marker (kept), second (evicts marker), second (kept), marker (evicts second).
  EXPECT_EQ(verified.reuses(), 2u);
  // A different expected SHA-256 is never answered from the kept copy.
  absl::StatusOr<OpenedArtifact> wrong =
      verified.Open(posix_.fs(), policy, "marker", std::string(64, 'a'));
  EXPECT_EQ(CatalogErrorOf(wrong.status()), CatalogError::kSha256Mismatch) << wrong.status();
}

}  // namespace
}  // namespace bulwark::catalog
