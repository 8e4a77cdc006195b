// An in-memory FileSystem that models durability: file contents and directory entries survive a
// simulated crash only as far as they were synced, and unsynced state can be dropped or torn.
#ifndef BULWARK_BASE_ENV_SIM_SIM_FILE_SYSTEM_H_
#define BULWARK_BASE_ENV_SIM_SIM_FILE_SYSTEM_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/env/file_system.h"
#include "base/env/random.h"

namespace bulwark::sim {

// What a crash does to state that was not synced.
enum class CrashMode {
  // Every unsynced byte and every directory change since the directory's last SyncDir is lost.
  kDropUnsynced,
  // Each unsynced file keeps either its synced contents or a random prefix of its unsynced
  // contents, and each unsynced directory entry independently keeps its old or new target:
  // what a real disk may leave behind.
  kTearUnsynced,
};

// Paths must be absolute. Single-threaded. Every file is owned by `uid` (0 unless set).
class SimFileSystem final : public FileSystem {
 public:
  // `random` decides what survives a torn crash; it must outlive this object.
  explicit SimFileSystem(Random& random);
  ~SimFileSystem() override;

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

  // The machine loses power: unsynced state is dropped or torn per `mode`, and every file
  // handle opened before the crash fails with kUnavailable from now on.
  void Crash(CrashMode mode);

  // Writes a whole file and makes it and its directory entry durable (test and setup helper).
  absl::Status WriteFileDurably(absl::string_view path, absl::string_view contents,
                                uint32_t mode = 0600);

  // Sets the owner recorded for files created from now on.
  void set_uid(uint32_t uid) { uid_ = uid; }

  // Number of Sync and SyncDir calls so far (for tests of write paths).
  uint64_t sync_count() const { return sync_count_; }

  struct Inode;

 private:
  struct Resolved;

  absl::StatusOr<std::unique_ptr<WritableFile>> OpenWritable(absl::string_view path, bool truncate,
                                                             absl::string_view operation);
  absl::StatusOr<Resolved> Resolve(absl::string_view path, bool follow_last,
                                   absl::string_view operation);
  absl::StatusOr<std::shared_ptr<Inode>> LookupNode(absl::string_view path, bool follow_last,
                                                    absl::string_view operation);

  Random& random_;
  std::shared_ptr<Inode> root_;
  uint64_t generation_ = 0;  // Bumped by Crash; stale handles see a different value.
  uint32_t uid_ = 0;
  uint64_t sync_count_ = 0;
};

}  // namespace bulwark::sim

#endif  // BULWARK_BASE_ENV_SIM_SIM_FILE_SYSTEM_H_
