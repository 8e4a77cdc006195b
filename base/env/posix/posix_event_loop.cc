// The production event loop: an ordered timer queue, an epoll set of watched descriptors, and
// an eventfd through which other threads wake it.
#include "base/env/posix/posix_event_loop.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "base/status/check.h"

namespace bulwark {
namespace {

// epoll data for the wakeup eventfd; watch ids start at 1.
constexpr uint64_t kWakeupToken = 0;
constexpr int kEventsPerWaitMax = 64;

// epoll_wait takes whole milliseconds: round up so a timer never fires early.
int TimeoutMs(absl::Duration wait) {
  if (wait == absl::InfiniteDuration()) return -1;
  if (wait <= absl::ZeroDuration()) return 0;
  const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1)));
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

// Tells the CPU this is a spin-wait (less power, no memory-order mis-speculation on exit).
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

PosixEventLoop::PosixEventLoop(Clock& clock)
    : clock_(clock), loop_thread_(std::this_thread::get_id()) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  CHECK(epoll_fd_ >= 0) << "epoll_create1: " << strerror(errno);
  wakeup_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  CHECK(wakeup_fd_ >= 0) << "eventfd: " << strerror(errno);
  struct epoll_event ev;
  std::memset(&ev, 0, sizeof(ev));
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeupToken;
  CHECK(epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wakeup_fd_, &ev) == 0)
      << "epoll_ctl(ADD eventfd): " << strerror(errno);
}

PosixEventLoop::~PosixEventLoop() {
  // A task's destructor may post or cancel (e.g. it owns a handle that cleans up), so destroy
  // tasks outside the containers and repeat until nothing is left.
  while (true) {
    std::map<Key, Task> queue;
    queue.swap(queue_);
    timer_deadlines_.clear();
    std::vector<Task> inbox;
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      inbox.swap(inbox_);
    }
    if (queue.empty() && inbox.empty()) break;
    pending_.fetch_sub(queue.size() + inbox.size(), std::memory_order_relaxed);
  }
  watches_.clear();
  close(wakeup_fd_);
  close(epoll_fd_);
}

bool PosixEventLoop::OnLoopThread() const {
  return loop_thread_.load(std::memory_order_relaxed) == std::this_thread::get_id();
}

void PosixEventLoop::ClaimLoopThread() {
  loop_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
}

void PosixEventLoop::ReserveSlot() {
  const uint64_t before = pending_.fetch_add(1, std::memory_order_relaxed);
  CHECK(before < kExecutorPendingTasksMax)
      << "executor overflow: " << before << " tasks pending (limit " << kExecutorPendingTasksMax
      << "); a producer is posting without bound";
}

void PosixEventLoop::Enqueue(absl::Duration deadline, uint64_t seq, Task task) {
  queue_.emplace(Key{deadline, seq}, std::move(task));
}

void PosixEventLoop::Post(Task task) {
  if (OnLoopThread()) {
    ReserveSlot();
    Enqueue(clock_.MonotonicNow(), next_seq_++, std::move(task));
    return;
  }
  std::lock_guard<std::mutex> lock(inbox_mu_);
  ReserveSlot();
  inbox_.push_back(std::move(task));
  inbox_posted_.store(true, std::memory_order_release);
  if (!parked_) {
    // The loop will look at the inbox before it next blocks (Iterate checks under inbox_mu_).
    ++posts_unparked_;
    return;
  }
  if (!wakeup_pending_) {
    wakeup_pending_ = true;
    ++wakeups_;
    if (parker_ != nullptr) {
      parker_->Wake();
      return;
    }
    const uint64_t one = 1;
    // Cannot fail short of a counter overflow (2^64 - 2 unread wakeups); EINTR is retried.
    while (write(wakeup_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
  }
}

void PosixEventLoop::SetSpinBeforePark(absl::Duration spin) {
  spin_before_park_ = std::max(spin, absl::ZeroDuration());
}

void PosixEventLoop::SetParker(LoopParker* parker) {
  std::lock_guard<std::mutex> lock(inbox_mu_);
  parker_ = parker;
}

PosixEventLoop::HandOffStats PosixEventLoop::hand_off_stats() const {
  HandOffStats stats;
  stats.parks = parks_;
  stats.spins = spins_;
  stats.spins_caught = spins_caught_;
  std::lock_guard<std::mutex> lock(inbox_mu_);
  stats.wakeups = wakeups_;
  stats.posts_unparked = posts_unparked_;
  return stats;
}

TimerId PosixEventLoop::PostAfter(absl::Duration delay, Task task) {
  ReserveSlot();
  const absl::Duration deadline = clock_.MonotonicNow() + std::max(delay, absl::ZeroDuration());
  const TimerId id = next_seq_++;
  Enqueue(deadline, id, std::move(task));
  timer_deadlines_.emplace(id, deadline);
  return id;
}

bool PosixEventLoop::Cancel(TimerId id) {
  auto timer = timer_deadlines_.find(id);
  if (timer == timer_deadlines_.end()) return false;
  auto entry = queue_.find(Key{timer->second, id});
  CHECK(entry != queue_.end()) << "timer " << id << " missing from the queue";
  Task task = std::move(entry->second);
  queue_.erase(entry);
  timer_deadlines_.erase(timer);
  pending_.fetch_sub(1, std::memory_order_relaxed);
  // `task` is destroyed here, after the containers are consistent again.
  return true;
}

WatchId PosixEventLoop::WatchReadable(int fd, absl::AnyInvocable<void()> on_readable) {
  CHECK(watches_.size() < kEventLoopWatchesMax)
      << "event loop watches " << watches_.size() << " descriptors (limit " << kEventLoopWatchesMax
      << ")";
  const WatchId id = next_watch_id_++;
  struct epoll_event ev;
  std::memset(&ev, 0, sizeof(ev));
  ev.events = EPOLLIN;
  ev.data.u64 = id;
  CHECK(epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0)
      << "epoll_ctl(ADD fd " << fd << "): " << strerror(errno);
  watches_.emplace(id, std::make_shared<Watch>(Watch{fd, std::move(on_readable)}));
  return id;
}

void PosixEventLoop::Unwatch(WatchId id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  // Errors mean the descriptor was already closed, which removed it from the set anyway.
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second->fd, nullptr);
  std::shared_ptr<Watch> watch = std::move(it->second);
  watches_.erase(it);
  // `watch` (and its callback, unless it is running) is destroyed here.
}

void PosixEventLoop::DrainInbox() {
  std::vector<Task> inbox;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    parked_ = false;
    if (inbox_.empty()) return;
    inbox.swap(inbox_);
    inbox_posted_.store(false, std::memory_order_relaxed);
  }
  const absl::Duration now = clock_.MonotonicNow();
  for (Task& task : inbox) Enqueue(now, next_seq_++, std::move(task));
}

