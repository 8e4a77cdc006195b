// Built-in plugins: compiled into the server and run in-process behind the same PluginRunner
// seam as external ones, with no process and no RPC. Calls go straight to an
// protocol::InProcessPlugin (the SDK's dispatchers implement it; serialized messages, as on the
// wire, so a built-in behaves exactly like the same plugin served externally) and complete on
// the executor, never inline.
#ifndef BULWARK_CORE_LIFECYCLE_BUILTIN_RUNNER_H_
#define BULWARK_CORE_LIFECYCLE_BUILTIN_RUNNER_H_

#include <map>
#include <string>

#include "base/env/executor.h"
#include "core/lifecycle/runner.h"
#include "protocol/in_process_plugin.h"

namespace bulwark::lifecycle {

struct BuiltinBackend {
  // Makes the plugin, e.g. sdk::InProcessBackend(factory); Vault's built-ins are one instance
  // per mount, so they are made without multiplexing.
  protocol::InProcessPluginFactory factory;
};

class BuiltinRunnerFactory final : public RunnerFactory {
 public:
  // `backends` by plugin name; each must also be in the catalog's built-in list.
  BuiltinRunnerFactory(Executor& executor, std::map<std::string, BuiltinBackend> backends);

  // Errors: kNotFound when the entry is not a built-in this factory knows.
  void Start(catalog::LaunchSpec spec, const RunnerLimits& limits,
             absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<PluginRunner>>)> done) override;

 private:
  Executor& executor_;
  const std::map<std::string, BuiltinBackend> backends_;
};

}  // namespace bulwark::lifecycle

#endif  // BULWARK_CORE_LIFECYCLE_BUILTIN_RUNNER_H_
