// Posix-specific tests of PosixEventLoop: cross-thread Post and Stop, descriptor watches, and
// a quick check of timer order and cancellation (the shared contract suite covers more).
#include "base/env/posix/posix_event_loop.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "base/env/posix/posix_clock.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

constexpr absl::Duration kLimit = absl::Seconds(5);

class PosixEventLoopTest : public ::testing::Test {
 protected:
  PosixClock clock_;
  PosixEventLoop loop_{clock_};
};

TEST_F(PosixEventLoopTest, PostFromAnotherThreadWakesTheLoop) {
  std::atomic<bool> ran{false};
  // Started only once the loop is blocked in epoll_wait with nothing else to do.
  std::thread poster;
  loop_.PostAfter(absl::Milliseconds(1),
                  [&] { poster = std::thread([&] { loop_.Post([&] { ran = true; }); }); });
  EXPECT_TRUE(loop_.RunUntil([&] { return ran.load(); }, kLimit));
  poster.join();
}

TEST_F(PosixEventLoopTest, PostWhileTheLoopRunsATaskNeedsNoWakeup) {
  bool ran = false;
  loop_.Post([&] {
    // The loop is running this task, not parked: the post must not write the eventfd.
    std::thread poster([&] { loop_.Post([&] { ran = true; }); });
    poster.join();
  });
  EXPECT_TRUE(loop_.RunUntil([&] { return ran; }, kLimit));
  const PosixEventLoop::HandOffStats stats = loop_.hand_off_stats();
  EXPECT_EQ(stats.posts_unparked, 1u);
  EXPECT_EQ(stats.wakeups, 0u);
  EXPECT_EQ(stats.parks, 0u);
}

TEST_F(PosixEventLoopTest, EveryCrossThreadPostFindsTheLoopUnparkedOrWakesIt) {
  constexpr int kPosts = 200;
  int ran = 0;
  std::thread poster;
  loop_.Post([&] {
    poster = std::thread([&] {
      for (int i = 0; i < kPosts; ++i) loop_.Post([&] { ++ran; });
    });
  });
  EXPECT_TRUE(loop_.RunUntil([&] { return ran == kPosts; }, kLimit));
  poster.join();
  const PosixEventLoop::HandOffStats stats = loop_.hand_off_stats();
  // At most one wake-up per park, and none for a post that found the loop awake.
  EXPECT_LE(stats.wakeups, stats.parks);
  EXPECT_LE(stats.wakeups + stats.posts_unparked, static_cast<uint64_t>(kPosts));
  EXPECT_GE(stats.wakeups + stats.posts_unparked, 1u);
  EXPECT_EQ(stats.spins, 0u);
}

TEST_F(PosixEventLoopTest, SpinBeforeParkTakesAPostWithoutParking) {
  // The spin is bounded only by a hang guard, so the loop never parks before the post arrives,
  // however slowly the poster thread gets scheduled.
  constexpr absl::Duration kHangGuard = absl::Minutes(2);
  loop_.SetSpinBeforePark(kHangGuard);
  bool ran = false;
  std::thread poster;
  loop_.Post([&] { poster = std::thread([&] { loop_.Post([&] { ran = true; }); }); });
  EXPECT_TRUE(loop_.RunUntil([&] { return ran; }, kHangGuard));
  poster.join();
  const PosixEventLoop::HandOffStats stats = loop_.hand_off_stats();
  EXPECT_EQ(stats.parks, 0u);
  EXPECT_EQ(stats.wakeups, 0u);
  EXPECT_EQ(stats.posts_unparked, 1u);
  EXPECT_LE(stats.spins_caught, stats.spins);
}

TEST_F(PosixEventLoopTest, SpinEndsAfterItsBudgetAndTheLoopParks) {
  loop_.SetSpinBeforePark(absl::Microseconds(50));
  bool fired = false;
  loop_.PostAfter(absl::Milliseconds(5), [&] { fired = true; });
  EXPECT_TRUE(loop_.RunUntil([&] { return fired; }, kLimit));
  const PosixEventLoop::HandOffStats stats = loop_.hand_off_stats();
  EXPECT_GE(stats.spins, 1u);
  EXPECT_EQ(stats.spins_caught, 0u);
  EXPECT_GE(stats.parks, 1u);  // Nothing was posted: the loop slept until the timer.
}

