// Shrinking a failing run: its recorded fault schedule is minimised with delta debugging (ddmin,
// Zeller & Hildebrandt 2002) while the same invariant keeps failing, then the result is replayed
// twice to confirm it. Each candidate is a replay of the seed with a sub-schedule; the workload
// does not change, because every subsystem draws from its own random stream.
#ifndef BULWARK_SIM_SHRINK_H_
#define BULWARK_SIM_SHRINK_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "sim/schedule.h"
#include "sim/simulation.h"

namespace bulwark::sim {

// Candidate runs one shrink may make at most.
inline constexpr size_t kShrinkRunsDefaultMax = 400;

// Delta debugging over `items`: returns a 1-minimal subset for which `fails` holds (removing any
// single item makes it pass), or the smallest found within `tests_max` calls. REQUIRES:
// fails(items). `tests` (optional) receives the number of calls made.
std::vector<FaultEvent> DeltaDebug(const std::vector<FaultEvent>& items,
                                   const std::function<bool(const std::vector<FaultEvent>&)>& fails,
                                   size_t tests_max, size_t* tests = nullptr);

struct ShrinkResult {
  bool reproduced = false;  // The recorded schedule, replayed, fails with the same invariant.
  bool verified = false;    // The shrunk schedule failed twice more, with one trace hash.
  std::string invariant;
  std::vector<FaultEvent> schedule;  // The shrunk schedule (the original if not reproduced).
  size_t original_events = 0;
  size_t runs = 0;
  Violation violation;  // As the shrunk schedule produces it.
};

// Shrinks `failure`, a failed run of `config` (its seed, scenario and failpoints are reused).
ShrinkResult Shrink(const RunConfig& config, const RunResult& failure,
                    size_t runs_max = kShrinkRunsDefaultMax);

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_SHRINK_H_
