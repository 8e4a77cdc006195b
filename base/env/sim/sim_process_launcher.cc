// Simulated processes driven by the event loop (see sim_process_launcher.h).
#include "base/env/sim/sim_process_launcher.h"

#include <csignal>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/env/line_splitter.h"
#include "base/status/check.h"
#include "base/status/status_macros.h"

namespace bulwark::sim {

namespace {
constexpr absl::string_view kMagic = "#!bulwark-sim ";
constexpr size_t kHeaderBytesMax = 256;
}  // namespace

// Shared by the handle, the launcher's table and every task the process scheduled, so a task
// that runs after the process ended can see that it did.
struct SimProcessState : std::enable_shared_from_this<SimProcessState> {
  SimProcessState(std::map<int64_t, std::shared_ptr<SimProcessState>>* live_table,
                  Executor& executor, Clock& clock, Random& random, int64_t pid,
                  ProcessOptions options)
      : live_table(live_table),
        executor(executor),
        clock(clock),
        random(random),
        pid(pid),
        options(std::move(options)),
        on_line(std::make_shared<LineCallback>(std::move(this->options.on_line))),
        stdout_lines(this->options.line_bytes_max),
        stderr_lines(this->options.line_bytes_max) {}

  // Ends the process: flushes output, then reports the exit after every line. Everything the
  // exit task needs (the program, its context, the callbacks) moves out of the state, so that
  // if the executor drops the task (its own owner died) nothing is left behind: the callbacks
  // usually hold the handle's owner, which holds the handle, which holds this state.
  void End(const ProcessExit& how, const std::shared_ptr<SimProcessState>& self) {
    if (!alive) return;
    alive = false;
    if (live_table != nullptr) live_table->erase(pid);
    stdout_lines.Finish(
        [&](absl::string_view l, bool t) { Deliver(self, OutputStream::kStdout, l, t); });
    stderr_lines.Finish(
        [&](absl::string_view l, bool t) { Deliver(self, OutputStream::kStderr, l, t); });
    on_line.reset();  // The deliveries just posted hold their own references.
    executor.Post([self, how, context = std::move(context), program = std::move(program),
                   on_exit = std::move(options.on_exit)]() mutable {
      // The program may have been running when it ended; it is destroyed only now, outside it.
      context.reset();
      program.reset();
      if (self->attached && on_exit) on_exit(how);
    });
  }

  void Deliver(const std::shared_ptr<SimProcessState>& self, OutputStream stream,
               absl::string_view line, bool truncated) {
    executor.Post([self, callback = on_line, stream, text = std::string(line), truncated] {
      if (self->attached && callback != nullptr && *callback) (*callback)(stream, text, truncated);
    });
  }

  using LineCallback =
      absl::AnyInvocable<void(OutputStream stream, absl::string_view line, bool truncated)>;

  std::map<int64_t, std::shared_ptr<SimProcessState>>* live_table;
  Executor& executor;
  Clock& clock;
  Random& random;
  const int64_t pid;
  ProcessOptions options;  // Its on_line moved to `on_line`; its on_exit moves out at the end.
  std::shared_ptr<LineCallback> on_line;  // Null once ended.
  LineSplitter stdout_lines;
  LineSplitter stderr_lines;
  std::unique_ptr<SimProgram> program;
  std::unique_ptr<SimProcessContext> context;
  bool alive = true;
  bool hung = false;
  bool attached = true;  // False once the handle is gone: no more callbacks.
};

namespace {

// Delivers `signal` as a real kernel would: asynchronously, SIGKILL always fatal.
void DeliverSignal(const std::shared_ptr<SimProcessState>& state, int signal) {
  state->executor.Post([state, signal] {
    if (!state->alive) return;
    if (signal != SIGKILL) {
      if (state->hung || state->program == nullptr) return;
      if (!state->program->OnSignal(*state->context, signal)) return;
    }
    state->End(ProcessExit{true, 0, signal}, state);
  });
}

class SimProcess final : public Process {
 public:
  explicit SimProcess(std::shared_ptr<SimProcessState> state) : state_(std::move(state)) {}

  ~SimProcess() override {
    state_->attached = false;
    state_->End(ProcessExit{true, 0, SIGKILL}, state_);
  }

  int64_t pid() const override { return state_->pid; }
  bool exited() const override { return !state_->alive; }

  absl::Status Signal(int signal) override {
    if (!state_->alive) {
      return absl::FailedPreconditionError(
          absl::StrCat("signal process ", state_->pid, ": it has already exited"));
    }
    DeliverSignal(state_, signal);
    return absl::OkStatus();
  }

