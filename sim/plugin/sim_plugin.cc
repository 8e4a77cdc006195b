// Simulated plugin programs and connections: the go-plugin launch contract (cookie, versions,
// socket in the given directory, one handshake line) and unary calls with latency, delivered
// into the simulated process so crashes and hangs act on them.
#include "sim/plugin/sim_plugin.h"

#include <csignal>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/lifecycle/local_broker.h"
#include "proto/health/health.pb.h"
#include "protocol/handshake.h"
#include "protocol/wire_names.h"
#include "sdk/database_dispatcher.h"
#include "sdk/serve_config.h"

namespace bulwark::sim {
namespace {

// A deterministic stand-in for a DER certificate: an ASN.1 SEQUENCE header and a tag naming
// the process, long enough that the handshake parser treats it as a certificate.
std::string FakeCertDer(int64_t pid) {
  std::string der("\x30\x81\x40", 3);
  std::string body = absl::StrCat("bulwark-sim-plugin-cert-pid-", pid);
  body.resize(0x40, '.');
  return der + body;
}

struct Pending {
  CallDone done;
  TimerId timer = kNoTimer;
};

// The state a connection shares with the callbacks it schedules.
struct ConnState {
  bool closed = false;
  uint64_t next_id = 1;
  std::map<uint64_t, Pending> pending;
  std::set<uint32_t> brokers;
};

}  // namespace

struct SimPluginNetwork::Server {
  std::string plugin;
  std::string address;
  std::string cert_der;              // Empty without AutoMTLS.
  std::string client_cert_pem;       // The host certificate it trusts (PLUGIN_CLIENT_CERT).
  SimProcessContext* ctx = nullptr;  // Valid while alive.
  bool alive = true;
  bool ignore_shutdown = false;
  std::vector<std::weak_ptr<ConnState>> connections;
  lifecycle::LocalBroker broker;  // Before the dispatcher, which holds its dialer.
  std::unique_ptr<sdk::BackendDispatcher> dispatcher;
  std::unique_ptr<sdk::DatabaseDispatcher> database;  // A database plugin: instead of the above.

  absl::StatusOr<std::string> Dispatch(const std::string& method, const std::string& request,
                                       const std::string& multiplex_id) {
    if (database != nullptr) return database->Dispatch(method, request, multiplex_id);
    return dispatcher->Dispatch(method, request, multiplex_id);
  }
  void CleanupAll() {
    if (dispatcher != nullptr) dispatcher->CleanupAll();
  }
};

// One simulated plugin process.
class SimPluginProgram final : public SimProgram {
 public:
  SimPluginProgram(SimPluginNetwork& net, std::string name, SimPluginSpec spec)
      : net_(net), net_alive_(net.alive_), name_(std::move(name)), spec_(std::move(spec)) {}

  ~SimPluginProgram() override {
    if (server_ == nullptr || net_alive_.expired()) return;
    server_->alive = false;
    server_->ctx = nullptr;
    net_.servers_.erase(server_->address);
    // Every call in flight on a connection to this process breaks.
    for (const std::weak_ptr<ConnState>& weak : server_->connections) {
      std::shared_ptr<ConnState> conn = weak.lock();
      if (conn == nullptr) continue;
      for (auto& [id, p] : conn->pending) {
        if (p.timer != kNoTimer) net_.executor_.Cancel(p.timer);
        net_.executor_.Post([done = std::move(p.done)]() mutable {
          done(absl::UnavailableError("connection reset: the plugin process ended"));
        });
      }
      conn->pending.clear();
    }
  }

