// ForwardingFileSystem (see forwarding_file_system.h).
#include "base/env/forwarding_file_system.h"

#include <utility>

#include "base/status/status_macros.h"

namespace bulwark {
namespace {

class ForwardingWritableFile final : public WritableFile {
 public:
  ForwardingWritableFile(ForwardingFileSystem& fs, std::unique_ptr<WritableFile> inner)
      : fs_(fs), inner_(std::move(inner)), generation_(fs.generation()) {}

  absl::Status Append(absl::string_view data) override {
    RETURN_IF_ERROR(fs_.CheckCall(generation_, "append"));
    return fs_.AfterMutation(inner_->Append(data));
  }
  absl::Status Sync() override {
    RETURN_IF_ERROR(fs_.CheckCall(generation_, "sync"));
    return fs_.AfterMutation(inner_->Sync());
  }
  absl::Status Close() override {
    RETURN_IF_ERROR(fs_.CheckCall(generation_, "close"));
    return fs_.AfterMutation(inner_->Close());
  }

 private:
  ForwardingFileSystem& fs_;
  std::unique_ptr<WritableFile> inner_;
  uint64_t generation_;
};

// ReadableFile and ExecutableFile share their reads; `Base` is the interface implemented.
template <typename Base>
class ForwardingReadFile : public Base {
 public:
  ForwardingReadFile(ForwardingFileSystem& fs, std::unique_ptr<Base> inner)
      : fs_(fs), inner_(std::move(inner)), generation_(fs.generation()) {}

  absl::StatusOr<size_t> ReadAt(uint64_t offset, absl::Span<char> out) override {
    RETURN_IF_ERROR(fs_.CheckCall(generation_, "read"));
    return inner_->ReadAt(offset, out);
  }
  absl::StatusOr<FileInfo> Stat() override {
    RETURN_IF_ERROR(fs_.CheckCall(generation_, "stat"));
    return inner_->Stat();
  }

 protected:
  ForwardingFileSystem& fs_;
  std::unique_ptr<Base> inner_;
  uint64_t generation_;
};

class ForwardingExecutableFile final : public ForwardingReadFile<ExecutableFile> {
 public:
  using ForwardingReadFile::ForwardingReadFile;
  const std::string& path() const override { return inner_->path(); }
};

}  // namespace

absl::StatusOr<std::unique_ptr<WritableFile>> ForwardingFileSystem::NewWritableFile(
    absl::string_view path) {
  RETURN_IF_ERROR(CheckCall(generation(), "create"));
  absl::StatusOr<std::unique_ptr<WritableFile>> file = inner_.NewWritableFile(path);
  RETURN_IF_ERROR(AfterMutation(file.status()));
  return std::unique_ptr<WritableFile>(new ForwardingWritableFile(*this, *std::move(file)));
}

absl::StatusOr<std::unique_ptr<WritableFile>> ForwardingFileSystem::NewAppendableFile(
    absl::string_view path) {
  RETURN_IF_ERROR(CheckCall(generation(), "open for append"));
  absl::StatusOr<std::unique_ptr<WritableFile>> file = inner_.NewAppendableFile(path);
  RETURN_IF_ERROR(AfterMutation(file.status()));
  return std::unique_ptr<WritableFile>(new ForwardingWritableFile(*this, *std::move(file)));
}

absl::StatusOr<std::unique_ptr<ReadableFile>> ForwardingFileSystem::OpenForRead(
    absl::string_view path) {
  RETURN_IF_ERROR(CheckCall(generation(), "open"));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> file, inner_.OpenForRead(path));
  return std::unique_ptr<ReadableFile>(
      new ForwardingReadFile<ReadableFile>(*this, std::move(file)));
}

absl::StatusOr<std::unique_ptr<ExecutableFile>> ForwardingFileSystem::OpenForExec(
    absl::string_view path) {
  RETURN_IF_ERROR(CheckCall(generation(), "open"));
  ASSIGN_OR_RETURN(std::unique_ptr<ExecutableFile> file, inner_.OpenForExec(path));
  return std::unique_ptr<ExecutableFile>(new ForwardingExecutableFile(*this, std::move(file)));
}

absl::Status ForwardingFileSystem::Rename(absl::string_view from, absl::string_view to) {
  RETURN_IF_ERROR(CheckCall(generation(), "rename"));
  return AfterMutation(inner_.Rename(from, to));
}

absl::Status ForwardingFileSystem::Remove(absl::string_view path) {
  RETURN_IF_ERROR(CheckCall(generation(), "remove"));
  return AfterMutation(inner_.Remove(path));
}

absl::Status ForwardingFileSystem::CreateDir(absl::string_view path, uint32_t mode) {
  RETURN_IF_ERROR(CheckCall(generation(), "mkdir"));
  return AfterMutation(inner_.CreateDir(path, mode));
}

absl::Status ForwardingFileSystem::RemoveDir(absl::string_view path) {
  RETURN_IF_ERROR(CheckCall(generation(), "rmdir"));
  return AfterMutation(inner_.RemoveDir(path));
}

absl::StatusOr<std::vector<std::string>> ForwardingFileSystem::ListDir(absl::string_view path) {
  RETURN_IF_ERROR(CheckCall(generation(), "list"));
  return inner_.ListDir(path);
}

absl::StatusOr<FileInfo> ForwardingFileSystem::Stat(absl::string_view path) {
  RETURN_IF_ERROR(CheckCall(generation(), "stat"));
  return inner_.Stat(path);
}

absl::StatusOr<FileInfo> ForwardingFileSystem::Lstat(absl::string_view path) {
  RETURN_IF_ERROR(CheckCall(generation(), "lstat"));
  return inner_.Lstat(path);
}

absl::Status ForwardingFileSystem::SyncDir(absl::string_view path) {
  RETURN_IF_ERROR(CheckCall(generation(), "syncdir"));
  return AfterMutation(inner_.SyncDir(path));
}

absl::StatusOr<std::string> ForwardingFileSystem::RealPath(absl::string_view path) {
  RETURN_IF_ERROR(CheckCall(generation(), "realpath"));
  return inner_.RealPath(path);
}

absl::Status ForwardingFileSystem::CreateSymlink(absl::string_view target, absl::string_view link) {
  RETURN_IF_ERROR(CheckCall(generation(), "symlink"));
  return AfterMutation(inner_.CreateSymlink(target, link));
}

absl::Status ForwardingFileSystem::SetMode(absl::string_view path, uint32_t mode) {
  RETURN_IF_ERROR(CheckCall(generation(), "chmod"));
  return AfterMutation(inner_.SetMode(path, mode));
}

}  // namespace bulwark
