// CPU placements of a host and its plugin: both on one CPU (every hand-off is a switch on that
// CPU, no cross-CPU wake-up), or one CPU each (every hand-off between them is a cross-CPU
// wake-up). Results differ a lot between the two on a VM; a claim has to hold in both.
#ifndef BULWARK_BENCHMARKS_MEASURE_PLACEMENT_H_
#define BULWARK_BENCHMARKS_MEASURE_PLACEMENT_H_

#include <sched.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace bulwark::measure {

struct Placement {
  std::string name;  // "same-cpu" or "split-cpus".
  int host_cpu = 0;
  int plugin_cpu = 0;
};

// Host and plugin on CPU 0; host on CPU 0 and plugin on CPU 1. The second needs two CPUs this
// process may use (an error otherwise).
absl::StatusOr<std::vector<Placement>> StandardPlacements();

// Pins every thread of process `pid` to `cpu` (threads it starts later inherit the mask).
absl::Status PinProcess(pid_t pid, int cpu);

// The CPUs a process (or thread) may run on, from its /proc status line Cpus_allowed_list
// (e.g. "0" or "0-1"): what a benchmark reports to prove where it ran.
absl::StatusOr<std::string> CpusAllowed(pid_t pid);

// Pins the calling thread to `cpu` for the scope's lifetime and then restores its mask: a
// process forked from this thread meanwhile (a plugin launch) starts on `cpu`.
class ScopedThreadCpu {
 public:
  explicit ScopedThreadCpu(int cpu);
  ~ScopedThreadCpu();
  ScopedThreadCpu(const ScopedThreadCpu&) = delete;
  ScopedThreadCpu& operator=(const ScopedThreadCpu&) = delete;
  // Whether the pin took effect.
  const absl::Status& status() const { return status_; }

 private:
  cpu_set_t saved_;
  bool restore_ = false;
  absl::Status status_;
};

}  // namespace bulwark::measure

#endif  // BULWARK_BENCHMARKS_MEASURE_PLACEMENT_H_
