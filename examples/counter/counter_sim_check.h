// The counter's own check for plugin_simulation_test: what a read of a counter may answer given
// the writes of {"by": by} before it. The simulator's generic probe check only knows that a
// non-idempotent probe's read carries "value"; this one knows what the value must be.
#ifndef BULWARK_EXAMPLES_COUNTER_COUNTER_SIM_CHECK_H_
#define BULWARK_EXAMPLES_COUNTER_COUNTER_SIM_CHECK_H_

#include <cstdint>

#include "sim/plugin_under_test.h"

namespace bulwark::examples::counter {

// A read must answer {"value": V} with by * (writes surely before) <= V <= by * 2 * (writes
// possibly before): no acknowledged write lost, and none counted more than twice (the core
// retries a request once after a lazy reload, so a write that crashed its plugin after storing
// may be applied again). `by` > 0.
sim::ProbeCheck CounterCheck(int64_t by);

}  // namespace bulwark::examples::counter

#endif  // BULWARK_EXAMPLES_COUNTER_COUNTER_SIM_CHECK_H_
