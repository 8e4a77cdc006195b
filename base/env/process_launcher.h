// The ProcessLauncher seam: starting plugin processes, reading their output line by line,
// learning when they exit, and signalling them. Simulated processes implement the same contract.
#ifndef BULWARK_BASE_ENV_PROCESS_LAUNCHER_H_
#define BULWARK_BASE_ENV_PROCESS_LAUNCHER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/env/file_system.h"

namespace bulwark {

enum class OutputStream { kStdout, kStderr };

absl::string_view OutputStreamName(OutputStream stream);

// How a process ended.
struct ProcessExit {
  ProcessExit() = default;
  ProcessExit(bool signaled_in, int code_in, int signal_in, std::string limit_in = "")
      : signaled(signaled_in), code(code_in), signal(signal_in), limit(std::move(limit_in)) {}

  bool signaled = false;  // Killed by `signal` rather than exiting with `code`.
  int code = 0;
  int signal = 0;

  // Non-empty when the kernel killed it at a limit of its resource group (GroupLimits):
  // "memory" for an OOM kill in its cgroup. Launchers without groups never set it.
  std::string limit;

  bool success() const { return !signaled && code == 0; }
  // "exit code 3", "killed by signal 9 (SIGKILL)", or with `limit` "killed by signal 9 (SIGKILL)
  // at its memory limit".
  std::string ToString() const;
};

// Limits applied to the child before it executes (setrlimit in production). Unset means
// inherited from the parent.
struct ResourceLimits {
  std::optional<uint64_t> address_space_bytes;  // RLIMIT_AS
  std::optional<uint64_t> cpu_seconds;          // RLIMIT_CPU
  std::optional<uint64_t> open_files;           // RLIMIT_NOFILE
  std::optional<uint64_t> processes;            // RLIMIT_NPROC
};

// Limits on the process and everything it starts, as one group (a cgroup of its own in
// production). A launcher that cannot enforce them as a group folds memory_bytes into
// RLIMIT_AS and pids into RLIMIT_NPROC (see ProcessLauncher::LimitsMechanism).
struct GroupLimits {
  std::optional<uint64_t>
      memory_bytes;                    // Memory charged to the group; the kernel OOM-kills past it.
  std::optional<uint64_t> pids;        // Processes and threads in the group.
  std::optional<uint64_t> cpu_weight;  // Relative CPU share, cgroup v2's scale 1..10000.
};

// Default and largest accepted output line length. A line longer than the cap is delivered
// truncated to the cap with `truncated` set, and the rest of it is discarded, so a child can
// never make the parent buffer without bound.
inline constexpr size_t kLineBytesDefault = 64 * 1024;
inline constexpr size_t kLineBytesMax = 1024 * 1024;
inline constexpr size_t kArgvEntriesMax = 4096;
inline constexpr size_t kEnvEntriesMax = 4096;

struct ProcessOptions {
  // argv[0] is the name the program sees; the executable itself is the ExecutableFile.
  // REQUIRES: non-empty.
  std::vector<std::string> argv;
  // The complete environment as "KEY=value"; nothing is inherited from the parent.
  std::vector<std::string> env;
  size_t line_bytes_max = kLineBytesDefault;
  ResourceLimits limits;
  // Non-empty: the process gets a resource group of its own whose name starts with this label
  // (letters, digits, '-', '_' and '.' kept; anything else becomes '_'), limited by
  // `group_limits`. Empty: no group; `group_limits` must then be unset.
  std::string group_label;
  GroupLimits group_limits;

  // Called on the executor for every complete output line (without its '\n'), in the order the
  // child wrote them per stream. A final line without '\n' is delivered when the stream ends.
  absl::AnyInvocable<void(OutputStream stream, absl::string_view line, bool truncated)> on_line;
  // Called once on the executor when the process has ended, after every output line.
  absl::AnyInvocable<void(const ProcessExit& exit)> on_exit;
};

// A running (or ended) child process. Destroying the handle kills the process if it is still
// running and reaps it, and no callback runs after that: a handle never leaves an orphan or a
// zombie behind. Methods must be called on the executor's thread.
class Process {
 public:
  virtual ~Process() = default;

  // The operating system's process id (or the simulator's), for messages and metrics.
  virtual int64_t pid() const = 0;

  // True once the process has ended (before or when on_exit runs).
  virtual bool exited() const = 0;

  // Sends `signal` (e.g. SIGTERM). kFailedPrecondition if the process has already exited.
  virtual absl::Status Signal(int signal) = 0;

  // Sends SIGKILL. OK (and a no-op) if the process has already exited.
  virtual absl::Status Kill() = 0;
};

class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;

  // Starts `executable` with `options`. The child inherits no descriptor but its stdin (empty),
  // stdout and stderr pipes; it is killed when the parent dies; it runs `executable` itself,
  // never a file looked up by path again. Errors:
  //   kInvalidArgument     empty argv, too many argv/env entries, a bad line cap, an env entry
  //                        without '=', or an embedded NUL
  //   kFailedPrecondition  the file cannot be executed (not a program, wrong format)
  //   kPermissionDenied    the file is not executable
  //   kResourceExhausted   process or descriptor limits reached
  virtual absl::StatusOr<std::unique_ptr<Process>> Spawn(const ExecutableFile& executable,
                                                         ProcessOptions options) = 0;

  // How GroupLimits are enforced: "cgroup v2", "cgroup v1" or "rlimit" (the fallback; also
  // launchers that enforce nothing, like the simulator's, which ignores limits).
  virtual std::string LimitsMechanism() const { return "rlimit"; }
};

// Checks the parts of `options` every launcher validates the same way.
absl::Status ValidateProcessOptions(const ProcessOptions& options);

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_PROCESS_LAUNCHER_H_
