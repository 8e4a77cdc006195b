// The production FileSystem: thin wrappers over POSIX calls with one errno-to-Status mapping.
#include "base/env/posix/posix_file_system.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status/check.h"
#include "base/status/status_macros.h"

namespace bulwark {

absl::Status ErrnoToStatus(int err, absl::string_view operation, absl::string_view path) {
  // strerrordesc_np is thread-safe, unlike strerror.
  const char* desc = strerrordesc_np(err);
  std::string message = absl::StrCat(operation, " ", path, ": ",
                                     desc != nullptr ? desc : absl::StrCat("errno ", err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case ENOTDIR:
    case EISDIR:
    case ENOTEMPTY:
    case ELOOP:
    case EXDEV:
    case ETXTBSY:
      return absl::FailedPreconditionError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return absl::ResourceExhaustedError(message);
    case ENAMETOOLONG:
    case EINVAL:
      return absl::InvalidArgumentError(message);
    case EIO:
      return absl::DataLossError(message);
    default:
      return absl::InternalError(message);
  }
}

namespace {

// A NUL-terminated copy of `path`, or kInvalidArgument for an empty path or an embedded NUL.
absl::StatusOr<std::string> CPath(absl::string_view operation, absl::string_view path) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(operation, ": empty path"));
  if (path.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(operation, " ", absl::CEscape(path), ": path contains a NUL byte"));
  }
  return std::string(path);
}

FileInfo InfoFromStat(const struct stat& st) {
  FileInfo info;
  switch (st.st_mode & S_IFMT) {
    case S_IFREG:
      info.type = FileType::kRegular;
      break;
    case S_IFDIR:
      info.type = FileType::kDirectory;
      break;
    case S_IFLNK:
      info.type = FileType::kSymlink;
      break;
    default:
      info.type = FileType::kOther;
      break;
  }
  info.mode = st.st_mode & 07777;
  info.size = static_cast<uint64_t>(st.st_size);
  info.uid = st.st_uid;
  info.gid = st.st_gid;
  info.device = static_cast<uint64_t>(st.st_dev);
  info.inode = static_cast<uint64_t>(st.st_ino);
  info.change_time_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return info;
}

absl::StatusOr<size_t> PreadFully(int fd, const std::string& path, uint64_t offset,
                                  absl::Span<char> out) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n =
        pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "read", path);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

absl::StatusOr<FileInfo> FstatInfo(int fd, const std::string& path) {
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoToStatus(errno, "stat", path);
  return InfoFromStat(st);
}

absl::Status FsyncRetrying(int fd, absl::string_view operation, const std::string& path) {
  while (fsync(fd) != 0) {
    if (errno != EINTR) return ErrnoToStatus(errno, operation, path);
  }
  return absl::OkStatus();
}

class PosixReadableFile final : public ReadableFile {
 public:
  PosixReadableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixReadableFile() override { close(fd_); }

  PosixReadableFile(const PosixReadableFile&) = delete;
  PosixReadableFile& operator=(const PosixReadableFile&) = delete;

  absl::StatusOr<size_t> ReadAt(uint64_t offset, absl::Span<char> out) override {
    return PreadFully(fd_, path_, offset, out);
  }
  absl::StatusOr<FileInfo> Stat() override { return FstatInfo(fd_, path_); }

 private:
  const int fd_;
  const std::string path_;
};

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) close(fd_);
  }

  PosixWritableFile(const PosixWritableFile&) = delete;
  PosixWritableFile& operator=(const PosixWritableFile&) = delete;

  absl::Status Append(absl::string_view data) override {
    RETURN_IF_ERROR(CheckOpen("append to"));
    while (!data.empty()) {
      const ssize_t n = write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoToStatus(errno, "write", path_);
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    RETURN_IF_ERROR(CheckOpen("sync"));
    return FsyncRetrying(fd_, "fsync", path_);
  }

  absl::Status Close() override {
    RETURN_IF_ERROR(CheckOpen("close"));
    const int fd = fd_;
    fd_ = -1;
    // Linux releases the descriptor even when close fails, so it is never retried. An error
    // here (EIO from NFS, for example) means earlier writes may be lost.
    if (close(fd) != 0 && errno != EINTR) return ErrnoToStatus(errno, "close", path_);
    return absl::OkStatus();
  }

 private:
  absl::Status CheckOpen(absl::string_view what) const {
    if (fd_ >= 0) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("cannot ", what, " ", path_, ": the file is already closed"));
  }

  int fd_;
  const std::string path_;
};

