// P1 side by side, measured so that the claim holds: bulwark's host (PluginClient +
// GrpcPluginTransport on a PosixEventLoop) driving the C++ SDK kv plugin, against go-plugin
// v1.0.1's host driving the Go plugin (examples/goplugin's `-bench`).
//
// Each pair runs as fresh child processes once per round (this binary with --arm=bulwark, and the
// Go host), the pairs interleaved round by round (AB, BA, AB, ...), in two CPU placements: host
// and plugin pinned to the same CPU, and to different CPUs (sched_setaffinity on the host between
// fork and exec, and on the thread that forks the plugin). Per metric the table gives each
// pair's median over rounds and the median of the per-round ratios with their min-max range.
//
//   bazel run -c opt //benchmarks:plugin_protocol_benchmark [-- --rounds=5 --samples=2000 ...]
//   ... -- --quick                      one round, few samples: proves every row still prints
//   ... -- --mounts=1,100,1000          one plugin process serving N mounts: USS and echo p50
//   ... -- --launch_steps [--hash_every_launch]   each launch step's share (and its CPU)
//   ... -- --calls=N --op=echo64        N calls and exit (plugin_callgrind.sh counts them)
//   ... -- --calls=N ... --callgrind_marks   and mark the N calls for callgrind (both processes)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/env/posix/posix_env.h"
#include "base/log/log.h"
#include "base/memory/malloc_tuning.h"
#include "base/status/status_macros.h"
#include "base/storage/in_memory_storage.h"
#include "benchmarks/measure/placement.h"
#include "benchmarks/measure/proc_memory.h"
#include "benchmarks/measure/record.h"
#include "benchmarks/measure/rounds.h"
#include "benchmarks/measure/stats.h"
#include "core/catalog/artifact.h"
#include "core/catalog/plugin_entry.h"
#include "core/lifecycle/host_services.h"
#include "core/rpc/grpc_loop_queue.h"
#include "core/rpc/grpc_transport.h"
#include "core/rpc/plugin_client.h"
#include "proto/vault/backend.pb.h"

namespace bulwark::bench {
namespace {

// --- Options -------------------------------------------------------------------------------

// Named bounds for the command-line knobs (a typo must not run for a day).
constexpr int kRoundsMax = 25;
constexpr int kLaunchesMax = 100;
constexpr int kSamplesMax = 100000;
constexpr int kDurationMsMax = 60000;
constexpr int kMountsMax = 5000;
constexpr int kLoopSpinUsMax = 10000;
// Deadline of one benchmark call and of one launch (hang guards).
constexpr absl::Duration kCallTimeout = absl::Seconds(10);
constexpr absl::Duration kLaunchTimeout = absl::Seconds(30);

struct Options {
  std::string kv_plugin;  // The C++ SDK plugin artifact.
  std::string go_host;    // examples/goplugin:host.
  std::string go_plugin;  // examples/goplugin:plugin.
  // The kv plugin with the SDK's largest instance cap and a long broker dial deadline, for
  // --mounts.
  std::string many_mounts_plugin;
  int rounds = 5;
  int launches = 10;
  int warmup = 200;
  int samples = 2000;
  int duration_ms = 3000;
  bool quick = false;
  // "same-cpu", "split-cpus" or both (empty).
  std::string placement;
  // Child mode: "bulwark" runs the bulwark pair once and prints its metrics as JSON.
  std::string arm;
  // In the bulwark arm: the CPU the plugin starts on (-1: unpinned).
  int plugin_cpu = -1;
  // --mounts=1,100,1000: the multiplexing run instead of the comparison.
  std::vector<int> mounts;
  // --calls=N: launch, set up one mount, make --warmup then N calls of --op, stop (the
  // callgrind run: benchmarks/plugin_callgrind.sh counts instructions per call).
  int calls = 0;
  std::string op = "echo64";
  // Command prefix the plugin runs under in --calls mode (--plugin_wrapper=/usr/bin/valgrind,
  // --tool=callgrind,...): the wrapper is exec'd with these arguments and the plugin's path.
  std::vector<std::string> plugin_wrapper;
  // --execve_launcher: launch with ExecveLauncher (the host under valgrind).
  bool execve_launcher = false;
  // --launch_steps: the start-up breakdown instead of the comparison: per round, --launches
  // launches of bulwark's pair timed step by step, then go-plugin's launches, in each placement
  // (docs/performance.md, "Start-up cut and idle private memory").
  bool launch_steps = false;
  // --launch_steps: hash the artifact at every launch instead of as the catalog does.
  bool hash_every_launch = false;
  // --callgrind_marks: in --calls mode, zero callgrind's counters of both processes after the
  // warm-up and dump them after the N calls (`vgdb --pid=PID zero|dump`; the plugin wrapper
  // must pass --vgdb-prefix=, and the host's valgrind the same), so the dumps hold the N calls.
  bool callgrind_marks = false;
  // --loop_spin_us=N: the host's event loop spins up to N microseconds before parking
  // (PosixEventLoop::SetSpinBeforePark), in the bulwark arm and in --calls mode.
  int loop_spin_us = 0;
  // --loop_cq=0|1: the host's loop drains gRPC's completions of its calls itself
  // (GrpcTransportOptions::loop_queue, core/rpc/grpc_loop_queue.h), in the bulwark arm and in
  // --calls mode; 0: completions are posted to the loop from gRPC's threads.
  int loop_cq = 0;
  // Extra environment for every plugin bulwark's host launches (--plugin_env=K=V, repeatable),
  // for experiments such as MALLOC_ARENA_MAX or GRPC_POLL_STRATEGY.
  std::vector<std::string> plugin_env;
  // --record=FILE: the comparison's tables as a table record (measure/record.h) for
  // docs/performance.md.
  std::string record;
  std::vector<std::string> flags;  // The flags given, for the record's command.
  // --smaps_dir=DIR (with --mounts): at each size, the plugin's /proc/PID/smaps and the targets
  // of its descriptors are copied to DIR/mounts-N-round-R.{smaps,fds} when its memory is read,
  // to see where the memory per mount goes.
  std::string smaps_dir;
  // --dedicated_host_connections: the host does not share one broker connection among a
  // plugin's mounts (go-plugin's way: a server and a plugin connection per mount), for the
  // before/after of docs/performance.md, "Multiplexed mounts".
  bool dedicated_host_connections = false;
};

Options g_options;
// The comparison's rows, kept for --record.
measure::TableRecord g_record;

// The request data of the Go host's -bench: a JSON document of exactly n bytes.
std::string PayloadData(size_t n) {
  constexpr absl::string_view kEmpty = R"({"value":""})";
  return absl::StrCat(R"({"value":")", std::string(n - kEmpty.size(), 'x'), R"("})");
}

double MicrosSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
      .count();
}

// One pair's figures from one round: metric name -> value.
using Metrics = std::map<std::string, double>;

std::string MetricName(absl::string_view op, int payload) {
  return absl::StrCat(op,
                      payload >= 1024 ? absl::StrCat(payload / 1024, "k") : absl::StrCat(payload));
}

constexpr int kPayloads[] = {64, 65536};
constexpr const char* kOps[] = {"echo", "write", "read"};
constexpr int kCallers[] = {1, 8};

// --- A launcher valgrind can run ---------------------------------------------------------------

// For counting the host under valgrind only (--execve_launcher): valgrind 3.19 emulates neither
// pidfd_open nor execveat on a descriptor, which the production launcher uses. This one forks,
// execs the file by its path, reads the pipes on the loop and learns of the exit with waitpid
// once both pipes have closed. Not a production launcher: no resource limits, no line cap.
class ExecveProcess final : public Process {
 public:
  ExecveProcess(PosixEventLoop& loop, pid_t pid, int out, int err, ProcessOptions options)
      : loop_(loop), pid_(pid), options_(std::move(options)) {
    fds_[0] = out;
    fds_[1] = err;
    for (int i = 0; i < 2; ++i) {
      watches_[i] = loop_.WatchReadable(fds_[i], [this, i] { OnReadable(i); });
    }
  }
  ~ExecveProcess() override {
    for (int i = 0; i < 2; ++i) CloseStream(i);
    if (timer_ != kNoTimer) loop_.Cancel(timer_);
    if (!exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  int64_t pid() const override { return pid_; }
  bool exited() const override { return exited_; }
  absl::Status Signal(int signal) override {
    if (exited_) return absl::FailedPreconditionError("the process has exited");
    ::kill(pid_, signal);
    return absl::OkStatus();
  }
  absl::Status Kill() override {
    if (!exited_) ::kill(pid_, SIGKILL);
    return absl::OkStatus();
  }

 private:
  void CloseStream(int i) {
    if (fds_[i] < 0) return;
    loop_.Unwatch(watches_[i]);
    ::close(fds_[i]);
    fds_[i] = -1;
  }
  void OnReadable(int i) {
    char buffer[16384];
    for (;;) {
      const ssize_t n = ::read(fds_[i], buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n <= 0) break;
      pending_[i].append(buffer, static_cast<size_t>(n));
      size_t nl;
      while ((nl = pending_[i].find('\n')) != std::string::npos) {
        const std::string line = pending_[i].substr(0, nl);
        pending_[i].erase(0, nl + 1);
        if (options_.on_line) {
          options_.on_line(i == 0 ? OutputStream::kStdout : OutputStream::kStderr, line, false);
        }
      }
    }
    if (!pending_[i].empty() && options_.on_line) {
      options_.on_line(i == 0 ? OutputStream::kStdout : OutputStream::kStderr, pending_[i], false);
    }
    pending_[i].clear();
    CloseStream(i);
    if (fds_[0] < 0 && fds_[1] < 0) CheckExit();
  }
  void CheckExit() {
    timer_ = kNoTimer;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) {
      timer_ = loop_.PostAfter(absl::Milliseconds(5), [this] { CheckExit(); });
      return;
    }
    exited_ = true;
    ProcessExit exit;
    exit.signaled = WIFSIGNALED(status);
    exit.code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    exit.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    auto on_exit = std::move(options_.on_exit);
    if (on_exit) on_exit(exit);  // May destroy this handle: nothing after.
  }

  PosixEventLoop& loop_;
  const pid_t pid_;
  ProcessOptions options_;
  int fds_[2] = {-1, -1};
  WatchId watches_[2] = {};
  std::string pending_[2];
  TimerId timer_ = kNoTimer;
  bool exited_ = false;
};

class ExecveLauncher final : public ProcessLauncher {
 public:
  explicit ExecveLauncher(PosixEventLoop& loop) : loop_(loop) {}
  absl::StatusOr<std::unique_ptr<Process>> Spawn(const ExecutableFile& executable,
                                                 ProcessOptions options) override {
    RETURN_IF_ERROR(ValidateProcessOptions(options));
    std::vector<char*> argv, envp;
    for (std::string& a : options.argv) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (std::string& e : options.env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const std::string path = executable.path();
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC | O_NONBLOCK) != 0) return absl::InternalError("pipe failed");
    if (::pipe2(err, O_CLOEXEC | O_NONBLOCK) != 0) {
      ::close(out[0]);
      ::close(out[1]);
      return absl::InternalError("pipe failed");
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int null_fd = ::open("/dev/null", O_RDONLY);
      ::dup2(null_fd, STDIN_FILENO);
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(err[1], STDERR_FILENO);
      ::fcntl(STDOUT_FILENO, F_SETFL, 0);
      ::fcntl(STDERR_FILENO, F_SETFL, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::execve(path.c_str(), argv.data(), envp.data());
      _exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    if (pid < 0) {
      ::close(out[0]);
      ::close(err[0]);
      return absl::ResourceExhaustedError("fork failed");
    }
    return std::unique_ptr<Process>(
        new ExecveProcess(loop_, pid, out[0], err[0], std::move(options)));
  }

 private:
  PosixEventLoop& loop_;
};

// --- The bulwark pair ----------------------------------------------------------------------

// How a launch checks the artifact.
enum class LaunchCheck {
  // As bulwark's catalog does: every check, and the SHA-256 only when the file changed since it
  // was verified (catalog::VerifiedArtifacts); the launch executes the kept sealed copy.
  kAsTheCatalog,
  // Hashed (and copied into a new sealed memfd) at every launch, as go-plugin does.
  kHashEveryLaunch,
  // No check: the file is opened and executed (PosixFileSystem still copies it into a sealed
  // memfd at spawn).
  kNone,
};

// The production host path: the catalog's artifact check (LaunchCheck), then
// PluginClient over GrpcPluginTransport on the PosixEventLoop, host storage served over the
// broker by lifecycle::StorageHostServices.
class BulwarkHost {
 public:
  static absl::StatusOr<std::unique_ptr<BulwarkHost>> Create(const std::string& plugin_path) {
    auto host = std::unique_ptr<BulwarkHost>(new BulwarkHost());
    RETURN_IF_ERROR(host->Init(plugin_path));
    return host;
  }

