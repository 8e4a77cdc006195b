// Test support for running a plugin binary as a real child process: a short socket directory,
// fork/exec with an exact environment, the handshake line from stdout, stderr collection, and
// waiting for the exit with a deadline (a pidfd, no sleeping).
#ifndef BULWARK_SDK_TESTING_PLUGIN_PROCESS_H_
#define BULWARK_SDK_TESTING_PLUGIN_PROCESS_H_

#include <sys/types.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace bulwark::sdk::testing {

// A fresh directory "/tmp/bw<random>" for unix sockets ($TEST_TMPDIR is often too long for a
// 107-byte socket path), removed with its entries on destruction.
class ShortTempDir {
 public:
  ShortTempDir();
  ~ShortTempDir();
  ShortTempDir(const ShortTempDir&) = delete;
  ShortTempDir& operator=(const ShortTempDir&) = delete;

  const std::string& path() const { return path_; }
  // Names of the entries in the directory now, sorted.
  std::vector<std::string> Entries() const;

 private:
  std::string path_;
};

struct ProcessExitStatus {
  bool signaled = false;
  int code = 0;    // When !signaled.
  int signal = 0;  // When signaled.
};

class PluginProcess {
 public:
  // Starts `binary` with exactly `env` ("K=V") plus this process's sanitizer settings
  // (ASAN_OPTIONS, LSAN_OPTIONS, TSAN_OPTIONS, UBSAN_OPTIONS, so a sanitized plugin uses the
  // same suppressions), stdin /dev/null, stdout and stderr captured.
  // With `via_intermediate`, the plugin is the child of a short-lived intermediate process
  // (see ReleaseIntermediate), for parent-death tests; the test process must then be a child
  // subreaper (prctl PR_SET_CHILD_SUBREAPER) to reap the plugin.
  // `args` are argv[1..] (argv[0] is `binary`).
  // With `exec_fd` (>= 3), the child executes that open descriptor (execveat with AT_EMPTY_PATH,
  // as bulwark's launcher does with its sealed memfd copy) instead of the file at `binary`, which
  // is then only argv[0]. The descriptor stays the caller's.
  static absl::StatusOr<std::unique_ptr<PluginProcess>> Start(
      const std::string& binary, const std::vector<std::string>& env, bool via_intermediate = false,
      const std::vector<std::string>& args = {}, int exec_fd = -1);
  // Kills (SIGKILL) and reaps the plugin if it is still running.
  ~PluginProcess();

  pid_t pid() const { return pid_; }

  // The first stdout line, without '\n'. Errors: kDeadlineExceeded, or kUnavailable when
  // stdout ended first (the process exited without a handshake).
  absl::StatusOr<std::string> ReadFirstLine(absl::Duration timeout);

  // Waits until the plugin exited and its output ended. kDeadlineExceeded on timeout.
  absl::StatusOr<ProcessExitStatus> WaitForExit(absl::Duration timeout);

  // Lets the intermediate process exit (and reaps it), orphaning the plugin. Only with
  // via_intermediate.
  void ReleaseIntermediate();

  int Signal(int signal_number);

  // When Start forked the plugin (just before exec), and when the first '\n' arrived on its
  // stdout (nullopt until then): the handshake latency as the host sees it.
  absl::Time start_time() const { return start_time_; }
  std::optional<absl::Time> first_line_time() const;

  // Everything read so far.
  std::string stdout_text() const;
  std::string stderr_text() const;

 private:
  PluginProcess() = default;
  void StartReaders(int stdout_fd, int stderr_fd);

  pid_t pid_ = -1;
  absl::Time start_time_;
  int pidfd_ = -1;
  pid_t intermediate_pid_ = -1;
  int intermediate_control_fd_ = -1;
  bool reaped_ = false;
  ProcessExitStatus exit_;

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::string stdout_;                         // Guarded by mu_.
  std::string stderr_;                         // Guarded by mu_.
  bool stdout_eof_ = false;                    // Guarded by mu_.
  bool stderr_eof_ = false;                    // Guarded by mu_.
  std::optional<absl::Time> first_line_time_;  // Guarded by mu_.
  std::thread stdout_reader_;
  std::thread stderr_reader_;
};

}  // namespace bulwark::sdk::testing

#endif  // BULWARK_SDK_TESTING_PLUGIN_PROCESS_H_
