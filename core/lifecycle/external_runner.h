// The production RunnerFactory for external plugins: each start launches the catalog entry's
// verified artifact through core/rpc's PluginClient (go-plugin handshake, AutoMTLS or Vault's
// wrapped-token TLS, the transport's connection). Built-ins are refused here; BuiltinRunnerFactory
// serves them.
#ifndef BULWARK_CORE_LIFECYCLE_EXTERNAL_RUNNER_H_
#define BULWARK_CORE_LIFECYCLE_EXTERNAL_RUNNER_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/env/env.h"
#include "base/env/plugin_transport.h"
#include "base/log/log.h"
#include "core/lifecycle/runner.h"
#include "core/wrapping/wrapping_store.h"
#include "protocol/plugin_env.h"

namespace bulwark::lifecycle {

struct ExternalRunnerOptions {
  // Where each launch gets its private directory (socket, TMPDIR). At most 63 bytes.
  std::string runtime_dir = "/tmp";
  // Layer 1 of the plugin environment (Vault passes its own environment).
  std::vector<std::string> host_env;
  std::string vault_version = "1.16.0";
  bool automtls = true;
  // Without AutoMTLS, Vault's legacy plugin TLS when set: each launch gets a fresh shared
  // certificate and key from the transport, which this wraps (Vault's {"ServerCert",
  // "ServerKey"} data, protocol::kPluginWrapTtl, creation path "sys/wrapping/wrap") and
  // passes as VAULT_UNWRAP_TOKEN; the plugin unwraps it at the token's addr and serves TLS with
  // it. The composition root points this at the node's WrapResponse and fills in api_addr.
  // Unset without AutoMTLS: no Vault variables, plaintext on the plugin's private socket.
  std::function<absl::StatusOr<wrapping::WrapResult>(wrapping::WrapRequest)> wrap_response;
  absl::Duration connect_timeout = absl::Seconds(10);
  LogSink* log_sink = nullptr;
};

class ExternalRunnerFactory final : public RunnerFactory {
 public:
  ExternalRunnerFactory(Env& env, PluginTransport& transport, ExternalRunnerOptions options);

  void Start(catalog::LaunchSpec spec, const RunnerLimits& limits,
             absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<PluginRunner>>)> done) override;

 private:
  Env& env_;
  PluginTransport& transport_;
  const ExternalRunnerOptions options_;
};

// Sends starts of built-in entries to one factory and of external ones to another.
class SplitRunnerFactory final : public RunnerFactory {
 public:
  SplitRunnerFactory(RunnerFactory& builtin, RunnerFactory& external)
      : builtin_(builtin), external_(external) {}
  void Start(
      catalog::LaunchSpec spec, const RunnerLimits& limits,
      absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<PluginRunner>>)> done) override {
    RunnerFactory& f = spec.entry.builtin ? builtin_ : external_;
    f.Start(std::move(spec), limits, std::move(done));
  }

 private:
  RunnerFactory& builtin_;
  RunnerFactory& external_;
};

}  // namespace bulwark::lifecycle

#endif  // BULWARK_CORE_LIFECYCLE_EXTERNAL_RUNNER_H_
