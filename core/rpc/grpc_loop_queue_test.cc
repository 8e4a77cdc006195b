// Tests GrpcLoopQueue: a PosixEventLoop parked in a gRPC completion queue still takes
// cross-thread posts, descriptor events, timers and Stop, and returns to epoll once detached.
// (Calls completing on the queue are tested in grpc_transport_loop_queue_test.)
#include "core/rpc/grpc_loop_queue.h"

#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/env/posix/posix_clock.h"
#include "base/env/posix/posix_event_loop.h"
#include "gtest/gtest.h"

namespace bulwark::rpc {
namespace {

// Hang guard only: every wait below ends on an event.
constexpr absl::Duration kWait = absl::Seconds(30);

class GrpcLoopQueueTest : public ::testing::Test {
 protected:
  GrpcLoopQueueTest()
      : loop_(clock_),
        queue_(std::make_unique<GrpcLoopQueue>()),
        attached_(std::make_unique<ScopedLoopParker<GrpcLoopQueue>>(loop_, *queue_)) {}

  PosixClock clock_;
  PosixEventLoop loop_;
  std::unique_ptr<GrpcLoopQueue> queue_;
  std::unique_ptr<ScopedLoopParker<GrpcLoopQueue>> attached_;  // Detached before queue_ goes.
};

// A ping-pong: each round a thread posts once the loop has answered the previous round, so the
// loop parks between rounds and every post must wake it (the wake alarm is set again and again).
TEST_F(GrpcLoopQueueTest, CrossThreadPostsWakeTheParkedLoopRoundAfterRound) {
  constexpr int kRounds = 200;
  std::atomic<int> answered{0};
  int ran = 0;
  std::thread poster([&] {
    for (int i = 0; i < kRounds; ++i) {
      while (answered.load() < i) std::this_thread::yield();
      loop_.Post([&] {
        ++ran;
        answered.store(ran);
      });
    }
  });
  EXPECT_TRUE(loop_.RunUntil([&] { return ran == kRounds; }, kWait));
  poster.join();
  const PosixEventLoop::HandOffStats stats = loop_.hand_off_stats();
  // Each post either found the loop awake or woke a park: none was lost.
  EXPECT_EQ(stats.wakeups + stats.posts_unparked, static_cast<uint64_t>(kRounds));
}

TEST_F(GrpcLoopQueueTest, WatchedDescriptorWakesTheParkedLoop) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int reads = 0;
  const WatchId id = loop_.WatchReadable(fds[0], [&] {
    char c;
    if (read(fds[0], &c, 1) == 1) ++reads;
  });
  std::thread writer([&] {
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(write(fds[1], "x", 1), 1);
      absl::SleepFor(absl::Milliseconds(5));  // Not a race: each byte is counted whenever read.
    }
  });
  EXPECT_TRUE(loop_.RunUntil([&] { return reads == 3; }, kWait));
  writer.join();
  loop_.Unwatch(id);
  close(fds[0]);
  close(fds[1]);
}

TEST_F(GrpcLoopQueueTest, TimersFireWhileParked) {
  int fired = 0;
  loop_.PostAfter(absl::Milliseconds(20), [&] { ++fired; });
  loop_.PostAfter(absl::Milliseconds(1), [&] { ++fired; });
  EXPECT_TRUE(loop_.RunUntil([&] { return fired == 2; }, kWait));
}

TEST_F(GrpcLoopQueueTest, StopFromAnotherThreadEndsRun) {
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(20));
    loop_.Stop();
  });
  loop_.Run();  // Returns only through Stop (the test times out otherwise).
  stopper.join();
}

TEST_F(GrpcLoopQueueTest, DetachedLoopParksInEpollAgain) {
  attached_.reset();
  queue_.reset();
  bool ran = false;
  std::thread poster([&] { loop_.Post([&] { ran = true; }); });
  EXPECT_TRUE(loop_.RunUntil([&] { return ran; }, kWait));
  poster.join();
}

}  // namespace
}  // namespace bulwark::rpc