TEST_F(PosixEventLoopTest, PostsFromManyThreadsAllRunInPerThreadOrder) {
  constexpr int kThreads = 4;
  constexpr int kPostsPerThread = 500;
  std::vector<std::vector<int>> seen(kThreads);  // Touched on the loop thread only.
  int total = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPostsPerThread; ++i) {
        loop_.Post([&, t, i] {
          seen[t].push_back(i);
          ++total;
        });
      }
    });
  }
  EXPECT_TRUE(loop_.RunUntil([&] { return total == kThreads * kPostsPerThread; }, kLimit));
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), static_cast<size_t>(kPostsPerThread));
    for (int i = 0; i < kPostsPerThread; ++i) EXPECT_EQ(seen[t][i], i);
  }
  EXPECT_EQ(loop_.pending_tasks(), 0u);
}

TEST_F(PosixEventLoopTest, StopFromAnotherThreadEndsRun) {
  std::thread stopper;
  loop_.Post([&] { stopper = std::thread([&] { loop_.Stop(); }); });
  loop_.Run();  // Returns only because of Stop.
  stopper.join();
  // A later Run is not affected by the earlier Stop.
  bool ran = false;
  loop_.Post([&] {
    ran = true;
    loop_.Stop();
  });
  loop_.Run();
  EXPECT_TRUE(ran);
}

TEST_F(PosixEventLoopTest, WatchReadableFiresForAPipeAndUnwatchStopsIt) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  std::string received;
  int calls = 0;
  WatchId id = kNoWatch;
  id = loop_.WatchReadable(fds[0], [&] {
    ++calls;
    char buffer[64];
    ssize_t n;
    while ((n = read(fds[0], buffer, sizeof(buffer))) > 0) received.append(buffer, n);
    if (received == "hello") loop_.Unwatch(id);  // Unwatching from inside its own callback.
  });
  ASSERT_NE(id, kNoWatch);
  EXPECT_FALSE(loop_.RunUntil([&] { return calls > 0; }, absl::Milliseconds(20)));
  loop_.PostAfter(absl::Milliseconds(2), [&] { ASSERT_EQ(write(fds[1], "hello", 5), 5); });
  EXPECT_TRUE(loop_.RunUntil([&] { return received == "hello"; }, kLimit));
  EXPECT_EQ(calls, 1);

  // Unwatched: more data does not call the callback again.
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  EXPECT_FALSE(loop_.RunUntil([&] { return calls > 1; }, absl::Milliseconds(20)));
  loop_.Unwatch(id);  // Unknown ids are ignored.
  close(fds[0]);
  close(fds[1]);
}

TEST_F(PosixEventLoopTest, WatchSeesHangUp) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  bool eof = false;
  const WatchId id = loop_.WatchReadable(fds[0], [&] {
    char c;
    if (read(fds[0], &c, 1) == 0) eof = true;
  });
  close(fds[1]);
  EXPECT_TRUE(loop_.RunUntil([&] { return eof; }, kLimit));
  loop_.Unwatch(id);
  close(fds[0]);
}

TEST_F(PosixEventLoopTest, TimersRunInDeadlineThenSequenceOrder) {
  std::vector<std::string> order;
  loop_.PostAfter(absl::Milliseconds(20), [&] { order.push_back("c"); });
  loop_.PostAfter(absl::Milliseconds(10), [&] { order.push_back("b1"); });
  loop_.Post([&] { order.push_back("a1"); });
  loop_.PostAfter(absl::ZeroDuration(), [&] { order.push_back("a2"); });
  loop_.PostAfter(absl::Milliseconds(-5), [&] { order.push_back("a0"); });  // Negative: now.
  loop_.Post([&] { order.push_back("a3"); });
  EXPECT_TRUE(loop_.RunUntil([&] { return order.size() == 6; }, kLimit));
  // A negative delay counts as zero, so a0 takes its place in posting order.
  ASSERT_EQ(order.size(), 6u);
  EXPECT_EQ(order[4], "b1");
  EXPECT_EQ(order[5], "c");
  std::vector<std::string> first(order.begin(), order.begin() + 4);
  std::vector<std::string> expected = {"a1", "a2", "a0", "a3"};
  EXPECT_EQ(first, expected);
}

