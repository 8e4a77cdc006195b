// The lifecycle manager's view of a started plugin: an external process (launched and
// connected by core/rpc's PluginClient) or a built-in running in-process. Both answer the same
// serialized calls through a PluginConnection, so everything above this seam is one code path.
#ifndef BULWARK_CORE_LIFECYCLE_RUNNER_H_
#define BULWARK_CORE_LIFECYCLE_RUNNER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/env/plugin_transport.h"
#include "base/env/process_launcher.h"
#include "core/catalog/catalog.h"

namespace bulwark::lifecycle {

// Limits for one plugin process, from the catalog entry or the mount.
struct RunnerLimits {
  ResourceLimits process;  // setrlimit in the child before exec.
  absl::Duration start_timeout = absl::Minutes(1);
  bool mlock = false;  // VAULT_PLUGIN_MLOCK_ENABLED for the plugin.
  // The catalog entry's limits as registered (open_files also folded into `process` by
  // ApplyEntryLimits); the external runner passes memory, pids and CPU weight to the launcher
  // as group limits (ProcessOptions::group_limits).
  catalog::PluginLimits entry;
};

class PluginRunner {
 public:
  virtual ~PluginRunner() = default;

  virtual PluginConnection& connection() = 0;

  // The process id, or 0 for a built-in (no process).
  virtual int64_t pid() const = 0;

  // Called once on the executor when the runner ends without being asked to (crash, exit,
  // killed by a limit), with a description such as "killed by signal 9 (SIGKILL)". Not called
  // after Stop() was requested.
  virtual void SetExitHandler(absl::AnyInvocable<void(std::string reason)> handler) = 0;

  // Called once on the executor when the process ended killed by the kernel at a limit of its
  // group ("memory": an OOM kill in its cgroup) — whether or not Stop() was requested, because
  // a request that lost its connection stops the process before its exit is known. Runners
  // without processes never call it.
  virtual void SetLimitKillHandler(absl::AnyInvocable<void(std::string limit)> handler) {
    (void)handler;
  }

  // Stops it: GRPCController.Shutdown, up to `grace` for the process to exit, then SIGKILL and
  // reap. `done` runs on the executor once nothing of it remains (no process, no socket file).
  // Idempotent; the runner may be destroyed from `done`.
  virtual void Stop(absl::Duration grace, absl::AnyInvocable<void()> done) = 0;
};

class RunnerFactory {
 public:
  virtual ~RunnerFactory() = default;

  // Starts the plugin of `spec` (from Catalog::GetForLaunch: for an external plugin the artifact
  // is already open and verified against its SHA-256, and that very descriptor is executed).
  // `done` runs on the executor with a connected runner or the start error.
  virtual void Start(
      catalog::LaunchSpec spec, const RunnerLimits& limits,
      absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<PluginRunner>>)> done) = 0;
};

}  // namespace bulwark::lifecycle

#endif  // BULWARK_CORE_LIFECYCLE_RUNNER_H_
