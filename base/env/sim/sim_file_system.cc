// In-memory file system with a durability model (see sim_file_system.h).
#include "base/env/sim/sim_file_system.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status/status_macros.h"

namespace bulwark::sim {

struct SimFileSystem::Inode {
  FileType type = FileType::kRegular;
  uint32_t mode = 0;
  uint32_t uid = 0;
  std::string data;         // Regular files: what reads see now.
  std::string synced_data;  // Regular files: what a crash keeps.
  std::string target;       // Symlinks.
  // Directories: the entries now, and as of the last SyncDir (what a crash keeps).
  std::map<std::string, std::shared_ptr<Inode>> entries;
  std::map<std::string, std::shared_ptr<Inode>> durable_entries;
};

struct SimFileSystem::Resolved {
  std::shared_ptr<Inode> parent;  // Null only for "/".
  std::string name;               // Last component; empty for "/".
  std::shared_ptr<Inode> node;    // Null if the last component does not exist.
  std::string canonical;          // Absolute path with symlinks resolved (when node exists).
};

namespace {

constexpr int kSymlinkHopsMax = 40;

absl::Status Error(absl::StatusCode code, absl::string_view operation, absl::string_view path,
                   absl::string_view what) {
  return absl::Status(code, absl::StrCat(operation, " ", path, ": ", what));
}

FileInfo InfoOf(const SimFileSystem::Inode& inode) {
  FileInfo info;
  info.type = inode.type;
  info.mode = inode.mode & 07777;
  info.size = inode.type == FileType::kSymlink ? inode.target.size() : inode.data.size();
  info.uid = inode.uid;
  return info;
}

// An open regular file for reading or execution.
class SimReadableFile final : public ExecutableFile {
 public:
  SimReadableFile(std::shared_ptr<SimFileSystem::Inode> inode, std::string path,
                  const uint64_t* generation)
      : inode_(std::move(inode)),
        path_(std::move(path)),
        generation_(generation),
        opened_generation_(*generation) {}

  absl::StatusOr<size_t> ReadAt(uint64_t offset, absl::Span<char> out) override {
    RETURN_IF_ERROR(CheckLive());
    const std::string& data = inode_->data;
    if (offset >= data.size()) return 0;
    size_t n = std::min<uint64_t>(out.size(), data.size() - offset);
    std::memcpy(out.data(), data.data() + offset, n);
    return n;
  }

  absl::StatusOr<FileInfo> Stat() override {
    RETURN_IF_ERROR(CheckLive());
    return InfoOf(*inode_);
  }

  const std::string& path() const override { return path_; }

 private:
  absl::Status CheckLive() const {
    if (*generation_ != opened_generation_) {
      return absl::UnavailableError(absl::StrCat("read ", path_, ": opened before a crash"));
    }
    return absl::OkStatus();
  }

  std::shared_ptr<SimFileSystem::Inode> inode_;
  std::string path_;
  const uint64_t* generation_;
  uint64_t opened_generation_;
};

class SimWritableFile final : public WritableFile {
 public:
  SimWritableFile(std::shared_ptr<SimFileSystem::Inode> inode, std::string path,
                  const uint64_t* generation, uint64_t* sync_count)
      : inode_(std::move(inode)),
        path_(std::move(path)),
        generation_(generation),
        opened_generation_(*generation),
        sync_count_(sync_count) {}

  absl::Status Append(absl::string_view data) override {
    RETURN_IF_ERROR(CheckUsable("append"));
    inode_->data.append(data.data(), data.size());
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    RETURN_IF_ERROR(CheckUsable("sync"));
    inode_->synced_data = inode_->data;
    ++*sync_count_;
    return absl::OkStatus();
  }

  absl::Status Close() override {
    RETURN_IF_ERROR(CheckUsable("close"));
    closed_ = true;
    return absl::OkStatus();
  }

 private:
  absl::Status CheckUsable(absl::string_view operation) const {
    if (closed_) return Error(absl::StatusCode::kFailedPrecondition, operation, path_, "closed");
    if (*generation_ != opened_generation_) {
      return Error(absl::StatusCode::kUnavailable, operation, path_, "opened before a crash");
    }
    return absl::OkStatus();
  }

