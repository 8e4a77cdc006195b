// The plugin lifecycle manager: when plugin processes start and stop, which mounts share one,
// and what happens when one dies. Runs on the Env event loop; every callback it takes runs there
// too, never inline from the call that passed it.
//
// Rules (Vault's, vault/plugincatalog and builtin/plugin/v5; see docs/lifecycle.md):
//   - Mounting starts (or reuses) the plugin process, then runs the instance's Setup (with a
//     broker id under which the mount's host services are offered) and Initialize.
//   - Every start goes through Catalog::GetForLaunch, which re-hashes the artifact and hands the
//     opened descriptor to the launcher: a swapped file is refused, never run.
//     (A database instance that joins a running multiplexed process starts nothing, and skips
//     the re-hash: Catalog::GetForReuse, AcquireProcess.)
//   - Runner config (name, type, version, command, args, env, sha256, builtin) decides sharing:
//     a process whose plugin answers MultiplexingSupport true serves every mount with the same
//     runner config, each as an instance with its own multiplex id; otherwise one process per
//     mount.
//   - Lazy reload: a process that dies is not restarted eagerly. The next request for one of
//     its mounts starts a fresh process, re-runs Setup/Initialize for that mount and retries the
//     request once. Repeated failures back off exponentially (first restart immediate) and
//     are reported as "keeps crashing" instead of looping.
//   - Termination events (seal, step-down, shutdown, unmount, and the database engine's hooks)
//     run the instance's Cleanup, then stop a process no mount uses any more: Shutdown RPC,
//     grace period, kill, reap.
//   - Beyond Vault: when the database engine closes the last instance of a multiplexed process
//     at one of its own events (connection change, root rotation, WAL rollback), the process
//     stays up, idle, for database_idle_grace, and the next instance of that runner config
//     reuses it instead of relaunching. Seal, step-down, shutdown and unmount stop it at once.
//   - A request that outlives its deadline stops the plugin (it is hung or overloaded); the
//     next request restarts it.
#ifndef BULWARK_CORE_LIFECYCLE_LIFECYCLE_H_
#define BULWARK_CORE_LIFECYCLE_LIFECYCLE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/env/env.h"
#include "base/env/plugin_transport.h"
#include "base/env/process_sampler.h"
#include "base/log/log.h"
#include "base/metrics/metrics.h"
#include "core/catalog/catalog.h"
#include "core/lifecycle/plugin_metrics.h"
#include "core/lifecycle/runner.h"
#include "core/mount/mount_table.h"
#include "proto/vault/backend.pb.h"

