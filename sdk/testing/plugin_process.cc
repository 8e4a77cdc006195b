// fork/exec of a plugin binary for tests; only async-signal-safe calls between fork and exec.
#include "sdk/testing/plugin_process.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace bulwark::sdk::testing {
namespace {

// Runs in a forked child: wires the descriptors and executes `exec_fd` (when >= 0) or `path`,
// or exits 127.
[[noreturn]] void ExecPlugin(int devnull, int out, int err, int exec_fd, const char* path,
                             char* const argv[], char* const envp[]) {
  ::dup2(devnull, STDIN_FILENO);
  ::dup2(out, STDOUT_FILENO);
  ::dup2(err, STDERR_FILENO);
  if (exec_fd >= 0) {
    ::syscall(SYS_execveat, exec_fd, "", argv, envp, AT_EMPTY_PATH);
  } else {
    ::execve(path, argv, envp);
  }
  ::_exit(127);
}

int PollMillis(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1 << 30));
}

ProcessExitStatus Decode(int status) {
  ProcessExitStatus exit;
  if (WIFSIGNALED(status)) {
    exit.signaled = true;
    exit.signal = WTERMSIG(status);
  } else {
    exit.code = WEXITSTATUS(status);
  }
  return exit;
}

}  // namespace

ShortTempDir::ShortTempDir() {
  char tmpl[] = "/tmp/bwXXXXXX";
  if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
}

ShortTempDir::~ShortTempDir() {
  if (path_.empty()) return;
  for (const std::string& entry : Entries()) ::unlink(absl::StrCat(path_, "/", entry).c_str());
  ::rmdir(path_.c_str());
}

std::vector<std::string> ShortTempDir::Entries() const {
  std::vector<std::string> entries;
  DIR* dir = ::opendir(path_.c_str());
  if (dir == nullptr) return entries;
  while (dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") entries.push_back(name);
  }
  ::closedir(dir);
  std::sort(entries.begin(), entries.end());
  return entries;
}

absl::StatusOr<std::unique_ptr<PluginProcess>> PluginProcess::Start(
    const std::string& binary, const std::vector<std::string>& env, bool via_intermediate,
    const std::vector<std::string>& args, int exec_fd) {
  // dup2 onto 0..2 would replace a descriptor there before the exec.
  if (exec_fd >= 0 && exec_fd <= STDERR_FILENO) {
    return absl::InvalidArgumentError(
        absl::StrCat("exec_fd ", exec_fd, " is a standard stream; pass a descriptor >= 3"));
  }
  int out[2], err[2], pid_pipe[2] = {-1, -1}, control[2] = {-1, -1};
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 ||
      (via_intermediate &&
       (::pipe2(pid_pipe, O_CLOEXEC) != 0 || ::pipe2(control, O_CLOEXEC) != 0))) {
    return absl::InternalError(absl::StrCat("pipe2: ", strerror(errno)));
  }
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::vector<std::string> env_copy = env;
  for (const char* name : {"ASAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS"}) {
    if (const char* value = ::getenv(name); value != nullptr) {
      env_copy.push_back(absl::StrCat(name, "=", value));
    }
  }
  std::string path = binary;
  std::vector<std::string> args_copy = args;
  std::vector<char*> argv = {path.data()};
  for (std::string& arg : args_copy) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& entry : env_copy) envp.push_back(entry.data());
  envp.push_back(nullptr);

  auto process = std::unique_ptr<PluginProcess>(new PluginProcess());
  process->start_time_ = absl::Now();
  const pid_t child = ::fork();
  if (child < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (child == 0) {
    if (!via_intermediate)
      ExecPlugin(devnull, out[1], err[1], exec_fd, path.c_str(), argv.data(), envp.data());
    // The intermediate: start the plugin, report its pid, wait to be released.
    ::close(control[1]);
    const pid_t plugin = ::fork();
    if (plugin == 0)
      ExecPlugin(devnull, out[1], err[1], exec_fd, path.c_str(), argv.data(), envp.data());
    // Only the plugin may hold the write ends, so the test sees EOF when the plugin exits.
    ::close(out[1]);
    ::close(err[1]);
    (void)!::write(pid_pipe[1], &plugin, sizeof(plugin));
    char byte;
    while (::read(control[0], &byte, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  ::close(out[1]);
  ::close(err[1]);
  if (devnull >= 0) ::close(devnull);
  if (via_intermediate) {
    ::close(pid_pipe[1]);
    ::close(control[0]);
    process->intermediate_pid_ = child;
    process->intermediate_control_fd_ = control[1];
    pid_t plugin = -1;
    const ssize_t n = ::read(pid_pipe[0], &plugin, sizeof(plugin));
    ::close(pid_pipe[0]);
    if (n != sizeof(plugin) || plugin <= 0) {
      process->StartReaders(out[0], err[0]);
      return absl::InternalError("the intermediate process could not start the plugin");
    }
    process->pid_ = plugin;
  } else {
    process->pid_ = child;
  }
  process->pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, process->pid_, 0));
  process->StartReaders(out[0], err[0]);
  if (process->pidfd_ < 0)
    return absl::InternalError(absl::StrCat("pidfd_open: ", strerror(errno)));
  return process;
}

void PluginProcess::StartReaders(int stdout_fd, int stderr_fd) {
  auto reader = [this](int fd, std::string* sink, bool* eof) {
    char buffer[4096];
    while (true) {
      const ssize_t n = ::read(fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      std::lock_guard<std::mutex> lock(mu_);
      if (n <= 0) {
        *eof = true;
        changed_.notify_all();
        break;
      }
      if (sink == &stdout_ && !first_line_time_.has_value() &&
          ::memchr(buffer, '\n', static_cast<size_t>(n)) != nullptr) {
        first_line_time_ = absl::Now();
      }
      sink->append(buffer, static_cast<size_t>(n));
      changed_.notify_all();
    }
    ::close(fd);
  };
  stdout_reader_ = std::thread(reader, stdout_fd, &stdout_, &stdout_eof_);
  stderr_reader_ = std::thread(reader, stderr_fd, &stderr_, &stderr_eof_);
}

PluginProcess::~PluginProcess() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    if (pidfd_ >= 0) {
      pollfd pfd{pidfd_, POLLIN, 0};
      ::poll(&pfd, 1, -1);
    }
    ::waitpid(pid_, nullptr, 0);  // ECHILD when it is the intermediate's child: harmless.
  }
  ReleaseIntermediate();
  if (stdout_reader_.joinable()) stdout_reader_.join();
  if (stderr_reader_.joinable()) stderr_reader_.join();
  if (pidfd_ >= 0) ::close(pidfd_);
}