// open(2) with O_CLOEXEC added, retrying EINTR.
absl::StatusOr<int> Open(absl::string_view operation, const std::string& path, int flags,
                         mode_t mode = 0) {
  while (true) {
    const int fd = open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd >= 0) return fd;
    if (errno != EINTR) return ErrnoToStatus(errno, operation, path);
  }
}

// MFD_EXEC (Linux 6.3), spelled out for older headers.
constexpr unsigned kMfdExec = 0x0010U;

}  // namespace

PosixExecutableFile::PosixExecutableFile(int fd, std::string path, ExecSnapshot snapshot)
    : fd_(fd), path_(std::move(path)), snapshot_(snapshot) {
  CHECK(fd_ >= 0);
}

PosixExecutableFile::~PosixExecutableFile() {
  close(fd_);
  if (memfd_ >= 0) close(memfd_);
}

std::string PosixExecutableFile::MemfdName(absl::string_view path) {
  const size_t slash = path.rfind('/');
  // memfd names are at most 249 bytes; the kernel adds "memfd:".
  return std::string(
      absl::StrCat("bulwark:", slash == absl::string_view::npos ? path : path.substr(slash + 1))
          .substr(0, 200));
}

absl::Status PosixExecutableFile::EnsureSnapshot() const {
  if (snapshot_ == ExecSnapshot::kOriginal || memfd_ >= 0) return absl::OkStatus();
  // Linux 6.3+ wants MFD_EXEC said out loud (vm.memfd_noexec); older kernels refuse the flag.
  const std::string name = MemfdName(path_);
  int memfd = memfd_create(name.c_str(), MFD_ALLOW_SEALING | MFD_CLOEXEC | kMfdExec);
  if (memfd < 0 && errno == EINVAL)
    memfd = memfd_create(name.c_str(), MFD_ALLOW_SEALING | MFD_CLOEXEC);
  if (memfd < 0) return ErrnoToStatus(errno, "memfd_create for", path_);
  auto fail = [&](absl::string_view operation) {
    const int err = errno;
    close(memfd);
    return ErrnoToStatus(err, operation, path_);
  };
  // Exactly the bytes the original holds now: its size at this moment, read from offset 0
  // (a file that shrinks meanwhile gives a shorter copy, which the caller's hash sees).
  struct stat st;
  if (fstat(fd_, &st) != 0) return fail("stat");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t copied = 0;
  off_t in_offset = 0;
  bool use_sendfile = true;
  std::vector<char> buffer;
  while (copied < size) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(size - copied, 1 << 20));
    ssize_t n;
    if (use_sendfile) {
      n = sendfile(memfd, fd_, &in_offset, want);
      if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
        use_sendfile = false;
        continue;
      }
    } else {
      buffer.resize(want);
      n = pread(fd_, buffer.data(), want, static_cast<off_t>(copied));
      if (n > 0) {
        for (ssize_t done = 0; done < n;) {
          const ssize_t w = write(memfd, buffer.data() + done, static_cast<size_t>(n - done));
          if (w < 0 && errno == EINTR) continue;
          if (w < 0) return fail("copy into a memfd");
          done += w;
        }
        in_offset += n;
      }
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("copy into a memfd");
    }
    if (n == 0) break;
    copied += static_cast<uint64_t>(n);
  }
  // The copy keeps the original's permission bits, so a file without its execute bit still
  // fails to run (EACCES) as it would have.
  if (fchmod(memfd, st.st_mode & 0777) != 0) return fail("chmod the memfd copy of");
  constexpr int kSizeSeals = F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL;
  if (fcntl(memfd, F_ADD_SEALS, F_SEAL_WRITE | kSizeSeals) != 0) {
    // F_SEAL_WRITE is refused (EBUSY) while the kernel still holds a transient reference to a
    // page of the copy (seen once on Linux 6.18 under load; likely the per-CPU batch the fresh
    // pages wait in before joining the LRU lists). Nobody has mapped this memfd (made here,
    // close-on-exec, never mapped), so F_SEAL_FUTURE_WRITE, which refuses every later write and
    // writable mapping, freezes the same bytes.
    if (errno != EBUSY || fcntl(memfd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE | kSizeSeals) != 0) {
      return fail("seal the memfd copy of");
    }
  }
  memfd_ = memfd;
  return absl::OkStatus();
}

