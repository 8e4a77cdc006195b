// The lifecycle manager's state machine: processes (starting, running, stopping), mounts (not
// ready, setting up, ready) and the transitions between them.
#include "core/lifecycle/lifecycle.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/crypto/sha256.h"
#include "base/status/check.h"
#include "base/status/status_macros.h"
#include "faultinject/failpoint.h"
#include "proto/vault/database.pb.h"
#include "proto/vault/multiplexing.pb.h"
#include "protocol/wire_names.h"

namespace bulwark::lifecycle {

namespace {

// Vault's base62.Random(10) multiplex ids.
constexpr size_t kMultiplexIdChars = 10;

// True for the errors a call gets when the plugin process went away under it.
bool IsConnectionLoss(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable || s.code() == absl::StatusCode::kCancelled;
}

}  // namespace

struct LifecycleManager::Process {
  enum class Phase { kStarting, kRunning, kStopping };
  uint64_t id = 0;
  std::string runner_key;
  std::string plugin_name;
  std::string plugin_version;  // The catalog entry's version (labels).
  std::string started_for;     // The mount that started it (labels).
  Phase phase = Phase::kStarting;
  std::unique_ptr<PluginRunner> runner;
  bool multiplexed = false;
  absl::Duration start_time;
  std::set<std::string> mounts;
  // While starting: the caller that asked for the start, and others waiting to see whether the
  // new process multiplexes (they then share it or start their own).
  absl::AnyInvocable<void(absl::StatusOr<uint64_t>)> claimer;
  std::vector<absl::AnyInvocable<void()>> start_waiters;
  std::vector<absl::AnyInvocable<void()>> stop_waiters;
  // Set while the process is kept idle (KeepIdle): the timer that stops it.
  TimerId idle_timer = kNoTimer;
};

struct LifecycleManager::MountState {
  mount::MountEntry entry;
  uint64_t process_id = 0;  // 0: no process attached.
  std::string multiplex_id;
  bool ready = false;
  bool setting_up = false;
  absl::Duration setup_started;  // Monotonic; for bulwark_plugin_ready_seconds.
  std::string version_label;     // See PluginIdOf.
  std::vector<StatusCallback> waiters;
  std::unique_ptr<HostServices> host;
  std::optional<uint32_t> broker_id;
  // Bumped whenever the mount leaves its process, so completions of older calls are ignored.
  uint64_t generation = 0;
};

absl::string_view TerminationEventName(TerminationEvent event) {
  switch (event) {
    case TerminationEvent::kSeal:
      return "seal";
    case TerminationEvent::kStepDown:
      return "step-down";
    case TerminationEvent::kShutdown:
      return "shutdown";
    case TerminationEvent::kUnmount:
      return "unmount";
    case TerminationEvent::kReload:
      return "reload";
    case TerminationEvent::kConnectionChange:
      return "connection-change";
    case TerminationEvent::kRootRotation:
      return "root-rotation";
    case TerminationEvent::kWalRollback:
      return "wal-rollback";
    case TerminationEvent::kPluginShutdown:
      return "plugin-shutdown";
  }
  return "unknown";
}

void ApplyEntryLimits(const catalog::PluginLimits& entry, RunnerLimits& limits) {
  // Open files are per process: the stricter of the mount's rlimit and the entry's wins. Memory,
  // pids and CPU weight go to the runner as the process's group limits (a cgroup, or rlimits
  // where the launcher has no cgroups).
  if (entry.open_files.has_value() &&
      (!limits.process.open_files.has_value() || *entry.open_files < *limits.process.open_files)) {
    limits.process.open_files = entry.open_files;
  }
  limits.entry = entry;
}

std::string RunnerKey(const catalog::CatalogEntry& entry) {
  // Length-prefixed fields, so no two different configs encode alike. Env values go into the
  // digest only; the key itself is safe to log.
  crypto::Sha256 h;
  auto field = [&h](absl::string_view s) {
    h.Update(absl::StrCat(s.size(), ":"));
    h.Update(s);
  };
  field(catalog::PluginTypeName(entry.type));
  field(entry.name);
  field(entry.version);
  field(entry.command);
  field(absl::StrCat(entry.args.size()));
  for (const std::string& a : entry.args) field(a);
  field(absl::StrCat(entry.env.size()));
  for (const std::string& e : entry.env) field(e);
  field(entry.sha256_hex);
  field(entry.builtin ? "builtin" : "external");
  if (!entry.limits.empty()) {  // Only when set: keys of entries without limits are unchanged.
    for (const std::optional<uint64_t>& v : {entry.limits.memory_bytes, entry.limits.pids,
                                             entry.limits.cpu_weight, entry.limits.open_files}) {
      field(v.has_value() ? absl::StrCat(*v) : "-");
    }
  }
  return crypto::HexEncode(h.Finish()).substr(0, 16);
}

absl::Status StatusFromProtoError(const pb::ProtoError& e) {
  if (e.err_type() == 0 && e.err_msg().empty()) return absl::OkStatus();
  const std::string& msg = e.err_msg();
  switch (e.err_type()) {
    case 1:  // user error
    case 4:  // bad request
    case 7:  // invalid request
      return absl::InvalidArgumentError(msg);
    case 3:  // coded error: by HTTP status
      switch (e.err_code()) {
        case 400:
          return absl::InvalidArgumentError(msg);
        case 403:
          return absl::PermissionDeniedError(msg);
        case 404:
          return absl::NotFoundError(msg);
        case 405:
        case 501:
          return absl::UnimplementedError(msg);
        case 409:
          return absl::AlreadyExistsError(msg);
        case 412:
          return absl::FailedPreconditionError(msg);
        case 429:
          return absl::ResourceExhaustedError(msg);
        case 503:
          return absl::UnavailableError(msg);
        default:
          return absl::UnknownError(msg);
      }
    case 5:
      return absl::UnimplementedError(msg);
    case 6:
      return absl::NotFoundError(msg);
    case 8:
      return absl::PermissionDeniedError(msg);
    case 9:
      return absl::FailedPreconditionError(msg);
    default:  // 0 unknown, 2 internal, 10 unrecoverable
      return absl::InternalError(msg);
  }
}

LifecycleManager::LifecycleManager(Env& env, catalog::Catalog& catalog, RunnerFactory& factory,
                                   HostServicesFactory host_services, metrics::Registry& metrics,
                                   LogSink& log, LifecycleOptions options)
    : env_(env),
      catalog_(catalog),
      factory_(factory),
      host_services_(std::move(host_services)),
      log_(log),
      options_(std::move(options)),
      plugin_metrics_(metrics) {
  m_processes_ = metrics.Gauge("bulwark_plugin_processes", "Plugin processes running.");
  m_launches_ = metrics.Counter("bulwark_plugin_launches_total", "Plugin processes started.");
  m_launch_failures_ = metrics.Counter("bulwark_plugin_launch_failures_total",
                                       "Plugin starts that failed (launch, handshake, setup).");
  m_crashes_ = metrics.Counter("bulwark_plugin_crashes_total",
                               "Plugin processes that ended or were lost without being asked.");
  m_restarts_ =
      metrics.Counter("bulwark_plugin_lazy_reloads_total", "Requests retried after a lazy reload.");
  m_reloads_ = metrics.Counter("bulwark_plugin_reloads_total", "Reloads through the API.");
  m_requests_ = metrics.Counter("bulwark_requests_total", "Requests by mount and outcome.");
  m_request_seconds_ = metrics.Histogram("bulwark_request_seconds", "Request latency by mount.",
                                         metrics::LatencyBucketsSeconds());
  m_start_seconds_ = metrics.Histogram("bulwark_plugin_start_seconds",
                                       "From launch to a connected plugin (handshake included).",
                                       metrics::LatencyBucketsSeconds());
  m_terminations_ = metrics.Counter("bulwark_plugin_terminations_total",
                                    "Plugin instances stopped, by termination event.");
}

LifecycleManager::~LifecycleManager() { *alive_ = false; }

void LifecycleManager::Log(LogLevel level, std::string message,
                           std::vector<std::pair<std::string, std::string>> fields) {
  LogRecord r;
  r.level = level;
  r.time = env_.clock.WallNow();
  r.source = "lifecycle";
  r.message = std::move(message);
  r.fields = std::move(fields);
  log_.Write(r);
}

void LifecycleManager::UpdateProcessGauge() {
  m_processes_->Set({}, static_cast<double>(process_count()));
  UpdatePluginProcesses(nullptr);
}

PluginId LifecycleManager::PluginIdOf(const MountState& m) const {
  return PluginId{m.entry.plugin_name, m.version_label};
}

void LifecycleManager::UpdatePluginProcesses(ProcessSampler* sampler) {
  std::map<PluginId, std::vector<int64_t>> pids;
  for (const auto& [id, p] : processes_) {
    if (p->phase != Process::Phase::kRunning || p->runner == nullptr || p->runner->pid() == 0) {
      continue;
    }
    pids[PluginId{p->plugin_name, p->plugin_version}].push_back(p->runner->pid());
  }
  plugin_metrics_.SetProcesses(pids, sampler);
}

void LifecycleManager::SampleResources() { UpdatePluginProcesses(options_.sampler); }

const RunnerLimits& LifecycleManager::LimitsFor(const std::string& path) const {
  auto it = options_.mount_limits.find(path);
  return it == options_.mount_limits.end() ? options_.default_limits : it->second;
}

absl::Duration LifecycleManager::RequestTimeoutFor(const std::string& path) const {
  auto it = options_.mount_request_timeouts.find(path);
  return it == options_.mount_request_timeouts.end() ? options_.request_timeout : it->second;
}

template <typename Reply>
void LifecycleManager::ControlCall(uint64_t process_id, absl::string_view method,
                                   const std::string& request, const std::string& multiplex_id,
                                   absl::AnyInvocable<void(absl::StatusOr<Reply>)> done) {
  // Every `done` here captures this manager; the posted answer, like the call's, must not run
  // it after the manager is gone.
  std::weak_ptr<bool> alive = alive_;
  auto it = processes_.find(process_id);
  if (it == processes_.end() || it->second->runner == nullptr) {
    env_.executor.Post([alive, done = std::move(done)]() mutable {
      if (alive.expired()) return;
      done(absl::UnavailableError("plugin process is gone"));
    });
    return;
  }
  CallOptions opts;
  opts.multiplex_id = multiplex_id;
  opts.timeout = options_.control_timeout;
  it->second->runner->connection().Call(
      method, request, opts,
      [alive, method = std::string(method),
       done = std::move(done)](absl::StatusOr<std::string> r) mutable {
        if (alive.expired()) return;
        if (!r.ok()) {
          done(r.status());
          return;
        }
        Reply reply;
        if (!reply.ParseFromString(*r)) {
          done(absl::InternalError(absl::StrCat("plugin sent a malformed reply to ", method)));
          return;
        }
        done(std::move(reply));
      });
}

// ---- Mounting ------------------------------------------------------------------------------

void LifecycleManager::Mount(const mount::MountEntry& entry, StatusCallback done) {
  if (!accepting_) {
    env_.executor.Post([done = std::move(done)]() mutable {
      done(absl::FailedPreconditionError("plugins are stopped (sealed or standby)"));
    });
    return;
  }
  if (mounts_.count(entry.path) > 0) {
    env_.executor.Post([done = std::move(done), path = entry.path]() mutable {
      done(absl::AlreadyExistsError(absl::StrCat("mount \"", path, "\" is already loaded")));
    });
    return;
  }
  auto m = std::make_unique<MountState>();
  m->entry = entry;
  m->version_label = entry.plugin_version;
  mounts_.emplace(entry.path, std::move(m));
  EnsureReady(entry.path, std::move(done));
}

void LifecycleManager::EnsureReady(const std::string& path, StatusCallback done) {
  auto it = mounts_.find(path);
  if (it == mounts_.end()) {
    env_.executor.Post([done = std::move(done), path]() mutable {
      done(absl::NotFoundError(absl::StrCat("no mount at \"", path, "\"")));
    });
    return;
  }
  MountState& m = *it->second;
  if (m.ready) {
    env_.executor.Post([done = std::move(done)]() mutable { done(absl::OkStatus()); });
    return;
  }
  if (m.waiters.size() >= options_.pending_per_mount_max) {
    env_.executor.Post([done = std::move(done), path]() mutable {
      done(absl::ResourceExhaustedError(absl::StrCat(
          "too many requests waiting for the plugin of mount \"", path, "\" to start")));
    });
    return;
  }
  m.waiters.push_back(std::move(done));
  if (m.setting_up) return;
  m.setting_up = true;
  m.setup_started = env_.clock.MonotonicNow();
  std::weak_ptr<bool> alive = alive_;
  AcquireProcess(path, [this, alive, path](absl::StatusOr<uint64_t> id) {
    if (alive.expired()) return;
    auto mit = mounts_.find(path);
    if (mit == mounts_.end() || !mit->second->setting_up) {
      // Unmounted while the process started: do not leave it running for nobody.
      if (id.ok()) {
        auto pit = processes_.find(*id);
        if (pit != processes_.end() && pit->second->mounts.empty()) StopProcess(*id, nullptr);
      }
      return;
    }
    if (!id.ok()) {
      FinishSetup(path, id.status());
      return;
    }
    SetupInstance(path, *id);
  });
}

void LifecycleManager::FinishSetup(const std::string& path, absl::Status status) {
  auto it = mounts_.find(path);
  if (it == mounts_.end()) return;
  MountState& m = *it->second;
  m.setting_up = false;
  if (!status.ok()) {
    Log(LogLevel::kWarn, "plugin instance could not be set up",
        {{"mount", path}, {"plugin", m.entry.plugin_name}, {"error", status.ToString()}});
  }
  std::vector<StatusCallback> waiters = std::move(m.waiters);
  m.waiters.clear();
  for (StatusCallback& w : waiters) {
    env_.executor.Post([w = std::move(w), status]() mutable { w(status); });
  }
}

absl::Status LifecycleManager::CheckBackoff(const std::string& runner_key,
                                            absl::string_view plugin) const {
  auto it = backoff_.find(runner_key);
  if (it == backoff_.end()) return absl::OkStatus();
  const Backoff& b = it->second;
  const absl::Duration now = env_.clock.MonotonicNow();
  if (now >= b.next_start_allowed) return absl::OkStatus();
  const bool loop = b.failures >= options_.crash_loop_threshold;
  return absl::UnavailableError(
      absl::StrCat("plugin \"", plugin, "\" ", loop ? "keeps crashing" : "failed", " (", b.failures,
                   " failures in a row; last: ", b.last_failure, "); next start allowed in ",
                   absl::FormatDuration(b.next_start_allowed - now)));
}

void LifecycleManager::RecordFailure(const std::string& runner_key, const std::string& reason) {
  Backoff& b = backoff_[runner_key];
  ++b.failures;
  b.last_failure = reason;
  // The first restart after a failure is immediate (lazy reload); later ones back off.
  absl::Duration delay = absl::ZeroDuration();
  if (b.failures >= 2 && !BW_PLANTED_BUG_IN(env_.failpoints, "bug.lifecycle.no_restart_backoff")) {
    delay = options_.backoff_initial;
    for (int i = 2; i < b.failures && delay < options_.backoff_max; ++i) delay *= 2;
    delay = std::min(delay, options_.backoff_max);
  }
  b.next_start_allowed = env_.clock.MonotonicNow() + delay;
}

std::string LifecycleManager::LaunchKey(const catalog::CatalogEntry& entry) {
  // A planted bug for the simulator's drill (testonly builds only): entries that differ only in
  // env or args get one runner key, so their mounts share a process.
  if ((!entry.env.empty() || !entry.args.empty()) &&
      BW_PLANTED_BUG_IN(env_.failpoints, "bug.lifecycle.runner_key_ignores_env_args")) {
    catalog::CatalogEntry without = entry;
    without.env.clear();
    without.args.clear();
    return RunnerKey(without);
  }
  return RunnerKey(entry);
}

bool LifecycleManager::TakeRunningProcess(
    const std::string& key, absl::AnyInvocable<void(absl::StatusOr<uint64_t>)>& done) {
  for (auto& [id, p] : processes_) {
    if (p->runner_key != key || p->phase != Process::Phase::kRunning || !p->multiplexed) continue;
    EndIdle(*p);  // Taken: no longer stopped at the end of its idle period.
    env_.executor.Post([done = std::move(done), id = id]() mutable { done(id); });
    return true;
  }
  return false;
}

void LifecycleManager::AcquireProcess(const std::string& path,
                                      absl::AnyInvocable<void(absl::StatusOr<uint64_t>)> done) {
  MountState& m = *mounts_.at(path);
  // A database instance joins a running multiplexed process of its runner config without the
  // artifact being opened and hashed again: that process's executable was opened, verified and
  // run from that one descriptor at launch, a later change to the file on disk cannot change
  // what it runs, and the runner key holds the catalog's sha256, so a re-registration with
  // other bytes never matches it (docs/database.md, "Opening an instance").
  if (m.entry.type == catalog::PluginType::kDatabase) {
    absl::StatusOr<catalog::CatalogEntry> entry =
        catalog_.GetForReuse(m.entry.type, m.entry.plugin_name, m.entry.plugin_version);
    if (entry.ok() && TakeRunningProcess(LaunchKey(*entry), done)) return;
  }
  const absl::Duration verifying = env_.clock.MonotonicNow();
  absl::StatusOr<catalog::LaunchSpec> spec =
      catalog_.GetForLaunch(m.entry.type, m.entry.plugin_name, m.entry.plugin_version);
  Log(LogLevel::kDebug, "plugin artifact checked for launch",
      {{"mount", path},
       {"verify_us",
        absl::StrCat(absl::ToInt64Microseconds(env_.clock.MonotonicNow() - verifying))}});
  if (!spec.ok()) {
    m_launch_failures_->Add({{"plugin", m.entry.plugin_name}}, 1);
    env_.executor.Post(
        [done = std::move(done),
         status = Annotate(spec.status(), absl::StrCat("cannot start plugin \"",
                                                       m.entry.plugin_name, "\" for mount \"", path,
                                                       "\""))]() mutable { done(status); });
    return;
  }
  const std::string key = LaunchKey(spec->entry);
  if (TakeRunningProcess(key, done)) return;
  for (auto& [id, p] : processes_) {
    if (p->runner_key != key) continue;
    if (p->phase == Process::Phase::kStarting) {
      // Wait to learn whether it multiplexes, then decide again.
      p->start_waiters.push_back([this, path, done = std::move(done)]() mutable {
        if (mounts_.count(path) == 0) {
          done(absl::CancelledError("mount was removed"));
          return;
        }
        AcquireProcess(path, std::move(done));
      });
      return;
    }
  }
  absl::Status backoff = CheckBackoff(key, m.entry.plugin_name);
  if (!backoff.ok()) {
    env_.executor.Post([done = std::move(done), backoff]() mutable { done(backoff); });
    return;
  }
  if (processes_.size() >= options_.processes_max) {
    env_.executor.Post([done = std::move(done), max = options_.processes_max]() mutable {
      done(absl::ResourceExhaustedError(
          absl::StrCat("at most ", max, " plugin processes may run at once")));
    });
    return;
  }
  auto p = std::make_unique<Process>();
  const uint64_t id = next_process_id_++;
  p->id = id;
  p->runner_key = key;
  p->plugin_name = m.entry.plugin_name;
  p->plugin_version = spec->entry.version;
  p->started_for = path;
  p->start_time = env_.clock.MonotonicNow();
  p->claimer = std::move(done);
  plugin_metrics_.Started(PluginId{p->plugin_name, p->plugin_version}, path);
  processes_.emplace(id, std::move(p));
  m_launches_->Add({{"plugin", m.entry.plugin_name}}, 1);
  std::weak_ptr<bool> alive = alive_;
  RunnerLimits limits = LimitsFor(path);
  ApplyEntryLimits(spec->entry.limits, limits);
  factory_.Start(std::move(*spec), limits,
                 [this, alive, id](absl::StatusOr<std::unique_ptr<PluginRunner>> runner) mutable {
                   if (alive.expired()) return;
                   OnRunnerStarted(id, std::move(runner));
                 });
}

namespace {

// Runs the claimer and the waiters of a start that ended one way or the other.
template <typename P>
void ResolveStart(P& p, absl::StatusOr<uint64_t> result) {
  auto claimer = std::move(p.claimer);
  p.claimer = nullptr;
  auto waiters = std::move(p.start_waiters);
  p.start_waiters.clear();
  if (claimer) claimer(std::move(result));
  for (auto& w : waiters) w();
}

}  // namespace

void LifecycleManager::OnRunnerStarted(uint64_t id,
                                       absl::StatusOr<std::unique_ptr<PluginRunner>> runner) {
  auto it = processes_.find(id);
  CHECK(it != processes_.end()) << "started process " << id << " is unknown";
  Process& p = *it->second;
  if (!runner.ok()) {
    m_launch_failures_->Add({{"plugin", p.plugin_name}}, 1);
    RecordFailure(p.runner_key, std::string(runner.status().message()));
    Log(LogLevel::kError, "plugin failed to start",
        {{"plugin", p.plugin_name}, {"error", runner.status().ToString()}});
    std::unique_ptr<Process> gone = std::move(it->second);
    processes_.erase(it);
    ResolveStart(*gone, runner.status());
    for (auto& w : gone->stop_waiters) w();
    UpdateProcessGauge();
    return;
  }
  p.runner = std::move(*runner);
  m_start_seconds_->Observe({{"plugin", p.plugin_name}},
                            absl::ToDoubleSeconds(env_.clock.MonotonicNow() - p.start_time));
  if (p.phase == Process::Phase::kStopping) {
    // A termination event arrived while it started.
    ResolveStart(p, absl::CancelledError("plugins are being stopped"));
    p.phase = Process::Phase::kStarting;  // Let StopProcess run the stop.
    StopProcess(id, nullptr);
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  p.runner->SetExitHandler([this, alive, id](std::string reason) {
    if (alive.expired()) return;
    LoseProcess(id, absl::StrCat("exited: ", reason), /*count_as_failure=*/true);
  });
  p.runner->SetLimitKillHandler(
      [this, alive, entry = PluginId{p.plugin_name, p.plugin_version}](std::string limit) {
        if (alive.expired()) return;
        Log(LogLevel::kWarn, "plugin process killed at a limit",
            {{"plugin", entry.plugin}, {"version", entry.version}, {"limit", limit}});
        plugin_metrics_.KilledAtLimit(entry, limit);
      });
  UpdateProcessGauge();
  if (options_.multiplexing_opt_out.count(p.plugin_name) > 0) {
    OnMultiplexingKnown(id, false);
    return;
  }
  ControlCall<pluginutil::multiplexing::MultiplexingSupportResponse>(
      id, protocol::kMultiplexingSupportMethod, "", "",
      [this, id](absl::StatusOr<pluginutil::multiplexing::MultiplexingSupportResponse> r) {
        if (!r.ok() && r.status().code() == absl::StatusCode::kUnimplemented) {
          OnMultiplexingKnown(id, false);  // Vault: Unimplemented means "does not multiplex".
          return;
        }
        if (!r.ok()) {
          OnMultiplexingKnown(id, r.status());
          return;
        }
        OnMultiplexingKnown(id, r->supported());
      });
}

void LifecycleManager::OnMultiplexingKnown(uint64_t id, absl::StatusOr<bool> multiplexed) {
  auto it = processes_.find(id);
  if (it == processes_.end() || it->second->phase != Process::Phase::kStarting) return;
  Process& p = *it->second;
  if (!multiplexed.ok()) {
    m_launch_failures_->Add({{"plugin", p.plugin_name}}, 1);
    RecordFailure(p.runner_key, std::string(multiplexed.status().message()));
    ResolveStart(
        p, Annotate(multiplexed.status(), absl::StrCat("plugin \"", p.plugin_name,
                                                       "\" failed its MultiplexingSupport call")));
    StopProcess(id, nullptr);
    return;
  }
  p.multiplexed = *multiplexed;
  p.phase = Process::Phase::kRunning;
  Log(LogLevel::kInfo, "plugin process started",
      {{"plugin", p.plugin_name},
       {"pid", absl::StrCat(p.runner->pid())},
       {"multiplexed", p.multiplexed ? "true" : "false"}});
  UpdateProcessGauge();
  ResolveStart(p, id);
}

void LifecycleManager::SetupInstance(const std::string& path, uint64_t process_id) {
  MountState& m = *mounts_.at(path);
  auto pit = processes_.find(process_id);
  if (pit == processes_.end() || pit->second->phase != Process::Phase::kRunning) {
    FinishSetup(path, absl::UnavailableError("plugin process ended before setup"));
    return;
  }
  Process& p = *pit->second;
  m.process_id = process_id;
  m.version_label = p.plugin_version;
  p.mounts.insert(path);
  ++m.generation;
  static constexpr char kBase62[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  m.multiplex_id.clear();
  for (size_t i = 0; i < kMultiplexIdChars; ++i) m.multiplex_id += kBase62[env_.random.Uniform(62)];
  if (m.entry.type == catalog::PluginType::kDatabase) {
    // A database instance has no host services and no backend Setup: the engine's Initialize
    // (with the connection details) is its setup.
    m.ready = true;
    FinishSetup(path, absl::OkStatus());
    return;
  }
  if (m.host == nullptr) m.host = host_services_(m.entry);
  absl::StatusOr<uint32_t> broker = p.runner->connection().OfferHostServices(m.host.get());
  if (!broker.ok()) {
    FinishSetup(path, broker.status());  // First, so the waiters get this error.
    DetachMount(m);
    return;
  }
  m.broker_id = *broker;

  pb::SetupArgs args;
  args.set_broker_id(*broker);
  args.set_backenduuid(m.entry.uuid);
  auto& config = *args.mutable_config();
  config["plugin_name"] = m.entry.plugin_name;
  config["plugin_type"] = std::string(catalog::PluginTypeName(m.entry.type));
  config["plugin_version"] = m.entry.plugin_version;
  config["mount_path"] = m.entry.path;

  const uint64_t generation = m.generation;
  auto fail = [this, path, generation](absl::Status status) {
    auto it = mounts_.find(path);
    if (it == mounts_.end() || it->second->generation != generation) return;
    MountState& m = *it->second;
    const uint64_t pid = m.process_id;
    auto pit = processes_.find(pid);
    if (pit != processes_.end()) {
      m_launch_failures_->Add({{"plugin", pit->second->plugin_name}}, 1);
      RecordFailure(pit->second->runner_key, std::string(status.message()));
    }
    // Answer the waiters with this error first; DetachMount would otherwise answer for them.
    FinishSetup(path, Annotate(status, absl::StrCat("setting up plugin \"", m.entry.plugin_name,
                                                    "\" for mount \"", path, "\"")));
    DetachMount(m);
    if (pit != processes_.end() && pit->second->mounts.empty()) StopProcess(pid, nullptr);
  };
  ControlCall<pb::SetupReply>(
      process_id, protocol::kSetupMethod, args.SerializeAsString(), m.multiplex_id,
      [this, path, generation, process_id, fail](absl::StatusOr<pb::SetupReply> r) mutable {
        auto it = mounts_.find(path);
        if (it == mounts_.end() || it->second->generation != generation) return;
        if (!r.ok()) return fail(r.status());
        if (!r->err().empty()) return fail(absl::InternalError(r->err()));
        ControlCall<pb::InitializeReply>(
            process_id, protocol::kInitializeMethod, pb::InitializeArgs().SerializeAsString(),
            it->second->multiplex_id,
            [this, path, generation, fail](absl::StatusOr<pb::InitializeReply> r) mutable {
              auto it = mounts_.find(path);
              if (it == mounts_.end() || it->second->generation != generation) return;
              if (!r.ok() && r.status().code() != absl::StatusCode::kUnimplemented) {
                return fail(r.status());  // Vault tolerates an unimplemented Initialize.
              }
              if (r.ok()) {
                absl::Status err = StatusFromProtoError(r->err());
                if (!err.ok()) return fail(err);
              }
              MountState& m = *it->second;
              m.ready = true;
              plugin_metrics_.Ready(
                  PluginIdOf(m), path,
                  absl::ToDoubleSeconds(env_.clock.MonotonicNow() - m.setup_started));
              // A process that served a mount all the way to ready is healthy again.
              auto pit = processes_.find(m.process_id);
              if (pit != processes_.end()) backoff_.erase(pit->second->runner_key);
              FinishSetup(path, absl::OkStatus());
            });
      });
}

// ---- Requests ------------------------------------------------------------------------------

void LifecycleManager::HandleRequest(absl::string_view mount_path, pb::Request request,
                                     ResponseCallback done) {
  const std::string path(mount_path);
  if (!accepting_) {
    env_.executor.Post([done = std::move(done)]() mutable {
      done(absl::FailedPreconditionError("plugins are stopped (sealed or standby)"));
    });
    return;
  }
  const absl::Duration started = env_.clock.MonotonicNow();
  if (auto mit = mounts_.find(path); mit != mounts_.end()) {
    const PluginId id = PluginIdOf(*mit->second);
    plugin_metrics_.RequestStarted(id, path);
    done = [this, alive = std::weak_ptr<bool>(alive_), id, path, started,
            done = std::move(done)](absl::StatusOr<Reply> r) mutable {
      if (!alive.expired()) {
        plugin_metrics_.RequestFinished(id, path, absl::StatusCodeToString(r.status().code()),
                                        absl::ToDoubleSeconds(env_.clock.MonotonicNow() - started));
      }
      done(std::move(r));
    };
  }
  Attempt(path, std::move(request), /*retries_left=*/1, started, std::move(done));
}

void LifecycleManager::Attempt(const std::string& path, pb::Request request, int retries_left,
                               absl::Duration started, ResponseCallback done) {
  std::weak_ptr<bool> alive = alive_;
  auto finish = [this, path, started](ResponseCallback& done, absl::StatusOr<Reply> r) {
    const absl::StatusCode code = r.status().code();
    m_requests_->Add({{"mount", path}, {"code", absl::StatusCodeToString(code)}}, 1);
    m_request_seconds_->Observe({{"mount", path}},
                                absl::ToDoubleSeconds(env_.clock.MonotonicNow() - started));
    done(std::move(r));
  };
  EnsureReady(path, [this, alive, path, request = std::move(request), retries_left, started, finish,
                     done = std::move(done)](absl::Status s) mutable {
    if (alive.expired()) return;
    if (!s.ok()) return finish(done, s);
    auto mit = mounts_.find(path);
    if (mit == mounts_.end()) {
      return finish(done, absl::NotFoundError(absl::StrCat("no mount at \"", path, "\"")));
    }
    if (!mit->second->ready) {
      // The process was lost between setup and this callback: go round again (a start that
      // keeps failing ends in the backoff error).
      return Attempt(path, std::move(request), retries_left, started, std::move(done));
    }
    MountState& m = *mit->second;
    const uint64_t process_id = m.process_id;
    Process& p = *processes_.at(process_id);
    const std::string plugin = m.entry.plugin_name;
    pb::HandleRequestArgs args;
    *args.mutable_request() = request;
    CallOptions opts;
    opts.multiplex_id = m.multiplex_id;
    opts.timeout = RequestTimeoutFor(path);
    p.runner->connection().Call(
        protocol::kHandleRequestMethod, args.SerializeAsString(), opts,
        [this, alive, path, plugin, process_id, timeout = opts.timeout,
         request = std::move(request), retries_left, started, finish,
         done = std::move(done)](absl::StatusOr<std::string> r) mutable {
          if (alive.expired()) return;
          if (r.ok()) {
            pb::HandleRequestReply reply;
            if (!reply.ParseFromString(*r)) {
              return finish(done,
                            absl::InternalError(absl::StrCat(
                                "plugin \"", plugin, "\" sent a malformed HandleRequestReply")));
            }
            absl::Status err = StatusFromProtoError(reply.err());
            if (!err.ok()) return finish(done, err);
            if (!reply.has_response()) return finish(done, Reply());
            return finish(done, Reply(std::move(*reply.mutable_response())));
          }
          const absl::Status& status = r.status();
          if (status.code() == absl::StatusCode::kDeadlineExceeded) {
            LoseProcess(process_id,
                        absl::StrCat("no answer within the request deadline of ",
                                     absl::FormatDuration(timeout)),
                        /*count_as_failure=*/true);
            return finish(done, absl::DeadlineExceededError(absl::StrCat(
                                    "plugin \"", plugin, "\" on mount \"", path,
                                    "\" did not answer within ", absl::FormatDuration(timeout),
                                    "; it was stopped and starts again on the next request")));
          }
          if (IsConnectionLoss(status)) {
            LoseProcess(process_id, absl::StrCat("connection lost: ", status.message()),
                        /*count_as_failure=*/true);
            // The failpoint is a planted bug for the drill: no retry after the lazy reload.
            if (retries_left > 0 && accepting_ && mounts_.count(path) > 0 &&
                !BW_PLANTED_BUG_IN(env_.failpoints, "bug.lifecycle.skip_retry_after_reload")) {
              m_restarts_->Add({{"plugin", plugin}}, 1);
              if (auto mit = mounts_.find(path); mit != mounts_.end()) {
                plugin_metrics_.Restarted(PluginIdOf(*mit->second), path);
              }
              Log(LogLevel::kInfo, "lazy reload: restarting plugin and retrying the request",
                  {{"mount", path}, {"plugin", plugin}});
              Attempt(path, std::move(request), retries_left - 1, started, std::move(done));
              return;
            }
            return finish(done, absl::UnavailableError(
                                    absl::StrCat("plugin \"", plugin, "\" on mount \"", path,
                                                 "\" is unavailable: ", status.message())));
          }
          finish(done,
                 Annotate(status, absl::StrCat("plugin \"", plugin, "\" on mount \"", path, "\"")));
        });
  });
}

// ---- Losing and stopping processes ---------------------------------------------------------

void LifecycleManager::DetachMount(MountState& m) {
  const bool attached = m.process_id != 0;
  auto pit = processes_.find(m.process_id);
  if (pit != processes_.end()) {
    Process& p = *pit->second;
    if (m.broker_id.has_value() && p.runner != nullptr) {
      p.runner->connection().WithdrawHostServices(*m.broker_id);
    }
    p.mounts.erase(m.entry.path);
  }
  m.broker_id.reset();
  m.process_id = 0;
  m.ready = false;
  ++m.generation;
  // A setup in flight on that process can no longer finish (its replies are now stale): answer
  // its waiters instead of leaving them hanging. Found by the simulator (reload during setup).
  if (m.setting_up && attached) {
    FinishSetup(m.entry.path, absl::UnavailableError(absl::StrCat(
                                  "plugin \"", m.entry.plugin_name, "\" went away while mount \"",
                                  m.entry.path, "\" was being set up")));
  }
}

void LifecycleManager::LoseProcess(uint64_t id, const std::string& reason, bool count_as_failure) {
  auto it = processes_.find(id);
  if (it == processes_.end() || it->second->phase == Process::Phase::kStopping) return;
  Process& p = *it->second;
  Log(LogLevel::kWarn, "plugin process lost",
      {{"plugin", p.plugin_name},
       {"pid", p.runner != nullptr ? absl::StrCat(p.runner->pid()) : "-"},
       {"reason", reason}});
  if (count_as_failure) {
    m_crashes_->Add({{"plugin", p.plugin_name}}, 1);
    RecordFailure(p.runner_key, reason);
    const PluginId pid{p.plugin_name, p.plugin_version};
    if (p.mounts.empty()) plugin_metrics_.Exited(pid, p.started_for, reason);
    for (const std::string& path : p.mounts) plugin_metrics_.Exited(pid, path, reason);
  }
  const std::set<std::string> mounts = p.mounts;
  for (const std::string& path : mounts) DetachMount(*mounts_.at(path));
  if (p.phase == Process::Phase::kStarting && p.runner != nullptr) {
    ResolveStart(p, absl::UnavailableError(absl::StrCat("plugin \"", p.plugin_name,
                                                        "\" was lost while starting: ", reason)));
  }
  StopProcess(id, nullptr);
}

void LifecycleManager::StopProcess(uint64_t id, absl::AnyInvocable<void()> done) {
  auto it = processes_.find(id);
  if (it == processes_.end()) {
    if (done) env_.executor.Post(std::move(done));
    return;
  }
  Process& p = *it->second;
  EndIdle(p);
  if (done) p.stop_waiters.push_back(std::move(done));
  if (p.phase == Process::Phase::kStopping) return;
  const bool still_starting = p.runner == nullptr;
  p.phase = Process::Phase::kStopping;
  UpdateProcessGauge();
  if (still_starting) return;  // OnRunnerStarted stops it once the start ends.
  // Mounts still attached (a stop for reload or a termination) lose the process now.
  const std::set<std::string> mounts = p.mounts;
  for (const std::string& path : mounts) DetachMount(*mounts_.at(path));
  std::weak_ptr<bool> alive = alive_;
  p.runner->Stop(options_.shutdown_grace, [this, alive, id]() {
    if (alive.expired()) return;
    // Destroy the runner outside its own callback.
    env_.executor.Post([this, alive, id]() {
      if (alive.expired()) return;
      auto it = processes_.find(id);
      if (it == processes_.end()) return;
      std::unique_ptr<Process> gone = std::move(it->second);
      processes_.erase(it);
      UpdateProcessGauge();
      ResolveStart(*gone, absl::CancelledError("plugin process stopped"));
      for (auto& w : gone->stop_waiters) w();
    });
  });
}

void LifecycleManager::CleanupInstance(const std::string& path, absl::AnyInvocable<void()> done) {
  auto it = mounts_.find(path);
  if (it == mounts_.end() || !it->second->ready) {
    env_.executor.Post(std::move(done));
    return;
  }
  MountState& m = *it->second;
  if (m.entry.type == catalog::PluginType::kDatabase) {
    // Vault's DatabasePluginClient.Close: the Close RPC, then the process is released.
    ControlCall<dbplugin::v5::Empty>(
        m.process_id, protocol::kDatabaseCloseMethod, dbplugin::v5::Empty().SerializeAsString(),
        m.multiplex_id,
        [this, path, done = std::move(done)](absl::StatusOr<dbplugin::v5::Empty> r) mutable {
          if (!r.ok()) {
            Log(LogLevel::kWarn, "database plugin Close failed",
                {{"instance", path}, {"error", r.status().ToString()}});
          }
          done();
        });
    return;
  }
  ControlCall<pb::Empty>(m.process_id, protocol::kCleanupMethod, pb::Empty().SerializeAsString(),
                         m.multiplex_id,
                         [this, path, done = std::move(done)](absl::StatusOr<pb::Empty> r) mutable {
                           if (!r.ok()) {
                             Log(LogLevel::kWarn, "plugin Cleanup failed",
                                 {{"mount", path}, {"error", r.status().ToString()}});
                           }
                           done();
                         });
}

void LifecycleManager::InvalidateKey(absl::string_view mount_path, absl::string_view key) {
  auto it = mounts_.find(mount_path);
  if (it == mounts_.end() || !it->second->ready ||
      it->second->entry.type == catalog::PluginType::kDatabase) {
    return;
  }
  const MountState& m = *it->second;
  pb::InvalidateKeyArgs args;
  args.set_key(std::string(key));
  Log(LogLevel::kDebug, "InvalidateKey sent to the plugin", {{"mount", m.entry.path}});
  ControlCall<pb::Empty>(m.process_id, protocol::kInvalidateKeyMethod, args.SerializeAsString(),
                         m.multiplex_id, [this, path = m.entry.path](absl::StatusOr<pb::Empty> r) {
                           if (!r.ok()) {
                             Log(LogLevel::kWarn, "plugin InvalidateKey failed",
                                 {{"mount", path}, {"error", r.status().ToString()}});
                           }
                         });
}

// ---- Termination events --------------------------------------------------------------------

void LifecycleManager::Unmount(absl::string_view mount_path, TerminationEvent why,
                               StatusCallback done) {
  ReleaseInstance(std::string(mount_path), why, /*forget=*/true, std::move(done));
}

void LifecycleManager::TerminateInstance(absl::string_view mount_path, TerminationEvent why,
                                         StatusCallback done) {
  ReleaseInstance(std::string(mount_path), why, /*forget=*/false, std::move(done));
}

void LifecycleManager::ReleaseInstance(const std::string& path, TerminationEvent why, bool forget,
                                       StatusCallback done) {
  if (mounts_.count(path) == 0) {
    env_.executor.Post([done = std::move(done), path]() mutable {
      done(absl::NotFoundError(absl::StrCat("no mount at \"", path, "\"")));
    });
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  CleanupInstance(path, [this, alive, path, why, forget, done = std::move(done)]() mutable {
    if (alive.expired()) return;
    auto it = mounts_.find(path);
    if (it == mounts_.end()) return done(absl::OkStatus());
    MountState& m = *it->second;
    const uint64_t pid = m.process_id;
    if (m.setting_up) {
      FinishSetup(path, absl::CancelledError(absl::StrCat("mount \"", path, "\" was unloaded (",
                                                          TerminationEventName(why), ")")));
    }
    DetachMount(m);
    TerminationRecord record{why, path, m.entry.plugin_name};
    const catalog::PluginType type = m.entry.type;
    if (forget) mounts_.erase(it);
    m_terminations_->Add({{"event", std::string(TerminationEventName(why))}}, 1);
    if (terminations_.size() >= kTerminationHistoryMax) terminations_.pop_front();
    terminations_.push_back(std::move(record));
    Log(LogLevel::kInfo, forget ? "mount unloaded" : "plugin instance terminated",
        {{"mount", path}, {"event", std::string(TerminationEventName(why))}});
    auto pit = processes_.find(pid);
    if (pit != processes_.end() && pit->second->mounts.empty() && !KeepIdle(pid, type, why)) {
      StopProcess(pid, [done = std::move(done)]() mutable { done(absl::OkStatus()); });
      return;
    }
    done(absl::OkStatus());
  });
}

bool LifecycleManager::KeepIdle(uint64_t id, catalog::PluginType type, TerminationEvent why) {
  // Only the database engine's own events: seal, step-down, shutdown and unmount stop it.
  if (type != catalog::PluginType::kDatabase || !accepting_ ||
      options_.database_idle_grace <= absl::ZeroDuration() ||
      (why != TerminationEvent::kConnectionChange && why != TerminationEvent::kRootRotation &&
       why != TerminationEvent::kWalRollback)) {
    return false;
  }
  auto it = processes_.find(id);
  if (it == processes_.end()) return false;
  Process& p = *it->second;
  // A process of its own per instance (not multiplexed) is never handed to another instance.
  if (p.phase != Process::Phase::kRunning || !p.multiplexed || !p.mounts.empty()) return false;
  EndIdle(p);
  std::weak_ptr<bool> alive = alive_;
  p.idle_timer = env_.executor.PostAfter(options_.database_idle_grace, [this, alive, id]() {
    if (alive.expired()) return;
    auto it = processes_.find(id);
    if (it == processes_.end()) return;
    it->second->idle_timer = kNoTimer;
    if (!it->second->mounts.empty()) return;
    Log(LogLevel::kInfo, "idle database plugin process stopped",
        {{"plugin", it->second->plugin_name},
         {"idle", absl::FormatDuration(options_.database_idle_grace)}});
    StopProcess(id, nullptr);
  });
  Log(LogLevel::kInfo, "database plugin process kept idle for its next instance",
      {{"plugin", p.plugin_name},
       {"event", std::string(TerminationEventName(why))},
       {"for", absl::FormatDuration(options_.database_idle_grace)}});
  return true;
}

void LifecycleManager::EndIdle(Process& p) {
  if (p.idle_timer == kNoTimer) return;
  env_.executor.Cancel(p.idle_timer);
  p.idle_timer = kNoTimer;
}

void LifecycleManager::StopIdleDatabaseProcesses(absl::AnyInvocable<void()> done) {
  std::vector<uint64_t> ids;
  for (const auto& [id, p] : processes_) {
    if (p->idle_timer != kNoTimer) ids.push_back(id);
  }
  auto left = std::make_shared<size_t>(ids.size() + 1);
  auto shared_done = std::make_shared<absl::AnyInvocable<void()>>(std::move(done));
  auto one_stopped = [left, shared_done]() {
    if (--*left == 0) (*shared_done)();
  };
  for (uint64_t id : ids) StopProcess(id, one_stopped);
  env_.executor.Post(one_stopped);  // Never inline from this call.
}

size_t LifecycleManager::idle_process_count() const {
  size_t n = 0;
  for (const auto& [id, p] : processes_) n += p->idle_timer != kNoTimer ? 1 : 0;
  return n;
}

void LifecycleManager::TerminateAll(TerminationEvent why, absl::AnyInvocable<void()> done) {
  accepting_ = false;
  // A planted bug for the simulator's drill (never configured in production): the plugins
  // keep running through the seal or step-down.
  if (BW_PLANTED_BUG_IN(env_.failpoints, "bug.lifecycle.keep_plugin_after_seal")) {
    env_.executor.Post(std::move(done));
    return;
  }
  Log(LogLevel::kInfo, "stopping every plugin",
      {{"event", std::string(TerminationEventName(why))}});
  std::vector<std::string> paths;
  for (const auto& [path, m] : mounts_) paths.push_back(path);
  auto remaining = std::make_shared<size_t>(paths.size() + 1);
  auto shared_done = std::make_shared<absl::AnyInvocable<void()>>(std::move(done));
  std::weak_ptr<bool> alive = alive_;
  auto stop_all = [this, alive, shared_done]() {
    if (alive.expired()) return;
    std::vector<uint64_t> ids;
    for (const auto& [id, p] : processes_) ids.push_back(id);
    auto left = std::make_shared<size_t>(ids.size() + 1);
    auto one_stopped = [left, shared_done]() {
      if (--*left == 0) (*shared_done)();
    };
    for (uint64_t id : ids) StopProcess(id, one_stopped);
    one_stopped();
  };
  auto one_unmounted = [remaining, stop_all](absl::Status) mutable {
    if (--*remaining == 0) stop_all();
  };
  for (const std::string& path : paths) Unmount(path, why, one_unmounted);
  one_unmounted(absl::OkStatus());
}

void LifecycleManager::Resume() { accepting_ = true; }

void LifecycleManager::Reload(std::optional<std::string> plugin_name,
                              std::vector<std::string> mounts, StatusCallback done) {
  auto fail = [this, &done](absl::Status s) {
    env_.executor.Post([done = std::move(done), s]() mutable { done(s); });
  };
  if (plugin_name.has_value() == !mounts.empty()) {
    return fail(absl::InvalidArgumentError(plugin_name.has_value()
                                               ? "plugin and mounts cannot be set at the same time"
                                               : "plugin or mounts must be provided"));
  }
  std::set<std::string> selected;
  if (plugin_name.has_value()) {
    for (const auto& [path, m] : mounts_) {
      // Database engine instances are reloaded by their engine (reload/:plugin_name).
      if (m->entry.plugin_name == *plugin_name && m->entry.type != catalog::PluginType::kDatabase) {
        selected.insert(path);
      }
    }
    m_reloads_->Add({{"plugin", *plugin_name}}, 1);
  } else {
    for (const std::string& raw : mounts) {
      absl::StatusOr<std::string> path = mount::NormalizeMountPath(raw);
      if (!path.ok()) return fail(path.status());
      if (mounts_.count(*path) == 0) {
        return fail(absl::NotFoundError(absl::StrCat("no mount at \"", *path, "\"")));
      }
      selected.insert(*path);
      m_reloads_->Add({{"plugin", mounts_.at(*path)->entry.plugin_name}}, 1);
    }
  }
  // Every mount of an affected process comes back too: a multiplexed process restarts once.
  std::set<uint64_t> processes;
  std::set<std::string> affected = selected;
  for (const std::string& path : selected) {
    const uint64_t pid = mounts_.at(path)->process_id;
    if (pid == 0) continue;
    processes.insert(pid);
    for (const std::string& other : processes_.at(pid)->mounts) affected.insert(other);
  }
  auto first_error = std::make_shared<absl::Status>();
  auto shared_done = std::make_shared<StatusCallback>(std::move(done));
  std::weak_ptr<bool> alive = alive_;
  auto bring_up = [this, alive, affected, first_error, shared_done]() {
    if (alive.expired()) return;
    auto left = std::make_shared<size_t>(affected.size() + 1);
    auto one_up = [left, first_error, shared_done](absl::Status s) {
      if (!s.ok() && first_error->ok()) *first_error = s;
      if (--*left == 0) (*shared_done)(*first_error);
    };
    for (const std::string& path : affected) EnsureReady(path, one_up);
    one_up(absl::OkStatus());
  };
  auto cleaned = std::make_shared<size_t>(affected.size() + 1);
  auto after_cleanup = [this, alive, processes, cleaned, bring_up]() {
    if (alive.expired() || --*cleaned > 0) return;
    auto left = std::make_shared<size_t>(processes.size() + 1);
    auto one_stopped = [left, bring_up]() {
      if (--*left == 0) bring_up();
    };
    for (uint64_t pid : processes) StopProcess(pid, one_stopped);
    one_stopped();
  };
  for (const std::string& path : affected) CleanupInstance(path, after_cleanup);
  after_cleanup();
}

// ---- Database plugin instances --------------------------------------------------------------

void LifecycleManager::OpenDatabaseInstance(const std::string& key, const std::string& plugin_name,
                                            const std::string& plugin_version,
                                            StatusCallback done) {
  mount::MountEntry entry;
  entry.path = key;
  entry.type = catalog::PluginType::kDatabase;
  entry.plugin_name = plugin_name;
  entry.plugin_version = plugin_version;
  std::weak_ptr<bool> alive = alive_;
  Mount(entry, [this, alive, key, done = std::move(done)](absl::Status s) mutable {
    if (alive.expired()) return;
    if (!s.ok() && s.code() != absl::StatusCode::kAlreadyExists) {
      // A failed start leaves nothing behind: the engine retries with a fresh key.
      auto it = mounts_.find(key);
      if (it != mounts_.end() && !it->second->ready && !it->second->setting_up) {
        DetachMount(*it->second);
        mounts_.erase(it);
      }
    }
    done(s);
  });
}

void LifecycleManager::CallDatabaseInstance(
    const std::string& key, absl::string_view method, std::string request,
    absl::AnyInvocable<void(absl::StatusOr<std::string>)> done) {
  auto fail = [this, &done](absl::Status s) {
    env_.executor.Post([done = std::move(done), s]() mutable { done(s); });
  };
  auto it = mounts_.find(key);
  if (it == mounts_.end()) {
    return fail(absl::NotFoundError(absl::StrCat("no database instance \"", key, "\"")));
  }
  MountState& m = *it->second;
  auto pit = processes_.find(m.process_id);
  if (!m.ready || pit == processes_.end() || pit->second->runner == nullptr) {
    return fail(absl::UnavailableError("plugin shutdown"));
  }
  CallOptions opts;
  opts.multiplex_id = m.multiplex_id;
  opts.timeout = options_.request_timeout;
  const uint64_t process_id = m.process_id;
  std::weak_ptr<bool> alive = alive_;
  pit->second->runner->connection().Call(
      method, std::move(request), opts,
      [this, alive, process_id, timeout = opts.timeout,
       done = std::move(done)](absl::StatusOr<std::string> r) mutable {
        if (alive.expired()) return;
        if (!r.ok() && r.status().code() == absl::StatusCode::kDeadlineExceeded) {
          LoseProcess(process_id,
                      absl::StrCat("no answer within the request deadline of ",
                                   absl::FormatDuration(timeout)),
                      /*count_as_failure=*/true);
        } else if (!r.ok() && IsConnectionLoss(r.status())) {
          LoseProcess(process_id, absl::StrCat("connection lost: ", r.status().message()),
                      /*count_as_failure=*/true);
          return done(
              absl::UnavailableError(absl::StrCat("plugin shutdown: ", r.status().message())));
        }
        done(std::move(r));
      });
}

void LifecycleManager::CloseDatabaseInstance(const std::string& key, TerminationEvent why,
                                             StatusCallback done) {
  if (mounts_.count(key) == 0) {
    env_.executor.Post([done = std::move(done)]() mutable { done(absl::OkStatus()); });
    return;
  }
  ReleaseInstance(key, why, /*forget=*/true, std::move(done));
}

// ---- Introspection -------------------------------------------------------------------------

std::vector<ProcessInfo> LifecycleManager::Processes() const {
  std::vector<ProcessInfo> out;
  for (const auto& [id, p] : processes_) {
    ProcessInfo info;
    info.id = id;
    info.pid = p->runner != nullptr ? p->runner->pid() : 0;
    info.plugin_name = p->plugin_name;
    info.runner_key = p->runner_key;
    info.multiplexed = p->multiplexed;
    info.running = p->phase == Process::Phase::kRunning;
    info.mounts.assign(p->mounts.begin(), p->mounts.end());
    out.push_back(std::move(info));
  }
  return out;
}

size_t LifecycleManager::process_count() const {
  size_t n = 0;
  for (const auto& [id, p] : processes_) {
    if (p->runner == nullptr || p->runner->pid() != 0) ++n;
  }
  return n;
}

}  // namespace bulwark::lifecycle
