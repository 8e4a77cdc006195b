// Cgroup v1/v2 placement for plugin processes: detection, creation with limits, removal, sweep.
#include "base/env/posix/posix_cgroups.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status/status_macros.h"

namespace bulwark {
namespace {

// Bytes read from a cgroup or /proc file (memory.events, cgroup.procs of a leaf: small).
constexpr size_t kFileBytesMax = 64 * 1024;
// Stale instances removed per start, and leaves per instance: a bound on the sweep's work.
constexpr int kSweepInstancesMax = 1024;
constexpr int kSweepLeavesMax = 4096;
// cgroups waiting for a retried rmdir; past this the oldest is forgotten (and logged by nobody:
// the next start's sweep finds it).
constexpr size_t kPendingMax = 1024;
// Retries (10 ms apart) of pending removals when the manager is destroyed.
constexpr int kShutdownRetries = 200;
// How long, in 10 ms pauses, the start-up sweep waits for the processes it killed in a stale
// instance to leave it: a hang guard (a process stuck in the kernel), not a speed bet.
constexpr int kSweepRetries = 1000;

std::string Errno(int err) {
  const char* desc = strerrordesc_np(err);
  return desc != nullptr ? std::string(desc) : absl::StrCat("errno ", err);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string message = absl::StrCat("cannot read ", path, ": ", Errno(err));
    return err == ENOENT ? absl::NotFoundError(message) : absl::InternalError(message);
  }
  std::string text;
  char buffer[4096];
  while (text.size() < kFileBytesMax) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return text;
}

absl::Status WriteFile(const std::string& path, absl::string_view value) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string message = absl::StrCat("cannot open ", path, ": ", Errno(err));
    return err == ENOENT ? absl::NotFoundError(message) : absl::InternalError(message);
  }
  const ssize_t n = write(fd, value.data(), value.size());
  const int err = errno;
  close(fd);
  if (n == static_cast<ssize_t>(value.size())) return absl::OkStatus();
  std::string message =
      absl::StrCat("writing \"", value, "\" to ", path, ": ", n < 0 ? Errno(err) : "short write");
  if (n < 0 && (err == EINVAL || err == EBUSY)) return absl::InvalidArgumentError(message);
  return absl::InternalError(message);
}

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return absl::OkStatus();
  const int err = errno;
  return absl::FailedPreconditionError(absl::StrCat("cannot create ", path, ": ", Errno(err)));
}

// Subdirectory names of `dir`, sorted, at most `max`.
std::vector<std::string> SubDirs(const std::string& dir, int max) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (const dirent* e = readdir(d)) {
    if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
      continue;
    }
    names.emplace_back(e->d_name);
    if (static_cast<int>(names.size()) >= max) break;
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// SIGKILLs every process listed in `dir`/cgroup.procs (the kernel lists them in our pid
// namespace; one outside it shows as 0 and is skipped).
void KillMembers(const std::string& dir) {
  absl::StatusOr<std::string> procs = ReadFile(dir + "/cgroup.procs");
  if (!procs.ok()) return;
  for (absl::string_view line : absl::StrSplit(*procs, '\n', absl::SkipEmpty())) {
    int pid = 0;
    if (absl::SimpleAtoi(line, &pid) && pid > 0) kill(pid, SIGKILL);
  }
}

// rmdir, killing what is left inside first when it is busy. True when it is gone.
bool RemoveDir(const std::string& dir) {
  if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return true;
  if (errno != EBUSY) return false;
  KillMembers(dir);
  return rmdir(dir.c_str()) == 0 || errno == ENOENT;
}

// RemoveDir for the sweep: what is left in a dead host's cgroup is its plugins, which
// PR_SET_PDEATHSIG may still be killing when the next host starts. A killed process leaves its
// cgroup only once the kernel has torn it down, so wait for that (bounded) rather than report a
// cgroup that is about to be empty.
bool RemoveStaleDir(const std::string& dir) {
  for (int i = 0; i < kSweepRetries; ++i) {
    if (RemoveDir(dir)) return true;
    if (errno != EBUSY) return false;
    const struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, nullptr);
  }
  return false;
}