absl::StatusOr<int> PosixExecutableFile::ExecFd() const {
  RETURN_IF_ERROR(EnsureSnapshot());
  return snapshot_ == ExecSnapshot::kOriginal ? fd_ : memfd_;
}

absl::StatusOr<std::unique_ptr<ExecutableFile>> PosixExecutableFile::ShareSealed() const {
  if (snapshot_ != ExecSnapshot::kSealedMemfd || memfd_ < 0) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": no sealed copy to share (",
                                                      snapshot_ == ExecSnapshot::kOriginal
                                                          ? "this file system executes originals"
                                                          : "nothing was read yet",
                                                      ")"));
  }
  const int fd = fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return ErrnoToStatus(errno, "duplicate the descriptor of", path_);
  const int memfd = fcntl(memfd_, F_DUPFD_CLOEXEC, 0);
  if (memfd < 0) {
    const int err = errno;
    close(fd);
    return ErrnoToStatus(err, "duplicate the sealed copy of", path_);
  }
  auto shared = std::make_unique<PosixExecutableFile>(fd, path_, snapshot_);
  shared->memfd_ = memfd;
  return shared;
}

absl::StatusOr<size_t> PosixExecutableFile::ReadAt(uint64_t offset, absl::Span<char> out) {
  ASSIGN_OR_RETURN(int fd, ExecFd());
  return PreadFully(fd, path_, offset, out);
}

absl::StatusOr<FileInfo> PosixExecutableFile::Stat() {
  ASSIGN_OR_RETURN(FileInfo info, FstatInfo(fd_, path_));
  if (memfd_ >= 0) {
    ASSIGN_OR_RETURN(FileInfo copy, FstatInfo(memfd_, path_));
    info.size = copy.size;
  }
  return info;
}

absl::StatusOr<std::unique_ptr<WritableFile>> PosixFileSystem::NewWritableFile(
    absl::string_view path) {
  ASSIGN_OR_RETURN(std::string p, CPath("create", path));
  ASSIGN_OR_RETURN(int fd, Open("create", p, O_WRONLY | O_CREAT | O_TRUNC, 0600));
  return std::make_unique<PosixWritableFile>(fd, std::move(p));
}

absl::StatusOr<std::unique_ptr<WritableFile>> PosixFileSystem::NewAppendableFile(
    absl::string_view path) {
  ASSIGN_OR_RETURN(std::string p, CPath("open for append", path));
  ASSIGN_OR_RETURN(int fd, Open("open for append", p, O_WRONLY | O_CREAT | O_APPEND, 0600));
  return std::make_unique<PosixWritableFile>(fd, std::move(p));
}

absl::StatusOr<std::unique_ptr<ReadableFile>> PosixFileSystem::OpenForRead(absl::string_view path) {
  ASSIGN_OR_RETURN(std::string p, CPath("open", path));
  ASSIGN_OR_RETURN(int fd, Open("open", p, O_RDONLY | O_NONBLOCK));
  return std::make_unique<PosixReadableFile>(fd, std::move(p));
}

absl::StatusOr<std::unique_ptr<ExecutableFile>> PosixFileSystem::OpenForExec(
    absl::string_view path) {
  ASSIGN_OR_RETURN(std::string p, CPath("open for exec", path));
  ASSIGN_OR_RETURN(int fd, Open("open for exec", p, O_RDONLY | O_NONBLOCK));
  auto file = std::make_unique<PosixExecutableFile>(fd, std::move(p), exec_snapshot_);
  ASSIGN_OR_RETURN(FileInfo info, file->Stat());
  if (info.type != FileType::kRegular) {
    return absl::FailedPreconditionError(absl::StrCat("open for exec ", file->path(), ": is a ",
                                                      FileTypeName(info.type),
                                                      ", not a regular file"));
  }
  return file;
}

