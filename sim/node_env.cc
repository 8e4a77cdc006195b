// A node's file system view, executor and clock (see node_env.h).
#include "sim/node_env.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status/status_macros.h"

namespace bulwark::sim {
namespace {

absl::Status Down(absl::string_view operation) {
  return absl::UnavailableError(absl::StrCat(operation, ": the node is down"));
}

class NodeWritableFile final : public WritableFile {
 public:
  NodeWritableFile(NodeFileSystem& fs, std::unique_ptr<WritableFile> inner)
      : fs_(fs), inner_(std::move(inner)), incarnation_(fs.incarnation()) {}

  absl::Status Append(absl::string_view data) override {
    RETURN_IF_ERROR(fs_.CheckUp(incarnation_, "append"));
    return fs_.AfterMutation(inner_->Append(data));
  }
  absl::Status Sync() override {
    RETURN_IF_ERROR(fs_.CheckUp(incarnation_, "sync"));
    return fs_.AfterMutation(inner_->Sync());
  }
  absl::Status Close() override {
    RETURN_IF_ERROR(fs_.CheckUp(incarnation_, "close"));
    return fs_.AfterMutation(inner_->Close());
  }

 private:
  NodeFileSystem& fs_;
  std::unique_ptr<WritableFile> inner_;
  uint64_t incarnation_;
};

class NodeReadableFile final : public ReadableFile {
 public:
  NodeReadableFile(NodeFileSystem& fs, std::unique_ptr<ReadableFile> inner)
      : fs_(fs), inner_(std::move(inner)), incarnation_(fs.incarnation()) {}

  absl::StatusOr<size_t> ReadAt(uint64_t offset, absl::Span<char> out) override {
    RETURN_IF_ERROR(fs_.CheckUp(incarnation_, "read"));
    return inner_->ReadAt(offset, out);
  }
  absl::StatusOr<FileInfo> Stat() override {
    RETURN_IF_ERROR(fs_.CheckUp(incarnation_, "stat"));
    return inner_->Stat();
  }

 private:
  NodeFileSystem& fs_;
  std::unique_ptr<ReadableFile> inner_;
  uint64_t incarnation_;
};

class NodeExecutableFile final : public ExecutableFile {
 public:
  NodeExecutableFile(NodeFileSystem& fs, std::unique_ptr<ExecutableFile> inner)
      : fs_(fs), inner_(std::move(inner)), incarnation_(fs.incarnation()) {}

  absl::StatusOr<size_t> ReadAt(uint64_t offset, absl::Span<char> out) override {
    RETURN_IF_ERROR(fs_.CheckUp(incarnation_, "read"));
    return inner_->ReadAt(offset, out);
  }
  absl::StatusOr<FileInfo> Stat() override {
    RETURN_IF_ERROR(fs_.CheckUp(incarnation_, "stat"));
    return inner_->Stat();
  }
  const std::string& path() const override { return inner_->path(); }

 private:
  NodeFileSystem& fs_;
  std::unique_ptr<ExecutableFile> inner_;
  uint64_t incarnation_;
};

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

absl::Status NodeFileSystem::CheckUp(uint64_t incarnation, absl::string_view operation) const {
  if (dead_ || incarnation != incarnation_) return Down(operation);
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

absl::StatusOr<std::unique_ptr<WritableFile>> NodeFileSystem::NewWritableFile(
    absl::string_view path) {
  RETURN_IF_ERROR(CheckUp(incarnation_, "create"));
  absl::StatusOr<std::unique_ptr<WritableFile>> file = disk_.NewWritableFile(path);
  absl::Status status = AfterMutation(file.status());
  if (!status.ok()) return status;
  return std::unique_ptr<WritableFile>(new NodeWritableFile(*this, *std::move(file)));
}

absl::StatusOr<std::unique_ptr<ReadableFile>> NodeFileSystem::OpenForRead(absl::string_view path) {
  RETURN_IF_ERROR(CheckUp(incarnation_, "open"));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> file, disk_.OpenForRead(path));
  return std::unique_ptr<ReadableFile>(new NodeReadableFile(*this, std::move(file)));
}

absl::StatusOr<std::unique_ptr<ExecutableFile>> NodeFileSystem::OpenForExec(
    absl::string_view path) {
  RETURN_IF_ERROR(CheckUp(incarnation_, "open"));
  ASSIGN_OR_RETURN(std::unique_ptr<ExecutableFile> file, disk_.OpenForExec(path));
  return std::unique_ptr<ExecutableFile>(new NodeExecutableFile(*this, std::move(file)));
}

absl::Status NodeFileSystem::Rename(absl::string_view from, absl::string_view to) {
  RETURN_IF_ERROR(CheckUp(incarnation_, "rename"));
  return AfterMutation(disk_.Rename(from, to));
}

absl::Status NodeFileSystem::Remove(absl::string_view path) {
  RETURN_IF_ERROR(CheckUp(incarnation_, "remove"));
  return AfterMutation(disk_.Remove(path));
}

absl::Status NodeFileSystem::CreateDir(absl::string_view path, uint32_t mode) {
  RETURN_IF_ERROR(CheckUp(incarnation_, "mkdir"));
  return AfterMutation(disk_.CreateDir(path, mode));
}

absl::Status NodeFileSystem::RemoveDir(absl::string_view path) {
  RETURN_IF_ERROR(CheckUp(incarnation_, "rmdir"));
  return AfterMutation(disk_.RemoveDir(path));
}

absl::StatusOr<std::vector<std::string>> NodeFileSystem::ListDir(absl::string_view path) {
  RETURN_IF_ERROR(CheckUp(incarnation_, "list"));
  return disk_.ListDir(path);
}

absl::StatusOr<FileInfo> NodeFileSystem::Stat(absl::string_view path) {
  RETURN_IF_ERROR(CheckUp(incarnation_, "stat"));
  return disk_.Stat(path);
}

absl::StatusOr<FileInfo> NodeFileSystem::Lstat(absl::string_view path) {
  RETURN_IF_ERROR(CheckUp(incarnation_, "lstat"));
  return disk_.Lstat(path);
}

absl::Status NodeFileSystem::SyncDir(absl::string_view path) {
  RETURN_IF_ERROR(CheckUp(incarnation_, "syncdir"));
  return AfterMutation(disk_.SyncDir(path));
}

absl::StatusOr<std::string> NodeFileSystem::RealPath(absl::string_view path) {
  RETURN_IF_ERROR(CheckUp(incarnation_, "realpath"));
  return disk_.RealPath(path);
}

absl::Status NodeFileSystem::CreateSymlink(absl::string_view target, absl::string_view link) {
  RETURN_IF_ERROR(CheckUp(incarnation_, "symlink"));
  return AfterMutation(disk_.CreateSymlink(target, link));
}

absl::Status NodeFileSystem::SetMode(absl::string_view path, uint32_t mode) {
  RETURN_IF_ERROR(CheckUp(incarnation_, "chmod"));
  return AfterMutation(disk_.SetMode(path, mode));
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
