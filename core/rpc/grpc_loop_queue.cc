// GrpcLoopQueue: see the header. The loop thread is the only caller of AsyncNext on the queue.
#include "core/rpc/grpc_loop_queue.h"

#include <errno.h>
#include <grpcpp/alarm.h>
#include <grpcpp/completion_queue.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "base/status/check.h"

namespace bulwark::rpc {
namespace {

// Completions run per Poll before the loop looks at its tasks and descriptors again.
constexpr size_t kPollEventsMax = 64;

std::chrono::system_clock::time_point DeadlineIn(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) return std::chrono::system_clock::time_point::max();
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(
             absl::ToChronoNanoseconds(std::max(timeout, absl::ZeroDuration())));
}

}  // namespace

// The alarm's tag: a wake-up, nothing to run.
class GrpcLoopQueue::WakeTag final : public LoopQueueTag {
 public:
  explicit WakeTag(GrpcLoopQueue& queue) : queue_(queue) {}
  void Run(bool /*ok*/) override {
    std::lock_guard<std::mutex> lock(queue_.mu_);
    queue_.alarm_set_ = false;
  }

 private:
  GrpcLoopQueue& queue_;
};

GrpcLoopQueue::GrpcLoopQueue()
    : cq_(std::make_unique<grpc::CompletionQueue>()),
      wake_tag_(std::make_unique<WakeTag>(*this)),
      alarm_(std::make_unique<grpc::Alarm>()) {
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  CHECK(stop_fd_ >= 0) << "eventfd: " << strerror(errno);
  watcher_ = std::thread([this] { WatchDescriptors(); });
}

GrpcLoopQueue::~GrpcLoopQueue() {
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    watch_stop_ = true;
  }
  watch_cv_.notify_all();
  const uint64_t one = 1;
  while (write(stop_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
  watcher_.join();
  close(stop_fd_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (alarm_set_) alarm_->Cancel();
  }
  cq_->Shutdown();
  void* tag;
  bool ok;
  // Takes what is left (the alarm's event among it) without running it: its owners are gone.
  while (cq_->Next(&tag, &ok)) {
  }
  // The alarm (and its reference to the queue) goes before the queue.
  alarm_.reset();
}

size_t GrpcLoopQueue::Next(std::chrono::system_clock::time_point deadline, bool* got) {
  void* tag = nullptr;
  bool ok = false;
  *got = false;
  switch (cq_->AsyncNext(&tag, &ok, deadline)) {
    case grpc::CompletionQueue::GOT_EVENT:
      *got = true;
      static_cast<LoopQueueTag*>(tag)->Run(ok);
      return tag == wake_tag_.get() ? 0 : 1;
    case grpc::CompletionQueue::TIMEOUT:
    case grpc::CompletionQueue::SHUTDOWN:
      return 0;
  }
  return 0;
}

size_t GrpcLoopQueue::Poll() {
  size_t ran = 0;
  bool got = true;
  for (size_t i = 0; got && i < kPollEventsMax; ++i) {
    ran += Next(std::chrono::system_clock::time_point(), &got);
  }
  return ran;
}

size_t GrpcLoopQueue::Park(int epoll_fd, absl::Duration timeout) {
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    watch_fd_ = epoll_fd;
    watch_armed_ = true;
  }
  watch_cv_.notify_one();
  bool got;
  return Next(DeadlineIn(timeout), &got);
}

size_t GrpcLoopQueue::Drain(absl::Duration limit) {
  bool got;
  return Next(DeadlineIn(limit), &got);
}

void GrpcLoopQueue::Wake() {
  std::lock_guard<std::mutex> lock(mu_);
  if (alarm_set_) return;
  alarm_set_ = true;
  alarm_->Set(cq_.get(), std::chrono::system_clock::time_point(), wake_tag_.get());
}

void GrpcLoopQueue::WatchDescriptors() {
  while (true) {
    int fd;
    {
      std::unique_lock<std::mutex> lock(watch_mu_);
      watch_cv_.wait(lock, [this] { return watch_armed_ || watch_stop_; });
      if (watch_stop_) return;
      watch_armed_ = false;
      fd = watch_fd_;
    }
    struct pollfd fds[2];
    std::memset(fds, 0, sizeof(fds));
    fds[0].fd = fd;
    fds[0].events = POLLIN;
    fds[1].fd = stop_fd_;
    fds[1].events = POLLIN;
    int n;
    do {
      n = poll(fds, 2, -1);
    } while (n < 0 && errno == EINTR);
    if (fds[1].revents != 0) return;
    // The loop collects the events with a zero-timeout epoll_wait once it is awake.
    if (fds[0].revents != 0) Wake();
  }
}

}  // namespace bulwark::rpc
