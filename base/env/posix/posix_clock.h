// PosixClock: the production Clock, reading the kernel's monotonic and real-time clocks.
#ifndef BULWARK_BASE_ENV_POSIX_POSIX_CLOCK_H_
#define BULWARK_BASE_ENV_POSIX_POSIX_CLOCK_H_

#include "absl/time/time.h"
#include "base/env/clock.h"

namespace bulwark {

// Thread-safe: both readings are plain clock_gettime calls.
class PosixClock final : public Clock {
 public:
  PosixClock() = default;

  // CLOCK_MONOTONIC: time since boot (excluding suspend), never decreasing.
  absl::Duration MonotonicNow() override;

  // CLOCK_REALTIME via absl::Now().
  absl::Time WallNow() override;
};

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_POSIX_POSIX_CLOCK_H_