  ~BulwarkHost() {
    client_.reset();
    RemoveDir(runtime_dir_);
    if (!plugin_dir_.empty()) {
      ::unlink(absl::StrCat(plugin_dir_, "/", kArtifactName).c_str());
      ::rmdir(plugin_dir_.c_str());
    }
  }

  // Launches the plugin and waits for a ready connection (its health check answered), after the
  // artifact check `check` names.
  absl::Status Launch(LaunchCheck check = LaunchCheck::kAsTheCatalog) {
    std::unique_ptr<ExecutableFile> exe;
    std::string path = absl::StrCat(plugin_dir_, "/", kArtifactName);
    if (check != LaunchCheck::kNone) {
      ASSIGN_OR_RETURN(
          catalog::OpenedArtifact artifact,
          check == LaunchCheck::kAsTheCatalog
              ? verified_.Open(posix_.fs(), policy_, kArtifactName, sha256_hex_)
              : catalog::OpenArtifact(posix_.fs(), policy_, kArtifactName, sha256_hex_));
      exe = std::move(artifact.file);
      path = artifact.path;
    } else {
      ASSIGN_OR_RETURN(exe, posix_.fs().OpenForExec(path));
    }
    opened_at_ = std::chrono::steady_clock::now();
    rpc::PluginLaunchOptions o;
    o.log_sink = log_sink_;
    o.plugin_name = "kv";
    o.argv = {path};
    if (!g_options.plugin_wrapper.empty()) {
      ASSIGN_OR_RETURN(exe, posix_.fs().OpenForExec(g_options.plugin_wrapper.front()));
      o.argv = g_options.plugin_wrapper;
      o.argv.push_back(path);
      // A plugin under valgrind starts 20-50 times slower.
      o.start_timeout = absl::Minutes(5);
      o.connect_timeout = absl::Minutes(5);
    }
    o.executable = exe.get();
    protocol::VaultPluginEnv vault;
    vault.vault_version = "1.16.0";
    o.vault = vault;
    o.automtls = true;
    o.extra_env = g_options.plugin_env;
    o.runtime_dir = runtime_dir_;
    std::optional<absl::Status> started;
    {
      // The fork happens on this thread: with a placement, the plugin starts on its CPU.
      std::optional<measure::ScopedThreadCpu> pin;
      if (g_options.plugin_cpu >= 0) {
        pin.emplace(g_options.plugin_cpu);
        RETURN_IF_ERROR(pin->status());
      }
      client_ =
          rpc::PluginClient::Start(g_options.execve_launcher ? execve_env_ : posix_.env(),
                                   transport_, std::move(o), [&](absl::Status s) { started = s; });
    }
    if (!posix_.loop().RunUntil(
            [&] { return started.has_value(); },
            g_options.plugin_wrapper.empty() ? kLaunchTimeout : absl::Minutes(6))) {
      return absl::DeadlineExceededError("launch did not finish");
    }
    return *started;
  }

  // Offers storage over the broker, then Setup and Initialize for one more multiplexed
  // instance (a mount) in the running plugin; returns its index.
  absl::StatusOr<size_t> SetupInstance() {
    const size_t index = mounts_.size();
    Mount& m = mounts_.emplace_back();
    m.options.multiplex_id = absl::StrFormat("bench%05d", index + 1);
    // Under valgrind (--plugin_wrapper) a call takes 20-50 times longer.
    m.options.timeout = g_options.plugin_wrapper.empty() ? kCallTimeout : absl::Minutes(5);
    m.storage = std::make_unique<InMemoryStorage>();
    m.services = std::make_unique<lifecycle::StorageHostServices>(
        *m.storage, absl::StrCat("logical/bench", index, "/"), lifecycle::SystemViewInfo{});
    ASSIGN_OR_RETURN(uint32_t broker_id, client_->connection().OfferHostServices(m.services.get()));
    pb::SetupArgs setup;
    setup.set_broker_id(broker_id);
    setup.set_backenduuid(absl::StrFormat("0b1a2c3d-0000-4000-8000-%012d", index + 1));
    (*setup.mutable_config())["plugin_name"] = "bench";
    (*setup.mutable_config())["plugin_type"] = "secret";
    ASSIGN_OR_RETURN(std::string reply,
                     CallSync("/pb.Backend/Setup", setup.SerializeAsString(), index));
    pb::SetupReply setup_reply;
    if (!setup_reply.ParseFromString(reply) || !setup_reply.err().empty()) {
      return absl::InternalError(absl::StrCat("Setup failed: ", setup_reply.err()));
    }
    RETURN_IF_ERROR(
        CallSync("/pb.Backend/Initialize", pb::InitializeArgs().SerializeAsString(), index)
            .status());
    return index;
  }

  size_t mounts() const { return mounts_.size(); }

  // For --launch_steps: the sink given to every launch's PluginClient (its debug records mark
  // the steps), and when the last Launch had its artifact open (and hashed).
  void set_log_sink(LogSink* sink) { log_sink_ = sink; }
  std::chrono::steady_clock::time_point opened_at() const { return opened_at_; }

  // One AutoMTLS client identity (key and self-signed certificate), as PluginClient makes at
  // every launch: its cost alone.
  absl::StatusOr<double> TimeClientIdentity() {
    const auto start = std::chrono::steady_clock::now();
    RETURN_IF_ERROR(transport_.NewClientIdentity().status());
    return MicrosSince(start);
  }

  // Shuts the plugin down the go-plugin way (GRPCController.Shutdown, grace, kill).
  void Stop() {
    if (client_ == nullptr) return;
    bool stopped = false;
    // Under a wrapper (valgrind) the plugin needs time to exit and write its counts.
    const bool wrapped = !g_options.plugin_wrapper.empty();
    client_->Shutdown(wrapped ? absl::Minutes(2) : absl::Seconds(2), [&] { stopped = true; });
    posix_.loop().RunUntil([&] { return stopped; }, wrapped ? absl::Minutes(3) : absl::Seconds(10));
    client_.reset();
    mounts_.clear();
  }

  int64_t pid() const { return client_ != nullptr ? client_->pid() : 0; }

  PosixEventLoop& loop() { return posix_.loop(); }

