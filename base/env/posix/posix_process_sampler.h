// ProcessSampler over Linux's /proc/<pid>/stat (utime, stime) and /proc/<pid>/statm (resident
// pages). Stateless and thread-safe.
#ifndef BULWARK_BASE_ENV_POSIX_POSIX_PROCESS_SAMPLER_H_
#define BULWARK_BASE_ENV_POSIX_POSIX_PROCESS_SAMPLER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/env/process_sampler.h"

namespace bulwark {

class PosixProcessSampler final : public ProcessSampler {
 public:
  absl::StatusOr<ProcessSample> Sample(int64_t pid) override;
};

// Parses the texts of /proc/<pid>/stat and /proc/<pid>/statm with the system's clock ticks per
// second and page size (exposed for tests). kDataLoss for text that is not in their format.
absl::StatusOr<ProcessSample> ParseProcStat(absl::string_view stat, absl::string_view statm,
                                            long ticks_per_second, long page_bytes);

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_POSIX_POSIX_PROCESS_SAMPLER_H_