namespace bulwark::lifecycle {

// Why plugins are being stopped; named in logs and metrics.
enum class TerminationEvent {
  kSeal,
  kStepDown,
  kShutdown,
  kUnmount,
  kReload,
  kConnectionChange,  // database engine: connection delete, update or reset
  kRootRotation,      // database engine: root credential rotation
  kWalRollback,       // database engine: WAL rollback of a failed root rotation
  kPluginShutdown,    // database engine: a call found the plugin process gone (CloseIfShutdown)
};
absl::string_view TerminationEventName(TerminationEvent event);

// One termination event the manager carried out: which instance (a mount path, or a database
// engine's connection key) stopped and why. Kept for introspection, invariants and tests.
struct TerminationRecord {
  TerminationEvent event = TerminationEvent::kUnmount;
  std::string path;
  std::string plugin_name;
};
// Termination records kept (the oldest are dropped first).
inline constexpr size_t kTerminationHistoryMax = 4096;

struct LifecycleOptions {
  absl::Duration shutdown_grace = absl::Seconds(2);
  // How long a multiplexed database plugin process whose last instance the database engine
  // closed (kConnectionChange, kRootRotation, kWalRollback) stays up for the next instance.
  // Zero: stop it at once, as Vault does.
  absl::Duration database_idle_grace = absl::Seconds(30);
  absl::Duration request_timeout = absl::Seconds(30);
  // Deadline for Setup, Initialize, Cleanup and MultiplexingSupport calls.
  absl::Duration control_timeout = absl::Seconds(10);
  // Restart backoff after consecutive failures of one runner config: the first restart is
  // immediate, then backoff_initial, doubling up to backoff_max.
  absl::Duration backoff_initial = absl::Milliseconds(100);
  absl::Duration backoff_max = absl::Seconds(30);
  // A failure streak this long is reported as "keeps crashing".
  int crash_loop_threshold = 3;
  // Requests queued for one mount while its plugin starts.
  size_t pending_per_mount_max = 1024;
  size_t processes_max = 256;
  // Plugin names never multiplexed (Vault's VAULT_PLUGIN_MULTIPLEXING_OPT_OUT).
  std::set<std::string> multiplexing_opt_out;
  RunnerLimits default_limits;
  // Per-mount overrides of default_limits, by normalised mount path.
  std::map<std::string, RunnerLimits> mount_limits;
  // Per-mount request deadline overrides.
  std::map<std::string, absl::Duration> mount_request_timeouts;
  // Samples plugin processes' CPU and memory for SampleResources (production: /proc, injected
  // by the composition root). Null: those series are not reported. Must outlive the manager.
  ProcessSampler* sampler = nullptr;
};

// Builds the host services (pb.Storage, pb.SystemView) one mount's instance is offered.
using HostServicesFactory =
    std::function<std::unique_ptr<HostServices>(const mount::MountEntry& entry)>;

// One plugin process (or built-in runner), for introspection and invariants.
struct ProcessInfo {
  uint64_t id = 0;  // The manager's own id, never reused.
  int64_t pid = 0;  // 0 for built-ins.
  std::string plugin_name;
  std::string runner_key;  // Digest of the runner config (no env values).
  bool multiplexed = false;
  bool running = false;  // false while starting or stopping.
  std::vector<std::string> mounts;
};

using StatusCallback = absl::AnyInvocable<void(absl::Status)>;
// The plugin's response to a request; nullopt when it returned none (Vault's nil response: an
// HTTP layer answers 404 to a read and 204 to anything else).
using Reply = std::optional<pb::Response>;
using ResponseCallback = absl::AnyInvocable<void(absl::StatusOr<Reply>)>;

class LifecycleManager {
 public:
  // All references must outlive the manager. `metrics` and `log` may be shared.
  LifecycleManager(Env& env, catalog::Catalog& catalog, RunnerFactory& factory,
                   HostServicesFactory host_services, metrics::Registry& metrics, LogSink& log,
                   LifecycleOptions options = {});
  ~LifecycleManager();

  LifecycleManager(const LifecycleManager&) = delete;
  LifecycleManager& operator=(const LifecycleManager&) = delete;

  // Registers `entry` and brings its instance up (start or reuse a process, Setup, Initialize).
  // On error the mount stays registered but not ready (the next request retries); the caller
  // may Unmount. kAlreadyExists if the path is already registered.
  void Mount(const mount::MountEntry& entry, StatusCallback done);

  // Runs the instance's Cleanup, withdraws its host services and stops its process when no
  // other mount uses it. kNotFound if the path is not registered.
  void Unmount(absl::string_view path, TerminationEvent why, StatusCallback done);

  // Runs `request` on the mount at `mount_path` (normalised), starting the plugin if needed and
  // retrying once after a lazy reload. Logical errors from the plugin come back as statuses:
  // user error / invalid request / bad request -> kInvalidArgument, unsupported path ->
  // kNotFound, unsupported operation -> kUnimplemented, permission denied ->
  // kPermissionDenied, coded errors by HTTP code, others -> kInternal.
  void HandleRequest(absl::string_view mount_path, pb::Request request, ResponseCallback done);

  // Vault's sys/plugins/reload/backend: restarts the processes of the selected mounts (every
  // mount of `plugin_name`, or exactly `mounts`) and sets their instances up again. A
  // multiplexed process is restarted once for all its mounts. Errors: kInvalidArgument for
  // neither or both selectors; kNotFound for an unknown mount; the first setup error.
  void Reload(std::optional<std::string> plugin_name, std::vector<std::string> mounts,
              StatusCallback done);

  // Seal, step-down or shutdown: refuses new requests, runs every instance's Cleanup, stops
  // every process and forgets every mount. `done` once no process remains. Resume() accepts
  // mounts again (after unseal, or on becoming active).
  void TerminateAll(TerminationEvent why, absl::AnyInvocable<void()> done);
  void Resume();

