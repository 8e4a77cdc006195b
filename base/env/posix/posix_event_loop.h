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

// What a loop blocks in when it parks, if not its own epoll_wait. core/rpc's GrpcLoopQueue parks
// the loop in a gRPC completion queue, so that a completion for the loop is taken off the queue
// by the loop thread itself instead of being posted to it from a gRPC thread (one sleep and
// wake-up less per completion). Every method but Wake is called on the loop thread only.
class LoopParker {
 public:
  virtual ~LoopParker() = default;
  // Runs the parker's own work that is ready now (completions) without blocking. Returns the
  // number of items run.
  virtual size_t Poll() = 0;
  // Blocks until Wake is called, `epoll_fd` (the loop's descriptor set, eventfd included)
  // becomes readable, or `timeout` passes (InfiniteDuration: no limit); runs work of its own
  // that arrives meanwhile and then returns. Returns the number of items run. May return early.
  virtual size_t Park(int epoll_fd, absl::Duration timeout) = 0;
  // Any thread. Makes the Park in progress, or else the next one, return promptly.
  virtual void Wake() = 0;
};

// The loop thread is the thread that constructed the loop, or the one most recently inside
// Run, RunUntil or RunOnce. Everything except Post and Stop must be called on it.
//
// Thread-safety beyond the Executor contract:
//   * Post is thread-safe. Called on the loop thread it inserts directly (so the Executor
//     ordering contract holds exactly). Called on another thread (gRPC completion threads, for
//     example) it appends to a mutex-protected inbox; the loop moves the inbox into the ordered
//     queue at its next iteration with deadline = now and fresh sequence numbers, in the order
//     the posts were made. The poster wakes the loop through an eventfd only if the loop is
//     parked (blocked, or about to block, in epoll_wait): a loop that is running tasks, or
//     spinning before it parks (SetSpinBeforePark), picks the post up without a wake-up.
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

  // Before parking in epoll_wait with a non-zero timeout, spin for up to `spin` (bounded by the
  // timeout) watching for a cross-thread Post; one that arrives is run without the eventfd
  // write, the epoll wake-up and the read. Descriptor events are not looked at while spinning,
  // so they wait up to `spin` longer. The spin costs CPU whether or not a post comes: on a
  // machine with few CPUs it takes CPU from the threads it waits for (docs/performance.md,
  // "Host-side hand-offs"). Zero (the default) never spins. Loop thread only.
  void SetSpinBeforePark(absl::Duration spin);

  // Parks in `parker` instead of epoll_wait from the next iteration on (null: epoll_wait again).
  // Cross-thread posts then wake the loop through parker->Wake instead of the eventfd, and
  // descriptor events are collected with a zero-timeout epoll_wait after each park. Each
  // iteration first runs parker->Poll. `parker` must stay valid until replaced. Loop thread only.
  void SetParker(LoopParker* parker);

  // Counters of how cross-thread posts reached the loop, since construction. Loop thread only.
  struct HandOffStats {
    uint64_t parks = 0;           // epoll_waits entered parked (a post would have to wake them).
    uint64_t wakeups = 0;         // Wake-ups made by Post (eventfd writes or parker->Wake;
                                  // Stop's not counted).
    uint64_t posts_unparked = 0;  // Cross-thread posts that found the loop not parked.
    uint64_t spins = 0;           // Spins started before parking.
    uint64_t spins_caught = 0;    // Spins that ended with a post (no park).
  };
  HandOffStats hand_off_stats() const;

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
  mutable std::mutex inbox_mu_;
  std::vector<Task> inbox_;       // Guarded by inbox_mu_.
  bool wakeup_pending_ = false;   // Guarded by inbox_mu_.
  bool parked_ = false;           // Guarded by inbox_mu_.
  uint64_t wakeups_ = 0;          // Guarded by inbox_mu_.
  uint64_t posts_unparked_ = 0;   // Guarded by inbox_mu_.
  LoopParker* parker_ = nullptr;  // Written by the loop thread under inbox_mu_.
  // Set by Post (under inbox_mu_), cleared by DrainInbox: what a spinning loop watches.
  std::atomic<bool> inbox_posted_{false};

  // Loop-thread state of the spin and the park.
  absl::Duration spin_before_park_ = absl::ZeroDuration();
  uint64_t parks_ = 0;
  uint64_t spins_ = 0;
  uint64_t spins_caught_ = 0;
};

// Makes `loop` park in `parker` for the holder's lifetime (SetParker, then SetParker(nullptr)).
// P provides the LoopParker methods without deriving from it (`size_t Poll()`,
// `size_t Park(int epoll_fd, absl::Duration timeout)`, thread-safe `void Wake()`), so that a
// parker outside the composition roots, such as core/rpc's GrpcLoopQueue, need not name this
// header. Declare it after `parker`, so it detaches first. Loop thread.
template <typename P>
class ScopedLoopParker final : public LoopParker {
 public:
  ScopedLoopParker(PosixEventLoop& loop, P& parker) : loop_(loop), parker_(parker) {
    loop_.SetParker(this);
  }
  ~ScopedLoopParker() override { loop_.SetParker(nullptr); }

  ScopedLoopParker(const ScopedLoopParker&) = delete;
  ScopedLoopParker& operator=(const ScopedLoopParker&) = delete;

  size_t Poll() override { return parker_.Poll(); }
  size_t Park(int epoll_fd, absl::Duration timeout) override {
    return parker_.Park(epoll_fd, timeout);
  }
  void Wake() override { parker_.Wake(); }

 private:
  PosixEventLoop& loop_;
  P& parker_;
};

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_POSIX_POSIX_EVENT_LOOP_H_