absl::StatusOr<std::string> PluginProcess::ReadFirstLine(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const bool done = changed_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [this] {
    return stdout_.find('\n') != std::string::npos || stdout_eof_;
  });
  const size_t newline = stdout_.find('\n');
  if (newline != std::string::npos) return stdout_.substr(0, newline);
  if (!done) return absl::DeadlineExceededError("no handshake line in time");
  return absl::UnavailableError(
      absl::StrCat("stdout ended without a line; stderr: ", stderr_.substr(0, 2000)));
}

absl::StatusOr<ProcessExitStatus> PluginProcess::WaitForExit(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  if (!reaped_) {
    pollfd pfd{pidfd_, POLLIN, 0};
    int ready;
    do {
      ready = ::poll(&pfd, 1, PollMillis(deadline));
    } while (ready < 0 && errno == EINTR);
    if (ready <= 0) return absl::DeadlineExceededError("the plugin did not exit in time");
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) {
      return absl::InternalError(absl::StrCat("waitpid: ", strerror(errno)));
    }
    reaped_ = true;
    exit_ = Decode(status);
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!changed_.wait_until(lock, absl::ToChronoTime(deadline),
                             [this] { return stdout_eof_ && stderr_eof_; })) {
      return absl::DeadlineExceededError("the plugin's output did not end in time");
    }
  }
  return exit_;
}

void PluginProcess::ReleaseIntermediate() {
  if (intermediate_control_fd_ >= 0) {
    ::close(intermediate_control_fd_);
    intermediate_control_fd_ = -1;
  }
  if (intermediate_pid_ > 0) {
    ::waitpid(intermediate_pid_, nullptr, 0);
    intermediate_pid_ = -1;
  }
}

int PluginProcess::Signal(int signal_number) { return ::kill(pid_, signal_number); }

std::optional<absl::Time> PluginProcess::first_line_time() const {
  std::lock_guard<std::mutex> lock(mu_);
  return first_line_time_;
}

std::string PluginProcess::stdout_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stdout_;
}

std::string PluginProcess::stderr_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stderr_;
}

}  // namespace bulwark::sdk::testing