  absl::StatusOr<std::string> CallSync(absl::string_view method, std::string request,
                                       size_t mount = 0) {
    std::optional<absl::StatusOr<std::string>> result;
    client_->connection().Call(method, std::move(request), mounts_.at(mount).options,
                               [&](absl::StatusOr<std::string> r) { result = std::move(r); });
    if (!posix_.loop().RunUntil([&] { return result.has_value(); },
                                mounts_.at(mount).options.timeout * 2)) {
      return absl::DeadlineExceededError(absl::StrCat(method, " did not complete"));
    }
    return *std::move(result);
  }

  // One HandleRequest as the Go host sends it (a fresh request id each time).
  std::string RequestBytes(absl::string_view op, absl::string_view path, absl::string_view data) {
    pb::HandleRequestArgs args;
    pb::Request* r = args.mutable_request();
    r->set_id(absl::StrFormat("%08x-0000-4000-8000-%012x", static_cast<uint32_t>(next_id_ >> 32),
                              next_id_ & 0xffffffffffffULL));
    ++next_id_;
    r->set_operation(std::string(op));
    r->set_path(std::string(path));
    r->set_data(std::string(data));
    return args.SerializeAsString();
  }

  // Checks a HandleRequest reply: no transport error, no logical error, and for reads and echo
  // at least `min_data` bytes of response data.
  static absl::Status CheckReply(const absl::StatusOr<std::string>& bytes, size_t min_data) {
    if (!bytes.ok()) return bytes.status();
    pb::HandleRequestReply reply;
    if (!reply.ParseFromString(*bytes)) return absl::InternalError("unparsable reply");
    if (reply.has_err()) return absl::InternalError(reply.err().err_msg());
    if (reply.response().data().size() < min_data) {
      return absl::InternalError("response shorter than the payload");
    }
    return absl::OkStatus();
  }

  // Times `samples` sequential calls after `warmup` untimed ones, in microseconds; call i goes
  // to mount i % mounts() (one mount unless several were set up).
  absl::StatusOr<std::vector<double>> TimeCalls(absl::string_view op, absl::string_view path,
                                                const std::string& data, size_t min_data,
                                                int warmup, int samples) {
    std::vector<double> out;
    out.reserve(static_cast<size_t>(samples));
    for (int i = 0; i < warmup + samples; ++i) {
      const auto start = std::chrono::steady_clock::now();
      absl::StatusOr<std::string> bytes =
          CallSync("/pb.Backend/HandleRequest", RequestBytes(op, path, data),
                   static_cast<size_t>(i) % mounts_.size());
      const double us = MicrosSince(start);
      RETURN_IF_ERROR(CheckReply(bytes, min_data));
      if (i >= warmup) out.push_back(us);
    }
    return out;
  }

  // `callers` calls kept in flight for `duration` on the host's single event loop (each
  // completion issues the next one); returns calls per second.
  struct ThroughputResult {
    double calls_per_s = 0;
    double plugin_cpu_us_per_call = 0;  // The plugin process, all threads.
    double host_cpu_us_per_call = 0;    // This process, all threads (loop and gRPC).
  };
  absl::StatusOr<ThroughputResult> Throughput(int callers, absl::Duration duration,
                                              const std::string& data) {
    int64_t done = 0;
    int outstanding = 0;
    bool stopping = false;
    absl::Status error;
    std::function<void()> issue = [&] {
      ++outstanding;
      client_->connection().Call("/pb.Backend/HandleRequest", RequestBytes("update", "echo", data),
                                 mounts_.at(0).options, [&](absl::StatusOr<std::string> bytes) {
                                   --outstanding;
                                   absl::Status s = CheckReply(bytes, data.size());
                                   if (!s.ok()) {
                                     if (error.ok()) error = s;
                                     stopping = true;
                                     return;
                                   }
                                   ++done;
                                   if (!stopping) issue();
                                 });
    };
    const double plugin_cpu0 = measure::ProcessCpuMicros(pid()).value_or(0);
    const double host_cpu0 = measure::ProcessCpuMicros(::getpid()).value_or(0);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < callers; ++i) issue();
    posix_.loop().RunUntil([&] { return stopping; }, duration);
    stopping = true;
    const int64_t counted = done;
    const double seconds = MicrosSince(start) / 1e6;
    ThroughputResult result;
    result.plugin_cpu_us_per_call = (measure::ProcessCpuMicros(pid()).value_or(0) - plugin_cpu0) /
                                    static_cast<double>(std::max<int64_t>(counted, 1));
    result.host_cpu_us_per_call = (measure::ProcessCpuMicros(::getpid()).value_or(0) - host_cpu0) /
                                  static_cast<double>(std::max<int64_t>(counted, 1));
    posix_.loop().RunUntil([&] { return outstanding == 0; }, kCallTimeout * 2);
    RETURN_IF_ERROR(error);
    result.calls_per_s = static_cast<double>(counted) / seconds;
    return result;
  }

 private:
  static constexpr char kArtifactName[] = "kv_plugin";

  BulwarkHost() = default;

  // Copies the artifact into a private plugin directory (runfiles are symlinks, which the
  // catalog refuses) and pins its SHA-256, as registering it in the catalog would.
  absl::Status Init(const std::string& plugin_path) {
    posix_.loop().SetSpinBeforePark(absl::Microseconds(g_options.loop_spin_us));
    char plugin_tmpl[] = "/tmp/bwbpXXXXXX";
    char runtime_tmpl[] = "/tmp/bwbrXXXXXX";
    if (::mkdtemp(plugin_tmpl) == nullptr || ::mkdtemp(runtime_tmpl) == nullptr) {
      return absl::InternalError("mkdtemp failed");
    }
    plugin_dir_ = plugin_tmpl;
    runtime_dir_ = runtime_tmpl;
    const std::string dest = absl::StrCat(plugin_dir_, "/", kArtifactName);
    {
      std::ifstream in(plugin_path, std::ios::binary);
      std::ofstream out(dest, std::ios::binary);
      out << in.rdbuf();
      if (!in || !out) return absl::NotFoundError(absl::StrCat("cannot copy ", plugin_path));
    }
    if (::chmod(dest.c_str(), 0755) != 0) return absl::InternalError("chmod failed");
    policy_.plugin_directory = plugin_dir_;
    policy_.artifact_bytes_max = uint64_t{1} << 30;
    ASSIGN_OR_RETURN(std::unique_ptr<ExecutableFile> exe, posix_.fs().OpenForExec(dest));
    ASSIGN_OR_RETURN(sha256_hex_, catalog::HashFile(*exe, dest, policy_.artifact_bytes_max));
    return absl::OkStatus();
  }

  rpc::GrpcTransportOptions TransportOptions() {
    rpc::GrpcTransportOptions options;
    if (g_options.loop_cq != 0) {
      loop_queue_ = std::make_unique<rpc::GrpcLoopQueue>();
      attached_queue_ =
          std::make_unique<ScopedLoopParker<rpc::GrpcLoopQueue>>(posix_.loop(), *loop_queue_);
      options.loop_queue = loop_queue_.get();
    }
    if (g_options.dedicated_host_connections) {
      options.share_host_services = false;
      options.max_dedicated_host_servers = options.max_offered_host_services;
    }
    return options;
  }

  static void RemoveDir(const std::string& dir) {
    if (!dir.empty()) ::rmdir(dir.c_str());  // PluginClient removed each launch's directory.
  }

  // One multiplexed instance of the plugin: its id and the storage it reaches over the broker.
  struct Mount {
    CallOptions options;
    std::unique_ptr<InMemoryStorage> storage;
    std::unique_ptr<lifecycle::StorageHostServices> services;
  };

