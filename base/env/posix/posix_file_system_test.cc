// Posix-specific tests of PosixFileSystem: errno-to-code mapping, messages, symlinks and
// OpenForExec's checks. The shared contract suite covers the behaviour common to every Env.
#include "base/env/posix/posix_file_system.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

class PosixFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    std::string pattern = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/fs_test_XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }

  std::string Path(absl::string_view name) { return JoinPath(dir_, name); }

  void WriteFile(const std::string& path, absl::string_view contents) {
    auto file = fs_.NewWritableFile(path);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Append(contents).ok());
    ASSERT_TRUE((*file)->Close().ok());
  }

  PosixFileSystem fs_;
  std::string dir_;
};

TEST(ErrnoToStatusTest, MapsTheDocumentedCodes) {
  struct Case {
    int err;
    absl::StatusCode code;
  };
  const Case cases[] = {
      {ENOENT, absl::StatusCode::kNotFound},
      {EEXIST, absl::StatusCode::kAlreadyExists},
      {ENOTDIR, absl::StatusCode::kFailedPrecondition},
      {EISDIR, absl::StatusCode::kFailedPrecondition},
      {ENOTEMPTY, absl::StatusCode::kFailedPrecondition},
      {ELOOP, absl::StatusCode::kFailedPrecondition},
      {EACCES, absl::StatusCode::kPermissionDenied},
      {EPERM, absl::StatusCode::kPermissionDenied},
      {EROFS, absl::StatusCode::kPermissionDenied},
      {ENOSPC, absl::StatusCode::kResourceExhausted},
      {EDQUOT, absl::StatusCode::kResourceExhausted},
      {EMFILE, absl::StatusCode::kResourceExhausted},
      {ENAMETOOLONG, absl::StatusCode::kInvalidArgument},
      {EIO, absl::StatusCode::kDataLoss},
      {EBADF, absl::StatusCode::kInternal},
  };
  for (const Case& c : cases) {
    absl::Status status = ErrnoToStatus(c.err, "open", "/x/y");
    EXPECT_EQ(status.code(), c.code) << "errno " << c.err << ": " << status;
  }
  absl::Status status = ErrnoToStatus(ENOENT, "open", "/x/y");
  EXPECT_EQ(status.message(), "open /x/y: No such file or directory");
}