  absl::Status Kill() override {
    if (state_->alive) DeliverSignal(state_, SIGKILL);
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<SimProcessState> state_;
};

}  // namespace

int64_t SimProcessContext::pid() const { return state_->pid; }
const std::vector<std::string>& SimProcessContext::argv() const { return state_->options.argv; }
const std::vector<std::string>& SimProcessContext::env() const { return state_->options.env; }
const ResourceLimits& SimProcessContext::limits() const { return state_->options.limits; }
Clock& SimProcessContext::clock() { return state_->clock; }
Random& SimProcessContext::random() { return state_->random; }

std::optional<std::string> SimProcessContext::GetEnv(absl::string_view name) const {
  for (const std::string& entry : state_->options.env) {
    if (entry.size() > name.size() && entry[name.size()] == '=' && absl::StartsWith(entry, name)) {
      return entry.substr(name.size() + 1);
    }
  }
  return std::nullopt;
}

void SimProcessContext::Write(OutputStream stream, absl::string_view bytes) {
  if (!state_->alive) return;
  LineSplitter& splitter =
      stream == OutputStream::kStdout ? state_->stdout_lines : state_->stderr_lines;
  std::shared_ptr<SimProcessState> self = state_->shared_from_this();
  splitter.Feed(bytes, [&](absl::string_view line, bool truncated) {
    state_->Deliver(self, stream, line, truncated);
  });
}

void SimProcessContext::Exit(int code) {
  state_->End(ProcessExit{false, code, 0}, state_->shared_from_this());
}

void SimProcessContext::Post(Task task) { PostAfter(absl::ZeroDuration(), std::move(task)); }

TimerId SimProcessContext::PostAfter(absl::Duration delay, Task task) {
  return state_->executor.PostAfter(
      delay, [state = state_->shared_from_this(), task = std::move(task)]() mutable {
        if (state->alive && !state->hung) task();
      });
}

bool SimProgram::OnSignal(SimProcessContext&, int) { return true; }

SimProcessLauncher::SimProcessLauncher(Executor& executor, Clock& clock, Random& random)
    : executor_(executor), clock_(clock), random_(random) {}

SimProcessLauncher::~SimProcessLauncher() { KillAll(); }

void SimProcessLauncher::RegisterProgram(const std::string& name, SimProgramFactory factory) {
  programs_[name] = std::move(factory);
}

std::string SimProcessLauncher::ExecutableContents(absl::string_view name) {
  return absl::StrCat(kMagic, name, "\n");
}

absl::StatusOr<std::unique_ptr<Process>> SimProcessLauncher::Spawn(const ExecutableFile& executable,
                                                                   ProcessOptions options) {
  RETURN_IF_ERROR(ValidateProcessOptions(options));
  // ReadAt and Stat are not const on the interface: reading does not change the file.
  ExecutableFile& file = const_cast<ExecutableFile&>(executable);
  ASSIGN_OR_RETURN(FileInfo info, file.Stat());
  if ((info.mode & 0111) == 0) {
    return absl::PermissionDeniedError(absl::StrCat("spawn ", executable.path(),
                                                    ": the file is not executable (mode ",
                                                    absl::StrCat(absl::Hex(info.mode)), ")"));
  }
  char header[kHeaderBytesMax];
  ASSIGN_OR_RETURN(size_t n, file.ReadAt(0, absl::MakeSpan(header, sizeof(header))));
  absl::string_view text(header, n);
  const size_t newline = text.find('\n');
  std::string name;
  if (absl::StartsWith(text, kMagic) && newline != absl::string_view::npos) {
    name = std::string(text.substr(kMagic.size(), newline - kMagic.size()));
  }
  auto program = programs_.find(name);
  if (program == programs_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("spawn ", executable.path(),
                     ": not an executable program (no registered simulated program)"));
  }
  const int64_t pid = next_pid_++;
  ++spawn_count_;
  auto state = std::make_shared<SimProcessState>(&live_, executor_, clock_, random_, pid,
                                                 std::move(options));
  state->program = program->second();
  state->context = std::make_unique<SimProcessContext>(state.get());
  live_[pid] = state;
  executor_.PostAfter(start_latency_, [state] {
    if (state->alive && !state->hung) state->program->Start(*state->context);
  });
  return std::unique_ptr<Process>(new SimProcess(std::move(state)));
}

absl::Status SimProcessLauncher::Crash(int64_t pid, int signal) {
  auto it = live_.find(pid);
  if (it == live_.end()) return absl::NotFoundError(absl::StrCat("crash: no live process ", pid));
  std::shared_ptr<SimProcessState> state = it->second;
  state->End(ProcessExit{true, 0, signal}, state);
  return absl::OkStatus();
}

absl::Status SimProcessLauncher::Hang(int64_t pid) {
  auto it = live_.find(pid);
  if (it == live_.end()) return absl::NotFoundError(absl::StrCat("hang: no live process ", pid));
  it->second->hung = true;
  return absl::OkStatus();
}

void SimProcessLauncher::KillAll() {
  std::vector<std::shared_ptr<SimProcessState>> victims;
  for (const auto& [pid, state] : live_) victims.push_back(state);
  for (const std::shared_ptr<SimProcessState>& state : victims) {
    state->End(ProcessExit{true, 0, SIGKILL}, state);
  }
}

std::vector<int64_t> SimProcessLauncher::LivePids() const {
  std::vector<int64_t> pids;
  for (const auto& [pid, state] : live_) pids.push_back(pid);
  return pids;
}

size_t SimProcessLauncher::live_count() const { return live_.size(); }

}  // namespace bulwark::sim
