// CrashingFileSystem (see crashing_file_system.h).
#include "core/storage/testing/crashing_file_system.h"

#include "absl/strings/str_cat.h"

namespace bulwark::testing {

absl::Status CrashingFileSystem::CheckCall(uint64_t /*generation*/,
                                           absl::string_view operation) const {
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

}  // namespace bulwark::testing
