// Env: the one bundle through which core logic reaches the world. Components take an Env& in
// their constructor; the composition root decides whether it is real (core/env/posix) or
// simulated (sim/env). Nothing in core reads clocks, draws randomness, touches files or starts
// processes except through these references.
#ifndef BULWARK_CORE_ENV_ENV_H_
#define BULWARK_CORE_ENV_ENV_H_

#include "core/env/clock.h"
#include "core/env/executor.h"
#include "core/env/file_system.h"
#include "core/env/process_launcher.h"
#include "core/env/random.h"

namespace bulwark {

// Non-owning: the referenced objects must outlive the Env and everything built on it.
struct Env {
  Clock& clock;
  Executor& executor;
  Random& random;
  FileSystem& fs;
  ProcessLauncher& launcher;
};

}  // namespace bulwark

#endif  // BULWARK_CORE_ENV_ENV_H_