TEST_F(PosixFileSystemTest, MissingFileIsNotFoundAndNamesOperationAndPath) {
  const std::string missing = Path("missing");
  absl::Status status = fs_.OpenForRead(missing).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "open " + missing)) << status;
  EXPECT_EQ(fs_.Stat(missing).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_.Remove(missing).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_.NewWritableFile(Path("no/such/dir")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_.RealPath(missing).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PosixFileSystemTest, ExistingDirectoryIsAlreadyExists) {
  ASSERT_TRUE(fs_.CreateDir(Path("d")).ok());
  EXPECT_EQ(fs_.CreateDir(Path("d")).code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(PosixFileSystemTest, WrongKindOfFileIsFailedPrecondition) {
  ASSERT_TRUE(fs_.CreateDir(Path("d")).ok());
  WriteFile(Path("d/f"), "x");
  EXPECT_EQ(fs_.RemoveDir(Path("d")).code(), absl::StatusCode::kFailedPrecondition);  // ENOTEMPTY
  EXPECT_EQ(fs_.Remove(Path("d")).code(), absl::StatusCode::kFailedPrecondition);     // EISDIR
  EXPECT_EQ(fs_.ListDir(Path("d/f")).status().code(),
            absl::StatusCode::kFailedPrecondition);  // ENOTDIR
  EXPECT_EQ(fs_.OpenForExec(Path("d")).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(fs_.CreateSymlink("loop_b", Path("loop_a")).ok());
  ASSERT_TRUE(fs_.CreateSymlink("loop_a", Path("loop_b")).ok());
  EXPECT_EQ(fs_.Stat(Path("loop_a")).status().code(),
            absl::StatusCode::kFailedPrecondition);  // ELOOP
}

TEST_F(PosixFileSystemTest, MalformedPathsAreInvalidArgument) {
  EXPECT_EQ(fs_.OpenForRead("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fs_.Stat(std::string("a\0b", 3)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fs_.Stat(Path(std::string(5000, 'n'))).status().code(),
            absl::StatusCode::kInvalidArgument);  // ENAMETOOLONG
}

TEST_F(PosixFileSystemTest, PermissionDeniedWhenNotRoot) {
  if (geteuid() == 0) GTEST_SKIP() << "root bypasses permission bits";
  ASSERT_TRUE(fs_.CreateDir(Path("locked"), 0000).ok());
  EXPECT_EQ(fs_.ListDir(Path("locked")).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(PosixFileSystemTest, RealPathResolvesSymlinks) {
  ASSERT_TRUE(fs_.CreateDir(Path("real")).ok());
  WriteFile(Path("real/file"), "contents");
  ASSERT_TRUE(fs_.CreateSymlink(Path("real"), Path("link")).ok());
  auto resolved = fs_.RealPath(Path("link/./file"));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  auto expected_dir = fs_.RealPath(dir_);  // $TEST_TMPDIR may itself sit behind a symlink.
  ASSERT_TRUE(expected_dir.ok());
  EXPECT_EQ(*resolved, JoinPath(*expected_dir, "real/file"));

  auto link_info = fs_.Lstat(Path("link"));
  ASSERT_TRUE(link_info.ok());
  EXPECT_EQ(link_info->type, FileType::kSymlink);
  auto target_info = fs_.Stat(Path("link"));
  ASSERT_TRUE(target_info.ok());
  EXPECT_EQ(target_info->type, FileType::kDirectory);
}

TEST_F(PosixFileSystemTest, WriteReadStatAndListRoundTrip) {
  WriteFile(Path("b"), "hello world");
  WriteFile(Path("a"), "");
  auto info = fs_.Stat(Path("b"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->type, FileType::kRegular);
  EXPECT_EQ(info->mode & 0700, 0600u);
  EXPECT_EQ(info->size, 11u);
  EXPECT_EQ(info->uid, geteuid());
  EXPECT_EQ(info->gid, getegid());
  auto contents = fs_.ReadFile(Path("b"));
  ASSERT_TRUE(contents.ok());
  EXPECT_EQ(*contents, "hello world");
  EXPECT_EQ(fs_.ReadFile(Path("b"), 5).status().code(), absl::StatusCode::kResourceExhausted);

  ASSERT_TRUE(fs_.SetMode(Path("b"), 0640).ok());
  EXPECT_EQ(fs_.Stat(Path("b"))->mode, 0640u);
  ASSERT_TRUE(fs_.Rename(Path("b"), Path("c")).ok());
  ASSERT_TRUE(fs_.SyncDir(dir_).ok());
  auto names = fs_.ListDir(dir_);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "c"}));
}

TEST_F(PosixFileSystemTest, WritableFileAfterCloseIsFailedPrecondition) {
  auto file = fs_.NewWritableFile(Path("w"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("abc").ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ((*file)->Append("x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*file)->Sync().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*file)->Close().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(PosixFileSystemTest, OpenForExecReadsTheOpenFileEvenAfterReplacement) {
  WriteFile(Path("prog"), "original");
  auto exe = fs_.OpenForExec(Path("prog"));
  ASSERT_TRUE(exe.ok()) << exe.status();
  auto* posix_exe = dynamic_cast<PosixExecutableFile*>(exe->get());
  ASSERT_NE(posix_exe, nullptr);
  EXPECT_GE(posix_exe->fd(), 0);
  EXPECT_EQ((*exe)->path(), Path("prog"));
  WriteFile(Path("replacement"), "replaced");
  ASSERT_TRUE(fs_.Rename(Path("replacement"), Path("prog")).ok());
  char buffer[16];
  auto n = (*exe)->ReadAt(0, absl::MakeSpan(buffer));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(absl::string_view(buffer, *n), "original");
  auto tail = (*exe)->ReadAt(100, absl::MakeSpan(buffer));
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(*tail, 0u);
}

TEST_F(PosixFileSystemTest, OpenForExecReadsAndExecutesASealedCopyMadeAtTheFirstRead) {
  WriteFile(Path("prog"), "original");
  ASSERT_EQ(chmod(Path("prog").c_str(), 0751), 0);
  auto exe = fs_.OpenForExec(Path("prog"));
  ASSERT_TRUE(exe.ok()) << exe.status();
  auto* posix_exe = dynamic_cast<PosixExecutableFile*>(exe->get());
  ASSERT_NE(posix_exe, nullptr);
  // A writer that holds the file open changes it in place, before and after the first read.
  const int writer = open(Path("prog").c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(writer, 0);
  ASSERT_EQ(pwrite(writer, "O", 1, 0), 1);
  char buffer[16];
  auto n = (*exe)->ReadAt(0, absl::MakeSpan(buffer));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(absl::string_view(buffer, *n), "Original");
  ASSERT_EQ(pwrite(writer, "OVERWRITTEN-AND-LONGER", 22, 0), 22);
  close(writer);
  n = (*exe)->ReadAt(0, absl::MakeSpan(buffer));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(absl::string_view(buffer, *n), "Original");
  EXPECT_EQ((*exe)->Stat()->size, 8u);
  EXPECT_EQ((*exe)->Stat()->mode, 0751u);  // The original's metadata.
  absl::StatusOr<int> fd = posix_exe->ExecFd();
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_NE(*fd, posix_exe->fd());
  // F_SEAL_FUTURE_WRITE only when the kernel refused F_SEAL_WRITE with EBUSY (transient page
  // references; posix_file_system.cc).
  const int seals = fcntl(*fd, F_GET_SEALS);
  EXPECT_EQ(seals & (F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL),
            F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
  EXPECT_NE(seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE), 0);
  EXPECT_EQ(fcntl(*fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(pwrite(*fd, "x", 1, 0), -1);
  EXPECT_EQ(errno, EPERM);
  // The control mode executes the original descriptor.
  PosixFileSystem original(ExecSnapshot::kOriginal);
  auto direct = original.OpenForExec(Path("prog"));
  ASSERT_TRUE(direct.ok());
  auto* direct_exe = dynamic_cast<PosixExecutableFile*>(direct->get());
  EXPECT_EQ(direct_exe->ExecFd().value(), direct_exe->fd());
}

TEST_F(PosixFileSystemTest, OpenForExecRejectsSpecialFiles) {
  absl::Status status = fs_.OpenForExec("/dev/null").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
}

}  // namespace
}  // namespace bulwark
