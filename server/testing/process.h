// Child processes for the server's tests: long-running ones such as `bulwark server` (output
// captured and watched line by line) and one-shot commands (stdout, stderr and exit code).
// Every wait is for an event (a line, EOF, an exit); the timeouts are hang guards only.
#ifndef BULWARK_SERVER_TESTING_PROCESS_H_
#define BULWARK_SERVER_TESTING_PROCESS_H_

#include <sys/types.h>

#include <condition_variable>
#include <csignal>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace bulwark::server_testing {

// $TEST_SRCDIR/<path>: "bulwark/server/bulwark", "npm_node_modules".
std::string Runfile(absl::string_view path);
// $TEST_TMPDIR, or /tmp outside Bazel.
std::string TestTmpDir();
// The absolute path of `program` in $PATH, or "" when it is not there.
std::string FindInPath(absl::string_view program);

struct ProcessResult {
  int exit_code = -1;  // 128 + signal number when a signal ended it.
  std::string out, err;
};

// Runs argv[0] (an absolute path) with exactly `env`, feeding `stdin_data`, until it exits.
// After `timeout` (a hang guard) it is killed and the result says so in `err`.
ProcessResult RunProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         const std::string& stdin_data = "",
                         absl::Duration timeout = absl::Seconds(120));

// A long-running child whose stdout and stderr go into one captured stream.
class ServerProcess {
 public:
  // CHECK-fails when the process cannot be started.
  ServerProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env);
  ~ServerProcess();  // Kills the process if it still runs.

  // Waits for a line of output containing `needle` and returns it; nullopt when the output
  // ended first or `timeout` passed.
  std::optional<std::string> WaitForLine(absl::string_view needle,
                                         absl::Duration timeout = absl::Seconds(60));
  // Sends `signal`, waits for the exit and then for the end of the output (so that output() is
  // complete); returns the exit code (128 + signal when a signal ended it), or -1 when it had
  // to be killed after `timeout`.
  int Stop(int signal = SIGTERM, absl::Duration timeout = absl::Seconds(60));
  // Everything the process printed so far.
  std::string output() const;
  pid_t pid() const { return pid_; }

 private:
  void ReadOutput();

  pid_t pid_ = -1;
  int pidfd_ = -1;
  int output_fd_ = -1;
  std::optional<int> exit_code_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::string output_ ABSL_GUARDED_BY(mu_);
  bool output_closed_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reader_;
};

}  // namespace bulwark::server_testing

#endif  // BULWARK_SERVER_TESTING_PROCESS_H_