  std::shared_ptr<SimFileSystem::Inode> inode_;
  std::string path_;
  const uint64_t* generation_;
  uint64_t opened_generation_;
  uint64_t* sync_count_;
  bool closed_ = false;
};

}  // namespace

SimFileSystem::SimFileSystem(Random& random) : random_(random) {
  root_ = std::make_shared<Inode>();
  root_->type = FileType::kDirectory;
  root_->mode = 0755;
}

SimFileSystem::~SimFileSystem() = default;

absl::StatusOr<SimFileSystem::Resolved> SimFileSystem::Resolve(absl::string_view path,
                                                               bool follow_last,
                                                               absl::string_view operation) {
  if (path.empty() || path.front() != '/' || path.find('\0') != absl::string_view::npos) {
    return Error(absl::StatusCode::kInvalidArgument, operation, path,
                 "the simulated file system takes absolute paths without NUL bytes");
  }
  std::deque<std::string> pending;
  for (absl::string_view c : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    pending.emplace_back(c);
  }
  std::vector<std::shared_ptr<Inode>> nodes = {root_};
  std::vector<std::string> names;
  int hops = 0;
  while (!pending.empty()) {
    std::string name = std::move(pending.front());
    pending.pop_front();
    if (name == ".") continue;
    if (name == "..") {
      if (nodes.size() > 1) {
        nodes.pop_back();
        names.pop_back();
      }
      continue;
    }
    const std::shared_ptr<Inode>& dir = nodes.back();
    if (dir->type != FileType::kDirectory) {
      return Error(absl::StatusCode::kFailedPrecondition, operation, path, "not a directory");
    }
    auto it = dir->entries.find(name);
    const bool last = pending.empty();
    if (it == dir->entries.end()) {
      if (last) return Resolved{dir, name, nullptr, ""};
      return Error(absl::StatusCode::kNotFound, operation, path, "no such file or directory");
    }
    std::shared_ptr<Inode> child = it->second;
    if (child->type == FileType::kSymlink && (!last || follow_last)) {
      if (++hops > kSymlinkHopsMax) {
        return Error(absl::StatusCode::kFailedPrecondition, operation, path,
                     "too many levels of symbolic links");
      }
      std::vector<std::string> target = absl::StrSplit(child->target, '/', absl::SkipEmpty());
      pending.insert(pending.begin(), target.begin(), target.end());
      if (!child->target.empty() && child->target.front() == '/') {
        nodes.resize(1);
        names.clear();
      }
      continue;
    }
    if (last) {
      names.push_back(name);
      return Resolved{dir, names.back(), child, absl::StrCat("/", absl::StrJoin(names, "/"))};
    }
    nodes.push_back(child);
    names.push_back(name);
  }
  // The path ended at a directory reached through "/", "." or "..".
  std::shared_ptr<Inode> node = nodes.back();
  std::shared_ptr<Inode> parent = nodes.size() > 1 ? nodes[nodes.size() - 2] : nullptr;
  std::string name = names.empty() ? "" : names.back();
  return Resolved{parent, name, node, absl::StrCat("/", absl::StrJoin(names, "/"))};
}

absl::StatusOr<std::shared_ptr<SimFileSystem::Inode>> SimFileSystem::LookupNode(
    absl::string_view path, bool follow_last, absl::string_view operation) {
  ASSIGN_OR_RETURN(Resolved r, Resolve(path, follow_last, operation));
  if (r.node == nullptr) {
    return Error(absl::StatusCode::kNotFound, operation, path, "no such file or directory");
  }
  return r.node;
}

absl::StatusOr<std::unique_ptr<WritableFile>> SimFileSystem::OpenWritable(
    absl::string_view path, bool truncate, absl::string_view operation) {
  ASSIGN_OR_RETURN(Resolved r, Resolve(path, /*follow_last=*/true, operation));
  if (r.parent == nullptr || (r.node != nullptr && r.node->type == FileType::kDirectory)) {
    return Error(absl::StatusCode::kFailedPrecondition, operation, path, "is a directory");
  }
  if (r.node == nullptr) {
    r.node = std::make_shared<Inode>();
    r.node->mode = 0600;
    r.node->uid = uid_;
    r.parent->entries[r.name] = r.node;
  } else if (truncate) {
    r.node->data.clear();
  }
  return std::unique_ptr<WritableFile>(
      new SimWritableFile(r.node, std::string(path), &generation_, &sync_count_));
}

absl::StatusOr<std::unique_ptr<WritableFile>> SimFileSystem::NewWritableFile(
    absl::string_view path) {
  return OpenWritable(path, /*truncate=*/true, "create");
}

absl::StatusOr<std::unique_ptr<WritableFile>> SimFileSystem::NewAppendableFile(
    absl::string_view path) {
  return OpenWritable(path, /*truncate=*/false, "open for append");
}

absl::StatusOr<std::unique_ptr<ReadableFile>> SimFileSystem::OpenForRead(absl::string_view path) {
  ASSIGN_OR_RETURN(std::shared_ptr<Inode> node, LookupNode(path, true, "open"));
  if (node->type == FileType::kDirectory) {
    return Error(absl::StatusCode::kFailedPrecondition, "open", path, "is a directory");
  }
  return std::unique_ptr<ReadableFile>(new SimReadableFile(node, std::string(path), &generation_));
}

absl::StatusOr<std::unique_ptr<ExecutableFile>> SimFileSystem::OpenForExec(absl::string_view path) {
  ASSIGN_OR_RETURN(std::shared_ptr<Inode> node, LookupNode(path, true, "open for exec"));
  if (node->type != FileType::kRegular) {
    return Error(absl::StatusCode::kFailedPrecondition, "open for exec", path,
                 absl::StrCat("is a ", FileTypeName(node->type), ", not a regular file"));
  }
  return std::unique_ptr<ExecutableFile>(
      new SimReadableFile(node, std::string(path), &generation_));
}

absl::Status SimFileSystem::Rename(absl::string_view from, absl::string_view to) {
  ASSIGN_OR_RETURN(Resolved src, Resolve(from, /*follow_last=*/false, "rename"));
  if (src.node == nullptr || src.parent == nullptr) {
    return Error(absl::StatusCode::kNotFound, "rename", from, "no such file or directory");
  }
  ASSIGN_OR_RETURN(Resolved dst, Resolve(to, /*follow_last=*/false, "rename"));
  if (dst.parent == nullptr) {
    return Error(absl::StatusCode::kFailedPrecondition, "rename", to, "is the root directory");
  }
  if (dst.node == src.node) return absl::OkStatus();
  if (dst.node != nullptr) {
    const bool src_dir = src.node->type == FileType::kDirectory;
    const bool dst_dir = dst.node->type == FileType::kDirectory;
    if (dst_dir && !src_dir) {
      return Error(absl::StatusCode::kFailedPrecondition, "rename", to, "is a directory");
    }
    if (src_dir && !dst_dir) {
      return Error(absl::StatusCode::kFailedPrecondition, "rename", to, "not a directory");
    }
    if (dst_dir && !dst.node->entries.empty()) {
      return Error(absl::StatusCode::kFailedPrecondition, "rename", to, "directory not empty");
    }
  }
  std::shared_ptr<Inode> node = src.node;
  src.parent->entries.erase(src.name);
  dst.parent->entries[dst.name] = std::move(node);
  return absl::OkStatus();
}

absl::Status SimFileSystem::Remove(absl::string_view path) {
  ASSIGN_OR_RETURN(Resolved r, Resolve(path, /*follow_last=*/false, "remove"));
  if (r.node == nullptr) {
    return Error(absl::StatusCode::kNotFound, "remove", path, "no such file or directory");
  }
  if (r.node->type == FileType::kDirectory) {
    return Error(absl::StatusCode::kFailedPrecondition, "remove", path, "is a directory");
  }
  r.parent->entries.erase(r.name);
  return absl::OkStatus();
}

absl::Status SimFileSystem::CreateDir(absl::string_view path, uint32_t mode) {
  ASSIGN_OR_RETURN(Resolved r, Resolve(path, /*follow_last=*/false, "mkdir"));
  if (r.node != nullptr) return Error(absl::StatusCode::kAlreadyExists, "mkdir", path, "exists");
  std::shared_ptr<Inode> dir = std::make_shared<Inode>();
  dir->type = FileType::kDirectory;
  dir->mode = mode & 07777;
  dir->uid = uid_;
  r.parent->entries[r.name] = std::move(dir);
  return absl::OkStatus();
}

absl::Status SimFileSystem::RemoveDir(absl::string_view path) {
  ASSIGN_OR_RETURN(Resolved r, Resolve(path, /*follow_last=*/false, "rmdir"));
  if (r.node == nullptr) {
    return Error(absl::StatusCode::kNotFound, "rmdir", path, "no such file or directory");
  }
  if (r.node->type != FileType::kDirectory) {
    return Error(absl::StatusCode::kFailedPrecondition, "rmdir", path, "not a directory");
  }
  if (r.parent == nullptr) {
    return Error(absl::StatusCode::kFailedPrecondition, "rmdir", path, "is the root directory");
  }
  if (!r.node->entries.empty()) {
    return Error(absl::StatusCode::kFailedPrecondition, "rmdir", path, "directory not empty");
  }
  r.parent->entries.erase(r.name);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SimFileSystem::ListDir(absl::string_view path) {
  ASSIGN_OR_RETURN(std::shared_ptr<Inode> node, LookupNode(path, true, "list"));
  if (node->type != FileType::kDirectory) {
    return Error(absl::StatusCode::kFailedPrecondition, "list", path, "not a directory");
  }
  std::vector<std::string> names;
  names.reserve(node->entries.size());
  for (const auto& [name, child] : node->entries) names.push_back(name);
  return names;  // std::map keeps them sorted bytewise.
}

absl::StatusOr<FileInfo> SimFileSystem::Stat(absl::string_view path) {
  ASSIGN_OR_RETURN(std::shared_ptr<Inode> node, LookupNode(path, true, "stat"));
  return InfoOf(*node);
}

absl::StatusOr<FileInfo> SimFileSystem::Lstat(absl::string_view path) {
  ASSIGN_OR_RETURN(std::shared_ptr<Inode> node, LookupNode(path, false, "lstat"));
  return InfoOf(*node);
}

absl::Status SimFileSystem::SyncDir(absl::string_view path) {
  ASSIGN_OR_RETURN(std::shared_ptr<Inode> node, LookupNode(path, true, "sync directory"));
  if (node->type != FileType::kDirectory) {
    return Error(absl::StatusCode::kFailedPrecondition, "sync directory", path, "not a directory");
  }
  node->durable_entries = node->entries;
  ++sync_count_;
  return absl::OkStatus();
}

absl::StatusOr<std::string> SimFileSystem::RealPath(absl::string_view path) {
  ASSIGN_OR_RETURN(Resolved r, Resolve(path, /*follow_last=*/true, "realpath"));
  if (r.node == nullptr) {
    return Error(absl::StatusCode::kNotFound, "realpath", path, "no such file or directory");
  }
  return r.canonical;
}

absl::Status SimFileSystem::CreateSymlink(absl::string_view target, absl::string_view link) {
  ASSIGN_OR_RETURN(Resolved r, Resolve(link, /*follow_last=*/false, "symlink"));
  if (r.node != nullptr) return Error(absl::StatusCode::kAlreadyExists, "symlink", link, "exists");
  std::shared_ptr<Inode> node = std::make_shared<Inode>();
  node->type = FileType::kSymlink;
  node->mode = 0777;
  node->uid = uid_;
  node->target = std::string(target);
  r.parent->entries[r.name] = std::move(node);
  return absl::OkStatus();
}

absl::Status SimFileSystem::SetMode(absl::string_view path, uint32_t mode) {
  ASSIGN_OR_RETURN(std::shared_ptr<Inode> node, LookupNode(path, true, "chmod"));
  node->mode = mode & 07777;
  return absl::OkStatus();
}

void SimFileSystem::Crash(CrashMode mode) {
  ++generation_;
  // Directories first, top-down, so only what stays reachable is considered below.
  std::vector<std::shared_ptr<Inode>> dirs = {root_};
  std::vector<std::shared_ptr<Inode>> files;
  std::set<const Inode*> seen;
  while (!dirs.empty()) {
    std::shared_ptr<Inode> dir = std::move(dirs.back());
    dirs.pop_back();
    if (!seen.insert(dir.get()).second) continue;
    // A directory's unsynced changes are kept or lost together, as a journaling file system
    // commits them: a rename is never half-applied.
    if (mode == CrashMode::kDropUnsynced || !random_.Bernoulli(0.5)) {
      dir->entries = dir->durable_entries;
    }
    dir->durable_entries = dir->entries;
    for (const auto& [name, child] : dir->entries) {
      if (child->type == FileType::kDirectory) {
        dirs.push_back(child);
      } else if (child->type == FileType::kRegular) {
        files.push_back(child);
      }
    }
  }
  for (const std::shared_ptr<Inode>& file : files) {
    if (!seen.insert(file.get()).second || file->data == file->synced_data) continue;
    if (mode == CrashMode::kTearUnsynced && random_.Bernoulli(0.5)) {
      // Some unsynced bytes reached the disk. Appends keep the synced prefix; a rewrite after a
      // truncation may leave any prefix of the new contents.
      const std::string& synced = file->synced_data;
      const bool append = file->data.compare(0, synced.size(), synced) == 0;
      const uint64_t keep = append ? random_.UniformInRange(synced.size(), file->data.size())
                                   : random_.UniformInRange(0, file->data.size());
      file->data.resize(keep);
    } else {
      file->data = file->synced_data;
    }
    file->synced_data = file->data;
  }
}

absl::Status SimFileSystem::WriteFileDurably(absl::string_view path, absl::string_view contents,
                                             uint32_t mode) {
  ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, NewWritableFile(path));
  RETURN_IF_ERROR(file->Append(contents));
  RETURN_IF_ERROR(file->Sync());
  RETURN_IF_ERROR(file->Close());
  RETURN_IF_ERROR(SetMode(path, mode));
  ASSIGN_OR_RETURN(Resolved r, Resolve(path, /*follow_last=*/false, "sync"));
  r.parent->durable_entries = r.parent->entries;
  return absl::OkStatus();
}

}  // namespace bulwark::sim
