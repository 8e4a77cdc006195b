// The production process launcher: fork, then only async-signal-safe calls in the child up to
// execveat of the already-open executable; output and exit are observed on the event loop.
#include "base/env/posix/posix_process_launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/env/posix/posix_file_system.h"
#include "base/status/check.h"
#include "base/status/status_macros.h"

namespace bulwark {
namespace {

// glibc 2.36's <sys/pidfd.h> declares these without extern "C" (fixed in 2.37), so C++ code
// cannot link against it; call the system calls directly.
int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0u)); }

int PidfdSendSignal(int pidfd, int signal) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0u));
}

std::string ErrnoText(int err) {
  const char* desc = strerrordesc_np(err);
  return desc != nullptr ? std::string(desc) : absl::StrCat("errno ", err);
}

// Owns one descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// The steps of the child between fork and exec, reported to the parent with their errno.
enum ChildStep : int32_t {
  kStepPdeathsig = 1,
  kStepDup,
  kStepRlimit,       // + index into ChildPlan::limits
  kStepCgroup = 50,  // + index into ChildPlan::cgroup_fds
  kStepCloseRange = 100,
  kStepExec,
};

struct ChildReport {
  int32_t step;
  int32_t err;
};

struct ChildLimit {
  int resource;
  const char* name;
  struct rlimit value;
};

// Everything the child needs, prepared before fork so the child never allocates.
struct ChildPlan {
  pid_t parent_pid;
  int exe_fd;
  int stdin_fd;
  int stdout_fd;
  int stderr_fd;
  int report_fd;
  char* const* argv;
  char* const* envp;
  ChildLimit limits[4];
  int limit_count = 0;
  int cgroup_fds[4];  // cgroup.procs of the process's cgroup, one per hierarchy.
  int cgroup_fd_count = 0;
};

[[noreturn]] void ChildFail(const ChildPlan& plan, int32_t step, int err) {
  const ChildReport report{step, err};
  // Nothing can be done if this write fails; the parent then sees EOF and an unexplained exit.
  (void)!write(plan.report_fd, &report, sizeof(report));
  _exit(127);
}

// Runs in the forked child: async-signal-safe calls only (no allocation, no locks), because
// another thread of the parent may have held any lock at the moment of fork.
[[noreturn]] void ChildMain(const ChildPlan& plan) {
  // Every signal is blocked (the parent blocked them around fork), so no inherited handler can
  // run here. Reset dispositions first, then unblock. glibc refuses its two reserved signals
  // with EINVAL, which is fine: exec resets handled signals anyway; SIG_IGN would survive it.
  struct sigaction dfl;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(plan, kStepPdeathsig, errno);
  // The parent may have died before prctl took effect; then nobody would kill us.
  if (getppid() != plan.parent_pid) _exit(127);

  // Into its cgroup before it executes (and before dup2 may reuse the descriptors' numbers): "0" is
  // the writing process itself.
  for (int i = 0; i < plan.cgroup_fd_count; ++i) {
    if (write(plan.cgroup_fds[i], "0", 1) != 1) ChildFail(plan, kStepCgroup + i, errno);
  }

  // All sources are >= 3 (the parent made sure), so these never clobber each other, and dup2
  // leaves 0, 1 and 2 without close-on-exec.
  if (dup2(plan.stdin_fd, STDIN_FILENO) < 0) ChildFail(plan, kStepDup, errno);
  if (dup2(plan.stdout_fd, STDOUT_FILENO) < 0) ChildFail(plan, kStepDup, errno);
  if (dup2(plan.stderr_fd, STDERR_FILENO) < 0) ChildFail(plan, kStepDup, errno);

  for (int i = 0; i < plan.limit_count; ++i) {
    if (setrlimit(plan.limits[i].resource, &plan.limits[i].value) != 0) {
      ChildFail(plan, kStepRlimit + i, errno);
    }
  }

  // Whatever the parent opened without O_CLOEXEC (ours or another thread's) ends at exec; the
  // executable's descriptor stays open until then.
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) ChildFail(plan, kStepCloseRange, errno);

  syscall(SYS_execveat, plan.exe_fd, "", plan.argv, plan.envp, AT_EMPTY_PATH);
  ChildFail(plan, kStepExec, errno);
}

