// A node's file system view, executor and clock (see node_env.h).
#include "sim/node_env.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace bulwark::sim {
namespace {

absl::Status Down(absl::string_view operation) {
  return absl::UnavailableError(absl::StrCat(operation, ": the node is down"));
}

}  // namespace

void NodeFileSystem::Kill() {
  dead_ = true;
  armed_.reset();
}

void NodeFileSystem::Revive() {
  dead_ = false;
  ++incarnation_;
}

void NodeFileSystem::ArmCrash(uint64_t k, CrashMode mode) {
  armed_ = Armed{mutations_ + (k == 0 ? 1 : k), mode};
}

absl::Status NodeFileSystem::CheckCall(uint64_t generation, absl::string_view operation) const {
  if (dead_ || generation != incarnation_) return Down(operation);
  return absl::OkStatus();
}

absl::Status NodeFileSystem::AfterMutation(absl::Status result) {
  ++mutations_;
  if (armed_.has_value() && mutations_ >= armed_->at_mutation) {
    const CrashMode mode = armed_->mode;
    Kill();
    if (on_crash_) on_crash_(mode);
    return Down("power lost during the call");
  }
  return result;
}

NodeExecutor::~NodeExecutor() { Kill(); }

TimerId NodeExecutor::Schedule(absl::Duration delay, Task task, bool immediate) {
  const TimerId key = next_key_++;
  Entry& entry = tasks_[key];
  entry.task = std::move(task);
  entry.immediate = immediate;
  entry.loop_id = loop_.PostAfter(delay, [this, key] { Run(key); });
  return key;
}

void NodeExecutor::Run(TimerId key) {
  auto it = tasks_.find(key);
  if (it == tasks_.end()) return;
  Task task = std::move(it->second.task);
  tasks_.erase(it);
  if (on_task_) on_task_();
  task();
  if (after_task_) after_task_();
}

void NodeExecutor::Post(Task task) { Schedule(absl::ZeroDuration(), std::move(task), true); }

TimerId NodeExecutor::PostAfter(absl::Duration delay, Task task) {
  return Schedule(delay, std::move(task), delay <= absl::ZeroDuration());
}

bool NodeExecutor::Cancel(TimerId id) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return false;
  loop_.Cancel(it->second.loop_id);
  tasks_.erase(it);
  return true;
}

void NodeExecutor::DrainPosted(int rounds) {
  for (int round = 0; round < rounds; ++round) {
    std::vector<TimerId> due;
    for (const auto& [key, entry] : tasks_) {
      if (entry.immediate) due.push_back(key);
    }
    if (due.empty()) return;
    for (TimerId key : due) {
      auto it = tasks_.find(key);
      if (it == tasks_.end()) continue;
      loop_.Cancel(it->second.loop_id);
      Task task = std::move(it->second.task);
      tasks_.erase(it);
      task();
    }
  }
}

void NodeExecutor::Kill() {
  // Take the tasks out first: destroying one may post or cancel others.
  std::map<TimerId, Entry> dropped;
  dropped.swap(tasks_);
  for (auto& [key, entry] : dropped) loop_.Cancel(entry.loop_id);
  dropped.clear();
  tasks_.clear();
}

size_t NodeExecutor::pending_timers() const {
  size_t n = 0;
  for (const auto& [key, entry] : tasks_) n += entry.immediate ? 0 : 1;
  return n;
}

}  // namespace bulwark::sim
