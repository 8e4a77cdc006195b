// SimEnv: one simulated node's world — virtual clock, deterministic event loop, seeded random
// streams, an in-memory file system with a durability model and simulated processes — wired
// into an Env that the unmodified core runs on.
#ifndef BULWARK_BASE_ENV_SIM_SIM_ENV_H_
#define BULWARK_BASE_ENV_SIM_SIM_ENV_H_

#include <cstdint>

#include "base/env/env.h"
#include "base/env/random.h"
#include "base/env/sim/sim_event_loop.h"
#include "base/env/sim/sim_file_system.h"
#include "base/env/sim/sim_process_launcher.h"

namespace bulwark::sim {

class SimEnv {
 public:
  // Everything random derives from `seed`; each subsystem draws from its own stream so that a
  // change in one (say, one more file-system fault) does not shift the others' choices.
  explicit SimEnv(uint64_t seed);
  SimEnv(const SimEnv&) = delete;
  SimEnv& operator=(const SimEnv&) = delete;

  Env& env() { return env_; }
  SimClock& clock() { return clock_; }
  SimEventLoop& loop() { return loop_; }
  SeededRandom& random() { return core_random_; }
  SimFileSystem& fs() { return fs_; }
  SimProcessLauncher& launcher() { return launcher_; }
  uint64_t seed() const { return seed_; }

 private:
  uint64_t seed_;
  SeededRandom root_random_;
  SeededRandom core_random_;
  SeededRandom fs_random_;
  SeededRandom process_random_;
  SimClock clock_;
  SimEventLoop loop_;
  SimFileSystem fs_;
  SimProcessLauncher launcher_;
  Env env_;
};

}  // namespace bulwark::sim

#endif  // BULWARK_BASE_ENV_SIM_SIM_ENV_H_
