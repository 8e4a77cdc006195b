// Interleaved rounds: every arm of a comparison (say, bulwark's pair and go-plugin's pair) runs
// once per round, each time as fresh processes, and the arms take turns going first, so a change
// in the machine's load during a run falls on both arms instead of on whichever ran last.
#ifndef BULWARK_BENCHMARKS_MEASURE_ROUNDS_H_
#define BULWARK_BENCHMARKS_MEASURE_ROUNDS_H_

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace bulwark::measure {

// The order in which `arms` arms run in round `round` (0-based): the arms rotated by the round
// number, so with two arms rounds go AB, BA, AB, ... and every arm goes first equally often.
std::vector<size_t> ArmOrder(size_t arms, int round);

// One child process of a round: argv[0] is the executable's path.
struct ChildCommand {
  std::vector<std::string> argv;
  // Added to (or replacing entries of) this process's environment.
  std::vector<std::string> extra_env;
  // The only CPU the child (and every thread and process it starts) may run on, set with
  // sched_setaffinity between fork and exec; none: this process's own mask.
  std::optional<int> cpu;
  // Hang guard only: a child still running after this is killed and the round fails. Never a
  // measurement deadline.
  absl::Duration hang_guard = absl::Minutes(30);
  // Largest stdout accepted.
  size_t stdout_bytes_max = size_t{4} << 20;
};

// Runs `command` to completion and returns its stdout (its stderr passes through). An exit
// status other than 0, a signal, an oversized stdout or the hang guard is an error naming it.
absl::StatusOr<std::string> RunChild(const ChildCommand& command);

}  // namespace bulwark::measure

#endif  // BULWARK_BENCHMARKS_MEASURE_ROUNDS_H_
