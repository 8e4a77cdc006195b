// CrashingFileSystem: a test-only FileSystem over a SimFileSystem that pulls the plug after the
// N-th mutating call, so a crash test can stop a write path at every one of its steps.
#ifndef BULWARK_CORE_STORAGE_TESTING_CRASHING_FILE_SYSTEM_H_
#define BULWARK_CORE_STORAGE_TESTING_CRASHING_FILE_SYSTEM_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "base/env/forwarding_file_system.h"
#include "base/env/sim/sim_file_system.h"

namespace bulwark::testing {

// Mutating calls are NewWritableFile, Append, Sync, Close, Rename, Remove, CreateDir, RemoveDir,
// SyncDir, CreateSymlink and SetMode. The `crash_after`-th of them runs normally and returns its
// result; then `sim.Crash(mode)` is called and every later call, reads included and on files
// opened earlier too, fails with kUnavailable ("the machine is down"): the code under test sees
// its process die at that point. Restart by building new objects over `sim` directly.
// crash_after == nullopt never crashes and only counts (to learn how many steps a workload has).
class CrashingFileSystem final : public ForwardingFileSystem {
 public:
  CrashingFileSystem(sim::SimFileSystem& sim, std::optional<uint64_t> crash_after,
                     sim::CrashMode mode)
      : ForwardingFileSystem(sim), sim_(sim), crash_after_(crash_after), mode_(mode) {}

  // Mutating calls made so far (including the one that crashed).
  uint64_t mutations() const { return mutations_; }
  bool crashed() const { return crashed_; }

  // kUnavailable once the machine has crashed.
  absl::Status CheckCall(uint64_t generation, absl::string_view operation) const override;
  // Counts one mutating call that returned `result`, crashing the machine if it was the chosen
  // one. Returns `result` unchanged.
  absl::Status AfterMutation(absl::Status result) override;

 private:
  sim::SimFileSystem& sim_;
  std::optional<uint64_t> crash_after_;
  sim::CrashMode mode_;
  uint64_t mutations_ = 0;
  bool crashed_ = false;
};

}  // namespace bulwark::testing

#endif  // BULWARK_CORE_STORAGE_TESTING_CRASHING_FILE_SYSTEM_H_
