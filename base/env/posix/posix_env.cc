// Wires the production Env parts together.
#include "base/env/posix/posix_env.h"

namespace bulwark {

PosixEnv::PosixEnv()
    : loop_(clock_), launcher_(loop_), env_{clock_, loop_, random_, fs_, launcher_} {}

}  // namespace bulwark