TEST_F(PosixEventLoopTest, CancelRemovesOnlyPendingTimers) {
  int fired = 0;
  const TimerId cancelled = loop_.PostAfter(absl::Milliseconds(1), [&] { fired += 100; });
  const TimerId kept = loop_.PostAfter(absl::Milliseconds(2), [&] { fired += 1; });
  EXPECT_NE(cancelled, kNoTimer);
  EXPECT_NE(cancelled, kept);
  EXPECT_TRUE(loop_.Cancel(cancelled));
  EXPECT_FALSE(loop_.Cancel(cancelled));
  EXPECT_TRUE(loop_.RunUntil([&] { return fired > 0; }, kLimit));
  EXPECT_FALSE(loop_.RunUntil([&] { return fired != 1; }, absl::Milliseconds(10)));
  EXPECT_EQ(fired, 1);
  EXPECT_FALSE(loop_.Cancel(kept));  // Already ran.
  EXPECT_FALSE(loop_.Cancel(kNoTimer));
}

TEST_F(PosixEventLoopTest, TaskCanCancelItselfOnlyBeforeRunning) {
  TimerId self = kNoTimer;
  bool cancel_result = true;
  self = loop_.PostAfter(absl::ZeroDuration(), [&] { cancel_result = loop_.Cancel(self); });
  EXPECT_TRUE(loop_.RunUntil([&] { return !cancel_result; }, kLimit));
}

TEST_F(PosixEventLoopTest, SelfRepostingTaskDoesNotStarveDescriptors) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  bool readable = false;
  const WatchId id = loop_.WatchReadable(fds[0], [&] { readable = true; });
  std::function<void()> spin = [&] {
    if (!readable) loop_.Post(spin);
  };
  loop_.Post(spin);
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  EXPECT_TRUE(loop_.RunUntil([&] { return readable; }, kLimit));
  loop_.Unwatch(id);
  close(fds[0]);
  close(fds[1]);
}

TEST_F(PosixEventLoopTest, RunUntilGivesUpAtTheLimit) {
  const absl::Duration start = clock_.MonotonicNow();
  EXPECT_FALSE(loop_.RunUntil([] { return false; }, absl::Milliseconds(30)));
  EXPECT_GE(clock_.MonotonicNow() - start, absl::Milliseconds(30));
}

TEST_F(PosixEventLoopTest, RunOnceRunsDueTasksAndWaitsForTimers) {
  int ran = 0;
  loop_.Post([&] { ++ran; });
  EXPECT_EQ(loop_.RunOnce(absl::ZeroDuration()), 1u);
  loop_.PostAfter(absl::Milliseconds(5), [&] { ++ran; });
  // Waits for the timer rather than for the (longer) max_wait.
  size_t total = 0;
  while (ran < 2) total += loop_.RunOnce(absl::Seconds(5));
  EXPECT_EQ(total, 1u);
}

TEST_F(PosixEventLoopTest, DestructorDestroysPendingTasksWithoutRunningThem) {
  auto loop = std::make_unique<PosixEventLoop>(clock_);
  bool ran = false;
  auto token = std::make_shared<int>(0);
  loop->PostAfter(absl::Hours(1), [&ran, token] { ran = true; });
  loop->Post([&ran, token] { ran = true; });
  EXPECT_EQ(token.use_count(), 3);
  loop.reset();
  EXPECT_FALSE(ran);
  EXPECT_EQ(token.use_count(), 1);
}

}  // namespace
}  // namespace bulwark