// "key value" lines (memory.events, memory.oom_control): the value of `key`, or 0.
uint64_t KeyedValue(absl::string_view text, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t v = 0;
    if (parts.size() == 2 && parts[0] == key && absl::SimpleAtoi(parts[1], &v)) return v;
  }
  return 0;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (size_t j = 1; j <= 3; ++j) {
        const char c = s[i + j];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

bool ValidComponent(absl::string_view s) {
  if (s.empty() || s == "." || s == ".." || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

std::string SafeLabel(absl::string_view label) {
  std::string out(label.substr(0, 48));
  for (char& c : out) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      c = '_';
    }
  }
  if (out.empty() || out[0] == '.') out.insert(out.begin(), 'p');
  return out;
}

// The controllers of a v2 cgroup directory's file (cgroup.controllers, cgroup.subtree_control).
bool HasControllers(const std::string& file, const std::vector<std::string>& wanted) {
  absl::StatusOr<std::string> text = ReadFile(file);
  if (!text.ok()) return false;
  std::vector<absl::string_view> have = absl::StrSplit(*text, absl::ByAnyChar(" \n"));
  for (const std::string& w : wanted) {
    if (std::find(have.begin(), have.end(), w) == have.end()) return false;
  }
  return true;
}

const std::vector<std::string>& Controllers() {
  static const auto* c = new std::vector<std::string>{"memory", "pids", "cpu"};
  return *c;
}

constexpr char kEnableControllers[] = "+memory +pids +cpu";

}  // namespace

CgroupMounts ParseCgroupMounts(absl::string_view mountinfo,
                               const std::vector<std::string>& controllers) {
  CgroupMounts mounts;
  mounts.v1.resize(controllers.size());
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    // "id parent major:minor root mount_point options [optional...] - fstype source super".
    const size_t dash = line.find(" - ");
    if (dash == absl::string_view::npos) continue;
    std::vector<absl::string_view> left = absl::StrSplit(line.substr(0, dash), ' ');
    std::vector<absl::string_view> right =
        absl::StrSplit(line.substr(dash + 3), ' ', absl::SkipEmpty());
    if (left.size() < 5 || right.size() < 3) continue;
    const std::string mount_point = Unescape(left[4]);
    if (right[0] == "cgroup2") {
      if (mounts.v2.empty()) mounts.v2 = mount_point;
    } else if (right[0] == "cgroup") {
      std::vector<absl::string_view> super = absl::StrSplit(right[2], ',');
      for (size_t i = 0; i < controllers.size(); ++i) {
        if (mounts.v1[i].empty() &&
            std::find(super.begin(), super.end(), controllers[i]) != super.end()) {
          mounts.v1[i] = mount_point;
        }
      }
    }
  }
  return mounts;
}

uint64_t CpuSharesForWeight(uint64_t weight) {
  return std::clamp<uint64_t>(weight * 1024 / 100, 2, 262144);
}

PosixCgroup::PosixCgroup(CgroupVersion version, std::vector<std::string> dirs,
                         std::vector<int> procs_fds)
    : version_(version), dirs_(std::move(dirs)), procs_fds_(std::move(procs_fds)) {}

PosixCgroup::~PosixCgroup() { CloseProcsFds(); }

void PosixCgroup::CloseProcsFds() {
  for (int fd : procs_fds_) close(fd);
  procs_fds_.clear();
}

uint64_t PosixCgroup::OomKills() const {
  const std::string file =
      dirs_[0] + (version_ == CgroupVersion::kV2 ? "/memory.events" : "/memory.oom_control");
  absl::StatusOr<std::string> text = ReadFile(file);
  return text.ok() ? KeyedValue(*text, "oom_kill") : 0;
}

std::string PosixCgroup::LimitHit() const { return OomKills() > 0 ? "memory" : ""; }

CgroupManager::CgroupManager(CgroupOptions options, CgroupVersion version,
                             std::vector<std::string> roots)
    : options_(std::move(options)), version_(version), roots_(std::move(roots)) {}

