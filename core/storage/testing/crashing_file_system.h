// CrashingFileSystem: a test-only FileSystem over a SimFileSystem that pulls the plug after the
// N-th mutating call, so a crash test can stop a write path at every one of its steps.
#ifndef BULWARK_CORE_STORAGE_TESTING_CRASHING_FILE_SYSTEM_H_
#define BULWARK_CORE_STORAGE_TESTING_CRASHING_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/env/file_system.h"
#include "base/env/sim/sim_file_system.h"

namespace bulwark::testing {

// Mutating calls are NewWritableFile, Append, Sync, Close, Rename, Remove, CreateDir, RemoveDir,
// SyncDir, CreateSymlink and SetMode. The `crash_after`-th of them runs normally and returns its
// result; then `sim.Crash(mode)` is called and every later call, reads included and on files
// opened earlier too, fails with kUnavailable ("the machine is down"): the code under test sees
// its process die at that point. Restart by building new objects over `sim` directly.
// crash_after == nullopt never crashes and only counts (to learn how many steps a workload has).
class CrashingFileSystem final : public FileSystem {
 public:
  CrashingFileSystem(sim::SimFileSystem& sim, std::optional<uint64_t> crash_after,
                     sim::CrashMode mode)
      : sim_(sim), crash_after_(crash_after), mode_(mode) {}

  // Mutating calls made so far (including the one that crashed).
  uint64_t mutations() const { return mutations_; }
  bool crashed() const { return crashed_; }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(absl::string_view path) override;
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

  // For the wrapped file objects.
  absl::Status CheckUp(absl::string_view operation) const;
  // Counts one mutating call that returned `result`, crashing the machine if it was the chosen
  // one. Returns `result` unchanged.
  absl::Status AfterMutation(absl::Status result);

 private:
  sim::SimFileSystem& sim_;
  std::optional<uint64_t> crash_after_;
  sim::CrashMode mode_;
  uint64_t mutations_ = 0;
  bool crashed_ = false;
};

}  // namespace bulwark::testing

#endif  // BULWARK_CORE_STORAGE_TESTING_CRASHING_FILE_SYSTEM_H_