  PosixEnv posix_;
  ExecveLauncher execve_launcher_{posix_.loop()};
  Env execve_env_{posix_.clock(), posix_.loop(), posix_.random(), posix_.fs(), execve_launcher_};
  std::unique_ptr<rpc::GrpcLoopQueue> loop_queue_;  // Made by TransportOptions (--loop_cq=1).
  std::unique_ptr<ScopedLoopParker<rpc::GrpcLoopQueue>> attached_queue_;
  rpc::GrpcPluginTransport transport_{posix_.loop(), TransportOptions()};
  std::string plugin_dir_;
  std::string runtime_dir_;
  catalog::ArtifactPolicy policy_;
  catalog::VerifiedArtifacts verified_{catalog::kVerifiedCopiesBytesDefaultMax};
  std::string sha256_hex_;
  uint64_t next_id_ = 1;
  std::vector<Mount> mounts_;
  LogSink* log_sink_ = nullptr;
  std::chrono::steady_clock::time_point opened_at_;
  std::unique_ptr<rpc::PluginClient> client_;
};

// --- The bulwark arm (a child process) ---------------------------------------------------------

void RecordMemory(Metrics& m, const std::string& prefix, const measure::ProcessMemory& mem) {
  m[prefix + "_rss_kib"] = static_cast<double>(mem.vm_rss_kib);
  m[prefix + "_rss_anon_kib"] = static_cast<double>(mem.rss_anon_kib);
  m[prefix + "_rss_file_kib"] = static_cast<double>(mem.rss_file_kib);
  m[prefix + "_pss_kib"] = static_cast<double>(mem.pss_kib);
  m[prefix + "_uss_kib"] = static_cast<double>(mem.uss_kib());
}

// The series in the Go host's order: launches, Setup + Initialize and idle memory, latency
// series, throughput, memory after the load.
absl::StatusOr<nlohmann::json> RunBulwarkArm() {
  ASSIGN_OR_RETURN(std::unique_ptr<BulwarkHost> host, BulwarkHost::Create(g_options.kv_plugin));
  Metrics m;
  for (const auto& [check, metric] : {std::pair{LaunchCheck::kAsTheCatalog, "launch_ms"},
                                      std::pair{LaunchCheck::kHashEveryLaunch, "launch_rehash_ms"},
                                      std::pair{LaunchCheck::kNone, "launch_no_sha256_ms"}}) {
    std::vector<double> us;
    for (int i = 0; i < g_options.launches; ++i) {
      const auto start = std::chrono::steady_clock::now();
      absl::Status s = host->Launch(check);
      us.push_back(MicrosSince(start));
      host->Stop();
      RETURN_IF_ERROR(s);
    }
    m[metric] = measure::SummarizeLatency(us).p50 / 1e3;
  }
  RETURN_IF_ERROR(host->Launch());
  RETURN_IF_ERROR(host->SetupInstance().status());
  ASSIGN_OR_RETURN(measure::ProcessMemory idle, measure::ReadProcessMemory(host->pid()));
  RecordMemory(m, "idle", idle);
  nlohmann::json out;
  out["host_cpus"] = measure::CpusAllowed(::getpid()).value_or("");
  out["plugin_cpus"] = measure::CpusAllowed(static_cast<pid_t>(host->pid())).value_or("");
  for (int payload : kPayloads) {
    const std::string data = PayloadData(static_cast<size_t>(payload));
    const std::string key = absl::StrCat("bench/p", payload);
    for (const std::string op : kOps) {
      std::vector<double> us;
      if (op == "echo") {
        ASSIGN_OR_RETURN(us, host->TimeCalls("update", "echo", data, data.size(), g_options.warmup,
                                             g_options.samples));
      } else if (op == "write") {
        ASSIGN_OR_RETURN(
            us, host->TimeCalls("update", key, data, 0, g_options.warmup, g_options.samples));
      } else {
        ASSIGN_OR_RETURN(
            us, host->TimeCalls("read", key, "", data.size(), g_options.warmup, g_options.samples));
      }
      const measure::LatencySummary s = measure::SummarizeLatency(us);
      m[MetricName(op, payload) + "_p50_us"] = s.p50;
      m[MetricName(op, payload) + "_p99_us"] = s.p99;
    }
  }
  for (int callers : kCallers) {
    ASSIGN_OR_RETURN(
        BulwarkHost::ThroughputResult r,
        host->Throughput(callers, absl::Milliseconds(g_options.duration_ms), PayloadData(64)));
    m[absl::StrCat("calls_per_s_", callers)] = r.calls_per_s;
    m[absl::StrCat("plugin_cpu_us_per_call_", callers)] = r.plugin_cpu_us_per_call;
    m[absl::StrCat("host_cpu_us_per_call_", callers)] = r.host_cpu_us_per_call;
  }
  ASSIGN_OR_RETURN(measure::ProcessMemory loaded, measure::ReadProcessMemory(host->pid()));
  m["loaded_rss_kib"] = static_cast<double>(loaded.vm_rss_kib);
  host->Stop();
  out["metrics"] = m;
  return out;
}

// --- The go-plugin arm (the Go host as a child process) ----------------------------------------

absl::StatusOr<nlohmann::json> RunGoHost(int host_cpu, int plugin_cpu,
                                         const std::vector<std::string>& extra_flags) {
  char tmpl[] = "/tmp/bwbgXXXXXX";  // Short: go-plugin's socket paths go under TMPDIR.
  if (::mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  measure::ChildCommand c;
  c.argv = {g_options.go_host,   "-plugin",
            g_options.go_plugin, "-bench",
            "-plugin-cpu",       absl::StrCat(plugin_cpu),
            "-bench-launches",   absl::StrCat(g_options.launches),
            "-bench-warmup",     absl::StrCat(g_options.warmup),
            "-bench-samples",    absl::StrCat(g_options.samples),
            "-bench-duration",   absl::StrCat(g_options.duration_ms, "ms")};
  c.argv.insert(c.argv.end(), extra_flags.begin(), extra_flags.end());
  c.extra_env = {absl::StrCat("TMPDIR=", tmpl)};
  c.cpu = host_cpu;
  absl::StatusOr<std::string> out = measure::RunChild(c);
  ::rmdir(tmpl);
  RETURN_IF_ERROR(out.status());
  nlohmann::json report = nlohmann::json::parse(*out, nullptr, /*allow_exceptions=*/false);
  if (!report.is_object()) return absl::InternalError("the Go host's report is not JSON");
  return report;
}

absl::StatusOr<nlohmann::json> RunGoArm(const measure::Placement& p) {
  ASSIGN_OR_RETURN(nlohmann::json report, RunGoHost(p.host_cpu, p.plugin_cpu, {}));
  ASSIGN_OR_RETURN(
      nlohmann::json no_sha,
      RunGoHost(p.host_cpu, p.plugin_cpu,
                {"-sha256-check=false", "-bench-samples", "1", "-bench-warmup", "0",
                 "-bench-duration", "10ms", "-bench-payloads", "64", "-bench-callers", "1"}));
  Metrics m;
  m["launch_ms"] = report["launch_to_first_call"].value("p50_us", NAN) / 1e3;
  // go-plugin hashes the artifact at every launch (SecureConfig.Check).
  m["launch_rehash_ms"] = m["launch_ms"];
  m["launch_no_sha256_ms"] = no_sha["launch_to_first_call"].value("p50_us", NAN) / 1e3;
  const nlohmann::json& mem = report["plugin_idle_memory"];
  if (mem.is_object()) {
    for (const char* f : {"rss", "rss_anon", "rss_file", "pss", "uss"}) {
      const std::string key = absl::StrCat(f == std::string("rss") ? "vm_rss" : f, "_kib");
      m[absl::StrCat("idle_", f, "_kib")] = mem.value(key, NAN);
    }
  }
  for (const nlohmann::json& l : report["latency"]) {
    const std::string name = MetricName(l.value("op", ""), l.value("payload_bytes", 0));
    m[name + "_p50_us"] = l.value("p50_us", NAN);
    m[name + "_p99_us"] = l.value("p99_us", NAN);
  }
  for (const nlohmann::json& t : report["throughput"]) {
    m[absl::StrCat("calls_per_s_", t.value("callers", 0))] = t.value("calls_per_sec", NAN);
  }
  m["loaded_rss_kib"] = report.value("plugin_rss_after_load_kib", NAN);
  nlohmann::json out;
  out["metrics"] = m;
  out["host_cpus"] = report.value("host_cpus", "");
  out["plugin_cpus"] = report.value("plugin_cpus", "");
  return out;
}

// --- Rounds and the table ------------------------------------------------------------------

constexpr char kBulwark[] = "bulwark";
constexpr char kGo[] = "go-plugin";

// results[placement][metric][pair] = one value per round (NaN where a round lacked it).
using Results =
    std::map<std::string, std::map<std::string, std::map<std::string, std::vector<double>>>>;

// Runs one arm once in placement `p`, checks that it ran where it was put, returns its metrics.
absl::StatusOr<Metrics> RunArm(const std::string& pair, const measure::Placement& p,
                               const std::string& self_exe) {
  nlohmann::json out;
  if (pair == kBulwark) {
    measure::ChildCommand c;
    c.argv = {self_exe,
              g_options.kv_plugin,
              g_options.go_host,
              g_options.go_plugin,
              "--arm=bulwark",
              absl::StrCat("--plugin_cpu=", p.plugin_cpu),
              absl::StrCat("--launches=", g_options.launches),
              absl::StrCat("--warmup=", g_options.warmup),
              absl::StrCat("--samples=", g_options.samples),
              absl::StrCat("--duration_ms=", g_options.duration_ms)};
    for (const std::string& e : g_options.plugin_env) c.argv.push_back("--plugin_env=" + e);
    c.argv.push_back(absl::StrCat("--loop_spin_us=", g_options.loop_spin_us));
    c.argv.push_back(absl::StrCat("--loop_cq=", g_options.loop_cq));
    c.cpu = p.host_cpu;
    ASSIGN_OR_RETURN(std::string text, measure::RunChild(c));
    out = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!out.is_object()) return absl::InternalError("the bulwark arm's output is not JSON");
  } else {
    ASSIGN_OR_RETURN(out, RunGoArm(p));
  }
  const std::string host_cpus = out.value("host_cpus", "");
  const std::string plugin_cpus = out.value("plugin_cpus", "");
  if (host_cpus != absl::StrCat(p.host_cpu) || plugin_cpus != absl::StrCat(p.plugin_cpu)) {
    return absl::InternalError(absl::StrCat(
        pair, " ran outside placement ", p.name, ": host on CPUs ", host_cpus, ", plugin on CPUs ",
        plugin_cpus, " (wanted ", p.host_cpu, " and ", p.plugin_cpu, ")"));
  }
  Metrics m;
  for (const auto& [k, v] : out["metrics"].items()) {
    m[k] = v.is_number() ? v.get<double>() : NAN;
  }
  return m;
}

struct Row {
  const char* metric;
  const char* label;
  // Goal on bulwark / go-plugin: "<= goal" (at_most) or ">= goal"; goal 0: none.
  bool at_most;
  double goal;
  // Only bulwark reports it.
  bool bulwark_only = false;
};

const std::vector<Row>& Rows() {
  static const auto* rows = new std::vector<Row>{
      {"launch_ms", "launch -> first call, AutoMTLS, SHA-256 check (ms)", true, 0.25},
      {"launch_rehash_ms", "launch -> first call, AutoMTLS, hash every launch (ms)", true, 0},
      {"launch_no_sha256_ms", "launch -> first call, AutoMTLS, no SHA-256 (ms)", true, 0},
      {"echo64_p50_us", "echo 64 B p50 (us)", true, 0.5},
      {"echo64_p99_us", "echo 64 B p99 (us)", true, 0},
      {"echo64k_p50_us", "echo 64 KiB p50 (us)", true, 0.7},
      {"echo64k_p99_us", "echo 64 KiB p99 (us)", true, 0},
      {"write64_p50_us", "storage write 64 B p50 (us)", true, 0.7},
      {"read64_p50_us", "storage read 64 B p50 (us)", true, 0.7},
      {"write64k_p50_us", "storage write 64 KiB p50 (us)", true, 1.0},
      {"read64k_p50_us", "storage read 64 KiB p50 (us)", true, 1.0},
      {"write64_p99_us", "storage write 64 B p99 (us)", true, 0},
      {"read64_p99_us", "storage read 64 B p99 (us)", true, 0},
      {"calls_per_s_1", "calls/s, echo 64 B, 1 caller", false, 0},
      {"calls_per_s_8", "calls/s, echo 64 B, 8 callers", false, 1.5},
      {"idle_uss_kib", "plugin USS idle, after Setup+Initialize (KiB)", true, 0.5},
      {"idle_rss_kib", "plugin VmRSS idle (KiB)", true, 0},
      {"idle_pss_kib", "plugin PSS idle (KiB)", true, 0},
      {"idle_rss_anon_kib", "plugin RssAnon idle (KiB)", true, 0},
      {"loaded_rss_kib", "plugin VmRSS after the load (KiB)", true, 0},
      {"plugin_cpu_us_per_call_1", "plugin CPU per call, 1 caller (us)", true, 0, true},
      {"host_cpu_us_per_call_1", "host CPU per call, 1 caller (us)", true, 0, true},
      {"plugin_cpu_us_per_call_8", "plugin CPU per call, 8 callers (us)", true, 0, true},
      {"host_cpu_us_per_call_8", "host CPU per call, 8 callers (us)", true, 0, true},
  };
  return *rows;
}

std::string Fmt(double v) {
  if (!std::isfinite(v)) return "-";
  return std::fabs(v) >= 100 ? absl::StrFormat("%.0f", v) : absl::StrFormat("%.2f", v);
}

// "met" / "NOT met" by the median ratio; "(range crosses)" when some round fell on the other
// side of the goal.
std::string Verdict(const Row& row, const measure::RangeSummary& r) {
  if (row.goal == 0) return "";
  if (r.n == 0) return "n/a";
  auto ok = [&](double v) { return row.at_most ? v <= row.goal : v >= row.goal; };
  std::string v = ok(r.median) ? "met" : "NOT met";
  if (ok(r.min) != ok(r.max)) absl::StrAppend(&v, " (range crosses)");
  return v;
}

// Prints the goals table of one placement; returns the number of rows without a value.
int PrintTable(const std::string& placement,
               const std::map<std::string, std::map<std::string, std::vector<double>>>& results) {
  printf(
      "\nplacement %s: medians over %d round(s); ratio = bulwark / go-plugin per round, "
      "median [min-max]\n\n",
      placement.c_str(), g_options.rounds);
  printf("| %-50s | %9s | %9s | %-22s | %7s | %-22s |\n", "metric", "bulwark", "go-plugin",
         "ratio median [min-max]", "goal", "met?");
  printf("| %s | %s | %s | %s | %s | %s |\n", std::string(50, '-').c_str(),
         std::string(9, '-').c_str(), std::string(9, '-').c_str(), std::string(22, '-').c_str(),
         std::string(7, '-').c_str(), std::string(22, '-').c_str());
  int missing = 0;
  for (const Row& row : Rows()) {
    std::vector<double> b, g;
    if (auto it = results.find(row.metric); it != results.end()) {
      if (auto bi = it->second.find(kBulwark); bi != it->second.end()) b = bi->second;
      if (auto gi = it->second.find(kGo); gi != it->second.end()) g = gi->second;
    }
    const measure::RangeSummary bs = measure::SummarizeRange(b);
    const measure::RangeSummary gs = measure::SummarizeRange(g);
    if (bs.n == 0 || (!row.bulwark_only && gs.n == 0)) ++missing;
    const measure::RangeSummary ratio = measure::SummarizeRatios(b, g);
    const std::string ratio_text =
        ratio.n == 0 ? "-"
                     : absl::StrFormat("%.2fx [%.2f-%.2f]", ratio.median, ratio.min, ratio.max);
    const std::string goal =
        row.goal == 0 ? "" : absl::StrFormat("%s%.2fx", row.at_most ? "<=" : ">=", row.goal);
    printf("| %-50s | %9s | %9s | %-22s | %7s | %-22s |\n", row.label, Fmt(bs.median).c_str(),
           Fmt(gs.median).c_str(), ratio_text.c_str(), goal.c_str(), Verdict(row, ratio).c_str());
    g_record.rows.push_back({row.label, placement, Fmt(bs.median), Fmt(gs.median), ratio_text, goal,
                             Verdict(row, ratio)});
  }
  fflush(stdout);
  return missing;
}

absl::Status RunComparison() {
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return absl::InternalError("cannot read /proc/self/exe");
  self[n] = '\0';
  ASSIGN_OR_RETURN(std::vector<measure::Placement> placements, measure::StandardPlacements());
  if (!g_options.placement.empty()) {
    placements.erase(
        std::remove_if(placements.begin(), placements.end(),
                       [](const measure::Placement& p) { return p.name != g_options.placement; }),
        placements.end());
  }
  Results results;
  const std::vector<std::string> pairs = {kBulwark, kGo};
  for (const measure::Placement& p : placements) {
    for (int round = 0; round < g_options.rounds; ++round) {
      for (size_t arm : measure::ArmOrder(pairs.size(), round)) {
        const std::string& pair = pairs[arm];
        fprintf(stderr, "placement %s, round %d/%d: %s ...\n", p.name.c_str(), round + 1,
                g_options.rounds, pair.c_str());
        ASSIGN_OR_RETURN(Metrics m, RunArm(pair, p, self));
        for (const Row& row : Rows()) {
          auto it = m.find(row.metric);
          results[p.name][row.metric][pair].push_back(it != m.end() ? it->second : NAN);
        }
      }
    }
  }
  printf(
      "\nP1 plugin protocol: bulwark host <-> C++ kv plugin vs go-plugin v1.0.1 host <-> Go "
      "plugin\n%d round(s) per placement, pairs interleaved, fresh processes per round; "
      "%d launches, %d+%d calls per latency series, %d ms per throughput run\n",
      g_options.rounds, g_options.launches, g_options.warmup, g_options.samples,
      g_options.duration_ms);
  int missing = 0;
  g_record.rows.clear();
  for (const measure::Placement& p : placements) missing += PrintTable(p.name, results[p.name]);
  if (!g_options.record.empty()) {
    g_record.benchmark = "plugin_protocol_benchmark";
    g_record.command = "bazel run -c opt //benchmarks:plugin_protocol_benchmark";
    if (!g_options.flags.empty()) {
      absl::StrAppend(&g_record.command, " -- ", absl::StrJoin(g_options.flags, " "));
    }
    g_record.columns = {"metric", "placement", "bulwark", "go-plugin", "ratio median [min-max]",
                        "goal",   "met?"};
    g_record.notes = {absl::StrFormat(
        "%d round(s) per placement, pairs interleaved, fresh processes per round; %d launches, "
        "%d+%d calls per latency series, %d ms per throughput run. Times in ms (launch) and us "
        "(latency), memory in KiB, CPU per call in us.",
        g_options.rounds, g_options.launches, g_options.warmup, g_options.samples,
        g_options.duration_ms)};
    // Which plugin bulwark's pair ran: another artifact than the runfiles' kv plugin (a
    // --config=static_plugin build, say) is given as the first argument of the binary itself.
    struct stat st;
    std::string shown = g_options.kv_plugin;
    // A path in Bazel's output tree is shown from the package on, any other by its file name
    // (a record names no directory of the machine it ran on).
    const size_t out = shown.find("/bazel-out/");
    const size_t bin = out == std::string::npos ? out : shown.find("/bin/", out);
    if (bin != std::string::npos) {
      shown = shown.substr(bin + strlen("/bin/"));
    } else if (const size_t slash = shown.rfind('/'); slash != std::string::npos) {
      shown = shown.substr(slash + 1);
    }
    g_record.notes.push_back(absl::StrFormat(
        "bulwark's plugin: %s, %d bytes.", shown,
        ::stat(g_options.kv_plugin.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1));
    RETURN_IF_ERROR(measure::WriteTableRecord(g_options.record, g_record));
    fprintf(stderr, "record written to %s\n", g_options.record.c_str());
  }
  if (missing > 0) {
    return absl::InternalError(absl::StrCat(missing, " row(s) without a value (see above)"));
  }
  return absl::OkStatus();
}

// --- Multiplexing: one plugin process serving N mounts ----------------------------------------

// Entries of a /proc directory (a process's descriptors or threads); -1 if unreadable.
int64_t CountEntries(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return -1;
  int64_t n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

// For --smaps_dir: copies the plugin's smaps and lists where each of its descriptors points.
absl::Status SaveProcessMaps(int64_t pid, const std::string& prefix) {
  {
    std::ifstream in(absl::StrCat("/proc/", pid, "/smaps"), std::ios::binary);
    std::ofstream out(absl::StrCat(prefix, ".smaps"), std::ios::binary);
    out << in.rdbuf();
    if (!in || !out) return absl::UnavailableError(absl::StrCat("cannot save ", prefix, ".smaps"));
  }
  const std::string fd_dir = absl::StrCat("/proc/", pid, "/fd");
  std::ofstream fds(absl::StrCat(prefix, ".fds"));
  DIR* d = ::opendir(fd_dir.c_str());
  if (d == nullptr) return absl::UnavailableError(absl::StrCat("cannot list ", fd_dir));
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[512];
    const ssize_t n =
        ::readlink(absl::StrCat(fd_dir, "/", e->d_name).c_str(), target, sizeof(target) - 1);
    fds << e->d_name << " " << std::string(target, n > 0 ? static_cast<size_t>(n) : 0) << "\n";
  }
  ::closedir(d);
  return absl::OkStatus();
}

absl::Status RunMounts() {
  // per_size[n] = {uss, rss, pss, echo p50, setup ms per mount} per round.
  std::map<int, std::map<std::string, std::vector<double>>> per_size;
  const std::string data = PayloadData(64);
  for (int round = 0; round < g_options.rounds; ++round) {
    for (int n : g_options.mounts) {
      fprintf(stderr, "mounts round %d/%d: %d mount(s) ...\n", round + 1, g_options.rounds, n);
      ASSIGN_OR_RETURN(
          std::unique_ptr<BulwarkHost> host,
          BulwarkHost::Create(g_options.many_mounts_plugin.empty() ? g_options.kv_plugin
                                                                   : g_options.many_mounts_plugin));
      RETURN_IF_ERROR(host->Launch());
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < n; ++i) RETURN_IF_ERROR(host->SetupInstance().status());
      const double setup_us = MicrosSince(start);
      // One call per mount, so every instance has served a request before memory is read.
      for (size_t i = 0; i < host->mounts(); ++i) {
        RETURN_IF_ERROR(
            BulwarkHost::CheckReply(host->CallSync("/pb.Backend/HandleRequest",
                                                   host->RequestBytes("update", "echo", data), i),
                                    data.size()));
      }
      ASSIGN_OR_RETURN(measure::ProcessMemory mem, measure::ReadProcessMemory(host->pid()));
      const int64_t fds = CountEntries(absl::StrCat("/proc/", host->pid(), "/fd"));
      const int64_t threads = CountEntries(absl::StrCat("/proc/", host->pid(), "/task"));
      if (!g_options.smaps_dir.empty()) {
        RETURN_IF_ERROR(SaveProcessMaps(
            host->pid(), absl::StrCat(g_options.smaps_dir, "/mounts-", n, "-round-", round + 1)));
      }
      ASSIGN_OR_RETURN(std::vector<double> us,
                       host->TimeCalls("update", "echo", data, data.size(), g_options.warmup,
                                       g_options.samples));
      auto& s = per_size[n];
      s["uss"].push_back(static_cast<double>(mem.uss_kib()));
      s["rss"].push_back(static_cast<double>(mem.vm_rss_kib));
      s["pss"].push_back(static_cast<double>(mem.pss_kib));
      s["p50"].push_back(measure::SummarizeLatency(us).p50);
      s["setup_ms_per_mount"].push_back(setup_us / 1e3 / n);
      s["fds"].push_back(static_cast<double>(fds));
      s["threads"].push_back(static_cast<double>(threads));
      host->Stop();
    }
  }
  const int base = g_options.mounts.front();
  printf(
      "\nmultiplexing: one kv plugin process serving N mounts (medians over %d round(s); "
      "per mount = (USS(N) - USS(%d)) / (N - %d) per round; echo p50 over %d calls spread "
      "over the mounts)\n\n",
      g_options.rounds, base, base, g_options.samples);
  printf(
      "| mounts | USS KiB | VmRSS KiB | PSS KiB | USS per mount KiB [min-max] | Setup ms per "
      "mount | plugin fds | plugin threads | echo 64 B p50 us | p50 / %d mount(s) [min-max] |\n",
      base);
  printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  auto& b = per_size[base];
  for (int n : g_options.mounts) {
    auto& s = per_size[n];
    std::vector<double> per_mount;
    for (size_t i = 0; i < s["uss"].size() && n != base; ++i) {
      per_mount.push_back((s["uss"][i] - b["uss"][i]) / (n - base));
    }
    const measure::RangeSummary pm = measure::SummarizeRange(per_mount);
    const measure::RangeSummary ratio = measure::SummarizeRatios(s["p50"], b["p50"]);
    printf("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", n,
           Fmt(measure::Median(s["uss"])).c_str(), Fmt(measure::Median(s["rss"])).c_str(),
           Fmt(measure::Median(s["pss"])).c_str(),
           pm.n == 0 ? "-" : absl::StrFormat("%.1f [%.1f-%.1f]", pm.median, pm.min, pm.max).c_str(),
           Fmt(measure::Median(s["setup_ms_per_mount"])).c_str(),
           absl::StrFormat("%.0f", measure::Median(s["fds"])).c_str(),
           absl::StrFormat("%.0f", measure::Median(s["threads"])).c_str(),
           Fmt(measure::Median(s["p50"])).c_str(),
           absl::StrFormat("%.2fx [%.2f-%.2f]", ratio.median, ratio.min, ratio.max).c_str());
  }
  printf("\ngoal: <= 20 KiB per mount at 1000 mounts, p50 within 10%% of 1 mount\n");
  fflush(stdout);
  return absl::OkStatus();
}

// --- A fixed number of calls (for instruction counts) -------------------------------------------

// Zeroes (`command` "zero") or dumps ("dump") the callgrind counters of process `pid`, every
// thread of it, and waits until callgrind has done it (vgdb interrupts a process blocked in a
// system call through ptrace, so this works while the process idles; callgrind's client
// requests would zero and dump only the calling thread). Both processes' valgrind must name
// their vgdb pipes with the --vgdb-prefix= the plugin wrapper gives (the plugin's environment
// has no TMPDIR, this process's may have one).
absl::Status CallgrindCommand(int64_t pid, const char* command) {
  measure::ChildCommand vgdb;
  vgdb.argv = {"/usr/bin/vgdb", absl::StrCat("--pid=", pid), command};
  for (const std::string& arg : g_options.plugin_wrapper) {
    if (absl::StartsWith(arg, "--vgdb-prefix=")) vgdb.argv.insert(vgdb.argv.begin() + 1, arg);
  }
  vgdb.hang_guard = absl::Minutes(2);
  return measure::RunChild(vgdb).status();
}

// Voluntary context switches (a thread blocking: every park, condition wait or futex sleep) of
// all of `pid`'s threads, summed from /proc/PID/task/*/status. Threads that exited are not
// counted, which is why --calls reads it before and after the calls, not at exit.
uint64_t VoluntarySwitches(int64_t pid) {
  uint64_t total = 0;
  const std::string dir = absl::StrCat("/proc/", pid, "/task");
  DIR* tasks = opendir(dir.c_str());
  if (tasks == nullptr) return 0;
  while (struct dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream status(absl::StrCat(dir, "/", entry->d_name, "/status"));
    std::string line;
    while (std::getline(status, line)) {
      uint64_t n = 0;
      if (absl::StartsWith(line, "voluntary_ctxt_switches:") &&
          absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(24)), &n)) {
        total += n;
      }
    }
  }
  closedir(tasks);
  return total;
}