  // pb.Backend/InvalidateKey to the mount's instance: `key` (relative to the mount's storage)
  // changed behind its back (a performance standby's invalidation, docs/ha.md). Only to an
  // instance that is set up (one not running holds nothing to invalidate); a failure is logged.
  void InvalidateKey(absl::string_view mount_path, absl::string_view key);

  // The database engine's hooks: Cleanup the mount's instance and restart its plugin process at
  // the next use (Vault closes the connection's plugin instance on these events).
  void TerminateInstance(absl::string_view mount_path, TerminationEvent why, StatusCallback done);

  // ---- Database plugin instances (the database engine's connections) ----------------------
  // Vault keeps one dbplugin instance per connection config; here each is an instance of the
  // catalog's database plugin `plugin_name`@`plugin_version` under `key` (the engine's own
  // unique name, never a mount path), in a process of its own or shared with other instances of
  // the same runner config when the plugin multiplexes. No dbplugin call is made: the engine
  // sends Initialize itself. Errors: kAlreadyExists for a key in use; the start's errors (the
  // key is then free again).
  void OpenDatabaseInstance(const std::string& key, const std::string& plugin_name,
                            const std::string& plugin_version, StatusCallback done);
  // Sends a dbplugin.v5.Database call (`method`, serialized request) to the instance with its
  // multiplex id and returns the serialized reply. An instance whose process died is not
  // restarted: kUnavailable "plugin shutdown" (Vault's ErrPluginShutdown), and the engine closes
  // it (CloseIfShutdown). kNotFound for an unknown key.
  void CallDatabaseInstance(const std::string& key, absl::string_view method, std::string request,
                            absl::AnyInvocable<void(absl::StatusOr<std::string>)> done);
  // Sends Close to the instance (when its process lives), forgets it and stops its process if
  // no other instance uses it: the termination event `why`. OK for an unknown key (closing is
  // idempotent, as Vault's dbPluginInstance.Close).
  void CloseDatabaseInstance(const std::string& key, TerminationEvent why, StatusCallback done);
  bool HasDatabaseInstance(absl::string_view key) const { return IsMounted(key); }
  // Stops every database plugin process kept idle after its last instance closed (the
  // database engine's Cleanup on unmount); `done` once they are gone.
  void StopIdleDatabaseProcesses(absl::AnyInvocable<void()> done);
  // Processes kept idle for database_idle_grace (tests, invariants).
  size_t idle_process_count() const;

  // The termination events carried out so far (at most kTerminationHistoryMax, oldest first).
  const std::deque<TerminationRecord>& terminations() const { return terminations_; }

  std::vector<ProcessInfo> Processes() const;
  // Updates the per-plugin process gauges, and CPU and memory through options.sampler (sys/metrics
  // calls this before rendering).
  void SampleResources();
  // Processes with a pid (external plugins), running or not yet reaped.
  size_t process_count() const;
  bool IsMounted(absl::string_view path) const { return mounts_.count(path) > 0; }
  bool accepting() const { return accepting_; }

 private:
  struct Process;
  struct MountState;
  struct Backoff {
    int failures = 0;
    absl::Duration next_start_allowed = -absl::InfiniteDuration();  // Monotonic.
    std::string last_failure;
  };

