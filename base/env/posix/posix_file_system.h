// PosixFileSystem: the production FileSystem over POSIX calls, with errno mapped to the
// canonical codes documented in base/env/file_system.h.
#ifndef BULWARK_BASE_ENV_POSIX_POSIX_FILE_SYSTEM_H_
#define BULWARK_BASE_ENV_POSIX_POSIX_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/env/file_system.h"

namespace bulwark {

// Maps an errno value from `operation` on `path` to a Status with the canonical code of
// file_system.h (plus EXDEV and ETXTBSY as kFailedPrecondition, ENOMEM and ENFILE as
// kResourceExhausted, EINVAL as kInvalidArgument). The message reads
// "<operation> <path>: <strerror text>". REQUIRES: err != 0.
absl::Status ErrnoToStatus(int err, absl::string_view operation, absl::string_view path);

// How OpenForExec hands an executable to the launcher.
enum class ExecSnapshot {
  // Copy the file once into a sealed memfd (F_SEAL_WRITE, or F_SEAL_FUTURE_WRITE when the kernel
  // answers EBUSY to it; F_SEAL_GROW, F_SEAL_SHRINK, F_SEAL_SEAL) at the first ReadAt (or at
  // Spawn if nothing was read): what is hashed is that copy, and that copy is what runs. A writer
  // holding the original open cannot change it.
  kSealedMemfd,
  // Hash and execute the original descriptor (a writer who holds the file open can change the
  // bytes between hash and exec). For measuring what the copy costs.
  kOriginal,
};

// An open executable. The launcher executes a descriptor itself (execveat with AT_EMPTY_PATH),
// so what was hashed through ReadAt is what runs.
class PosixExecutableFile final : public ExecutableFile {
 public:
  // Takes ownership of `fd` (>= 0, open O_RDONLY | O_CLOEXEC).
  PosixExecutableFile(int fd, std::string path, ExecSnapshot snapshot = ExecSnapshot::kSealedMemfd);
  ~PosixExecutableFile() override;

  PosixExecutableFile(const PosixExecutableFile&) = delete;
  PosixExecutableFile& operator=(const PosixExecutableFile&) = delete;

  // ReadableFile / ExecutableFile. With kSealedMemfd, ReadAt reads the sealed copy (made by the
  // first call); Stat describes the original file (type, mode, owner) with the copy's size once
  // it exists.
  absl::StatusOr<size_t> ReadAt(uint64_t offset, absl::Span<char> out) override;
  absl::StatusOr<FileInfo> Stat() override;
  const std::string& path() const override { return path_; }
  // With kSealedMemfd once the copy exists: a handle on the same sealed copy (and the same
  // original, for Stat). FailedPrecondition with kOriginal or before the copy was made.
  absl::StatusOr<std::unique_ptr<ExecutableFile>> ShareSealed() const override;

  // The original open descriptor. Owned by this object.
  int fd() const { return fd_; }

  // The descriptor PosixProcessLauncher executes: the sealed memfd (made now if no ReadAt made
  // it; close-on-exec, so an executable script, whose interpreter would reopen it by
  // /dev/fd/N, fails with ENOENT) or, with kOriginal, fd(). Errors: the memfd could not be
  // made, filled or sealed (the errno's code, e.g. kResourceExhausted for ENOMEM/EMFILE).
  absl::StatusOr<int> ExecFd() const;

  // The name the copy carries: a plugin's /proc/self/exe reads "/memfd:<name> (deleted)".
  static std::string MemfdName(absl::string_view path);

 private:
  absl::Status EnsureSnapshot() const;

  int fd_;
  std::string path_;
  const ExecSnapshot snapshot_;
  mutable int memfd_ = -1;  // The sealed copy; -1 until made.
};

// Thread-compatible; holds no state, so distinct threads may use it for distinct files.
// Every descriptor it opens is O_CLOEXEC. Relative paths are resolved against the process's
// working directory. CreateDir's mode and NewWritableFile's 0600 are filtered by the umask.
class PosixFileSystem final : public FileSystem {
 public:
  explicit PosixFileSystem(ExecSnapshot exec_snapshot = ExecSnapshot::kSealedMemfd)
      : exec_snapshot_(exec_snapshot) {}

  // open(O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600). The file's Append retries short
  // writes and EINTR; Sync is fsync (EINTR retried).
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(absl::string_view path) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(absl::string_view path) override;
  // open(O_RDONLY | O_CLOEXEC | O_NONBLOCK): O_NONBLOCK keeps a FIFO from blocking the loop and
  // has no effect on regular files.
  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(absl::string_view path) override;
  // Like OpenForRead, then fstat: kFailedPrecondition unless it is a regular file (a directory,
  // a FIFO, a device). The result is a PosixExecutableFile with this file system's
  // ExecSnapshot mode.
  absl::StatusOr<std::unique_ptr<ExecutableFile>> OpenForExec(absl::string_view path) override;
  // rename(2).
  absl::Status Rename(absl::string_view from, absl::string_view to) override;
  // unlink(2): a directory gives kFailedPrecondition (EISDIR).
  absl::Status Remove(absl::string_view path) override;
  // mkdir(2) with `mode` & 07777 (and the umask).
  absl::Status CreateDir(absl::string_view path, uint32_t mode = 0700) override;
  // rmdir(2): not empty gives kFailedPrecondition.
  absl::Status RemoveDir(absl::string_view path) override;
  // readdir over an O_DIRECTORY descriptor; names sorted bytewise, without "." and "..".
  absl::StatusOr<std::vector<std::string>> ListDir(absl::string_view path) override;
  // stat(2) / lstat(2).
  absl::StatusOr<FileInfo> Stat(absl::string_view path) override;
  absl::StatusOr<FileInfo> Lstat(absl::string_view path) override;
  // open(O_RDONLY | O_DIRECTORY | O_CLOEXEC) then fsync (EINTR retried).
  absl::Status SyncDir(absl::string_view path) override;
  // realpath(3); kNotFound if the target or a component is missing.
  absl::StatusOr<std::string> RealPath(absl::string_view path) override;
  // symlink(2).
  absl::Status CreateSymlink(absl::string_view target, absl::string_view link) override;
  // chmod(2) with `mode` & 07777.
  absl::Status SetMode(absl::string_view path, uint32_t mode) override;

 private:
  const ExecSnapshot exec_snapshot_;
};

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_POSIX_POSIX_FILE_SYSTEM_H_
