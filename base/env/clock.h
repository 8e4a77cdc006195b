// The Clock seam: every reading of time in core code goes through this interface, so the
// simulator can substitute virtual time.
#ifndef BULWARK_BASE_ENV_CLOCK_H_
#define BULWARK_BASE_ENV_CLOCK_H_

#include "absl/time/time.h"

namespace bulwark {

// Thread-compatible; implementations document whether they are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;

  // Time since an arbitrary fixed origin. Never decreases, unaffected by wall-clock changes:
  // use it for deadlines, timeouts and measuring intervals.
  virtual absl::Duration MonotonicNow() = 0;

  // Calendar time, for presenting to people and for certificate validity. May jump backwards
  // or forwards (NTP, operators, injected clock faults): never use it to measure intervals.
  virtual absl::Time WallNow() = 0;
};

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_CLOCK_H_