absl::Status SetupError(absl::string_view what, int err, const std::string& path) {
  std::string message = absl::StrCat("spawn ", path, ": ", what, ": ", ErrnoText(err));
  if (err == EMFILE || err == ENFILE || err == ENOMEM || err == EAGAIN) {
    return absl::ResourceExhaustedError(message);
  }
  return absl::InternalError(message);
}

const char* StepName(int32_t step) {
  switch (step) {
    case kStepPdeathsig:
      return "prctl(PR_SET_PDEATHSIG)";
    case kStepDup:
      return "dup2";
    case kStepCloseRange:
      return "close_range";
    default:
      return "an unknown step";
  }
}

absl::Status ChildError(const ChildReport& report, const ChildPlan& plan, const std::string& path) {
  const int err = report.err;
  const std::string text = ErrnoText(err);
  if (report.step == kStepExec) {
    switch (err) {
      case ENOEXEC:
        return absl::FailedPreconditionError(
            absl::StrCat("spawn ", path, ": is not an executable program (", text, ")"));
      case ENOENT:
        return absl::FailedPreconditionError(absl::StrCat(
            "spawn ", path, ": cannot be executed (", text,
            "): its interpreter is missing, or it is a script, which cannot run from an open "
            "descriptor; point the catalog at the interpreter instead"));
      case ETXTBSY:
        return absl::FailedPreconditionError(
            absl::StrCat("spawn ", path, ": the file is open for writing (", text, ")"));
      case EACCES:
      case EPERM:
        return absl::PermissionDeniedError(absl::StrCat("spawn ", path, ": permission denied (",
                                                        text, "); is its execute bit set?"));
      case EAGAIN:
      case EMFILE:
      case ENFILE:
      case ENOMEM:
        return absl::ResourceExhaustedError(absl::StrCat("spawn ", path, ": exec: ", text));
      case E2BIG:
        return absl::InvalidArgumentError(
            absl::StrCat("spawn ", path, ": argv and env are too large for exec (", text, ")"));
      default:
        return absl::InternalError(absl::StrCat("spawn ", path, ": exec: ", text));
    }
  }
  if (report.step >= kStepCgroup && report.step < kStepCgroup + plan.cgroup_fd_count) {
    return absl::InternalError(
        absl::StrCat("spawn ", path, ": joining its cgroup (cgroup.procs) before exec: ", text));
  }
  if (report.step >= kStepRlimit && report.step < kStepRlimit + plan.limit_count) {
    const ChildLimit& limit = plan.limits[report.step - kStepRlimit];
    std::string message = absl::StrCat("spawn ", path, ": setrlimit(", limit.name, ", ",
                                       limit.value.rlim_cur, "): ", text);
    if (err == EPERM) {
      return absl::PermissionDeniedError(absl::StrCat(message, " (above the parent's hard limit)"));
    }
    if (err == EINVAL) return absl::InvalidArgumentError(message);
    return absl::InternalError(message);
  }
  return SetupError(absl::StrCat("in the child before exec, ", StepName(report.step)), err, path);
}

// Moves `fd` to a number >= 3 (close-on-exec) so the child's dup2 onto 0..2 cannot clobber it.
absl::Status MoveAboveStdio(UniqueFd& fd, const std::string& path) {
  if (fd.get() >= 3) return absl::OkStatus();
  const int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) return SetupError("fcntl(F_DUPFD_CLOEXEC)", errno, path);
  fd.reset(moved);
  return absl::OkStatus();
}

// A close-on-exec pipe; read end first.
absl::Status MakePipe(UniqueFd& read_end, UniqueFd& write_end, const std::string& path) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return SetupError("pipe2", errno, path);
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  return absl::OkStatus();
}

absl::Status SetNonBlocking(int fd, const std::string& path) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return SetupError("fcntl(O_NONBLOCK)", errno, path);
  }
  return absl::OkStatus();
}

// The stricter of two optional limits.
std::optional<uint64_t> Stricter(const std::optional<uint64_t>& a,
                                 const std::optional<uint64_t>& b) {
  if (!a.has_value()) return b;
  if (!b.has_value()) return a;
  return std::min(*a, *b);
}

