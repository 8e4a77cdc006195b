// A test-only view of an Env implementation, so one contract suite runs against the posix and
// the simulated Env alike: it drives the event loop, provides a scratch directory, and names
// programs with the same observable behaviour in both worlds.
#ifndef BULWARK_BASE_ENV_TESTING_ENV_HARNESS_H_
#define BULWARK_BASE_ENV_TESTING_ENV_HARNESS_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "base/env/env.h"

namespace bulwark::testing {

// An executable path plus the argv to run it with.
struct ProgramRef {
  std::string path;
  std::vector<std::string> argv;
};

class EnvHarness {
 public:
  virtual ~EnvHarness() = default;

  virtual Env& env() = 0;

  // Runs the event loop until `done()` returns true or `limit` passes on the Env's monotonic
  // clock (simulated time in the simulator). Returns done().
  virtual bool RunUntil(absl::FunctionRef<bool()> done, absl::Duration limit) = 0;

  // An existing, empty directory for this test, as an absolute path.
  virtual std::string ScratchDir() = 0;

  // Programs with the same behaviour in every implementation:
  // prints `words` joined by single spaces and a newline on stdout, exits 0.
  virtual ProgramRef Echo(const std::vector<std::string>& words) = 0;
  // exits with `code` without output.
  virtual ProgramRef ExitWith(int code) = 0;
  // never exits by itself and prints nothing.
  virtual ProgramRef SleepForever() = 0;
  // prints `line` and a newline on `stream`, then "done" and a newline on stdout, exits 0.
  virtual ProgramRef PrintLine(OutputStream stream, const std::string& line) = 0;
};

// Factories, so value-parameterised suites can name implementations.
using EnvHarnessFactory = std::function<std::unique_ptr<EnvHarness>()>;

std::unique_ptr<EnvHarness> MakePosixEnvHarness();
std::unique_ptr<EnvHarness> MakeSimEnvHarness(uint64_t seed);

}  // namespace bulwark::testing

#endif  // BULWARK_BASE_ENV_TESTING_ENV_HARNESS_H_