absl::StatusOr<std::unique_ptr<CgroupManager>> CgroupManager::Open(CgroupOptions options) {
  if (!ValidComponent(options.parent)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cgroup parent \"", options.parent,
                     "\" must be one path component of letters, digits, '-', '_' and '.'"));
  }
  absl::StatusOr<std::string> mountinfo = ReadFile(options.mountinfo_path);
  if (!mountinfo.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no cgroups: ", mountinfo.status().message()));
  }
  const CgroupMounts mounts = ParseCgroupMounts(*mountinfo, Controllers());
  std::vector<std::string> problems;
  std::unique_ptr<CgroupManager> manager;
  // v2: the root's children get memory, pids and cpu only if the root's subtree_control has
  // them; the root may enable them (the "no internal processes" rule spares the root).
  if (!mounts.v2.empty()) {
    const std::string control = mounts.v2 + "/cgroup.subtree_control";
    if (!HasControllers(control, Controllers())) {
      (void)WriteFile(control, kEnableControllers);
    }
    if (HasControllers(control, Controllers())) {
      manager.reset(new CgroupManager(options, CgroupVersion::kV2,
                                      {absl::StrCat(mounts.v2, "/", options.parent)}));
    } else {
      absl::StatusOr<std::string> have = ReadFile(mounts.v2 + "/cgroup.controllers");
      problems.push_back(absl::StrCat(
          "cgroup2 at ", mounts.v2, " does not delegate memory, pids and cpu (its controllers: \"",
          have.ok() ? std::string(absl::StripAsciiWhitespace(*have)) : "unreadable", "\")"));
    }
  } else {
    problems.push_back("no cgroup2 mount");
  }
  if (manager == nullptr) {
    std::vector<std::string> roots;
    std::vector<std::string> missing;
    for (size_t i = 0; i < Controllers().size(); ++i) {
      if (mounts.v1[i].empty()) {
        missing.push_back(Controllers()[i]);
      } else {
        roots.push_back(absl::StrCat(mounts.v1[i], "/", options.parent));
      }
    }
    if (!missing.empty()) {
      problems.push_back(absl::StrCat("no cgroup v1 hierarchy for ", absl::StrJoin(missing, ", ")));
      return absl::FailedPreconditionError(absl::StrJoin(problems, "; "));
    }
    manager.reset(new CgroupManager(options, CgroupVersion::kV1, std::move(roots)));
  }
  absl::Status made = manager->MakeInstance();
  if (!made.ok()) {
    problems.push_back(std::string(made.message()));
    return absl::FailedPreconditionError(absl::StrJoin(problems, "; "));
  }
  manager->Sweep();
  return manager;
}

absl::StatusOr<std::string> CgroupManager::InstanceNameOf(const std::string& proc_root,
                                                          int64_t pid) {
  const std::string base = pid == 0 ? proc_root + "/self" : absl::StrCat(proc_root, "/", pid);
  struct stat ns;
  if (stat((base + "/ns/pid").c_str(), &ns) != 0) {
    const int err = errno;
    return absl::NotFoundError(absl::StrCat("cannot stat ", base, "/ns/pid: ", Errno(err)));
  }
  ASSIGN_OR_RETURN(std::string stat_text, ReadFile(base + "/stat"));
  // Fields after the last ')' (comm may hold anything): state is the first, starttime the 20th.
  const size_t close = stat_text.rfind(')');
  if (close == std::string::npos) return absl::InternalError(base + "/stat is malformed");
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(stat_text).substr(close + 1), ' ', absl::SkipEmpty());
  if (fields.size() < 20) return absl::InternalError(base + "/stat is malformed");
  return absl::StrCat(ns.st_ino, "-", pid == 0 ? static_cast<int64_t>(getpid()) : pid, "-",
                      fields[19]);
}

absl::Status CgroupManager::MakeInstance() {
  ASSIGN_OR_RETURN(instance_, InstanceNameOf(options_.proc_root, 0));
  for (const std::string& root : roots_) {
    RETURN_IF_ERROR(MakeDir(root));
    if (version_ == CgroupVersion::kV2) {
      RETURN_IF_ERROR(WriteFile(root + "/cgroup.subtree_control", kEnableControllers));
    }
    const std::string dir = absl::StrCat(root, "/", instance_);
    RETURN_IF_ERROR(MakeDir(dir));
    instance_dirs_.push_back(dir);
    if (version_ == CgroupVersion::kV2) {
      RETURN_IF_ERROR(WriteFile(dir + "/cgroup.subtree_control", kEnableControllers));
    }
  }
  return absl::OkStatus();
}

void CgroupManager::Sweep() {
  const std::vector<absl::string_view> mine = absl::StrSplit(instance_, '-');
  for (const std::string& root : roots_) {
    for (const std::string& name : SubDirs(root, kSweepInstancesMax)) {
      if (name == instance_) continue;
      std::vector<absl::string_view> parts = absl::StrSplit(name, '-');
      int64_t pid = 0;
      if (parts.size() != 3 || !absl::SimpleAtoi(parts[1], &pid) || pid <= 0) continue;
      if (parts[0] != mine[0]) continue;  // Another pid namespace: its owner is not visible.
      absl::StatusOr<std::string> now = InstanceNameOf(options_.proc_root, pid);
      if (now.ok() && *now == name) continue;  // Its owner is alive.
      const std::string dir = absl::StrCat(root, "/", name);
      bool all = true;
      for (const std::string& leaf : SubDirs(dir, kSweepLeavesMax)) {
        if (!RemoveStaleDir(absl::StrCat(dir, "/", leaf))) {
          all = false;
          sweep_problems_.push_back(absl::StrCat(dir, "/", leaf, ": ", Errno(errno)));
        }
      }
      if (all && RemoveDir(dir)) {
        ++swept_;
      } else if (all) {
        sweep_problems_.push_back(absl::StrCat(dir, ": ", Errno(errno)));
      }
    }
  }
}