  // Brings `mount` to ready; `done(OK)` once Setup and Initialize succeeded on a live process.
  void EnsureReady(const std::string& path, StatusCallback done);
  void FinishSetup(const std::string& path, absl::Status status);
  // Finds or starts a process for `path`'s runner config; `done` with its id.
  void AcquireProcess(const std::string& path,
                      absl::AnyInvocable<void(absl::StatusOr<uint64_t>)> done);
  // The runner key of `entry` (and the planted bug that drops env and args from it).
  std::string LaunchKey(const catalog::CatalogEntry& entry);
  // If a running multiplexed process has runner key `key`, takes it (ends its idle period),
  // posts `done` with its id and returns true; otherwise leaves `done` alone.
  bool TakeRunningProcess(const std::string& key,
                          absl::AnyInvocable<void(absl::StatusOr<uint64_t>)>& done);
  void OnRunnerStarted(uint64_t id, absl::StatusOr<std::unique_ptr<PluginRunner>> runner);
  void OnMultiplexingKnown(uint64_t id, absl::StatusOr<bool> multiplexed);
  void SetupInstance(const std::string& path, uint64_t process_id);
  void Attempt(const std::string& path, pb::Request request, int retries_left,
               absl::Duration started, ResponseCallback done);
  // Marks the process gone for its mounts; stops it if still alive. `reason` for logs.
  void LoseProcess(uint64_t id, const std::string& reason, bool count_as_failure);
  void StopProcess(uint64_t id, absl::AnyInvocable<void()> done);
  // Keeps process `id` (no instance left) up for database_idle_grace, then stops it unless an
  // instance took it meanwhile. False when the process does not qualify: stop it.
  bool KeepIdle(uint64_t id, catalog::PluginType type, TerminationEvent why);
  // Ends the idle period of `p` (an instance takes it, or it stops).
  void EndIdle(Process& p);
  void DetachMount(MountState& m);
  void CleanupInstance(const std::string& path, absl::AnyInvocable<void()> done);
  // Cleanup, detach and stop the process if unused; with `forget` the mount is removed too
  // (Unmount), without it stays registered and restarts on its next use (TerminateInstance).
  void ReleaseInstance(const std::string& path, TerminationEvent why, bool forget,
                       StatusCallback done);
  void RecordFailure(const std::string& runner_key, const std::string& reason);
  absl::Status CheckBackoff(const std::string& runner_key, absl::string_view plugin) const;
  void Log(LogLevel level, std::string message,
           std::vector<std::pair<std::string, std::string>> fields = {});
  template <typename Reply>
  void ControlCall(uint64_t process_id, absl::string_view method, const std::string& request,
                   const std::string& multiplex_id,
                   absl::AnyInvocable<void(absl::StatusOr<Reply>)> done);
  void UpdateProcessGauge();
  // The per-plugin labels of a mount: its plugin, and the catalog version it runs (its pinned
  // version until a process is attached).
  PluginId PluginIdOf(const MountState& m) const;
  void UpdatePluginProcesses(ProcessSampler* sampler);
  const RunnerLimits& LimitsFor(const std::string& path) const;
  absl::Duration RequestTimeoutFor(const std::string& path) const;

  Env& env_;
  catalog::Catalog& catalog_;
  RunnerFactory& factory_;
  HostServicesFactory host_services_;
  LogSink& log_;
  const LifecycleOptions options_;
  bool accepting_ = true;
  uint64_t next_process_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Process>> processes_;
  std::map<std::string, std::unique_ptr<MountState>, std::less<>> mounts_;
  std::map<std::string, Backoff> backoff_;  // By runner key.
  std::deque<TerminationRecord> terminations_;
  // Liveness token for callbacks that may outlive the manager.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  metrics::Family* m_processes_;
  metrics::Family* m_launches_;
  metrics::Family* m_launch_failures_;
  metrics::Family* m_crashes_;
  metrics::Family* m_restarts_;
  metrics::Family* m_reloads_;
  metrics::Family* m_requests_;
  metrics::Family* m_request_seconds_;
  metrics::Family* m_start_seconds_;
  metrics::Family* m_terminations_;
  PluginMetrics plugin_metrics_;
};

// Folds a catalog entry's limits into a runner's: open_files as RLIMIT_NOFILE (the stricter of
// the mount's and the entry's); the entry's limits ride along in `limits.entry`, which the
// external runner hands the launcher as the process's group limits (memory, pids, CPU weight:
// a cgroup, or the launcher's rlimit fallback).
void ApplyEntryLimits(const catalog::PluginLimits& entry, RunnerLimits& limits);

// The runner-config digest: equal exactly when two catalog entries may share a process.
std::string RunnerKey(const catalog::CatalogEntry& entry);

// Vault's ProtoError as a status (see HandleRequest); OK for a null or empty error.
absl::Status StatusFromProtoError(const pb::ProtoError& error);

}  // namespace bulwark::lifecycle

#endif  // BULWARK_CORE_LIFECYCLE_LIFECYCLE_H_