size_t PosixEventLoop::Iterate(absl::Duration max_wait, absl::FunctionRef<bool()> stop_early) {
  DrainInbox();
  size_t ran = 0;
  // parker_ changes only on this thread.
  LoopParker* const parker = parker_;
  if (parker != nullptr) {
    ran += parker->Poll();
    if (ran > 0 && stop_early()) return ran;
  }

  absl::Duration wait = max_wait;
  if (ran > 0) wait = absl::ZeroDuration();  // What the completions posted is due now.
  if (!queue_.empty()) {
    wait = std::min(wait, queue_.begin()->first.first - clock_.MonotonicNow());
  }
  if (wait > absl::ZeroDuration() && spin_before_park_ > absl::ZeroDuration()) {
    // Spin (bounded by the wait) for a cross-thread post before parking.
    ++spins_;
    const absl::Duration until = clock_.MonotonicNow() + std::min(spin_before_park_, wait);
    uint32_t polls = 0;
    while (!inbox_posted_.load(std::memory_order_acquire)) {
      if ((++polls & 63) == 0 && clock_.MonotonicNow() >= until) break;
      CpuRelax();
    }
    if (inbox_posted_.load(std::memory_order_acquire)) {
      ++spins_caught_;
      wait = absl::ZeroDuration();
    }
  }
  if (wait > absl::ZeroDuration()) {
    // Park: from here on a cross-thread Post wakes the loop through the eventfd. A post that got
    // in before is in the inbox: then do not block.
    std::lock_guard<std::mutex> lock(inbox_mu_);
    if (!inbox_.empty()) {
      wait = absl::ZeroDuration();
    } else {
      parked_ = true;
      wakeup_pending_ = false;
      ++parks_;
    }
  }
  struct epoll_event events[kEventsPerWaitMax];
  int n;
  if (parker != nullptr && wait > absl::ZeroDuration()) {
    ran += parker->Park(epoll_fd_, wait);
    n = epoll_wait(epoll_fd_, events, kEventsPerWaitMax, 0);
  } else {
    n = epoll_wait(epoll_fd_, events, kEventsPerWaitMax, TimeoutMs(wait));
  }
  if (wait > absl::ZeroDuration()) {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    parked_ = false;
  }
  if (n < 0) {
    CHECK(errno == EINTR) << "epoll_wait: " << strerror(errno);
    n = 0;
  }
  for (int i = 0; i < n; ++i) {
    const uint64_t token = events[i].data.u64;
    if (token == kWakeupToken) {
      uint64_t count;
      // Non-blocking; EAGAIN just means another read got there first.
      (void)!read(wakeup_fd_, &count, sizeof(count));
      continue;
    }
    auto it = watches_.find(token);
    if (it == watches_.end()) continue;  // Unwatched earlier in this batch.
    std::shared_ptr<Watch> watch = it->second;
    watch->on_readable();
    ++ran;
    // Events not yet handled are reported again: the set is level-triggered.
    if (stop_early()) return ran;
  }

  // Run what is due now, but not tasks posted while running them (their sequence numbers are
  // at least `seq_limit`), so a task that re-posts itself cannot starve descriptor callbacks.
  const absl::Duration now = clock_.MonotonicNow();
  const uint64_t seq_limit = next_seq_;
  while (!queue_.empty()) {
    auto it = queue_.begin();
    if (it->first.first > now || it->first.second >= seq_limit) break;
    Task task = std::move(it->second);
    timer_deadlines_.erase(it->first.second);
    queue_.erase(it);
    pending_.fetch_sub(1, std::memory_order_relaxed);
    task();
    ++ran;
    if (stop_early()) break;
  }
  return ran;
}

void PosixEventLoop::Run() {
  ClaimLoopThread();
  while (!stop_requested_.exchange(false)) {
    Iterate(absl::InfiniteDuration(), [this] { return stop_requested_.load(); });
  }
}

void PosixEventLoop::Stop() {
  stop_requested_.store(true);
  const uint64_t one = 1;
  while (write(wakeup_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

bool PosixEventLoop::RunUntil(absl::FunctionRef<bool()> done, absl::Duration limit) {
  ClaimLoopThread();
  if (done()) return true;
  const absl::Duration deadline = clock_.MonotonicNow() + limit;
  while (true) {
    const absl::Duration remaining = deadline - clock_.MonotonicNow();
    if (remaining <= absl::ZeroDuration()) return done();
    Iterate(remaining, done);
    if (done()) return true;
  }
}

size_t PosixEventLoop::RunOnce(absl::Duration max_wait) {
  ClaimLoopThread();
  return Iterate(max_wait, [] { return false; });
}

}  // namespace bulwark