void AddLimit(ChildPlan& plan, int resource, const char* name,
              const std::optional<uint64_t>& value) {
  if (!value.has_value()) return;
  const rlim_t v = *value >= RLIM_INFINITY ? RLIM_INFINITY : static_cast<rlim_t>(*value);
  plan.limits[plan.limit_count++] = ChildLimit{resource, name, {v, v}};
}

// Blocks until `pid` is reaped; for children that failed before exec.
void ReapPid(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

ProcessExit ExitFromSiginfo(const siginfo_t& info) {
  ProcessExit exit;
  if (info.si_code == CLD_EXITED) {
    exit.code = info.si_status;
  } else {
    exit.signaled = true;
    exit.signal = info.si_status;
  }
  return exit;
}

}  // namespace

PosixProcess::PosixProcess(PosixEventLoop& loop, pid_t pid, int pidfd, int stdout_fd, int stderr_fd,
                           ProcessOptions options)
    : loop_(loop),
      pid_(pid),
      pidfd_(pidfd),
      out_{OutputStream::kStdout, stdout_fd, kNoWatch, LineSplitter(options.line_bytes_max)},
      err_{OutputStream::kStderr, stderr_fd, kNoWatch, LineSplitter(options.line_bytes_max)},
      shared_(std::make_shared<Shared>()) {
  shared_->on_line = std::move(options.on_line);
  shared_->on_exit = std::move(options.on_exit);
  WatchStream(out_);
  WatchStream(err_);
  pidfd_watch_ = loop_.WatchReadable(pidfd_, [this] { OnExitReadable(); });
}

void PosixProcess::AttachCgroup(CgroupManager* manager, std::unique_ptr<PosixCgroup> cgroup) {
  cgroups_ = manager;
  cgroup_ = std::move(cgroup);
}

void PosixProcess::ReleaseCgroup() {
  if (cgroups_ != nullptr && cgroup_ != nullptr) cgroups_->Remove(std::move(cgroup_));
}

PosixProcess::~PosixProcess() {
  shared_->alive = false;
  if (!exited_) {
    // SIGKILL cannot be caught, so the wait below is bounded by the kernel's teardown. A
    // failure means the child is already a zombie, which the wait reaps just the same.
    PidfdSendSignal(pidfd_, SIGKILL);
    siginfo_t info;
    while (waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_), &info, WEXITED) < 0 &&
           errno == EINTR) {
    }
  }
  CloseAll();
  ReleaseCgroup();
}

void PosixProcess::WatchStream(Stream& stream) {
  Stream* s = &stream;
  stream.watch =
      loop_.WatchReadable(stream.fd, [this, s] { ReadStream(*s, kPipeReadBytesPerEvent); });
}

bool PosixProcess::Deliver(Shared& shared, OutputStream which, const Lines& lines) {
  for (const auto& [line, truncated] : lines) {
    if (shared.on_line) shared.on_line(which, line, truncated);
    if (!shared.alive) return false;
  }
  return true;
}

bool PosixProcess::ReadStream(Stream& stream, size_t bytes_max) {
  std::shared_ptr<Shared> shared = shared_;  // Outlives `this` if a callback destroys it.
  char buffer[16 * 1024];
  size_t total = 0;
  while (total < bytes_max && stream.fd >= 0) {
    const ssize_t n = read(stream.fd, buffer, std::min(sizeof(buffer), bytes_max - total));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    // EOF, or a read error, which ends the stream just the same.
    if (n <= 0) return CloseStream(stream);
    total += static_cast<size_t>(n);
    Lines lines;
    stream.splitter.Feed(absl::string_view(buffer, static_cast<size_t>(n)),
                         [&lines](absl::string_view line, bool truncated) {
                           lines.emplace_back(std::string(line), truncated);
                         });
    if (!Deliver(*shared, stream.which, lines)) return false;
  }
  return true;
}

bool PosixProcess::CloseStream(Stream& stream) {
  std::shared_ptr<Shared> shared = shared_;
  Lines lines;
  stream.splitter.Finish([&lines](absl::string_view line, bool truncated) {
    lines.emplace_back(std::string(line), truncated);
  });
  loop_.Unwatch(stream.watch);
  stream.watch = kNoWatch;
  close(stream.fd);
  stream.fd = -1;
  return Deliver(*shared, stream.which, lines);
}

