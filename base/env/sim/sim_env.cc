// Wiring of one simulated node's Env.
#include "base/env/sim/sim_env.h"

namespace bulwark::sim {

SimEnv::SimEnv(uint64_t seed)
    : seed_(seed),
      root_random_(seed),
      core_random_(root_random_.Derive("core")),
      fs_random_(root_random_.Derive("fs")),
      process_random_(root_random_.Derive("process")),
      loop_(clock_),
      fs_(fs_random_),
      launcher_(loop_, clock_, process_random_),
      env_{clock_, loop_, core_random_, fs_, launcher_} {}

}  // namespace bulwark::sim
