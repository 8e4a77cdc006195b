// The simulator's command line (//sim:sim), as a function so tests can drive it.
//
//   bazel run //sim -- --seeds 1..200                     sweep, print a report
//   bazel run //sim -- --seed 17 --schedule '<faults>'    replay one seed with given faults
//   bazel run //sim -- --seeds 1..50 --check-determinism  run each seed twice, compare traces
//   bazel run //sim -- --drill all                        planted-bug drill
#ifndef BULWARK_SIM_CLI_H_
#define BULWARK_SIM_CLI_H_

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace bulwark::sim {

// Exit codes.
inline constexpr int kExitPassed = 0;
inline constexpr int kExitFailed = 1;  // A seed failed, or the drill missed a planted bug.
inline constexpr int kExitUsage = 2;

// Runs the command line `args` (without the program name). The report goes to `out`, usage
// errors and the progress bar to `err`; the bar is drawn only when `progress_bar` (stderr is a
// terminal). The environment variable BULWARK_FAILPOINTS, when set, adds to --failpoints.
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
           bool progress_bar);

// What a composition root adds to the command line: test binaries only.
struct CliHooks {
  // Called as each seed of a sweep or a drill starts, after the crash report names it.
  std::function<void(uint64_t seed)> seed_starting;
};
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
           bool progress_bar, const CliHooks& hooks);

std::string CliUsage();

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_CLI_H_
