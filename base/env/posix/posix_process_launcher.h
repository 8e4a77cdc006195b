// PosixProcessLauncher: the production ProcessLauncher. fork + execveat of an already-open
// executable, output pipes read on the event loop, exit learned through a pidfd.
#ifndef BULWARK_BASE_ENV_POSIX_POSIX_PROCESS_LAUNCHER_H_
#define BULWARK_BASE_ENV_POSIX_POSIX_PROCESS_LAUNCHER_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/env/line_splitter.h"
#include "base/env/posix/posix_cgroups.h"
#include "base/env/posix/posix_event_loop.h"
#include "base/env/process_launcher.h"

namespace bulwark {

// Bytes drained from one output pipe per readable event, and at most after the process exits
// (a grandchild that inherited the pipe could otherwise keep the drain going forever).
inline constexpr size_t kPipeReadBytesPerEvent = 64 * 1024;
inline constexpr size_t kPipeDrainAfterExitBytesMax = 1024 * 1024;

// A child started by PosixProcessLauncher. Loop thread only. See Process for the contract.
// Output lines and the exit are delivered straight from descriptor callbacks on the loop
// thread. If something else in the process reaps the child first (SIGCHLD set to SIG_IGN, a
// stray waitpid(-1)), its status is lost and on_exit reports exit code -1.
class PosixProcess final : public Process {
 public:
  // Use PosixProcessLauncher::Spawn. Takes ownership of the descriptors.
  PosixProcess(PosixEventLoop& loop, pid_t pid, int pidfd, int stdout_fd, int stderr_fd,
               ProcessOptions options);
  // If the process is still running: SIGKILL through the pidfd and a blocking waitid to reap
  // it (it cannot outlive SIGKILL by more than the kernel's teardown). Then unwatches and closes
  // every descriptor, so no callback runs afterwards. Safe to run from inside this handle's own
  // on_line or on_exit callback.
  ~PosixProcess() override;

  PosixProcess(const PosixProcess&) = delete;
  PosixProcess& operator=(const PosixProcess&) = delete;

  // The child's pid in the parent's pid namespace.
  int64_t pid() const override { return pid_; }
  // True once the exit has been collected (just before on_exit runs).
  bool exited() const override { return exited_; }
  // pidfd_send_signal: never signals a recycled pid. kFailedPrecondition after exit,
  // kInvalidArgument for an invalid signal number.
  absl::Status Signal(int signal) override;
  // Signal(SIGKILL), but OK after exit.
  absl::Status Kill() override;

  // Gives the handle the process's cgroup: at exit it reads whether the kernel killed the
  // process at its memory limit (ProcessExit::limit), then hands it to `manager` for removal.
  void AttachCgroup(CgroupManager* manager, std::unique_ptr<PosixCgroup> cgroup);

 private:
  // Callbacks live apart from the handle so that a callback destroying the handle does not
  // destroy itself mid-call, and so the dispatch code can see that the handle is gone.
  struct Shared {
    absl::AnyInvocable<void(OutputStream, absl::string_view, bool)> on_line;
    absl::AnyInvocable<void(const ProcessExit&)> on_exit;
    bool alive = true;
  };
  struct Stream {
    OutputStream which;
    int fd = -1;
    WatchId watch = kNoWatch;
    LineSplitter splitter;
  };

  using Lines = std::vector<std::pair<std::string, bool>>;  // (line, truncated)

  // Delivers `lines` in order; false if a callback destroyed the handle.
  static bool Deliver(Shared& shared, OutputStream which, const Lines& lines);
  void WatchStream(Stream& stream);
  // Reads up to `bytes_max` bytes (until EAGAIN) and delivers complete lines; at EOF or a read
  // error also finishes and closes the stream. Returns false if the handle was destroyed by a
  // callback (the caller must return without touching `this`).
  bool ReadStream(Stream& stream, size_t bytes_max);
  // Finishes the splitter, unwatches and closes. Same return convention as ReadStream.
  bool CloseStream(Stream& stream);
  void OnExitReadable();
  void CloseAll();
  void ReleaseCgroup();

  PosixEventLoop& loop_;
  const pid_t pid_;
  int pidfd_;
  WatchId pidfd_watch_ = kNoWatch;
  Stream out_;
  Stream err_;
  bool exited_ = false;
  std::shared_ptr<Shared> shared_;
  CgroupManager* cgroups_ = nullptr;
  std::unique_ptr<PosixCgroup> cgroup_;
};

// Starts processes for one PosixEventLoop; every callback runs on that loop's thread, and Spawn
// must be called on it too. The child is killed (PR_SET_PDEATHSIG) when the *thread* that
// spawned it exits, which for a loop-thread caller is when the process or loop thread ends.
class PosixProcessLauncher final : public ProcessLauncher {
 public:
  // `loop` must outlive the launcher and every Process it returns.
  explicit PosixProcessLauncher(PosixEventLoop& loop);

  // ProcessLauncher::Spawn. REQUIRES (CHECK): `executable` is a PosixExecutableFile.
  // The child gets /dev/null on stdin, pipes on stdout and stderr, default signal dispositions
  // and an empty signal mask, `options.limits` as both soft and hard limits, and no other
  // descriptor. Errors, all naming the executable's path:
  //   kInvalidArgument     from ValidateProcessOptions, or a limit the kernel rejects (EINVAL)
  //   kFailedPrecondition  not a program (ENOEXEC), its interpreter is missing or it is a
  //                        script (ENOENT: scripts cannot run from a close-on-exec descriptor),
  //                        open for writing (ETXTBSY)
  //   kPermissionDenied    no execute permission (EACCES, EPERM), or raising a hard limit
  //   kResourceExhausted   fork, pipe, pidfd or exec hit a process, memory or descriptor limit
  //   kInternal            anything else, naming the failed step
  //
  // With cgroups (UseCgroups) a process whose options carry a group_label gets a cgroup of its
  // own, limited by group_limits, which the child joins before it executes; it is removed when
  // the process ends. Without, group_limits fall back to rlimits (memory_bytes as RLIMIT_AS,
  // pids as RLIMIT_NPROC, each the stricter with options.limits; cpu_weight is not enforced).
  // Cgroup errors: kInvalidArgument a limit the kernel refuses, kInternal the rest, naming the
  // cgroup file.
  absl::StatusOr<std::unique_ptr<Process>> Spawn(const ExecutableFile& executable,
                                                 ProcessOptions options) override;

  // "cgroup_v2", "cgroup_v1" or "rlimit".
  std::string LimitsMechanism() const override;

  // Enforce group limits through `cgroups` (not owned; must outlive the launcher and every
  // Process). nullptr: the rlimit fallback. Set before the first Spawn.
  void UseCgroups(CgroupManager* cgroups) { cgroups_ = cgroups; }

 private:
  PosixEventLoop& loop_;
  CgroupManager* cgroups_ = nullptr;
};

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_POSIX_POSIX_PROCESS_LAUNCHER_H_
