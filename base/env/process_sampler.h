// The ProcessSampler seam: CPU time and resident memory of a child process, for per-plugin
// monitoring. Production reads /proc (base/env/posix/posix_process_sampler.h), injected at the
// composition root; core code never reads /proc itself. Tests and the simulator inject fakes.
#ifndef BULWARK_BASE_ENV_PROCESS_SAMPLER_H_
#define BULWARK_BASE_ENV_PROCESS_SAMPLER_H_

#include <cstdint>

#include "absl/status/statusor.h"

namespace bulwark {

struct ProcessSample {
  double cpu_seconds = 0;       // User + system time since the process started.
  uint64_t resident_bytes = 0;  // Resident set size now.
};

class ProcessSampler {
 public:
  virtual ~ProcessSampler() = default;
  // kNotFound when no such process runs (it ended between the caller's look and this call).
  virtual absl::StatusOr<ProcessSample> Sample(int64_t pid) = 0;
};

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_PROCESS_SAMPLER_H_
