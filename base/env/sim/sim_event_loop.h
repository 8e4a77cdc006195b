// Simulated time and the simulated event loop: virtual time that jumps straight to the next
// due task instead of sleeping, so hours of simulated time run in milliseconds.
#ifndef BULWARK_BASE_ENV_SIM_SIM_EVENT_LOOP_H_
#define BULWARK_BASE_ENV_SIM_SIM_EVENT_LOOP_H_

#include <cstdint>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "base/env/clock.h"
#include "base/env/executor.h"

namespace bulwark::sim {

// Virtual time. Monotonic time starts at zero and moves only when the event loop runs a later
// task; wall time is a fixed origin plus monotonic time plus an offset that faults may jump.
class SimClock final : public Clock {
 public:
  explicit SimClock(absl::Time wall_origin = absl::FromUnixSeconds(1767225600));  // 2026-01-01

  absl::Duration MonotonicNow() override { return now_; }
  absl::Time WallNow() override { return wall_origin_ + now_ + wall_offset_; }

  // Moves monotonic time forward to `t`. REQUIRES: t >= MonotonicNow().
  void AdvanceTo(absl::Duration t);

  // Shifts wall time by `delta` (positive or negative) without touching monotonic time: an
  // operator or NTP stepping the clock.
  void JumpWall(absl::Duration delta) { wall_offset_ += delta; }

 private:
  absl::Time wall_origin_;
  absl::Duration now_ = absl::ZeroDuration();
  absl::Duration wall_offset_ = absl::ZeroDuration();
};

// A single-threaded Executor over SimClock, with the ordering contract of executor.h. All
// methods must be called from the one simulation thread.
class SimEventLoop final : public Executor {
 public:
  explicit SimEventLoop(SimClock& clock) : clock_(clock) {}
  SimEventLoop(const SimEventLoop&) = delete;
  SimEventLoop& operator=(const SimEventLoop&) = delete;

  void Post(Task task) override;
  TimerId PostAfter(absl::Duration delay, Task task) override;
  bool Cancel(TimerId id) override;

  // Runs the next due task, first advancing the clock to its deadline. Returns false if no
  // task is pending.
  bool Step();

  // Runs tasks until none is pending or `steps_max` have run. Returns the number run.
  uint64_t RunUntilIdle(uint64_t steps_max = UINT64_MAX);

  // Runs tasks until `done()` is true (checked before each task), no task is pending, or the
  // next task is due later than `limit` after the call. On a timeout the clock is left at the
  // limit. Returns done().
  bool RunUntil(absl::FunctionRef<bool()> done, absl::Duration limit);

  // The deadline of the next pending task, if any.
  bool NextDeadline(absl::Duration* deadline);

  size_t pending() const { return pending_; }
  uint64_t steps_run() const { return steps_run_; }
  SimClock& clock() { return clock_; }

 private:
  // A TimerId is (sequence << kSlotBits) | slot: the slot finds the task without a map, the
  // sequence tells a live task from a cancelled one whose slot was reused.
  static constexpr int kSlotBits = 24;
  static_assert((uint64_t{1} << kSlotBits) >= kExecutorPendingTasksMax);

  // Ordering by id is ordering by sequence, which sits in the id's high bits.
  struct Key {
    int64_t deadline_ns;
    TimerId id;
    bool operator<(const Key& o) const {
      return deadline_ns != o.deadline_ns ? deadline_ns < o.deadline_ns : id < o.id;
    }
  };
  struct Slot {
    uint64_t sequence = 0;  // 0 when free.
    Task task;
  };

  // Drops cancelled entries from the top of the heap.
  void SkipCancelled();
  bool Live(TimerId id) const;
  // A 4-ary min-heap of 16-byte keys: one cache line holds all children of a node, which
  // roughly halves the cost of popping from a heap of a million timers.
  void HeapPush(Key key);
  void HeapPop();
  void FreeSlot(uint32_t slot);

  SimClock& clock_;
  uint64_t next_sequence_ = 1;
  uint64_t steps_run_ = 0;
  size_t pending_ = 0;
  std::vector<Key> heap_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
};

}  // namespace bulwark::sim

#endif  // BULWARK_BASE_ENV_SIM_SIM_EVENT_LOOP_H_