absl::Status RunCalls() {
  ASSIGN_OR_RETURN(std::unique_ptr<BulwarkHost> host, BulwarkHost::Create(g_options.kv_plugin));
  RETURN_IF_ERROR(host->Launch(g_options.plugin_wrapper.empty() ? LaunchCheck::kAsTheCatalog
                                                                : LaunchCheck::kNone));
  RETURN_IF_ERROR(host->SetupInstance().status());
  const bool large = absl::EndsWith(g_options.op, "64k");
  const std::string data = PayloadData(large ? 65536 : 64);
  const std::string key = large ? "bench/p65536" : "bench/p64";
  auto run = [&](int warmup, int calls) -> absl::StatusOr<std::vector<double>> {
    if (absl::StartsWith(g_options.op, "echo")) {
      return host->TimeCalls("update", "echo", data, data.size(), warmup, calls);
    }
    if (absl::StartsWith(g_options.op, "write")) {
      return host->TimeCalls("update", key, data, 0, warmup, calls);
    }
    return host->TimeCalls("read", key, "", data.size(), warmup, calls);
  };
  if (absl::StartsWith(g_options.op, "read")) {
    RETURN_IF_ERROR(BulwarkHost::CheckReply(
        host->CallSync("/pb.Backend/HandleRequest", host->RequestBytes("update", key, data)), 0));
  }
  RETURN_IF_ERROR(run(g_options.warmup, 0).status());
  const PosixEventLoop::HandOffStats before = host->loop().hand_off_stats();
  const uint64_t host_switches_before = VoluntarySwitches(getpid());
  const uint64_t plugin_switches_before = VoluntarySwitches(host->pid());
  ASSIGN_OR_RETURN(const double host_cpu_before, measure::ProcessCpuMicros(getpid()));
  ASSIGN_OR_RETURN(const double plugin_cpu_before,
                   measure::ProcessCpuMicros(static_cast<pid_t>(host->pid())));
  absl::StatusOr<std::vector<double>> us;
  if (g_options.callgrind_marks) {
    // Zeroed plugin first, host last, dumped in the reverse order: neither count holds the
    // other's vgdb round trip.
    RETURN_IF_ERROR(CallgrindCommand(host->pid(), "zero"));
    RETURN_IF_ERROR(CallgrindCommand(getpid(), "zero"));
    us = run(0, g_options.calls);
    RETURN_IF_ERROR(CallgrindCommand(getpid(), "dump"));
    RETURN_IF_ERROR(CallgrindCommand(host->pid(), "dump"));
  } else {
    us = run(0, g_options.calls);
  }
  RETURN_IF_ERROR(us.status());
  ASSIGN_OR_RETURN(const double host_cpu_after, measure::ProcessCpuMicros(getpid()));
  ASSIGN_OR_RETURN(const double plugin_cpu_after,
                   measure::ProcessCpuMicros(static_cast<pid_t>(host->pid())));
  const PosixEventLoop::HandOffStats after = host->loop().hand_off_stats();
  const uint64_t host_switches_after = VoluntarySwitches(getpid());
  const uint64_t plugin_switches_after = VoluntarySwitches(host->pid());
  const double n = g_options.calls;
  printf("%d %s calls, p50 %.0f us, CPU per call host %.1f us plugin %.1f us\n", g_options.calls,
         g_options.op.c_str(), measure::SummarizeLatency(*us).p50,
         (host_cpu_after - host_cpu_before) / n, (plugin_cpu_after - plugin_cpu_before) / n);
  printf(
      "host loop per call: parks %.2f, wake-ups %.2f, posts that found it awake %.2f, "
      "spins %.2f (caught a post %.2f)\n",
      static_cast<double>(after.parks - before.parks) / n,
      static_cast<double>(after.wakeups - before.wakeups) / n,
      static_cast<double>(after.posts_unparked - before.posts_unparked) / n,
      static_cast<double>(after.spins - before.spins) / n,
      static_cast<double>(after.spins_caught - before.spins_caught) / n);
  printf("voluntary context switches per call (all threads): host %.2f, plugin %.2f\n",
         static_cast<double>(host_switches_after - host_switches_before) / n,
         static_cast<double>(plugin_switches_after - plugin_switches_before) / n);
  host->Stop();
  return absl::OkStatus();
}

