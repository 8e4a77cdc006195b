// PosixEnv: the production composition of the Env seam (real clock, epoll loop, OpenSSL
// randomness, POSIX files and processes), owned in one object.
#ifndef BULWARK_BASE_ENV_POSIX_POSIX_ENV_H_
#define BULWARK_BASE_ENV_POSIX_POSIX_ENV_H_

#include "base/env/env.h"
#include "base/env/posix/posix_clock.h"
#include "base/env/posix/posix_event_loop.h"
#include "base/env/posix/posix_file_system.h"
#include "base/env/posix/posix_process_launcher.h"
#include "base/env/posix/posix_random.h"

namespace bulwark {

// Construct it on the thread that will run the loop. Everything built on env() must be
// destroyed before the PosixEnv (in particular every Process handle).
class PosixEnv {
 public:
  PosixEnv();

  PosixEnv(const PosixEnv&) = delete;
  PosixEnv& operator=(const PosixEnv&) = delete;

  // The bundle to hand to core components. Valid for the PosixEnv's lifetime.
  Env& env() { return env_; }

  // The concrete parts, for the composition root (running the loop, watching descriptors).
  PosixEventLoop& loop() { return loop_; }
  PosixClock& clock() { return clock_; }
  PosixRandom& random() { return random_; }
  PosixFileSystem& fs() { return fs_; }
  PosixProcessLauncher& launcher() { return launcher_; }

 private:
  // Declaration order is construction order: the loop needs the clock, the launcher the loop.
  PosixClock clock_;
  PosixEventLoop loop_;
  PosixRandom random_;
  PosixFileSystem fs_;
  PosixProcessLauncher launcher_;
  Env env_;
};

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_POSIX_POSIX_ENV_H_