  void Start(SimProcessContext& ctx) override {
    sdk::EnvLookup env = [&ctx](absl::string_view name) { return ctx.GetEnv(name); };
    const bool database = static_cast<bool>(spec_.database);
    absl::Status cookie = database ? sdk::CheckMagicCookie(env, sdk::kVaultDatabaseCookieKey,
                                                           sdk::kVaultDatabaseCookieValue)
                                   : sdk::CheckMagicCookie(env, sdk::kVaultBackendCookieKey,
                                                           sdk::kVaultBackendCookieValue);
    if (!cookie.ok()) {
      ctx.Write(OutputStream::kStderr, cookie.message());
      ctx.Exit(1);
      return;
    }
    std::vector<int> versions = {sdk::kVaultBackendProtocolVersion};
    if (database) {
      // Version 6 means multiplexed (Vault's ServeMultiplex): offered only when multiplexing.
      versions = {sdk::kVaultDatabaseProtocolVersion};
      if (spec_.multiplexing) versions.push_back(sdk::kVaultDatabaseMultiplexedProtocolVersion);
    }
    absl::StatusOr<sdk::ServeEnv> serve = sdk::ReadServeEnv(env, versions);
    if (!serve.ok()) {
      ctx.Write(OutputStream::kStderr, absl::StrCat(serve.status().message(), "\n"));
      ctx.Exit(1);
      return;
    }
    auto server = std::make_shared<SimPluginNetwork::Server>();
    server->plugin = name_;
    server->address = absl::StrCat(serve->socket_dir, "/plugin", ctx.random().Uniform(1000000000));
    absl::Status socket = net_.fs_.WriteFileDurably(server->address, "", 0600);
    if (!socket.ok()) {
      ctx.Write(OutputStream::kStderr,
                absl::StrCat("cannot listen on ", server->address, ": ", socket.message(), "\n"));
      ctx.Exit(1);
      return;
    }
    if (serve->client_cert_pem.has_value()) {
      server->cert_der = FakeCertDer(ctx.pid());
      server->client_cert_pem = *serve->client_cert_pem;
    }
    server->ctx = &ctx;
    server->ignore_shutdown = spec_.ignore_shutdown;
    sdk::DispatcherOptions options;
    options.multiplexing = spec_.multiplexing;
    options.plugin_version = spec_.plugin_version;
    options.metadata_mode = serve->metadata_mode;
    if (database) {
      sdk::DatabaseDispatcherOptions db_options;
      db_options.multiplexing =
          spec_.multiplexing && serve->app_version == sdk::kVaultDatabaseMultiplexedProtocolVersion;
      db_options.plugin_version = spec_.plugin_version;
      server->database = std::make_unique<sdk::DatabaseDispatcher>(spec_.database(ctx), db_options);
    } else {
      server->dispatcher =
          std::make_unique<sdk::BackendDispatcher>(spec_.factory, server->broker.dialer(), options);
    }
    net_.servers_[server->address] = server;
    server_ = server;

    protocol::HandshakeLine hs;
    hs.app_version = serve->app_version;
    hs.network = "unix";
    hs.address = server->address;
    hs.protocol = "grpc";
    hs.server_cert_der = server->cert_der;
    if (serve->multiplex_grpc) hs.multiplex_supported = true;
    std::string line = protocol::FormatHandshakeLine(hs);
    if (spec_.handshake_filter) line = spec_.handshake_filter(line, ctx.argv());
    ctx.Write(OutputStream::kStdout, absl::StrCat(line, "\n"));
    ctx.Write(OutputStream::kStderr,
              absl::StrCat("{\"@level\":\"info\",\"@message\":\"plugin serving\",\"@module\":\"",
                           name_, "\"}\n"));
  }

  bool OnSignal(SimProcessContext&, int signal) override {
    return signal != SIGINT;  // go-plugin plugins ignore SIGINT.
  }

 private:
  SimPluginNetwork& net_;
  std::weak_ptr<bool> net_alive_;  // The network may be destroyed before the process.
  const std::string name_;
  const SimPluginSpec spec_;
  std::shared_ptr<SimPluginNetwork::Server> server_;
};

class SimPluginConnection final : public PluginConnection {
 public:
  SimPluginConnection(SimPluginNetwork& net, std::shared_ptr<SimPluginNetwork::Server> server)
      : net_(net), server_(std::move(server)), state_(std::make_shared<ConnState>()) {
    server_->connections.push_back(state_);
  }
  ~SimPluginConnection() override { Close(); }