// --- The start-up breakdown (--launch_steps) ---------------------------------------------------

// CPU time that process `pid`'s live threads have run, in ms, from the scheduler's nanosecond
// counters (/proc/PID/task/TID/schedstat, first field): unlike wall time it does not stretch
// when other work holds the CPU, and unlike utime/stime it is not counted in 4 ms ticks.
double RunMillis(pid_t pid) {
  const std::string dir = absl::StrCat("/proc/", pid, "/task");
  DIR* tasks = ::opendir(dir.c_str());
  if (tasks == nullptr) return NAN;
  double ns = 0;
  while (const dirent* entry = ::readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream in(absl::StrCat(dir, "/", entry->d_name, "/schedstat"));
    double on_cpu = 0;
    if (in >> on_cpu) ns += on_cpu;
  }
  ::closedir(tasks);
  return ns / 1e6;
}

// Marks the steps of one launch from PluginClient's debug records, by the time they arrive,
// with the CPU time host and plugin had used by then.
class LaunchStepSink final : public LogSink {
 public:
  struct Mark {
    std::chrono::steady_clock::time_point at;
    double host_cpu_ms = NAN;
    double plugin_cpu_ms = NAN;
  };
  explicit LaunchStepSink(std::function<int64_t()> plugin_pid) : plugin_pid_(plugin_pid) {}
  void Write(const LogRecord& record) override {
    Mark* mark = record.message == "plugin process started"      ? &started
                 : record.message == "plugin handshake received" ? &handshake
                 : record.message == "plugin connected"          ? &connected
                                                                 : nullptr;
    if (mark == nullptr) return;
    mark->at = std::chrono::steady_clock::now();
    mark->host_cpu_ms = RunMillis(::getpid());
    const int64_t pid = plugin_pid_();
    if (pid > 0) mark->plugin_cpu_ms = RunMillis(static_cast<pid_t>(pid));
  }
  Mark started, handshake, connected;

