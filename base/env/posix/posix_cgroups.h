// Cgroups for plugin processes (PosixProcessLauncher): finding a usable hierarchy (cgroup v2
// with memory, pids and cpu delegated, else the v1 memory, pids and cpu hierarchies), one cgroup
// per process with its GroupLimits, its removal when the process ends, and the sweep of cgroups
// a host left behind when it died.
//
// Layout, in each hierarchy used: <root>/<parent>/<instance>/<label>-<n>, where <instance> is
// "<pid namespace inode>-<host pid>-<host start time in clock ticks>". The pid namespace and the
// start time tell a dead owner from a live one (or from a recycled pid) at the next start; an
// instance of another pid namespace is never touched (its owner cannot be seen from here).
#ifndef BULWARK_BASE_ENV_POSIX_POSIX_CGROUPS_H_
#define BULWARK_BASE_ENV_POSIX_POSIX_CGROUPS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/env/process_launcher.h"

namespace bulwark {

enum class CgroupVersion { kV1, kV2 };

struct CgroupOptions {
  // Where the mounted hierarchies are found.
  std::string mountinfo_path = "/proc/self/mountinfo";
  // Where owners' liveness is read (<proc_root>/<pid>/stat, <proc_root>/self/ns/pid).
  std::string proc_root = "/proc";
  // The directory under each hierarchy's root that holds every host instance. One path
  // component of letters, digits, '-', '_' and '.'.
  std::string parent = "bulwark";
};

// One process's cgroup: a directory in each hierarchy used. Not thread-safe.
class PosixCgroup {
 public:
  PosixCgroup(CgroupVersion version, std::vector<std::string> dirs, std::vector<int> procs_fds);
  // Closes the descriptors; the directories stay (CgroupManager::Remove removes them).
  ~PosixCgroup();
  PosixCgroup(const PosixCgroup&) = delete;
  PosixCgroup& operator=(const PosixCgroup&) = delete;

  // cgroup.procs of every directory, open for writing: the child writes "0" to each before it
  // executes, so it never runs outside its cgroup.
  const std::vector<int>& procs_fds() const { return procs_fds_; }
  // The directories, the memory hierarchy's first.
  const std::vector<std::string>& dirs() const { return dirs_; }
  // "memory" when the kernel OOM-killed a process of this cgroup (v1 memory.oom_control or v2
  // memory.events: oom_kill > 0), else "". Read before Remove.
  std::string LimitHit() const;
  // The OOM kill count; 0 when it cannot be read.
  uint64_t OomKills() const;
  // Closes the cgroup.procs descriptors (once the child has executed or failed).
  void CloseProcsFds();

 private:
  const CgroupVersion version_;
  const std::vector<std::string> dirs_;
  std::vector<int> procs_fds_;
};

// Finds the hierarchy, creates and removes cgroups. One per host process; thread-compatible
// (the launcher calls it from its loop thread).
class CgroupManager {
 public:
  // Detects a usable hierarchy: v2 when the cgroup2 mount delegates memory, pids and cpu (they
  // are in its root's cgroup.subtree_control, or can be enabled there), else v1 when the memory,
  // pids and cpu controllers are mounted; then creates <root>/<parent>/<instance> in each and
  // sweeps the instances of dead owners. Errors (the caller falls back to rlimits and logs the
  // message, which names what is missing): kFailedPrecondition no usable hierarchy, or it is not
  // writable (not root, a read-only mount); kInvalidArgument a bad `parent`.
  static absl::StatusOr<std::unique_ptr<CgroupManager>> Open(CgroupOptions options);

  // Removes this instance's directories (and any cgroup still pending removal).
  ~CgroupManager();
  CgroupManager(const CgroupManager&) = delete;
  CgroupManager& operator=(const CgroupManager&) = delete;

  CgroupVersion version() const { return version_; }
  // "cgroup_v2" or "cgroup_v1".
  std::string mechanism() const;
  // E.g. "cgroup v1: memory, pids and cpu under /sys/fs/cgroup/{memory,pids,cpu}/bulwark/
  // 4026531836-812-5573".
  std::string Describe() const;
  const std::string& instance() const { return instance_; }
  // This instance's directory in each hierarchy (memory's first).
  const std::vector<std::string>& instance_dirs() const { return instance_dirs_; }
  // What the sweep at Open did: stale instances removed, and problems (cgroups it could not
  // remove), for the log.
  int swept() const { return swept_; }
  const std::vector<std::string>& sweep_problems() const { return sweep_problems_; }

  // Makes <instance>/<label>-<n> with `limits` (memory: v1 memory.limit_in_bytes and
  // memory.memsw.limit_in_bytes, v2 memory.max and memory.swap.max 0; pids: pids.max; cpu
  // weight: v2 cpu.weight, v1 cpu.shares = weight * 1024 / 100) and opens its cgroup.procs.
  // Errors name the file: kInvalidArgument a value the kernel refuses (e.g. a memory limit
  // below what is already charged), kInternal anything else.
  absl::StatusOr<std::unique_ptr<PosixCgroup>> Create(absl::string_view label,
                                                      const GroupLimits& limits);

  // Removes `cgroup`'s directories once its process has ended. Anything still inside (a
  // grandchild that outlived the plugin) is killed first; a directory that cannot be removed
  // yet is retried at the next Create or Remove and at destruction.
  void Remove(std::unique_ptr<PosixCgroup> cgroup);
  // Directories waiting for a retry.
  size_t pending() const { return pending_.size(); }

  // The instance name for `pid` (for tests of the sweep): "<pidns>-<pid>-<start time>", or an
  // error when /proc cannot tell.
  static absl::StatusOr<std::string> InstanceNameOf(const std::string& proc_root, int64_t pid);

 private:
  CgroupManager(CgroupOptions options, CgroupVersion version, std::vector<std::string> roots);
  absl::Status MakeInstance();
  void Sweep();
  void RetryPending();

  const CgroupOptions options_;
  const CgroupVersion version_;
  const std::vector<std::string> roots_;  // <mount>/<parent>, memory first (v1: memory, pids, cpu).
  std::string instance_;
  std::vector<std::string> instance_dirs_;
  uint64_t next_ = 0;
  std::vector<std::string> pending_;  // Leaf directories to rmdir.
  int swept_ = 0;
  std::vector<std::string> sweep_problems_;
};

// Parses /proc/self/mountinfo text: the mount point of the cgroup2 hierarchy ("" if none) and
// of each v1 controller asked for ("" when not mounted), in `controllers` order.
struct CgroupMounts {
  std::string v2;
  std::vector<std::string> v1;
};
CgroupMounts ParseCgroupMounts(absl::string_view mountinfo,
                               const std::vector<std::string>& controllers);

// v1 cpu.shares for a v2 cpu.weight (100 <-> 1024), within v1's 2..262144.
uint64_t CpuSharesForWeight(uint64_t weight);

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_POSIX_POSIX_CGROUPS_H_