  void Call(absl::string_view method, std::string request, const CallOptions& options,
            CallDone done) override {
    Executor& ex = net_.executor_;
    if (state_->closed) {
      ex.Post(
          [done = std::move(done)]() mutable { done(absl::CancelledError("connection closed")); });
      return;
    }
    if (!server_->alive) {
      ex.Post([done = std::move(done)]() mutable {
        done(absl::UnavailableError("connection refused: the plugin process is gone"));
      });
      return;
    }
    ++net_.calls_;
    const uint64_t id = state_->next_id++;
    std::weak_ptr<ConnState> weak = state_;
    Pending& p = state_->pending[id];
    p.done = std::move(done);
    p.timer = ex.PostAfter(options.timeout, [weak, id] {
      Complete(weak, id, absl::DeadlineExceededError("deadline exceeded"), /*cancel=*/false,
               nullptr);
    });
    std::weak_ptr<SimPluginNetwork::Server> server = server_;
    SimPluginNetwork* net = &net_;
    ex.PostAfter(net_.Latency(server_->plugin),
                 [net, server, weak, id, method = std::string(method), request = std::move(request),
                  mid = options.multiplex_id]() mutable {
                   std::shared_ptr<SimPluginNetwork::Server> s = server.lock();
                   if (s == nullptr || !s->alive) return;  // Its death already failed the call.
                   // The work happens inside the process: a hung or crashed process never answers.
                   s->ctx->Post([net, server, weak, id, method = std::move(method),
                                 request = std::move(request), mid = std::move(mid)]() mutable {
                     std::shared_ptr<SimPluginNetwork::Server> s = server.lock();
                     if (s == nullptr) return;
                     absl::StatusOr<std::string> reply;
                     if (method == protocol::kControllerShutdownMethod) {
                       reply = std::string();  // plugin.Empty
                       if (!s->ignore_shutdown) {
                         s->ctx->PostAfter(absl::Milliseconds(1), [net, server] {
                           std::shared_ptr<SimPluginNetwork::Server> s = server.lock();
                           if (s == nullptr || s->ctx == nullptr) return;
                           // A clean exit: instances cleaned up, socket file removed, as go-plugin
                           // does.
                           s->CleanupAll();
                           (void)net->fs_.Remove(s->address);
                           s->ctx->Exit(0);
                         });
                       }
                     } else if (method == protocol::kHealthCheckMethod) {
                       grpc::health::v1::HealthCheckResponse r;
                       r.set_status(grpc::health::v1::HealthCheckResponse::SERVING);
                       reply = r.SerializeAsString();
                     } else {
                       reply = s->Dispatch(method, request, mid);
                     }
                     net->executor_.PostAfter(net->Latency(s->plugin),
                                              [net, weak, id, reply = std::move(reply)]() mutable {
                                                Complete(weak, id, std::move(reply),
                                                         /*cancel=*/true, &net->executor_);
                                              });
                   });
                 });
  }

  absl::StatusOr<uint32_t> OfferHostServices(HostServices* services) override {
    if (state_->closed) return absl::FailedPreconditionError("connection closed");
    absl::StatusOr<uint32_t> id = server_->broker.Offer(services);
    if (id.ok()) state_->brokers.insert(*id);
    return id;
  }

  void WithdrawHostServices(uint32_t broker_id) override {
    if (state_->brokers.erase(broker_id) > 0) server_->broker.Withdraw(broker_id);
  }

  void SetStdioHandler(absl::AnyInvocable<void(int, absl::string_view)>) override {}

  void Close() override {
    if (state_->closed) return;
    state_->closed = true;
    for (uint32_t id : state_->brokers) server_->broker.Withdraw(id);
    state_->brokers.clear();
    for (auto& [id, p] : state_->pending) {
      if (p.timer != kNoTimer) net_.executor_.Cancel(p.timer);
      net_.executor_.Post([done = std::move(p.done)]() mutable {
        done(absl::CancelledError("connection closed"));
      });
    }
    state_->pending.clear();
  }

 private:
  // Finishes call `id` if it is still pending (the first of reply, deadline, death wins).
  static void Complete(const std::weak_ptr<ConnState>& weak, uint64_t id,
                       absl::StatusOr<std::string> result, bool cancel, Executor* executor) {
    std::shared_ptr<ConnState> state = weak.lock();
    if (state == nullptr) return;
    auto it = state->pending.find(id);
    if (it == state->pending.end()) return;
    Pending p = std::move(it->second);
    state->pending.erase(it);
    if (cancel && executor != nullptr && p.timer != kNoTimer) executor->Cancel(p.timer);
    p.done(std::move(result));
  }

  SimPluginNetwork& net_;
  std::shared_ptr<SimPluginNetwork::Server> server_;
  std::shared_ptr<ConnState> state_;
};

namespace {

class SimIdentity final : public ClientIdentity {
 public:
  explicit SimIdentity(std::string pem) : pem_(std::move(pem)) {}
  const std::string& cert_pem() const override { return pem_; }

