// PosixEventLoop: the production Executor, a single-threaded epoll loop that runs timers in
// (deadline, sequence) order, watches descriptors, and accepts Post from any thread.
#ifndef BULWARK_BASE_ENV_POSIX_POSIX_EVENT_LOOP_H_
#define BULWARK_BASE_ENV_POSIX_POSIX_EVENT_LOOP_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "base/env/clock.h"
#include "base/env/executor.h"

namespace bulwark {

// Identifies a descriptor watch. Never reused within one loop; kNoWatch is never returned.
using WatchId = uint64_t;
inline constexpr WatchId kNoWatch = 0;

// Upper bound on descriptors watched at once by one loop (a programmer error past it).
inline constexpr size_t kEventLoopWatchesMax = 1 << 16;

// The loop thread is the thread that constructed the loop, or the one most recently inside
// Run, RunUntil or RunOnce. Everything except Post and Stop must be called on it.
//
// Thread-safety beyond the Executor contract:
//   * Post is thread-safe. Called on the loop thread it inserts directly (so the Executor
//     ordering contract holds exactly). Called on another thread (gRPC completion threads, for
//     example) it appends to a mutex-protected inbox and wakes the loop through an eventfd; the
//     loop moves the inbox into the ordered queue at its next iteration with deadline = now and
//     fresh sequence numbers, in the order the posts were made.
//   * Stop is thread-safe.
// Descriptor callbacks run directly on the loop thread when epoll reports the descriptor, not
// through the task queue; tasks and descriptor callbacks interleave in no promised order.
class PosixEventLoop final : public Executor {
 public:
  // `clock` must outlive the loop; its MonotonicNow defines every deadline. CHECK-fails if the
  // kernel refuses an epoll instance or an eventfd (the process cannot run without them).
  explicit PosixEventLoop(Clock& clock);
  // Destroys pending tasks without running them, then closes the loop's descriptors. Watched
  // descriptors are not closed (the loop never owns them).
  ~PosixEventLoop() override;

  PosixEventLoop(const PosixEventLoop&) = delete;
  PosixEventLoop& operator=(const PosixEventLoop&) = delete;

  // Executor. Post may be called from any thread (see above); CHECK-fails past
  // kExecutorPendingTasksMax pending tasks (queued plus inbox).
  void Post(Task task) override;
  // Loop thread only. Same limit as Post.
  TimerId PostAfter(absl::Duration delay, Task task) override;
  // Loop thread only.
  bool Cancel(TimerId id) override;

  // Calls `on_readable` on the loop thread whenever `fd` is readable or has hung up or failed
  // (level-triggered: it keeps being called while data is pending, so it should read until
  // EAGAIN or unwatch). The loop does not own `fd`; the caller must Unwatch before closing it.
  // A callback may Unwatch itself or any other watch; an event already collected for a watch
  // removed in the same iteration is dropped. CHECK-fails if epoll rejects `fd` (not a pollable
  // descriptor, a programmer error) or past kEventLoopWatchesMax. Loop thread only.
  WatchId WatchReadable(int fd, absl::AnyInvocable<void()> on_readable);

  // Stops watching. The callback is destroyed once it is no longer running; it is never called
  // again. Unknown or already removed ids are ignored. Loop thread only.
  void Unwatch(WatchId id);

  // Runs tasks and descriptor callbacks until Stop is called, then returns. A Stop made while
  // no Run was active makes the next Run return after at most one iteration.
  void Run();

  // Asks Run to return after the task or callback in progress. Any thread.
  void Stop();

  // Runs tasks and descriptor callbacks until `done()` is true (checked before starting and
  // after every task or callback) or `limit` has elapsed on the clock's monotonic time. Returns
  // done(). Does not react to Stop.
  bool RunUntil(absl::FunctionRef<bool()> done, absl::Duration limit);

  // One iteration: moves cross-thread posts into the queue, waits up to `max_wait` (less if a
  // timer falls due sooner; zero if one is already due) for descriptor events, runs their
  // callbacks, then runs every task that is due. Returns the number of tasks and callbacks run.
  size_t RunOnce(absl::Duration max_wait);

  // Tasks queued plus cross-thread posts not yet moved into the queue. Any thread.
  uint64_t pending_tasks() const { return pending_.load(std::memory_order_relaxed); }

 private:
  struct Watch {
    int fd;
    absl::AnyInvocable<void()> on_readable;
  };
  using Key = std::pair<absl::Duration, uint64_t>;  // (deadline, sequence)

  bool OnLoopThread() const;
  void ClaimLoopThread();
  void Enqueue(absl::Duration deadline, uint64_t seq, Task task);
  void DrainInbox();
  void ReserveSlot();
  // One iteration; stops early (after a task or callback) once `stop_early()` is true.
  size_t Iterate(absl::Duration max_wait, absl::FunctionRef<bool()> stop_early);

  Clock& clock_;
  int epoll_fd_ = -1;
  int wakeup_fd_ = -1;
  std::atomic<std::thread::id> loop_thread_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<uint64_t> pending_{0};

  // Loop-thread state.
  uint64_t next_seq_ = 1;  // Also the TimerId of PostAfter tasks, so never kNoTimer.
  std::map<Key, Task> queue_;
  std::map<TimerId, absl::Duration> timer_deadlines_;  // Cancellable entries of queue_.
  WatchId next_watch_id_ = 1;
  // shared_ptr so a callback that unwatches itself is not destroyed while it runs.
  std::map<WatchId, std::shared_ptr<Watch>> watches_;

  // std::mutex rather than absl::Mutex: Debian's prebuilt abseil is not built for
  // ThreadSanitizer, so TSAN cannot see absl::Mutex's ordering and reports false races, while
  // it intercepts the pthread calls under std::mutex.
  std::mutex inbox_mu_;
  std::vector<Task> inbox_;      // Guarded by inbox_mu_.
  bool wakeup_pending_ = false;  // Guarded by inbox_mu_.
};

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_POSIX_POSIX_EVENT_LOOP_H_
