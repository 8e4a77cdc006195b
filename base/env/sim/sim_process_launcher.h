// Simulated processes: "programs" are C++ objects driven by the simulated event loop, started
// from executable files in the simulated file system, with the same ProcessLauncher contract as
// real processes (output lines with a cap, exit after output, signals, death with the parent).
#ifndef BULWARK_BASE_ENV_SIM_SIM_PROCESS_LAUNCHER_H_
#define BULWARK_BASE_ENV_SIM_SIM_PROCESS_LAUNCHER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/env/clock.h"
#include "base/env/executor.h"
#include "base/env/process_launcher.h"
#include "base/env/random.h"

namespace bulwark::sim {

struct SimProcessState;

// What a running simulated program can do. Valid while the program object lives.
class SimProcessContext {
 public:
  // The state owns its context, so a plain pointer cannot dangle.
  explicit SimProcessContext(SimProcessState* state) : state_(state) {}

  int64_t pid() const;
  const std::vector<std::string>& argv() const;
  const std::vector<std::string>& env() const;
  // The value of environment variable `name`, if set.
  std::optional<std::string> GetEnv(absl::string_view name) const;
  const ResourceLimits& limits() const;

  // Writes raw bytes to stdout or stderr; the host sees them as lines.
  void Write(OutputStream stream, absl::string_view bytes);
  // Ends the process with `code`. Tasks the program scheduled never run afterwards.
  void Exit(int code);

  // Schedules work for the program. Such tasks run only while the process is alive and not
  // hung, so a crash or hang stops the program mid-flight, as it would a real one.
  void Post(Task task);
  TimerId PostAfter(absl::Duration delay, Task task);

  Clock& clock();
  Random& random();

 private:
  SimProcessState* state_;
};

// A simulated program. Start runs once, on the loop, shortly after Spawn.
class SimProgram {
 public:
  virtual ~SimProgram() = default;
  virtual void Start(SimProcessContext& context) = 0;
  // Called for every signal but SIGKILL. Return true to die of it (the default), false to
  // ignore it (a plugin ignoring SIGINT, say).
  virtual bool OnSignal(SimProcessContext& context, int signal);
};

using SimProgramFactory = std::function<std::unique_ptr<SimProgram>()>;

class SimProcessLauncher final : public ProcessLauncher {
 public:
  // All references must outlive the launcher.
  SimProcessLauncher(Executor& executor, Clock& clock, Random& random);
  ~SimProcessLauncher() override;

  // Makes `name` runnable: an executable file whose contents are ExecutableContents(name)
  // starts a fresh program from `factory`.
  void RegisterProgram(const std::string& name, SimProgramFactory factory);

  // The contents of an executable file that runs program `name`.
  static std::string ExecutableContents(absl::string_view name);

  // Errors as in ProcessLauncher, plus kFailedPrecondition for a file that names no registered
  // program (the simulated ENOEXEC) and kPermissionDenied without an execute bit.
  absl::StatusOr<std::unique_ptr<Process>> Spawn(const ExecutableFile& executable,
                                                 ProcessOptions options) override;

  // Faults. The process ends at once, killed by `signal`. kNotFound if no such live process.
  absl::Status Crash(int64_t pid, int signal = 11 /* SIGSEGV */);
  // The process stops making progress: its tasks no longer run and only SIGKILL ends it.
  absl::Status Hang(int64_t pid);
  // The parent died: every live process gets SIGKILL, as PR_SET_PDEATHSIG does.
  void KillAll();

  // Live (not yet exited) processes, by pid ascending.
  std::vector<int64_t> LivePids() const;
  size_t live_count() const;
  uint64_t spawn_count() const { return spawn_count_; }

  // Time from Spawn to the program's Start.
  void set_start_latency(absl::Duration latency) { start_latency_ = latency; }

 private:
  Executor& executor_;
  Clock& clock_;
  Random& random_;
  std::map<std::string, SimProgramFactory> programs_;
  std::map<int64_t, std::shared_ptr<SimProcessState>> live_;
  int64_t next_pid_ = 1000;
  uint64_t spawn_count_ = 0;
  absl::Duration start_latency_ = absl::Milliseconds(1);
};

}  // namespace bulwark::sim

#endif  // BULWARK_BASE_ENV_SIM_SIM_PROCESS_LAUNCHER_H_
