// Test helper: spawns `sleep 100000` through PosixProcessLauncher, prints the sleeper's pid on
// stdout, then blocks in the event loop until killed. Used to check PR_SET_PDEATHSIG.
#include <stdio.h>

#include <memory>

#include "base/env/posix/posix_env.h"
#include "base/status/check.h"

int main() {
  bulwark::PosixEnv posix;
  auto sleep_exe = posix.fs().OpenForExec("/bin/sleep");
  CHECK_OK(sleep_exe);
  bulwark::ProcessOptions options;
  options.argv = {"sleep", "100000"};
  auto sleeper = posix.launcher().Spawn(**sleep_exe, std::move(options));
  CHECK_OK(sleeper);
  printf("%lld\n", static_cast<long long>((*sleeper)->pid()));
  fflush(stdout);
  posix.loop().Run();  // Nothing calls Stop: the test ends this process with SIGKILL.
  return 0;
}
