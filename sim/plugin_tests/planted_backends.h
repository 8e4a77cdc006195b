// Backends with a planted bug, for the tests that prove plugin_simulation_test fails when a
// plugin is broken (BUILD). Test-only: never linked into a plugin that ships.
#ifndef BULWARK_SIM_PLUGIN_TESTS_PLANTED_BACKENDS_H_
#define BULWARK_SIM_PLUGIN_TESTS_PLANTED_BACKENDS_H_

#include <cstdint>

#include "sdk/backend.h"

namespace bulwark::sim::plugin_tests {

// `inner`'s instances, except that from the `healthy_setups`+1-th instance set up on, every
// request is answered with an internal error: a plugin that never works again once it has been
// reloaded (the first instances are the initial mounts').
sdk::BackendFactory FailsAfterReload(sdk::BackendFactory inner, uint64_t healthy_setups);

}  // namespace bulwark::sim::plugin_tests

#endif  // BULWARK_SIM_PLUGIN_TESTS_PLANTED_BACKENDS_H_
