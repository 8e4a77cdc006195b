// The production Clock: clock_gettime(CLOCK_MONOTONIC) and absl::Now().
#include "base/env/posix/posix_clock.h"

#include <time.h>

#include "absl/time/clock.h"
#include "base/status/check.h"

namespace bulwark {

absl::Duration PosixClock::MonotonicNow() {
  struct timespec ts;
  // Fails only for an invalid clock id or pointer: a programmer error.
  CHECK(clock_gettime(CLOCK_MONOTONIC, &ts) == 0) << "clock_gettime(CLOCK_MONOTONIC) failed";
  return absl::DurationFromTimespec(ts);
}

absl::Time PosixClock::WallNow() { return absl::Now(); }

}  // namespace bulwark
