// An in-process PluginConnection over the SDK dispatcher.
#include "core/lifecycle/builtin_runner.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"

namespace bulwark::lifecycle {
namespace {

constexpr absl::string_view kShutdownMethod = "/plugin.GRPCController/Shutdown";

// The state callbacks share; they check `closed` so nothing runs after Close or destruction.
struct LocalState {
  bool closed = false;
  uint32_t next_broker = 1;
  std::map<uint32_t, HostServices*> brokers;
};

class LocalDialer final : public sdk::HostDialer {
 public:
  explicit LocalDialer(std::shared_ptr<LocalState> state) : state_(std::move(state)) {}
  absl::StatusOr<std::shared_ptr<sdk::HostConnection>> Dial(uint32_t broker_id) override {
    if (state_->brokers.count(broker_id) == 0) {
      return absl::UnavailableError(absl::StrCat("broker id ", broker_id, " is not offered"));
    }
    return std::shared_ptr<sdk::HostConnection>(new Link(state_, broker_id));
  }

 private:
  class Link final : public sdk::HostConnection {
   public:
    Link(std::shared_ptr<LocalState> state, uint32_t id) : state_(std::move(state)), id_(id) {}
    absl::StatusOr<std::string> Call(absl::string_view method, absl::string_view request) override {
      auto it = state_->brokers.find(id_);
      if (state_->closed || it == state_->brokers.end()) {
        return absl::UnavailableError("the host withdrew this broker connection");
      }
      return it->second->Handle(method, request);
    }

   private:
    std::shared_ptr<LocalState> state_;
    uint32_t id_;
  };
  std::shared_ptr<LocalState> state_;
};

class LocalConnection final : public PluginConnection {
 public:
  LocalConnection(Executor& executor, const BuiltinBackend& backend)
      : executor_(executor),
        state_(std::make_shared<LocalState>()),
        dialer_(std::make_shared<LocalDialer>(state_)),
        dispatcher_(std::make_shared<sdk::BackendDispatcher>(backend.factory, *dialer_,
                                                             Options(backend))) {}
  ~LocalConnection() override { Close(); }

  void Call(absl::string_view method, std::string request, const CallOptions& options,
            CallDone done) override {
    // Posted, never inline: the caller's contract. The dispatcher runs on the loop thread, so
    // a built-in's storage calls reach the host services synchronously, as they may.
    executor_.Post([state = state_, dialer = dialer_, dispatcher = dispatcher_,
                    method = std::string(method), request = std::move(request),
                    mid = options.multiplex_id, done = std::move(done)]() mutable {
      if (state->closed) return done(absl::CancelledError("connection closed"));
      if (method == kShutdownMethod) {
        dispatcher->CleanupAll();
        return done(std::string());
      }
      done(dispatcher->Dispatch(method, request, mid));
    });
  }

  absl::StatusOr<uint32_t> OfferHostServices(HostServices* services) override {
    if (state_->closed) return absl::FailedPreconditionError("connection closed");
    const uint32_t id = state_->next_broker++;
    state_->brokers[id] = services;
    return id;
  }
  void WithdrawHostServices(uint32_t id) override { state_->brokers.erase(id); }
  void SetStdioHandler(absl::AnyInvocable<void(int, absl::string_view)>) override {}
  void Close() override {
    state_->closed = true;
    state_->brokers.clear();
  }

 private:
  static sdk::DispatcherOptions Options(const BuiltinBackend& backend) {
    sdk::DispatcherOptions o;
    o.multiplexing = backend.multiplexing;
    return o;
  }
  Executor& executor_;
  std::shared_ptr<LocalState> state_;
  std::shared_ptr<LocalDialer> dialer_;
  std::shared_ptr<sdk::BackendDispatcher> dispatcher_;
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
