// The per-node pieces of a simulated Env that the simulator needs beyond base/env/sim: a file
// system view that dies with the node (and can be made to die in the middle of a write), an
// executor whose tasks die with the node's process, and a wall clock that faults can step per node.
#ifndef BULWARK_SIM_NODE_ENV_H_
#define BULWARK_SIM_NODE_ENV_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/env/clock.h"
#include "base/env/executor.h"
#include "base/env/file_system.h"
#include "base/env/forwarding_file_system.h"
#include "base/env/sim/sim_event_loop.h"
#include "base/env/sim/sim_file_system.h"

namespace bulwark::sim {

// A node's view of its disk (a SimFileSystem). While the node is down every call, on files
// opened earlier too, fails with kUnavailable, so code that is still on the stack when the node
// dies cannot touch the disk afterwards. A crash can be armed to strike at the k-th mutating call
// (NewWritableFile, Append, Sync, Close, Rename, Remove, CreateDir, RemoveDir, SyncDir,
// CreateSymlink, SetMode): that call takes effect, the node dies, and the call reports
// kUnavailable. The disk itself is crashed by whoever handles the death (on_crash), after the
// code on the stack has unwound.
class NodeFileSystem final : public ForwardingFileSystem {
 public:
  using CrashCallback = std::function<void(CrashMode mode)>;

  NodeFileSystem(SimFileSystem& disk, CrashCallback on_crash)
      : ForwardingFileSystem(disk), on_crash_(std::move(on_crash)) {}

  // The node dies (process or machine): every call fails from now on, until Revive.
  void Kill();
  // The node starts again. Handles opened before Kill stay dead.
  void Revive();
  bool dead() const { return dead_; }

  // Arms a crash at the `k`-th mutating call from now (k >= 1), replacing any armed one.
  void ArmCrash(uint64_t k, CrashMode mode);
  void Disarm() { armed_.reset(); }
  bool armed() const { return armed_.has_value(); }
  uint64_t mutations() const { return mutations_; }

  // kUnavailable unless the node is up in incarnation `generation` (handles opened in an earlier
  // incarnation stay dead).
  absl::Status CheckCall(uint64_t generation, absl::string_view operation) const override;
  // Counts one mutating call that returned `result`; strikes the armed crash if it is due.
  absl::Status AfterMutation(absl::Status result) override;
  uint64_t generation() const override { return incarnation_; }
  uint64_t incarnation() const { return incarnation_; }

 private:
  CrashCallback on_crash_;
  bool dead_ = false;
  uint64_t incarnation_ = 1;
  uint64_t mutations_ = 0;
  struct Armed {
    uint64_t at_mutation;
    CrashMode mode;
  };
  std::optional<Armed> armed_;
};

// An Executor for one node's process over the shared SimEventLoop. Tasks posted in one
// incarnation of the process never run after it died (Kill), as a real process's pending work
// dies with it; timers are cancelled so the loop does not carry them. Every task that runs is
// announced to `on_task` (trace, bookkeeping) before it runs and to `after_task` after.
//
// The executor owns its tasks and puts only a trampoline on the loop (at the same deadline and
// in the same order), so that a dying process can first be told of its own children's deaths:
// DrainPosted runs the already-due notifications, which lets objects that wait for such an
// event (a plugin client that owns itself until its start reports) let go of each other, as
// the operating system would free a dead process's memory.
class NodeExecutor final : public Executor {
 public:
  NodeExecutor(SimEventLoop& loop, std::function<void()> on_task, std::function<void()> after_task)
      : loop_(loop), on_task_(std::move(on_task)), after_task_(std::move(after_task)) {}
  ~NodeExecutor() override;

  void Post(Task task) override;
  TimerId PostAfter(absl::Duration delay, Task task) override;
  bool Cancel(TimerId id) override;

  // Runs every task posted without delay, in order, and those they post, up to `rounds` rounds,
  // without the on_task/after_task announcements. For a process being torn down only.
  void DrainPosted(int rounds);
  // The process died: drop every pending task.
  void Kill();
  size_t pending_timers() const;

 private:
  struct Entry {
    Task task;
    TimerId loop_id = kNoTimer;
    bool immediate = false;
  };

  TimerId Schedule(absl::Duration delay, Task task, bool immediate);
  void Run(TimerId key);

  SimEventLoop& loop_;
  std::function<void()> on_task_;
  std::function<void()> after_task_;
  TimerId next_key_ = 1;
  // Our pending tasks by key; keys grow with every post, so key order is post order.
  std::map<TimerId, Entry> tasks_;
};

// A node's clock: the shared simulated time, with a wall-clock offset of its own that faults may
// step (NTP, an operator) without touching monotonic time.
class NodeClock final : public Clock {
 public:
  explicit NodeClock(SimClock& base) : base_(base) {}
  absl::Duration MonotonicNow() override { return base_.MonotonicNow(); }
  absl::Time WallNow() override { return base_.WallNow() + skew_; }
  void JumpWall(absl::Duration delta) { skew_ += delta; }
  absl::Duration skew() const { return skew_; }

 private:
  SimClock& base_;
  absl::Duration skew_ = absl::ZeroDuration();
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_NODE_ENV_H_
