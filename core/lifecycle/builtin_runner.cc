// An in-process PluginConnection over a protocol::InProcessPlugin.
#include "core/lifecycle/builtin_runner.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/lifecycle/local_broker.h"
#include "protocol/wire_names.h"

namespace bulwark::lifecycle {
namespace {

// What a connection shares with the calls it posts, so a call that runs after Close or after
// the connection is gone sees it closed. The dispatcher, declared last, is destroyed first: it
// holds a reference to the broker's dialer.
struct Shared {
  LocalBroker broker;
  std::unique_ptr<protocol::InProcessPlugin> dispatcher;
};

class LocalConnection final : public PluginConnection {
 public:
  LocalConnection(Executor& executor, const BuiltinBackend& backend)
      : executor_(executor), shared_(std::make_shared<Shared>()) {
    shared_->dispatcher = backend.factory(shared_->broker.dialer());
  }
  ~LocalConnection() override { Close(); }

  void Call(absl::string_view method, std::string request, const CallOptions& options,
            CallDone done) override {
    // Posted, never inline: the caller's contract. The dispatcher runs on the loop thread, so
    // a built-in's storage calls reach the host services synchronously, as they may.
    executor_.Post([shared = shared_, method = std::string(method), request = std::move(request),
                    mid = options.multiplex_id, done = std::move(done)]() mutable {
      if (shared->broker.closed()) return done(absl::CancelledError("connection closed"));
      if (method == protocol::kControllerShutdownMethod) {
        shared->dispatcher->CleanupAll();
        return done(std::string());
      }
      done(shared->dispatcher->Dispatch(method, request, mid));
    });
  }

  absl::StatusOr<uint32_t> OfferHostServices(HostServices* services) override {
    return shared_->broker.Offer(services);
  }
  void WithdrawHostServices(uint32_t id) override { shared_->broker.Withdraw(id); }
  void SetStdioHandler(absl::AnyInvocable<void(int, absl::string_view)>) override {}
  void Close() override { shared_->broker.Close(); }

 private:
  Executor& executor_;
  std::shared_ptr<Shared> shared_;
};

class BuiltinRunner final : public PluginRunner {
 public:
  BuiltinRunner(Executor& executor, const BuiltinBackend& backend)
      : executor_(executor), connection_(executor, backend) {}
  PluginConnection& connection() override { return connection_; }
  int64_t pid() const override { return 0; }
  void SetExitHandler(absl::AnyInvocable<void(std::string)>) override {}  // Never exits alone.
  void Stop(absl::Duration, absl::AnyInvocable<void()> done) override {
    connection_.Close();
    executor_.Post(std::move(done));
  }

 private:
  Executor& executor_;
  LocalConnection connection_;
};

}  // namespace

BuiltinRunnerFactory::BuiltinRunnerFactory(Executor& executor,
                                           std::map<std::string, BuiltinBackend> backends)
    : executor_(executor), backends_(std::move(backends)) {}

void BuiltinRunnerFactory::Start(
    catalog::LaunchSpec spec, const RunnerLimits&,
    absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<PluginRunner>>)> done) {
  auto it = backends_.find(spec.entry.name);
  if (!spec.entry.builtin || it == backends_.end()) {
    executor_.Post([done = std::move(done), name = spec.entry.name]() mutable {
      done(absl::NotFoundError(absl::StrCat("no built-in plugin named \"", name, "\"")));
    });
    return;
  }
  std::unique_ptr<PluginRunner> runner(new BuiltinRunner(executor_, it->second));
  executor_.Post(
      [done = std::move(done), runner = std::move(runner)]() mutable { done(std::move(runner)); });
}

}  // namespace bulwark::lifecycle
