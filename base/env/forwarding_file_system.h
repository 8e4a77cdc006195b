// ForwardingFileSystem: a FileSystem that forwards every call, on open files too, to an inner
// one, with hooks around each call. The one base for file systems that decorate another (the
// simulator's per-node view, the crash tests' crashing file system), so that none of them
// repeats the forwarding.
#ifndef BULWARK_BASE_ENV_FORWARDING_FILE_SYSTEM_H_
#define BULWARK_BASE_ENV_FORWARDING_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/env/file_system.h"

namespace bulwark {

// Every call first asks CheckCall; a non-OK answer fails the call without reaching the inner file
// system. Open files (WritableFile, ReadableFile, ExecutableFile) are wrapped too: they remember
// the generation() they were opened in and pass it to CheckCall, so a subclass can fail handles
// from an earlier life of its machine. Mutating calls — NewWritableFile, Append, Sync, Close,
// Rename, Remove, CreateDir, RemoveDir, SyncDir, CreateSymlink, SetMode — hand their result to
// AfterMutation, whose answer is what the caller gets (a new file is returned only when it is OK).
// The operation names passed to CheckCall are short verbs for messages ("create", "append",
// "syncdir", ...). Not thread-safe beyond what the subclass makes it.
class ForwardingFileSystem : public FileSystem {
 public:
  // `inner` must outlive this object and every file opened through it.
  explicit ForwardingFileSystem(FileSystem& inner) : inner_(inner) {}

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(absl::string_view path) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(absl::string_view path) override;
  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(absl::string_view path) override;
  absl::StatusOr<std::unique_ptr<ExecutableFile>> OpenForExec(absl::string_view path) override;
  absl::Status Rename(absl::string_view from, absl::string_view to) override;
  absl::Status Remove(absl::string_view path) override;
  absl::Status CreateDir(absl::string_view path, uint32_t mode) override;
  absl::Status RemoveDir(absl::string_view path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(absl::string_view path) override;
  absl::StatusOr<FileInfo> Stat(absl::string_view path) override;
  absl::StatusOr<FileInfo> Lstat(absl::string_view path) override;
  absl::Status SyncDir(absl::string_view path) override;
  absl::StatusOr<std::string> RealPath(absl::string_view path) override;
  absl::Status CreateSymlink(absl::string_view target, absl::string_view link) override;
  absl::Status SetMode(absl::string_view path, uint32_t mode) override;

  // The hooks, public so that the wrapped files can reach them; only subclasses override them.

  // The generation new handles are stamped with (0 unless the subclass counts lives).
  virtual uint64_t generation() const { return 0; }
  // Before every call: OK lets it through. `generation` is the current one for calls on the file
  // system and the handle's own for calls on an open file.
  virtual absl::Status CheckCall(uint64_t /*generation*/, absl::string_view /*operation*/) const {
    return absl::OkStatus();
  }
  // After every mutating call that got through, with its result; returns what the caller gets.
  virtual absl::Status AfterMutation(absl::Status result) { return result; }

 protected:
  FileSystem& inner() { return inner_; }

 private:
  FileSystem& inner_;
};

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_FORWARDING_FILE_SYSTEM_H_
