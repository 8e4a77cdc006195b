// PluginClient behind the PluginRunner seam.
#include "core/lifecycle/external_runner.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/rpc/plugin_client.h"
#include "protocol/wire_names.h"
#include "protocol/wrapping_token.h"

namespace bulwark::lifecycle {
namespace {

class ExternalRunner final : public PluginRunner {
 public:
  ExternalRunner(std::unique_ptr<rpc::PluginClient> client, catalog::LaunchSpec spec)
      : client_(std::move(client)), spec_(std::move(spec)) {}

  PluginConnection& connection() override { return client_->connection(); }
  int64_t pid() const override { return client_->pid(); }

  void SetExitHandler(absl::AnyInvocable<void(std::string reason)> handler) override {
    client_->SetExitHandler([this, handler = std::move(handler)](const ProcessExit& exit) mutable {
      ReportLimitKill();
      handler(exit.ToString());
    });
  }

  void SetLimitKillHandler(absl::AnyInvocable<void(std::string limit)> handler) override {
    limit_handler_ = std::move(handler);
  }

  void Stop(absl::Duration grace, absl::AnyInvocable<void()> done) override {
    client_->SetExitHandler(nullptr);  // A requested stop is not a crash.
    // The process may have been lost to a limit before the stop (a request saw the connection
    // drop first): once it is reaped, its exit says so.
    client_->Shutdown(grace, [this, done = std::move(done)]() mutable {
      ReportLimitKill();
      done();
    });
  }

 private:
  void ReportLimitKill() {
    const std::optional<ProcessExit>& exit = client_->exit_status();
    if (limit_reported_ || limit_handler_ == nullptr || !exit.has_value() || exit->limit.empty()) {
      return;
    }
    limit_reported_ = true;
    limit_handler_(exit->limit);
  }

  std::unique_ptr<rpc::PluginClient> client_;
  catalog::LaunchSpec spec_;  // Keeps the verified artifact open as long as the process runs.
  absl::AnyInvocable<void(std::string limit)> limit_handler_;
  bool limit_reported_ = false;
};

}  // namespace

ExternalRunnerFactory::ExternalRunnerFactory(Env& env, PluginTransport& transport,
                                             ExternalRunnerOptions options)
    : env_(env), transport_(transport), options_(std::move(options)) {}

void ExternalRunnerFactory::Start(
    catalog::LaunchSpec spec, const RunnerLimits& limits,
    absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<PluginRunner>>)> done) {
  if (spec.entry.builtin || spec.executable == nullptr) {
    env_.executor.Post([done = std::move(done), name = spec.entry.name]() mutable {
      done(absl::FailedPreconditionError(
          absl::StrCat("plugin \"", name, "\" is built in; it has no artifact to launch")));
    });
    return;
  }
  rpc::PluginLaunchOptions o;
  o.plugin_name = spec.entry.name;
  o.argv.push_back(spec.path);
  for (const std::string& a : spec.entry.args) o.argv.push_back(a);
  if (spec.entry.type == catalog::PluginType::kDatabase) {
    // Vault's dbplugin v5 handshake: version 5 (one database per process) or 6 (multiplexed).
    o.magic_cookie_key = std::string(protocol::kVaultDatabaseCookieKey);
    o.magic_cookie_value = std::string(protocol::kVaultDatabaseCookieValue);
    o.app_versions = {protocol::kVaultDatabaseProtocolVersion,
                      protocol::kVaultDatabaseMultiplexedProtocolVersion};
  }
  o.host_env = options_.host_env;
  o.entry_env = spec.entry.env;
  const bool wrapped_tls = !options_.automtls && options_.wrap_response != nullptr;
  if (options_.automtls || wrapped_tls) {
    // Without AutoMTLS and without a way to wrap, the plugin gets a plain go-plugin environment
    // (plaintext on its private socket): Vault would require the unwrap token.
    protocol::VaultPluginEnv vault;
    vault.vault_version = options_.vault_version;
    vault.mlock = limits.mlock;
    o.vault = vault;
  }
  if (wrapped_tls) {
    o.wrap_tls = [wrap = options_.wrap_response](
                     const SharedTlsMaterial& material) -> absl::StatusOr<std::string> {
      protocol::PluginTlsMaterial tls;
      tls.cert_der = material.cert_der;
      tls.key_der = material.key_der.Clone();
      wrapping::WrapRequest request;
      request.data_json = protocol::EncodePluginTlsData(tls);
      request.ttl = protocol::kPluginWrapTtl;
      // Vault wraps through ResponseWrapData, a request to sys/wrapping/wrap.
      request.creation_path = "sys/wrapping/wrap";
      absl::StatusOr<wrapping::WrapResult> wrapped = wrap(std::move(request));
      if (!wrapped.ok()) return wrapped.status();
      return std::move(wrapped->token);
    };
  }
  o.automtls = options_.automtls;
  o.mlock = limits.mlock;
  o.start_timeout = limits.start_timeout;
  o.connect_timeout = options_.connect_timeout;
  o.limits = limits.process;
  // Every plugin process gets a group of its own, named after its catalog entry.
  o.group_label = spec.entry.name;
  o.group_limits.memory_bytes = limits.entry.memory_bytes;
  o.group_limits.pids = limits.entry.pids;
  o.group_limits.cpu_weight = limits.entry.cpu_weight;
  o.runtime_dir = options_.runtime_dir;
  o.log_sink = options_.log_sink;

  // The runner owns the client from the start: a launch is cancelled by destroying it. Until
  // the start reports, the client lives in this shared slot.
  auto spec_holder = std::make_shared<catalog::LaunchSpec>(std::move(spec));
  o.executable = spec_holder->executable.get();
  auto slot = std::make_shared<std::unique_ptr<rpc::PluginClient>>();
  *slot = rpc::PluginClient::Start(
      env_, transport_, std::move(o),
      [slot, spec_holder, done = std::move(done)](absl::Status status) mutable {
        std::unique_ptr<rpc::PluginClient> client = std::move(*slot);
        if (!status.ok()) {
          // Destroy the failed client outside its own callback.
          done(status);
          return;
        }
        done(std::unique_ptr<PluginRunner>(
            new ExternalRunner(std::move(client), std::move(*spec_holder))));
      });
}

}  // namespace bulwark::lifecycle