CgroupManager::~CgroupManager() {
  // Processes killed a moment ago (a plugin's own children, which PR_SET_PDEATHSIG kills when
  // it ends) leave their cgroup only once the kernel has torn them down: give them a bounded
  // while at shutdown. What is left is swept at the next start.
  for (int i = 0; i < kShutdownRetries && !pending_.empty(); ++i) {
    RetryPending();
    if (pending_.empty()) break;
    const struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, nullptr);
  }
  for (const std::string& dir : instance_dirs_) {
    for (const std::string& leaf : SubDirs(dir, kSweepLeavesMax)) {
      RemoveDir(absl::StrCat(dir, "/", leaf));
    }
    RemoveDir(dir);
  }
}

std::string CgroupManager::mechanism() const {
  return version_ == CgroupVersion::kV2 ? "cgroup_v2" : "cgroup_v1";
}

std::string CgroupManager::Describe() const {
  return absl::StrCat(version_ == CgroupVersion::kV2 ? "cgroup v2" : "cgroup v1",
                      ": memory, pids and cpu under ", absl::StrJoin(instance_dirs_, ", "));
}

absl::StatusOr<std::unique_ptr<PosixCgroup>> CgroupManager::Create(absl::string_view label,
                                                                   const GroupLimits& limits) {
  RetryPending();
  const std::string leaf = absl::StrCat(SafeLabel(label), "-", next_++);
  std::vector<std::string> dirs;
  std::vector<int> fds;
  auto fail = [&](absl::Status status) {
    for (int fd : fds) close(fd);
    for (const std::string& d : dirs) RemoveDir(d);
    return status;
  };
  for (const std::string& instance_dir : instance_dirs_) {
    const std::string dir = absl::StrCat(instance_dir, "/", leaf);
    if (mkdir(dir.c_str(), 0755) != 0) {
      const int err = errno;
      return fail(
          absl::InternalError(absl::StrCat("cannot create cgroup ", dir, ": ", Errno(err))));
    }
    dirs.push_back(dir);
  }
  auto write = [&](size_t which, const char* file, uint64_t value) -> absl::Status {
    return WriteFile(absl::StrCat(dirs[which], "/", file), absl::StrCat(value));
  };
  absl::Status set;
  if (version_ == CgroupVersion::kV2) {
    if (limits.memory_bytes) {
      set.Update(write(0, "memory.max", *limits.memory_bytes));
      // Without swap accounting a limited plugin would page out instead of being stopped.
      absl::Status swap = write(0, "memory.swap.max", 0);
      if (!absl::IsNotFound(swap)) set.Update(swap);
    }
    if (limits.pids) set.Update(write(0, "pids.max", *limits.pids));
    if (limits.cpu_weight) set.Update(write(0, "cpu.weight", *limits.cpu_weight));
  } else {
    if (limits.memory_bytes) {
      set.Update(write(0, "memory.limit_in_bytes", *limits.memory_bytes));
      absl::Status memsw = write(0, "memory.memsw.limit_in_bytes", *limits.memory_bytes);
      if (!absl::IsNotFound(memsw)) set.Update(memsw);
    }
    if (limits.pids) set.Update(write(1, "pids.max", *limits.pids));
    if (limits.cpu_weight)
      set.Update(write(2, "cpu.shares", CpuSharesForWeight(*limits.cpu_weight)));
  }
  if (!set.ok()) return fail(set);
  for (const std::string& dir : dirs) {
    const std::string procs = dir + "/cgroup.procs";
    const int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      return fail(absl::InternalError(absl::StrCat("cannot open ", procs, ": ", Errno(err))));
    }
    fds.push_back(fd);
  }
  return std::make_unique<PosixCgroup>(version_, std::move(dirs), std::move(fds));
}

void CgroupManager::Remove(std::unique_ptr<PosixCgroup> cgroup) {
  if (cgroup == nullptr) return;
  cgroup->CloseProcsFds();
  for (const std::string& dir : cgroup->dirs()) {
    if (!RemoveDir(dir)) {
      if (pending_.size() >= kPendingMax) pending_.erase(pending_.begin());
      pending_.push_back(dir);
    }
  }
  RetryPending();
}

void CgroupManager::RetryPending() {
  std::vector<std::string> left;
  for (const std::string& dir : pending_) {
    if (!RemoveDir(dir)) left.push_back(dir);
  }
  pending_ = std::move(left);
}

}  // namespace bulwark