 private:
  std::function<int64_t()> plugin_pid_;
};

double MillisBetween(std::chrono::steady_clock::time_point from,
                     std::chrono::steady_clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// Per placement and round: --launches launches of bulwark's pair, each timed step by step (the
// artifact's open and SHA-256; certificate, environment and fork/exec; exec to the handshake
// line, the plugin's whole start; connect, mutual TLS and the health check; the done callback),
// and the AutoMTLS certificate alone; then the Go host's --launches launches (SHA-256 check on)
// in the same round. Prints the p50 of each step over all rounds with its share, and the
// launch ratio per round.
absl::Status RunLaunchSteps() {
  ASSIGN_OR_RETURN(std::vector<measure::Placement> placements, measure::StandardPlacements());
  ASSIGN_OR_RETURN(std::unique_ptr<BulwarkHost> host, BulwarkHost::Create(g_options.kv_plugin));
  BulwarkHost* h = host.get();
  LaunchStepSink sink([h] { return h->pid(); });
  host->set_log_sink(&sink);
  const std::vector<std::string> go_flags = {"-bench-samples",  "1",    "-bench-warmup",   "0",
                                             "-bench-duration", "10ms", "-bench-payloads", "64",
                                             "-bench-callers",  "1"};
  constexpr const char* kSteps[] = {
      "open + SHA-256 of the artifact",
      "AutoMTLS cert + env + fork/exec (to Spawn's return)",
      "exec -> handshake line read (the plugin's start)",
      "connect + mutual TLS + health check",
      "start callback",
      "whole launch -> first call",
  };
  constexpr const char* kCpuFigures[] = {
      "host: open + SHA-256 + cert + env + fork/exec",
      "host: whole launch",
      "plugin: exec -> handshake line",
      "plugin: connect + mutual TLS + health check",
      "host: connect + mutual TLS + health check",
  };
  for (const measure::Placement& p : placements) {
    if (!g_options.placement.empty() && p.name != g_options.placement) continue;
    RETURN_IF_ERROR(measure::PinProcess(::getpid(), p.host_cpu));
    g_options.plugin_cpu = p.plugin_cpu;
    std::vector<std::vector<double>> steps(std::size(kSteps));
    std::vector<std::vector<double>> cpu(std::size(kCpuFigures));
    std::vector<double> cert_us, ratios, bulwark_p50s, go_p50s;
    for (int round = 0; round < g_options.rounds; ++round) {
      std::vector<double> whole;
      for (int i = 0; i < g_options.launches; ++i) {
        sink.started = sink.handshake = sink.connected = LaunchStepSink::Mark();
        const double host_cpu_start = RunMillis(::getpid());
        const auto start = std::chrono::steady_clock::now();
        absl::Status s = host->Launch(g_options.hash_every_launch ? LaunchCheck::kHashEveryLaunch
                                                                  : LaunchCheck::kAsTheCatalog);
        const auto end = std::chrono::steady_clock::now();
        const double host_cpu_end = RunMillis(::getpid());
        host->Stop();
        RETURN_IF_ERROR(s);
        for (const auto& [mark, what] : {std::pair{&sink.started, "plugin process started"},
                                         std::pair{&sink.handshake, "plugin handshake received"},
                                         std::pair{&sink.connected, "plugin connected"}}) {
          if (mark->at == std::chrono::steady_clock::time_point()) {
            return absl::InternalError(
                absl::StrCat("--launch_steps: PluginClient logged no \"", what,
                             "\" record during a launch; the step marks need its debug records"));
          }
        }
        const double t[] = {MillisBetween(start, host->opened_at()),
                            MillisBetween(host->opened_at(), sink.started.at),
                            MillisBetween(sink.started.at, sink.handshake.at),
                            MillisBetween(sink.handshake.at, sink.connected.at),
                            MillisBetween(sink.connected.at, end),
                            MillisBetween(start, end)};
        for (size_t k = 0; k < std::size(kSteps); ++k) steps[k].push_back(t[k]);
        // CPU: the host's up to Spawn's return and over the whole launch; the plugin's to its
        // handshake line and during connect + TLS + health check.
        cpu[0].push_back(sink.started.host_cpu_ms - host_cpu_start);
        cpu[1].push_back(host_cpu_end - host_cpu_start);
        cpu[2].push_back(sink.handshake.plugin_cpu_ms);
        cpu[3].push_back(sink.connected.plugin_cpu_ms - sink.handshake.plugin_cpu_ms);
        cpu[4].push_back(sink.connected.host_cpu_ms - sink.handshake.host_cpu_ms);
        whole.push_back(t[std::size(kSteps) - 1]);
        ASSIGN_OR_RETURN(double cert, host->TimeClientIdentity());
        cert_us.push_back(cert);
      }
      ASSIGN_OR_RETURN(nlohmann::json go, RunGoHost(p.host_cpu, p.plugin_cpu, go_flags));
      const double go_ms = go["launch_to_first_call"].value("p50_us", NAN) / 1e3;
      const double bulwark_ms = measure::SummarizeLatency(whole).p50;
      bulwark_p50s.push_back(bulwark_ms);
      go_p50s.push_back(go_ms);
      ratios.push_back(bulwark_ms / go_ms);
    }
    const double total = measure::SummarizeLatency(steps.back()).p50;
    printf("\n%s (host CPU %d, plugin CPU %d), %d rounds x %d launches:\n", p.name.c_str(),
           p.host_cpu, p.plugin_cpu, g_options.rounds, g_options.launches);
    printf(
        "| step | p50 ms | min ms | max ms | share of the launch p50 |\n| --- | --- | --- | --- | "
        "--- |\n");
    for (size_t k = 0; k < std::size(kSteps); ++k) {
      const measure::LatencySummary s = measure::SummarizeLatency(steps[k]);
      printf("| %s | %.2f | %.2f | %.2f | %.0f%% |\n", kSteps[k], s.p50, s.min, s.max,
             100 * s.p50 / total);
    }
    const measure::LatencySummary cert = measure::SummarizeLatency(cert_us);
    printf("| (of the 2nd step) AutoMTLS certificate alone | %.2f | %.2f | %.2f | %.0f%% |\n",
           cert.p50 / 1e3, cert.min / 1e3, cert.max / 1e3, 100 * cert.p50 / 1e3 / total);
    printf(
        "\nCPU time (scheduler run time of all threads, ms):\n| figure | p50 | min | max |\n"
        "| --- | --- | --- | --- |\n");
    for (size_t k = 0; k < std::size(kCpuFigures); ++k) {
      const measure::LatencySummary c = measure::SummarizeLatency(cpu[k]);
      printf("| %s | %.2f | %.2f | %.2f |\n", kCpuFigures[k], c.p50, c.min, c.max);
    }
    const measure::RangeSummary ratio = measure::SummarizeRange(ratios);
    printf("launch p50 per round: bulwark %s ms, go-plugin %s ms; ratio median %.2fx [%.2f-%.2f]\n",
           absl::StrJoin(
               bulwark_p50s, " ",
               [](std::string* out, double v) { absl::StrAppend(out, absl::StrFormat("%.1f", v)); })
               .c_str(),
           absl::StrJoin(
               go_p50s, " ",
               [](std::string* out, double v) { absl::StrAppend(out, absl::StrFormat("%.1f", v)); })
               .c_str(),
           ratio.median, ratio.min, ratio.max);
  }
  return absl::OkStatus();
}

// --- Flags ---------------------------------------------------------------------------------

// Parses the flags; returns false (with a message) on a bad one.
bool ParseFlags(int argc, char** argv) {
  std::vector<std::string> positional;
  bool have_rounds = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::StartsWith(arg, "--") && !absl::StartsWith(arg, "--record=") &&
        !absl::StartsWith(arg, "--many_mounts_plugin=")) {
      g_options.flags.emplace_back(arg);
    }
    auto int_flag = [&](absl::string_view name, int* value, int min,
                        int max) -> std::optional<bool> {
      const std::string prefix = absl::StrCat("--", name, "=");
      if (!absl::StartsWith(arg, prefix)) return std::nullopt;
      int v = 0;
      if (!absl::SimpleAtoi(arg.substr(prefix.size()), &v) || v < min || v > max) {
        fprintf(stderr, "%s must be %d..%d\n", prefix.c_str(), min, max);
        return false;
      }
      *value = v;
      return true;
    };
    std::optional<bool> r;
    if ((r = int_flag("rounds", &g_options.rounds, 1, kRoundsMax))) {
      have_rounds = true;
    } else if (!(r = int_flag("launches", &g_options.launches, 1, kLaunchesMax)) &&
               !(r = int_flag("samples", &g_options.samples, 1, kSamplesMax)) &&
               !(r = int_flag("warmup", &g_options.warmup, 0, kSamplesMax)) &&
               !(r = int_flag("duration_ms", &g_options.duration_ms, 10, kDurationMsMax)) &&
               !(r = int_flag("plugin_cpu", &g_options.plugin_cpu, -1, CPU_SETSIZE - 1)) &&
               !(r = int_flag("calls", &g_options.calls, 1, kSamplesMax)) &&
               !(r = int_flag("loop_spin_us", &g_options.loop_spin_us, 0, kLoopSpinUsMax)) &&
               !(r = int_flag("loop_cq", &g_options.loop_cq, 0, 1))) {
      if (arg == "--quick") {
        g_options.quick = true;
      } else if (arg == "--dedicated_host_connections") {
        g_options.dedicated_host_connections = true;
      } else if (arg == "--execve_launcher") {
        g_options.execve_launcher = true;
      } else if (arg == "--launch_steps") {
        g_options.launch_steps = true;
      } else if (arg == "--hash_every_launch") {
        g_options.hash_every_launch = true;
      } else if (arg == "--callgrind_marks") {
        g_options.callgrind_marks = true;
      } else if (absl::StartsWith(arg, "--plugin_env=")) {
        g_options.plugin_env.emplace_back(arg.substr(strlen("--plugin_env=")));
      } else if (absl::StartsWith(arg, "--arm=")) {
        g_options.arm = std::string(arg.substr(strlen("--arm=")));
        if (g_options.arm != "bulwark") {
          fprintf(stderr, "--arm must be bulwark\n");
          return false;
        }
      } else if (absl::StartsWith(arg, "--smaps_dir=")) {
        g_options.smaps_dir = std::string(arg.substr(strlen("--smaps_dir=")));
      } else if (absl::StartsWith(arg, "--many_mounts_plugin=")) {
        g_options.many_mounts_plugin = std::string(arg.substr(strlen("--many_mounts_plugin=")));
      } else if (absl::StartsWith(arg, "--op=")) {
        g_options.op = std::string(arg.substr(strlen("--op=")));
        if (g_options.op != "echo64" && g_options.op != "echo64k" && g_options.op != "write64" &&
            g_options.op != "write64k" && g_options.op != "read64" && g_options.op != "read64k") {
          fprintf(stderr, "--op must be echo64, echo64k, write64, write64k, read64 or read64k\n");
          return false;
        }
      } else if (absl::StartsWith(arg, "--plugin_wrapper=")) {
        g_options.plugin_wrapper =
            absl::StrSplit(arg.substr(strlen("--plugin_wrapper=")), ',', absl::SkipEmpty());
      } else if (absl::StartsWith(arg, "--record=")) {
        g_options.record = std::string(arg.substr(strlen("--record=")));
        // Under `bazel run` a relative path means the directory bazel was started from.
        const char* user_dir = std::getenv("BUILD_WORKING_DIRECTORY");
        if (!g_options.record.empty() && g_options.record[0] != '/' && user_dir != nullptr) {
          g_options.record = absl::StrCat(user_dir, "/", g_options.record);
        }
        continue;
      } else if (absl::StartsWith(arg, "--placement=")) {
        g_options.placement = std::string(arg.substr(strlen("--placement=")));
        if (g_options.placement != "same-cpu" && g_options.placement != "split-cpus") {
          fprintf(stderr, "--placement must be same-cpu or split-cpus\n");
          return false;
        }
      } else if (absl::StartsWith(arg, "--mounts=")) {
        for (absl::string_view f : absl::StrSplit(arg.substr(strlen("--mounts=")), ',')) {
          int n = 0;
          if (!absl::SimpleAtoi(f, &n) || n < 1 || n > kMountsMax ||
              (!g_options.mounts.empty() && n <= g_options.mounts.back())) {
            fprintf(stderr, "--mounts must be increasing counts in 1..%d, e.g. 1,100,1000\n",
                    kMountsMax);
            return false;
          }
          g_options.mounts.push_back(n);
        }
      } else if (!absl::StartsWith(arg, "--")) {
        positional.emplace_back(arg);
      } else {
        fprintf(stderr, "unknown flag %s\n", std::string(arg).c_str());
        return false;
      }
    } else if (!*r) {
      return false;
    }
  }
  if (g_options.quick) {
    // Proves every series still runs and prints; the figures mean nothing.
    if (!have_rounds) g_options.rounds = 1;
    g_options.launches = 2;
    g_options.warmup = 5;
    g_options.samples = 20;
    g_options.duration_ms = 200;
  }
  if (positional.size() != 3) {
    fprintf(stderr,
            "usage: plugin_protocol_benchmark KV_PLUGIN GO_HOST GO_PLUGIN [--quick] [--rounds=N] "
            "[--launches=N] [--warmup=N] [--samples=N] [--duration_ms=N] "
            "[--placement=same-cpu|split-cpus] "
            "[--mounts=1,100,1000 [--smaps_dir=DIR] [--dedicated_host_connections]] "
            "[--plugin_env=K=V] [--loop_spin_us=N] [--loop_cq=0|1] "
            "[--calls=N --op=echo64 [--plugin_wrapper=CMD,ARG,...] [--callgrind_marks]] "
            "[--launch_steps] "
            "[--record=FILE]\n"
            "(bazel run -c opt //benchmarks:plugin_protocol_benchmark passes the paths)\n");
    return false;
  }
  auto absolute = [](const std::string& p) {
    char* real = ::realpath(p.c_str(), nullptr);
    std::string r = real != nullptr ? real : p;
    ::free(real);
    return r;
  };
  g_options.kv_plugin = absolute(positional[0]);
  g_options.go_host = absolute(positional[1]);
  g_options.go_plugin = absolute(positional[2]);
  if (!g_options.many_mounts_plugin.empty()) {
    g_options.many_mounts_plugin = absolute(g_options.many_mounts_plugin);
  }
  for (const std::string& path : {g_options.kv_plugin, g_options.go_host, g_options.go_plugin}) {
    if (::access(path.c_str(), X_OK) != 0) {
      fprintf(stderr, "%s: not an executable file\n", path.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace
}  // namespace bulwark::bench

int main(int argc, char** argv) {
  using namespace bulwark::bench;  // NOLINT: main only.
  if (!ParseFlags(argc, argv)) return 2;
  // As `bulwark server` does (server/server.cc ServerMain): abseil's deadlock graph off, malloc
  // keeping freed message memory.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  bulwark::TuneMallocForMessages();
  absl::Status status;
  if (g_options.arm == "bulwark") {
    absl::StatusOr<nlohmann::json> out = RunBulwarkArm();
    if (out.ok()) {
      printf("%s\n", out->dump().c_str());
      return 0;
    }
    status = out.status();
  } else if (g_options.launch_steps) {
    status = RunLaunchSteps();
  } else if (g_options.calls > 0) {
    status = RunCalls();
  } else if (!g_options.mounts.empty()) {
    status = RunMounts();
  } else {
    status = RunComparison();
  }
  if (!status.ok()) {
    fprintf(stderr, "plugin_protocol_benchmark: %s\n", std::string(status.ToString()).c_str());
    return 1;
  }
  return 0;
}
