#include "benchmarks/measure/rounds.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

extern char** environ;

namespace bulwark::measure {

std::vector<size_t> ArmOrder(size_t arms, int round) {
  std::vector<size_t> order;
  for (size_t i = 0; i < arms; ++i) order.push_back((i + static_cast<size_t>(round)) % arms);
  return order;
}

absl::StatusOr<std::string> RunChild(const ChildCommand& command) {
  if (command.argv.empty()) return absl::InvalidArgumentError("RunChild: empty argv");
  // Everything the child needs is built before fork (no allocation after it).
  std::vector<char*> argv;
  for (const std::string& a : command.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // This process's environment with `extra_env` added (an entry replaces one of the same name).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const absl::string_view entry = *e;
    bool replaced = false;
    for (const std::string& extra : command.extra_env) {
      const size_t eq = extra.find('=');
      if (eq != std::string::npos && absl::StartsWith(entry, extra.substr(0, eq + 1))) {
        replaced = true;
      }
    }
    if (!replaced) env_strings.emplace_back(entry);
  }
  for (const std::string& extra : command.extra_env) env_strings.push_back(extra);
  std::vector<char*> envp;
  for (const std::string& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (command.cpu.has_value()) {
    if (*command.cpu < 0 || *command.cpu >= CPU_SETSIZE) {
      return absl::InvalidArgumentError(absl::StrCat("RunChild: no CPU ", *command.cpu));
    }
    CPU_SET(*command.cpu, &mask);
  }
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("RunChild: pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out[0]);
    ::close(out[1]);
    return absl::InternalError("RunChild: fork failed");
  }
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    if (command.cpu.has_value() && ::sched_setaffinity(0, sizeof(mask), &mask) != 0) _exit(126);
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  ::close(out[1]);
  std::string stdout_text;
  absl::Status problem;
  const auto deadline =
      std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(command.hang_guard);
  char buffer[16384];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      problem = absl::DeadlineExceededError(
          absl::StrCat(command.argv[0], " still ran after the hang guard (",
                       absl::FormatDuration(command.hang_guard), "); killed"));
      break;
    }
    pollfd p{out[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    const ssize_t n = ::read(out[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (stdout_text.size() + static_cast<size_t>(n) > command.stdout_bytes_max) {
      problem = absl::ResourceExhaustedError(absl::StrCat(
          command.argv[0], " printed more than ", command.stdout_bytes_max, " bytes; killed"));
      break;
    }
    stdout_text.append(buffer, static_cast<size_t>(n));
  }
  ::close(out[0]);
  if (!problem.ok()) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!problem.ok()) return problem;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return stdout_text;
  const std::string how = WIFEXITED(status) ? absl::StrCat("exit status ", WEXITSTATUS(status))
                                            : absl::StrCat("signal ", WTERMSIG(status));
  return absl::InternalError(absl::StrCat(
      "`", absl::StrJoin(command.argv, " "), "` failed (", how,
      WIFEXITED(status) && WEXITSTATUS(status) == 126 ? ": sched_setaffinity refused the CPU" : "",
      WIFEXITED(status) && WEXITSTATUS(status) == 127 ? ": exec failed" : "",
      "); its stderr is above"));
}

}  // namespace bulwark::measure