absl::Status PosixFileSystem::Rename(absl::string_view from, absl::string_view to) {
  ASSIGN_OR_RETURN(std::string f, CPath("rename", from));
  ASSIGN_OR_RETURN(std::string t, CPath("rename", to));
  if (rename(f.c_str(), t.c_str()) != 0) {
    return ErrnoToStatus(errno, "rename", absl::StrCat(f, " to ", t));
  }
  return absl::OkStatus();
}

absl::Status PosixFileSystem::Remove(absl::string_view path) {
  ASSIGN_OR_RETURN(std::string p, CPath("remove", path));
  if (unlink(p.c_str()) != 0) return ErrnoToStatus(errno, "remove", p);
  return absl::OkStatus();
}

absl::Status PosixFileSystem::CreateDir(absl::string_view path, uint32_t mode) {
  ASSIGN_OR_RETURN(std::string p, CPath("create directory", path));
  if (mkdir(p.c_str(), static_cast<mode_t>(mode & 07777)) != 0) {
    return ErrnoToStatus(errno, "create directory", p);
  }
  return absl::OkStatus();
}

absl::Status PosixFileSystem::RemoveDir(absl::string_view path) {
  ASSIGN_OR_RETURN(std::string p, CPath("remove directory", path));
  if (rmdir(p.c_str()) != 0) return ErrnoToStatus(errno, "remove directory", p);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> PosixFileSystem::ListDir(absl::string_view path) {
  ASSIGN_OR_RETURN(std::string p, CPath("list directory", path));
  ASSIGN_OR_RETURN(int fd, Open("list directory", p, O_RDONLY | O_DIRECTORY));
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    const int err = errno;
    close(fd);
    return ErrnoToStatus(err, "list directory", p);
  }
  std::vector<std::string> names;
  while (true) {
    errno = 0;
    const struct dirent* entry = readdir(dir);
    if (entry == nullptr) {
      const int err = errno;
      closedir(dir);  // Also closes fd.
      if (err != 0) return ErrnoToStatus(err, "list directory", p);
      break;
    }
    absl::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<FileInfo> PosixFileSystem::Stat(absl::string_view path) {
  ASSIGN_OR_RETURN(std::string p, CPath("stat", path));
  struct stat st;
  if (stat(p.c_str(), &st) != 0) return ErrnoToStatus(errno, "stat", p);
  return InfoFromStat(st);
}

absl::StatusOr<FileInfo> PosixFileSystem::Lstat(absl::string_view path) {
  ASSIGN_OR_RETURN(std::string p, CPath("lstat", path));
  struct stat st;
  if (lstat(p.c_str(), &st) != 0) return ErrnoToStatus(errno, "lstat", p);
  return InfoFromStat(st);
}

absl::Status PosixFileSystem::SyncDir(absl::string_view path) {
  ASSIGN_OR_RETURN(std::string p, CPath("sync directory", path));
  ASSIGN_OR_RETURN(int fd, Open("sync directory", p, O_RDONLY | O_DIRECTORY));
  absl::Status status = FsyncRetrying(fd, "sync directory", p);
  close(fd);
  return status;
}

absl::StatusOr<std::string> PosixFileSystem::RealPath(absl::string_view path) {
  ASSIGN_OR_RETURN(std::string p, CPath("resolve", path));
  char* resolved = realpath(p.c_str(), nullptr);
  if (resolved == nullptr) return ErrnoToStatus(errno, "resolve", p);
  std::string out(resolved);
  free(resolved);
  return out;
}

absl::Status PosixFileSystem::CreateSymlink(absl::string_view target, absl::string_view link) {
  ASSIGN_OR_RETURN(std::string t, CPath("create symlink", target));
  ASSIGN_OR_RETURN(std::string l, CPath("create symlink", link));
  if (symlink(t.c_str(), l.c_str()) != 0) {
    return ErrnoToStatus(errno, "create symlink", absl::StrCat(l, " -> ", t));
  }
  return absl::OkStatus();
}

absl::Status PosixFileSystem::SetMode(absl::string_view path, uint32_t mode) {
  ASSIGN_OR_RETURN(std::string p, CPath("chmod", path));
  if (chmod(p.c_str(), static_cast<mode_t>(mode & 07777)) != 0) {
    return ErrnoToStatus(errno, "chmod", p);
  }
  return absl::OkStatus();
}

}  // namespace bulwark