 private:
  std::string pem_;
};

}  // namespace

SimPluginNetwork::SimPluginNetwork(Executor& executor, Random& random, SimFileSystem& fs,
                                   SimNetworkOptions options)
    : executor_(executor), random_(random), fs_(fs), options_(options) {}

SimPluginNetwork::~SimPluginNetwork() = default;

void SimPluginNetwork::RegisterPlugin(SimProcessLauncher& launcher, const std::string& name,
                                      SimPluginSpec spec) {
  launcher.RegisterProgram(name, [this, name, spec] {
    return std::unique_ptr<SimProgram>(new SimPluginProgram(*this, name, spec));
  });
}

void SimPluginNetwork::SetSlowdown(const std::string& name, absl::Duration extra) {
  if (extra <= absl::ZeroDuration()) {
    slowdown_.erase(name);
  } else {
    slowdown_[name] = extra;
  }
}

absl::Duration SimPluginNetwork::Latency(const std::string& plugin) {
  const int64_t lo = absl::ToInt64Microseconds(options_.latency_min);
  const int64_t hi = absl::ToInt64Microseconds(options_.latency_max);
  absl::Duration d = absl::Microseconds(
      lo + static_cast<int64_t>(random_.Uniform(static_cast<uint64_t>(hi - lo + 1))));
  auto it = slowdown_.find(plugin);
  if (it != slowdown_.end()) d += it->second;
  return d;
}

absl::StatusOr<std::unique_ptr<ClientIdentity>> SimPluginNetwork::NewClientIdentity() {
  return std::unique_ptr<ClientIdentity>(
      new SimIdentity(absl::StrCat("-----BEGIN CERTIFICATE-----\nbulwark-sim-host-",
                                   next_identity_++, "\n-----END CERTIFICATE-----\n")));
}

void SimPluginNetwork::Connect(
    const PluginEndpoint& endpoint, const ClientIdentity* identity, absl::Duration timeout,
    absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<PluginConnection>>)> done) {
  auto shared_done =
      std::make_shared<absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<PluginConnection>>)>>(
          std::move(done));
  auto finished = std::make_shared<bool>(false);
  auto finish = [shared_done,
                 finished](absl::StatusOr<std::unique_ptr<PluginConnection>> r) mutable {
    if (*finished) return;
    *finished = true;
    (*shared_done)(std::move(r));
  };
  const TimerId timer = executor_.PostAfter(timeout, [finish]() mutable {
    finish(absl::DeadlineExceededError("plugin did not answer its health check in time"));
  });
  auto it = servers_.find(endpoint.address);
  absl::Status refused;
  if (endpoint.network != "unix" || it == servers_.end() || !it->second->alive) {
    refused = absl::UnavailableError(
        absl::StrCat("connection refused: nothing listens at ", endpoint.address));
  } else if (it->second->cert_der.empty() != endpoint.server_cert_der.empty()) {
    refused = absl::UnauthenticatedError(it->second->cert_der.empty()
                                             ? "TLS handshake failed: the plugin speaks plaintext"
                                             : "the plugin requires TLS; got plaintext");
  } else if (it->second->cert_der != endpoint.server_cert_der) {
    refused = absl::UnauthenticatedError("TLS handshake failed: unexpected server certificate");
  } else if (!it->second->cert_der.empty() &&
             (identity == nullptr || identity->cert_pem() != it->second->client_cert_pem)) {
    refused =
        absl::UnauthenticatedError("TLS handshake failed: the plugin refused our certificate");
  }
  if (!refused.ok()) {
    executor_.PostAfter(Latency(endpoint.address), [this, timer, finish, refused]() mutable {
      executor_.Cancel(timer);
      finish(refused);
    });
    return;
  }
  // The health check travels into the process like any call.
  std::weak_ptr<Server> server = it->second;
  executor_.PostAfter(Latency(it->second->plugin), [this, server, timer, finish]() mutable {
    std::shared_ptr<Server> s = server.lock();
    if (s == nullptr || !s->alive) return;  // The timer reports it.
    s->ctx->Post([this, server, timer, finish]() mutable {
      std::shared_ptr<Server> s = server.lock();
      if (s == nullptr) return;
      executor_.PostAfter(Latency(s->plugin), [this, server, timer, finish]() mutable {
        std::shared_ptr<Server> s = server.lock();
        if (s == nullptr || !s->alive) return;
        executor_.Cancel(timer);
        finish(std::unique_ptr<PluginConnection>(new SimPluginConnection(*this, s)));
      });
    });
  });
}

}  // namespace bulwark::sim
