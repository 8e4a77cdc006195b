// GrpcLoopQueue: a gRPC completion queue that a PosixEventLoop's own thread drains and parks in,
// so that the completion of a host → plugin call reaches the core's loop without a cross-thread
// hand-off (docs/performance.md, "The loop drains gRPC's completions").
#ifndef BULWARK_CORE_RPC_GRPC_LOOP_QUEUE_H_
#define BULWARK_CORE_RPC_GRPC_LOOP_QUEUE_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/time/time.h"

namespace grpc {
class Alarm;
class CompletionQueue;
}  // namespace grpc

namespace bulwark::rpc {

// A completion-queue tag whose Run is called on the loop thread with the event's `ok` bit. The
// tag's owner keeps it alive until Run; Run may delete it.
class LoopQueueTag {
 public:
  virtual void Run(bool ok) = 0;

 protected:
  ~LoopQueueTag() = default;
};

// A LoopParker (base/env/posix/posix_event_loop.h) for one PosixEventLoop, attached by the
// composition root with ScopedLoopParker (declared after the queue, so it detaches first); made,
// used and destroyed on the loop thread. While attached:
//   * the loop parks in cq().AsyncNext(deadline = its next timer) instead of epoll_wait, and
//     drains ready completions (AsyncNext with a past deadline) at the start of each iteration;
//     every tag's Run happens there, on the loop thread;
//   * a cross-thread Post that finds the loop parked wakes it with a grpc::Alarm set to fire at
//     once on cq() (at most one outstanding);
//   * descriptors the loop watches (pidfds, pipes) are seen by one helper thread, which polls
//     the loop's epoll set while the loop is parked and wakes it the same way: a descriptor
//     event costs a hand-off through that thread, which a completion no longer does.
// Whoever puts tags on cq() must have them all delivered before the queue is destroyed
// (GrpcPluginTransport drains its own calls in its destructor); the destructor shuts cq() down
// and drops what is still queued without running it.
class GrpcLoopQueue final {
 public:
  GrpcLoopQueue();
  ~GrpcLoopQueue();

  GrpcLoopQueue(const GrpcLoopQueue&) = delete;
  GrpcLoopQueue& operator=(const GrpcLoopQueue&) = delete;

  // The queue to start calls on; tags must be LoopQueueTag*. Loop thread.
  grpc::CompletionQueue* cq() { return cq_.get(); }

  // LoopParker's methods (see there). Wake: any thread.
  size_t Poll();
  size_t Park(int epoll_fd, absl::Duration timeout);
  void Wake();

  // Runs completions for up to `limit` (without the loop's tasks): for an owner that must see
  // its own calls delivered while the loop is not running (a destructor). Loop thread.
  size_t Drain(absl::Duration limit);

 private:
  class WakeTag;
  // Runs one event's tag; false for the queue's shutdown.
  size_t Next(std::chrono::system_clock::time_point deadline, bool* got);
  void WatchDescriptors();

  std::unique_ptr<grpc::CompletionQueue> cq_;
  std::unique_ptr<WakeTag> wake_tag_;

  std::mutex mu_;
  std::unique_ptr<grpc::Alarm> alarm_;  // Guarded by mu_.
  bool alarm_set_ = false;              // Guarded by mu_: an alarm event not yet taken.

  // The descriptor watcher: polls `watch_fd_` whenever `watch_armed_` (set by Park), and wakes
  // the loop when it is readable.
  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  int watch_fd_ = -1;         // Guarded by watch_mu_.
  bool watch_armed_ = false;  // Guarded by watch_mu_.
  bool watch_stop_ = false;   // Guarded by watch_mu_.
  int stop_fd_ = -1;          // eventfd that ends the watcher's poll.
  std::thread watcher_;
};

}  // namespace bulwark::rpc

#endif  // BULWARK_CORE_RPC_GRPC_LOOP_QUEUE_H_
