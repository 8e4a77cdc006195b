// What a process holds in memory and has spent in CPU, from /proc: resident set (VmRSS and its
// anonymous and file parts), proportional set (PSS) and unique set (USS: the pages no other
// process maps, Private_Clean + Private_Dirty of smaps_rollup). Shared-library pages count in
// VmRSS although the host and every other plugin map them too; USS is what one more plugin
// process costs.
#ifndef BULWARK_BENCHMARKS_MEASURE_PROC_MEMORY_H_
#define BULWARK_BENCHMARKS_MEASURE_PROC_MEMORY_H_

#include <sys/types.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bulwark::measure {

struct ProcessMemory {
  int64_t vm_rss_kib = 0;
  int64_t rss_anon_kib = 0;
  int64_t rss_file_kib = 0;
  int64_t pss_kib = 0;
  int64_t private_clean_kib = 0;
  int64_t private_dirty_kib = 0;
  int64_t uss_kib() const { return private_clean_kib + private_dirty_kib; }
};

// From the texts of /proc/PID/status and /proc/PID/smaps_rollup; an error names the missing
// field.
absl::StatusOr<ProcessMemory> ParseProcessMemory(absl::string_view status,
                                                 absl::string_view smaps_rollup);

// Reads both files of process `pid`.
absl::StatusOr<ProcessMemory> ReadProcessMemory(pid_t pid);

// User + system CPU time of process `pid` so far (all its threads), in microseconds.
absl::StatusOr<double> ProcessCpuMicros(pid_t pid);

}  // namespace bulwark::measure

#endif  // BULWARK_BENCHMARKS_MEASURE_PROC_MEMORY_H_
