// CrashingFileSystem (see crashing_file_system.h).
#include "core/storage/testing/crashing_file_system.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status/status_macros.h"

namespace bulwark::testing {
namespace {

class CrashingWritableFile final : public WritableFile {
 public:
  CrashingWritableFile(CrashingFileSystem& fs, std::unique_ptr<WritableFile> file)
      : fs_(fs), file_(std::move(file)) {}

  absl::Status Append(absl::string_view data) override {
    RETURN_IF_ERROR(fs_.CheckUp("append"));
    return fs_.AfterMutation(file_->Append(data));
  }
  absl::Status Sync() override {
    RETURN_IF_ERROR(fs_.CheckUp("sync"));
    return fs_.AfterMutation(file_->Sync());
  }
  absl::Status Close() override {
    RETURN_IF_ERROR(fs_.CheckUp("close"));
    return fs_.AfterMutation(file_->Close());
  }

 private:
  CrashingFileSystem& fs_;
  std::unique_ptr<WritableFile> file_;
};

class CrashingReadableFile final : public ReadableFile {
 public:
  CrashingReadableFile(CrashingFileSystem& fs, std::unique_ptr<ReadableFile> file)
      : fs_(fs), file_(std::move(file)) {}

  absl::StatusOr<size_t> ReadAt(uint64_t offset, absl::Span<char> out) override {
    RETURN_IF_ERROR(fs_.CheckUp("read"));
    return file_->ReadAt(offset, out);
  }
  absl::StatusOr<FileInfo> Stat() override {
    RETURN_IF_ERROR(fs_.CheckUp("stat"));
    return file_->Stat();
  }

 private:
  CrashingFileSystem& fs_;
  std::unique_ptr<ReadableFile> file_;
};

}  // namespace

absl::Status CrashingFileSystem::CheckUp(absl::string_view operation) const {
  if (!crashed_) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(operation, ": the simulated machine has crashed"));
}

absl::Status CrashingFileSystem::AfterMutation(absl::Status result) {
  ++mutations_;
  if (crash_after_.has_value() && mutations_ == *crash_after_) {
    sim_.Crash(mode_);
    crashed_ = true;
  }
  return result;
}

absl::StatusOr<std::unique_ptr<WritableFile>> CrashingFileSystem::NewWritableFile(
    absl::string_view path) {
  RETURN_IF_ERROR(CheckUp("create"));
  absl::StatusOr<std::unique_ptr<WritableFile>> file = sim_.NewWritableFile(path);
  RETURN_IF_ERROR(AfterMutation(file.status()));
  // A crash right after creation leaves the handle dead, as the process would be.
  return std::unique_ptr<WritableFile>(new CrashingWritableFile(*this, *std::move(file)));
}

absl::StatusOr<std::unique_ptr<ReadableFile>> CrashingFileSystem::OpenForRead(
    absl::string_view path) {
  RETURN_IF_ERROR(CheckUp("open"));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> file, sim_.OpenForRead(path));
  return std::unique_ptr<ReadableFile>(new CrashingReadableFile(*this, std::move(file)));
}

absl::StatusOr<std::unique_ptr<ExecutableFile>> CrashingFileSystem::OpenForExec(
    absl::string_view path) {
  RETURN_IF_ERROR(CheckUp("open for exec"));
  return sim_.OpenForExec(path);
}

absl::Status CrashingFileSystem::Rename(absl::string_view from, absl::string_view to) {
  RETURN_IF_ERROR(CheckUp("rename"));
  return AfterMutation(sim_.Rename(from, to));
}

absl::Status CrashingFileSystem::Remove(absl::string_view path) {
  RETURN_IF_ERROR(CheckUp("remove"));
  return AfterMutation(sim_.Remove(path));
}

absl::Status CrashingFileSystem::CreateDir(absl::string_view path, uint32_t mode) {
  RETURN_IF_ERROR(CheckUp("mkdir"));
  return AfterMutation(sim_.CreateDir(path, mode));
}

absl::Status CrashingFileSystem::RemoveDir(absl::string_view path) {
  RETURN_IF_ERROR(CheckUp("rmdir"));
  return AfterMutation(sim_.RemoveDir(path));
}

absl::StatusOr<std::vector<std::string>> CrashingFileSystem::ListDir(absl::string_view path) {
  RETURN_IF_ERROR(CheckUp("list"));
  return sim_.ListDir(path);
}

absl::StatusOr<FileInfo> CrashingFileSystem::Stat(absl::string_view path) {
  RETURN_IF_ERROR(CheckUp("stat"));
  return sim_.Stat(path);
}

absl::StatusOr<FileInfo> CrashingFileSystem::Lstat(absl::string_view path) {
  RETURN_IF_ERROR(CheckUp("lstat"));
  return sim_.Lstat(path);
}

absl::Status CrashingFileSystem::SyncDir(absl::string_view path) {
  RETURN_IF_ERROR(CheckUp("sync directory"));
  return AfterMutation(sim_.SyncDir(path));
}

absl::StatusOr<std::string> CrashingFileSystem::RealPath(absl::string_view path) {
  RETURN_IF_ERROR(CheckUp("realpath"));
  return sim_.RealPath(path);
}

absl::Status CrashingFileSystem::CreateSymlink(absl::string_view target, absl::string_view link) {
  RETURN_IF_ERROR(CheckUp("symlink"));
  return AfterMutation(sim_.CreateSymlink(target, link));
}

absl::Status CrashingFileSystem::SetMode(absl::string_view path, uint32_t mode) {
  RETURN_IF_ERROR(CheckUp("chmod"));
  return AfterMutation(sim_.SetMode(path, mode));
}

}  // namespace bulwark::testing
