// The FileSystem seam: all file access by core code. The simulated implementation keeps only
// what was explicitly synced when a node crashes, so every durability claim is testable.
#ifndef BULWARK_BASE_ENV_FILE_SYSTEM_H_
#define BULWARK_BASE_ENV_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace bulwark {

enum class FileType { kRegular, kDirectory, kSymlink, kOther };

absl::string_view FileTypeName(FileType type);

struct FileInfo {
  FileType type = FileType::kOther;
  uint32_t mode = 0;  // Permission bits only (07777).
  uint64_t size = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  // Which file this is and when its content or metadata last changed (st_dev, st_ino and
  // st_ctim: writes, truncation, chmod, chown, links and renames all move the change time, and
  // no caller can set it back). All 0 where the file system does not say (the simulated one).
  uint64_t device = 0;
  uint64_t inode = 0;
  int64_t change_time_ns = 0;
};

// Error codes shared by every FileSystem method, mapped from the POSIX errno in production:
//   kNotFound            the path or a parent directory does not exist (ENOENT)
//   kAlreadyExists       the path exists where it must not (EEXIST)
//   kFailedPrecondition  wrong kind of file: not a directory, is a directory, not empty, a loop
//                        of symlinks (ENOTDIR, EISDIR, ENOTEMPTY, ELOOP)
//   kPermissionDenied    EACCES, EPERM, EROFS
//   kResourceExhausted   no space or quota, too many open files (ENOSPC, EDQUOT, EMFILE)
//   kInvalidArgument     a malformed path (empty, embedded NUL, ENAMETOOLONG)
//   kDataLoss / kInternal an I/O error or anything unexpected (EIO)
// Messages name the operation and the path.

// An open file read by offset. Thread-compatible.
class ReadableFile {
 public:
  virtual ~ReadableFile() = default;

  // Reads up to out.size() bytes starting at `offset` into `out`; returns how many were read,
  // fewer only at end of file (0 at or past the end).
  virtual absl::StatusOr<size_t> ReadAt(uint64_t offset, absl::Span<char> out) = 0;

  // Information about the open file itself (not about whatever its path names now).
  virtual absl::StatusOr<FileInfo> Stat() = 0;
};

// An open executable artifact: the very file that was checked is the one that runs. Hash it
// through ReadAt, then hand it to ProcessLauncher::Spawn; replacing the path afterwards does not
// change what is executed.
class ExecutableFile : public ReadableFile {
 public:
  // The path the file was opened from (for messages only: it may name another file by now).
  virtual const std::string& path() const = 0;

  // Another handle on the very bytes this one has read (hashed) and would execute, for a later
  // launch that need not read them again. Only where those bytes can no longer change (a sealed
  // copy); call it after reading them. kUnimplemented everywhere else (the default: the
  // simulated file system and the original file, which a writer could still change).
  virtual absl::StatusOr<std::unique_ptr<ExecutableFile>> ShareSealed() const;
};

// A file being written from the start. Thread-compatible.
class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // Appends `data`. Not durable until Sync returns OK.
  virtual absl::Status Append(absl::string_view data) = 0;

  // Makes every byte appended so far durable: it survives a crash of the machine. The file's
  // directory entry is NOT made durable by this call (see FileSystem::SyncDir).
  virtual absl::Status Sync() = 0;

  // Closes the file. Further calls return kFailedPrecondition. Does not imply Sync.
  virtual absl::Status Close() = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Creates `path` (mode 0600) or truncates it, and opens it for writing.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(absl::string_view path) = 0;

  // Creates `path` (mode 0600) if it does not exist, keeps what it holds otherwise, and opens it
  // for writing at its end (O_APPEND: a log other writers may share). kFailedPrecondition if it
  // is a directory. The default answers kUnimplemented (a FileSystem with no appending files).
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(absl::string_view path);

  // Opens an existing file for reading. Follows symlinks.
  virtual absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(absl::string_view path) = 0;

  // Opens an existing regular file for ReadAt and later execution. Follows symlinks; check the
  // result's Stat() and the resolved path before trusting it. kFailedPrecondition if it is a
  // directory.
  virtual absl::StatusOr<std::unique_ptr<ExecutableFile>> OpenForExec(absl::string_view path) = 0;

  // Reads a whole file. kResourceExhausted (naming both sizes) if it exceeds `size_max`.
  absl::StatusOr<std::string> ReadFile(absl::string_view path, uint64_t size_max = 64 << 20);

  // Atomically replaces `to` with `from` (rename(2)). Durable only after SyncDir of the
  // directories involved.
  virtual absl::Status Rename(absl::string_view from, absl::string_view to) = 0;

  // Removes a file or symlink (not a directory).
  virtual absl::Status Remove(absl::string_view path) = 0;

  // Creates one directory (its parent must exist). kAlreadyExists if `path` exists.
  virtual absl::Status CreateDir(absl::string_view path, uint32_t mode = 0700) = 0;

  // Removes an empty directory.
  virtual absl::Status RemoveDir(absl::string_view path) = 0;

  // Names in the directory (without "." and ".."), sorted bytewise.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(absl::string_view path) = 0;

  // Information about what `path` names, following symlinks (Stat) or not (Lstat).
  virtual absl::StatusOr<FileInfo> Stat(absl::string_view path) = 0;
  virtual absl::StatusOr<FileInfo> Lstat(absl::string_view path) = 0;

  // Makes the directory's entries (creations, renames, removals) durable.
  virtual absl::Status SyncDir(absl::string_view path) = 0;

  // The absolute path with every symlink, "." and ".." resolved; the target must exist.
  virtual absl::StatusOr<std::string> RealPath(absl::string_view path) = 0;

  // Creates a symlink at `link` pointing to `target` (which need not exist).
  virtual absl::Status CreateSymlink(absl::string_view target, absl::string_view link) = 0;

  // Sets permission bits (07777) of what `path` names.
  virtual absl::Status SetMode(absl::string_view path, uint32_t mode) = 0;
};

// Joins two path pieces with exactly one '/' between them.
std::string JoinPath(absl::string_view a, absl::string_view b);

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_FILE_SYSTEM_H_