void PosixProcess::OnExitReadable() {
  std::shared_ptr<Shared> shared = shared_;
  // Everything the child wrote is in the pipes by now; deliver it before the exit.
  for (Stream* stream : {&out_, &err_}) {
    if (stream->fd < 0) continue;
    if (!ReadStream(*stream, kPipeDrainAfterExitBytesMax)) return;
    if (stream->fd >= 0 && !CloseStream(*stream)) return;
  }

  siginfo_t info;
  memset(&info, 0, sizeof(info));
  int rc;
  while ((rc = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_), &info, WEXITED)) <
             0 &&
         errno == EINTR) {
  }
  ProcessExit exit;
  if (rc == 0) {
    exit = ExitFromSiginfo(info);
  } else {
    // ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN, or a stray waitpid(-1)); the
    // status is lost. Report it as a failure rather than pretending success.
    exit.code = -1;
  }
  // The kernel's OOM killer sends SIGKILL; the cgroup's count says it was the limit.
  if (cgroup_ != nullptr && exit.signaled && exit.signal == SIGKILL)
    exit.limit = cgroup_->LimitHit();
  ReleaseCgroup();
  exited_ = true;
  loop_.Unwatch(pidfd_watch_);
  pidfd_watch_ = kNoWatch;
  close(pidfd_);
  pidfd_ = -1;
  // Moved out so that on_exit may destroy the handle (and runs at most once).
  auto on_exit = std::move(shared->on_exit);
  shared->on_exit = nullptr;
  if (on_exit) on_exit(exit);
  // `this` may be gone here.
}

void PosixProcess::CloseAll() {
  for (Stream* stream : {&out_, &err_}) {
    if (stream->fd < 0) continue;
    loop_.Unwatch(stream->watch);
    stream->watch = kNoWatch;
    close(stream->fd);
    stream->fd = -1;
  }
  if (pidfd_ >= 0) {
    loop_.Unwatch(pidfd_watch_);
    pidfd_watch_ = kNoWatch;
    close(pidfd_);
    pidfd_ = -1;
  }
}

absl::Status PosixProcess::Signal(int signal) {
  if (exited_) {
    return absl::FailedPreconditionError(
        absl::StrCat("signal ", signal, " to process ", pid_, ": it has already exited"));
  }
  if (PidfdSendSignal(pidfd_, signal) != 0) {
    const int err = errno;
    std::string message =
        absl::StrCat("signal ", signal, " to process ", pid_, ": ", ErrnoText(err));
    if (err == EINVAL) return absl::InvalidArgumentError(message);
    if (err == ESRCH) return absl::FailedPreconditionError(message);
    if (err == EPERM) return absl::PermissionDeniedError(message);
    return absl::InternalError(message);
  }
  return absl::OkStatus();
}

absl::Status PosixProcess::Kill() {
  if (exited_) return absl::OkStatus();
  return Signal(SIGKILL);
}

PosixProcessLauncher::PosixProcessLauncher(PosixEventLoop& loop) : loop_(loop) {}

std::string PosixProcessLauncher::LimitsMechanism() const {
  return cgroups_ != nullptr ? cgroups_->mechanism() : "rlimit";
}

