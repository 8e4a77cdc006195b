// Virtual clock and deterministic event loop.
#include "base/env/sim/sim_event_loop.h"

#include <algorithm>
#include <utility>

#include "base/status/check.h"

namespace bulwark::sim {

SimClock::SimClock(absl::Time wall_origin) : wall_origin_(wall_origin) {}

void SimClock::AdvanceTo(absl::Duration t) {
  CHECK(t >= now_) << "simulated time cannot go backwards: " << t << " < " << now_;
  now_ = t;
}

void SimEventLoop::Post(Task task) { PostAfter(absl::ZeroDuration(), std::move(task)); }

TimerId SimEventLoop::PostAfter(absl::Duration delay, Task task) {
  CHECK(pending_ < kExecutorPendingTasksMax) << "simulated executor holds too many tasks";
  if (delay < absl::ZeroDuration()) delay = absl::ZeroDuration();
  uint32_t slot;
  if (free_slots_.empty()) {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
  }
  const uint64_t sequence = next_sequence_++;
  slots_[slot].sequence = sequence;
  slots_[slot].task = std::move(task);
  ++pending_;
  const TimerId id = (sequence << kSlotBits) | slot;
  HeapPush(Key{absl::ToInt64Nanoseconds(clock_.MonotonicNow() + delay), id});
  return id;
}

void SimEventLoop::HeapPush(Key key) {
  size_t i = heap_.size();
  heap_.push_back(key);
  while (i > 0) {
    const size_t parent = (i - 1) / 4;
    if (!(key < heap_[parent])) break;
    heap_[i] = heap_[parent];
    i = parent;
  }
  heap_[i] = key;
}

void SimEventLoop::HeapPop() {
  const Key last = heap_.back();
  heap_.pop_back();
  const size_t n = heap_.size();
  if (n == 0) return;
  size_t i = 0;
  while (true) {
    const size_t first = 4 * i + 1;
    if (first >= n) break;
    const size_t end = std::min(first + 4, n);
    size_t best = first;
    for (size_t c = first + 1; c < end; ++c) {
      if (heap_[c] < heap_[best]) best = c;
    }
    if (!(heap_[best] < last)) break;
    heap_[i] = heap_[best];
    i = best;
  }
  heap_[i] = last;
}

bool SimEventLoop::Live(TimerId id) const {
  const uint64_t slot = id & ((uint64_t{1} << kSlotBits) - 1);
  return slot < slots_.size() && slots_[slot].sequence == (id >> kSlotBits);
}

void SimEventLoop::FreeSlot(uint32_t slot) {
  slots_[slot].sequence = 0;
  slots_[slot].task = nullptr;
  free_slots_.push_back(slot);
  --pending_;
}

bool SimEventLoop::Cancel(TimerId id) {
  if ((id >> kSlotBits) == 0 || !Live(id)) return false;
  FreeSlot(static_cast<uint32_t>(id & ((uint64_t{1} << kSlotBits) - 1)));
  return true;
}

void SimEventLoop::SkipCancelled() {
  while (!heap_.empty() && !Live(heap_.front().id)) HeapPop();
}

bool SimEventLoop::NextDeadline(absl::Duration* deadline) {
  SkipCancelled();
  if (heap_.empty()) return false;
  *deadline = absl::Nanoseconds(heap_.front().deadline_ns);
  return true;
}

bool SimEventLoop::Step() {
  SkipCancelled();
  if (heap_.empty()) return false;
  const Key key = heap_.front();
  HeapPop();
  const uint32_t slot = static_cast<uint32_t>(key.id & ((uint64_t{1} << kSlotBits) - 1));
  Task task = std::move(slots_[slot].task);
  FreeSlot(slot);
  const absl::Duration deadline = absl::Nanoseconds(key.deadline_ns);
  if (deadline > clock_.MonotonicNow()) clock_.AdvanceTo(deadline);
  ++steps_run_;
  std::move(task)();
  return true;
}

uint64_t SimEventLoop::RunUntilIdle(uint64_t steps_max) {
  uint64_t n = 0;
  while (n < steps_max && Step()) ++n;
  return n;
}

bool SimEventLoop::RunUntil(absl::FunctionRef<bool()> done, absl::Duration limit) {
  const absl::Duration end = clock_.MonotonicNow() + limit;
  while (!done()) {
    absl::Duration next;
    if (!NextDeadline(&next) || next > end) {
      if (end > clock_.MonotonicNow()) clock_.AdvanceTo(end);
      return done();
    }
    Step();
  }
  return true;
}

}  // namespace bulwark::sim
