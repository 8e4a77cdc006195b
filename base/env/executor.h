// The Executor seam: core code runs as tasks on one single-threaded event loop and schedules its
// continuations here instead of starting threads or sleeping.
#ifndef BULWARK_BASE_ENV_EXECUTOR_H_
#define BULWARK_BASE_ENV_EXECUTOR_H_

#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace bulwark {

using Task = absl::AnyInvocable<void()>;

// Identifies a task scheduled with PostAfter so it can be cancelled. Never reused within one
// executor. kNoTimer is never returned by PostAfter.
using TimerId = uint64_t;
inline constexpr TimerId kNoTimer = 0;

// Upper bound on tasks waiting in one executor. Exceeding it is a programmer error (an unbounded
// producer), so implementations CHECK-fail rather than grow without limit.
inline constexpr uint64_t kExecutorPendingTasksMax = uint64_t{1} << 24;

// Ordering contract, identical in every implementation so that behaviour is reproducible:
// each task gets a deadline (now + delay, on the Clock's monotonic time) and a sequence number
// from a per-executor counter; tasks run in (deadline, sequence) order, one at a time, each to
// completion. Post(t) is PostAfter(0, t), so posted tasks run in FIFO order relative to each
// other and after every task that was already due.
//
// Tasks run on the loop's thread. A task may post or cancel other tasks, including itself.
// Unless an implementation says otherwise, methods must be called on the loop's thread.
class Executor {
 public:
  virtual ~Executor() = default;

  // Schedules `task` to run as soon as every earlier-due task has run.
  virtual void Post(Task task) = 0;

  // Schedules `task` to run once `delay` has elapsed on the monotonic clock. A negative delay is
  // treated as zero. Returns an id for Cancel.
  virtual TimerId PostAfter(absl::Duration delay, Task task) = 0;

  // Removes a task scheduled with PostAfter that has not started yet, destroying it. Returns
  // true if it was removed, false if it already ran, is running, or was already cancelled.
  virtual bool Cancel(TimerId id) = 0;
};

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_EXECUTOR_H_