absl::StatusOr<std::unique_ptr<Process>> PosixProcessLauncher::Spawn(
    const ExecutableFile& executable, ProcessOptions options) {
  RETURN_IF_ERROR(ValidateProcessOptions(options));
  const auto* exe = dynamic_cast<const PosixExecutableFile*>(&executable);
  CHECK(exe != nullptr) << "PosixProcessLauncher::Spawn: " << executable.path()
                        << " was not opened by PosixFileSystem::OpenForExec";
  const std::string& path = exe->path();

  std::vector<char*> argv;
  argv.reserve(options.argv.size() + 1);
  for (const std::string& arg : options.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(options.env.size() + 1);
  for (const std::string& entry : options.env) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);

  // A private duplicate only if the executable sits on 0..2, where dup2 would clobber it.
  UniqueFd exe_copy;
  // The sealed memfd copy (PosixExecutableFile): the bytes the caller hashed.
  ASSIGN_OR_RETURN(int exe_fd, exe->ExecFd());
  if (exe_fd < 3) {
    exe_copy.reset(fcntl(exe_fd, F_DUPFD_CLOEXEC, 3));
    if (exe_copy.get() < 0) return SetupError("fcntl(F_DUPFD_CLOEXEC)", errno, path);
    exe_fd = exe_copy.get();
  }

  UniqueFd dev_null(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (dev_null.get() < 0) return SetupError("open /dev/null", errno, path);
  UniqueFd out_read, out_write, err_read, err_write, report_read, report_write;
  RETURN_IF_ERROR(MakePipe(out_read, out_write, path));
  RETURN_IF_ERROR(MakePipe(err_read, err_write, path));
  RETURN_IF_ERROR(MakePipe(report_read, report_write, path));
  for (UniqueFd* fd : {&dev_null, &out_write, &err_write, &report_write}) {
    RETURN_IF_ERROR(MoveAboveStdio(*fd, path));
  }
  RETURN_IF_ERROR(SetNonBlocking(out_read.get(), path));
  RETURN_IF_ERROR(SetNonBlocking(err_read.get(), path));

  ChildPlan plan;
  plan.parent_pid = getpid();
  plan.exe_fd = exe_fd;
  plan.stdin_fd = dev_null.get();
  plan.stdout_fd = out_write.get();
  plan.stderr_fd = err_write.get();
  plan.report_fd = report_write.get();
  plan.argv = argv.data();
  plan.envp = envp.data();
  ResourceLimits rlimits = options.limits;
  std::unique_ptr<PosixCgroup> cgroup;
  if (!options.group_label.empty() && cgroups_ != nullptr) {
    absl::StatusOr<std::unique_ptr<PosixCgroup>> made =
        cgroups_->Create(options.group_label, options.group_limits);
    if (!made.ok()) {
      return absl::Status(made.status().code(),
                          absl::StrCat("spawn ", path, ": ", made.status().message()));
    }
    cgroup = *std::move(made);
    CHECK(cgroup->procs_fds().size() <= std::size(plan.cgroup_fds));
    for (int fd : cgroup->procs_fds()) plan.cgroup_fds[plan.cgroup_fd_count++] = fd;
  } else {
    // The fallback: the group's limits as the process's own rlimits.
    rlimits.address_space_bytes =
        Stricter(rlimits.address_space_bytes, options.group_limits.memory_bytes);
    rlimits.processes = Stricter(rlimits.processes, options.group_limits.pids);
  }
  AddLimit(plan, RLIMIT_AS, "RLIMIT_AS", rlimits.address_space_bytes);
  AddLimit(plan, RLIMIT_CPU, "RLIMIT_CPU", rlimits.cpu_seconds);
  AddLimit(plan, RLIMIT_NOFILE, "RLIMIT_NOFILE", rlimits.open_files);
  AddLimit(plan, RLIMIT_NPROC, "RLIMIT_NPROC", rlimits.processes);

  // Block every signal across fork so that no handler of ours runs in the child before it
  // has reset the dispositions.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  const pid_t pid = fork();
  if (pid == 0) ChildMain(plan);
  const int fork_err = errno;
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) return SetupError("fork", fork_err, path);

  dev_null.reset();
  out_write.reset();
  err_write.reset();
  report_write.reset();

  // EOF without a report means exec succeeded (the report pipe closed on exec).
  ChildReport report;
  size_t got = 0;
  while (got < sizeof(report)) {
    const ssize_t n =
        read(report_read.get(), reinterpret_cast<char*>(&report) + got, sizeof(report) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (cgroup != nullptr) cgroup->CloseProcsFds();
  if (got > 0) {
    ReapPid(pid);
    if (cgroup != nullptr) cgroups_->Remove(std::move(cgroup));
    if (got < sizeof(report)) {
      return absl::InternalError(
          absl::StrCat("spawn ", path, ": the child failed before exec with a garbled report"));
    }
    return ChildError(report, plan, path);
  }

  const int pidfd = PidfdOpen(pid);
  if (pidfd < 0) {
    const int err = errno;
    kill(pid, SIGKILL);
    ReapPid(pid);
    if (cgroup != nullptr) cgroups_->Remove(std::move(cgroup));
    return SetupError("pidfd_open", err, path);
  }
  auto process = std::make_unique<PosixProcess>(loop_, pid, pidfd, out_read.release(),
                                                err_read.release(), std::move(options));
  if (cgroup != nullptr) process->AttachCgroup(cgroups_, std::move(cgroup));
  return process;
}

}  // namespace bulwark
