// Child processes for the end-to-end tests (see process.h).
#include "server/testing/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status/check.h"

namespace bulwark::server_testing {
namespace {

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0u)); }

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// argv/envp arrays for execve that point into `strings`.
std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// Forks and execs; the child's fds 0, 1, 2 become `in`, `out`, `err`.
pid_t Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, int in,
            int out, int err) {
  std::vector<char*> args = CStrings(argv), envp = CStrings(env);
  pid_t pid = fork();
  CHECK(pid >= 0) << "fork: " << std::strerror(errno);
  if (pid == 0) {
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    for (int fd = 3; fd < 1024; ++fd) close(fd);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  return pid;
}

int MillisLeft(absl::Time deadline) {
  return static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
}

}  // namespace

std::string Runfile(absl::string_view path) {
  const char* dir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(dir != nullptr ? dir : ".", "/", path);
}

std::string TestTmpDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

std::string FindInPath(absl::string_view program) {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = absl::StrCat(dir, "/", program);
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

ProcessResult RunProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         const std::string& stdin_data, absl::Duration timeout) {
  int in[2], out[2], err[2];
  CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0);
  const pid_t pid = Spawn(argv, env, in[0], out[1], err[1]);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  const int pidfd = PidfdOpen(pid);
  CHECK(pidfd >= 0);

  ProcessResult result;
  size_t written = 0;
  int stdin_fd = in[1];
  if (stdin_data.empty()) {
    close(stdin_fd);
    stdin_fd = -1;
  }
  const absl::Time deadline = absl::Now() + timeout;
  bool killed = false;
  int open_outputs = 2;
  while (open_outputs > 0) {
    pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {stdin_fd, POLLOUT, 0}};
    const int n = poll(fds, stdin_fd >= 0 ? 3 : 2, MillisLeft(deadline));
    if (n == 0 && !killed) {
      syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0u);
      killed = true;
      result.err += "\n[e2e: killed after the hang guard's timeout]\n";
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[16 << 10];
      const ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        (i == 0 ? result.out : result.err).append(buf, got);
      } else {
        close(i == 0 ? out[0] : err[0]);
        (i == 0 ? out[0] : err[0]) = -1;
        --open_outputs;
      }
    }
    if (stdin_fd >= 0 && fds[2].revents != 0) {
      const ssize_t put = write(stdin_fd, stdin_data.data() + written, stdin_data.size() - written);
      if (put > 0) written += put;
      if (put <= 0 || written == stdin_data.size()) {
        close(stdin_fd);
        stdin_fd = -1;
      }
    }
  }
  if (stdin_fd >= 0) close(stdin_fd);
  int status = 0;
  waitpid(pid, &status, 0);
  close(pidfd);
  result.exit_code = ExitCodeOf(status);
  return result;
}

ServerProcess::ServerProcess(const std::vector<std::string>& argv,
                             const std::vector<std::string>& env) {
  int out[2];
  CHECK(pipe2(out, O_CLOEXEC) == 0);
  const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_ = Spawn(argv, env, devnull, out[1], out[1]);
  close(devnull);
  close(out[1]);
  output_fd_ = out[0];
  pidfd_ = PidfdOpen(pid_);
  CHECK(pidfd_ >= 0);
  reader_ = std::thread([this] { ReadOutput(); });
}

ServerProcess::~ServerProcess() {
  if (!exit_code_.has_value()) Stop(SIGKILL);
  reader_.join();
  close(output_fd_);
  close(pidfd_);
}

void ServerProcess::ReadOutput() {
  char buf[16 << 10];
  for (;;) {
    const ssize_t got = read(output_fd_, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    std::lock_guard<std::mutex> lock(mu_);
    if (got <= 0) {
      output_closed_ = true;
      changed_.notify_all();
      return;
    }
    output_.append(buf, got);
    changed_.notify_all();
  }
}

std::optional<std::string> ServerProcess::WaitForLine(absl::string_view needle,
                                                      absl::Duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(timeout);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    size_t line_start = 0;
    for (size_t nl; (nl = output_.find('\n', line_start)) != std::string::npos;
         line_start = nl + 1) {
      absl::string_view line(output_.data() + line_start, nl - line_start);
      if (line.find(needle) != absl::string_view::npos) return std::string(line);
    }
    if (output_closed_) return std::nullopt;
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) return std::nullopt;
  }
}

int ServerProcess::Stop(int signal, absl::Duration timeout) {
  if (exit_code_.has_value()) return *exit_code_;
  syscall(SYS_pidfd_send_signal, pidfd_, signal, nullptr, 0u);
  pollfd fd = {pidfd_, POLLIN, 0};
  int ready;
  do {
    ready = poll(&fd, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  } while (ready < 0 && errno == EINTR);
  if (ready == 0) syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0u);
  int status = 0;
  waitpid(pid_, &status, 0);
  exit_code_ = ready == 0 ? -1 : ExitCodeOf(status);
  // The last lines may still be in the pipe: wait for EOF so that output() has them. (A child of
  // the process that inherited the pipe can delay EOF; the timeout is a hang guard.)
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [this] { return output_closed_; });
  return *exit_code_;
}

std::string ServerProcess::output() const {
  std::lock_guard<std::mutex> lock(mu_);
  return output_;
}

}  // namespace bulwark::server_testing
