// Env: the one bundle through which core logic reaches the world. Components take an Env& in
// their constructor; the composition root decides whether it is real (base/env/posix) or
// simulated (base/env/sim). Nothing in core reads clocks, draws randomness, touches files or starts
// processes except through these references.
#ifndef BULWARK_BASE_ENV_ENV_H_
#define BULWARK_BASE_ENV_ENV_H_

#include "base/env/clock.h"
#include "base/env/executor.h"
#include "base/env/failpoint_source.h"
#include "base/env/file_system.h"
#include "base/env/process_launcher.h"
#include "base/env/random.h"

namespace bulwark {

// Non-owning: the referenced objects must outlive the Env and everything built on it.
struct Env {
  Clock& clock;
  Executor& executor;
  Random& random;
  FileSystem& fs;
  ProcessLauncher& launcher;
  // This node's failpoint state (faultinject::Registry); nullptr: the process's installed
  // registry, as in a real process, where one process is one node.
  FailpointSource* failpoints = nullptr;
};

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_ENV_H_
