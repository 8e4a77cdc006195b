// The composition root of `bulwark server`: flags, configuration, wiring, dev mode, signals.
#include "server/server.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/crypto/sha256.h"
#include "base/env/posix/posix_cgroups.h"
#include "base/env/posix/posix_env.h"
#include "base/env/posix/posix_process_sampler.h"
#include "base/env/posix/posix_random.h"
#include "base/memory/malloc_tuning.h"
#include "base/metrics/metrics.h"
#include "base/storage/in_memory_storage.h"
#include "core/ha/cluster_ca.h"
#include "core/ha/forwarding.h"
#include "core/ha/leadership.h"
#include "core/lifecycle/builtin_runner.h"
#include "core/lifecycle/external_runner.h"
#include "core/node/node.h"
#include "core/rpc/grpc_transport.h"
#include "core/storage/file_storage.h"
#include "core/wrapping/wrapping_store.h"
#include "examples/kv/kv_backend.h"
#include "faultinject/failpoint.h"
#include "faultinject/registry.h"
#include "sdk/dispatcher.h"
#include "server/api/api.h"
#include "server/cluster/forwarding.h"
#include "server/config/config.h"
#include "server/etcd/etcd_client.h"
#include "server/etcd/etcd_coordinator.h"
#include "server/etcd/etcd_storage.h"
#include "server/http/server.h"

namespace bulwark::server {
namespace {

constexpr char kVaultApiVersion[] = "1.16.0";
// Overrides LifecycleOptions::database_idle_grace (a duration; "0s": stop at once, as Vault).
constexpr char kDatabaseIdleGraceVariable[] = "BULWARK_DATABASE_IDLE_GRACE";
constexpr absl::Duration kStartStepLimit = absl::Seconds(60);  // A hang guard for dev setup.

constexpr char kUsage[] =
    "Usage: bulwark server [options]\n"
    "\n"
    "  Runs a bulwark server. With -config it reads a JSON configuration file in Vault's shape\n"
    "  (storage, listener, plugin_directory, api_addr, ...; see docs/server.md). With -dev it\n"
    "  runs in memory, initialised with one key share and unsealed, the root token printed and\n"
    "  the built-in kv engine mounted at secret/.\n"
    "\n"
    "  -config=FILE                 the configuration file (JSON)\n"
    "  -dev                         development mode: in memory, unsealed, no TLS\n"
    "  -dev-root-token-id=ID        the dev root token (default: a random hvs. token)\n"
    "  -dev-listen-address=ADDR     the dev listener (default 127.0.0.1:8200; port 0 picks one)\n"
    "  -dev-plugin-dir=DIR          the dev plugin directory: every executable in it is\n"
    "                               registered as a secrets engine named after the file and\n"
    "                               mounted at that name\n"
    "  -dev-disable-plugin-automtls run external plugins without AutoMTLS: they unwrap a\n"
    "                               certificate at the API address (the legacy bootstrap)\n"
    "  -log-level=LEVEL             trace, debug, info, warn or error\n";

int Fail(absl::string_view message) {
  std::fprintf(stderr, "Error: %.*s\n", static_cast<int>(message.size()), message.data());
  return 1;
}

absl::StatusOr<config::ServerConfig> LoadConfig(const ServerFlags& flags) {
  config::ServerConfig c;
  if (flags.dev) {
    c.storage.kind = config::StorageConfig::Kind::kInmem;
    c.listener.address = flags.dev_listen_address;
    c.listener.tls_disable = true;
    c.plugin_directory = flags.dev_plugin_dir;
    c.disable_mlock = true;
    c.disable_plugin_automtls = flags.dev_disable_plugin_automtls;
  } else {
    std::ifstream in(flags.config_path, std::ios::binary);
    if (!in) {
      return absl::InvalidArgumentError(absl::StrCat("cannot read the configuration file \"",
                                                     flags.config_path,
                                                     "\": ", std::strerror(errno)));
    }
    std::string text(config::kConfigBytesMax + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    absl::StatusOr<config::ServerConfig> parsed = config::ParseConfig(text);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "error loading configuration from ", flags.config_path, ": ", parsed.status().message()));
    }
    c = *std::move(parsed);
  }
  if (flags.log_level.has_value()) c.log_level = *flags.log_level;
  if (!c.plugin_directory.empty()) {
    // Vault resolves symlinks in plugin_directory once at start; the catalog then refuses a
    // directory reached through one.
    char resolved[PATH_MAX];
    if (::realpath(c.plugin_directory.c_str(), resolved) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("plugin directory \"", c.plugin_directory, "\": ", std::strerror(errno)));
    }
    c.plugin_directory = resolved;
  }
  return c;
}

// What -dev did with the files of -dev-plugin-dir, for the banner. Sorted by file name.
struct DevPluginReport {
  std::vector<std::string> registered;  // "name (sha256: <hex>)"
  std::vector<std::string> mounted;     // "name/ (secret plugin name)"
  std::vector<std::string> failed;      // "name: why" (not registered, or not mounted)
  std::vector<std::string> skipped;     // "name: not an executable file"
};

// The SHA-256 of the file at `path`, in hex, read in chunks (plugins are tens of megabytes).
absl::StatusOr<std::string> FileSha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read it: ", std::strerror(errno)));
  crypto::Sha256 hasher;
  std::vector<char> buffer(1 << 16);
  while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
    hasher.Update(absl::string_view(buffer.data(), static_cast<size_t>(in.gcount())));
  }
  if (in.bad()) return absl::DataLossError("reading it failed");
  return crypto::HexEncode(hasher.Finish());
}

// Everything the server is made of, in construction order (destroyed in reverse: the transport
// before the API, the API before the node, the node before its runners, all before the Env).
class Server {
 public:
  Server(const ServerFlags& flags, config::ServerConfig config)
      : flags_(flags), config_(std::move(config)), log_(config_.log_level) {}
  ~Server() {
    cluster_server_.reset();
    cluster_client_.reset();
    http_.reset();
    api_.reset();
    leadership_.reset();
    node_.reset();
    coordinator_.reset();
    if (!runtime_dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(runtime_dir_, ignored);
    }
    if (lock_fd_ >= 0) close(lock_fd_);
  }

  absl::Status Start();
  // Runs the loop until the shutdown that PostShutdown starts has finished.
  void Run();
  // Starts the graceful shutdown on the loop. Any thread (the signal thread).
  void PostShutdown() {
    posix_.loop().Post([this] { BeginShutdown(); });
  }

 private:
  absl::Status OpenStorage();
  absl::Status SetUpDev();
  void LoadDevPlugins();
  // api_addr, or (like the banner) the listener's address when it is not configured; "" before
  // the listener is up.
  std::string ApiAddr() const;
  // The wrapped-token bootstrap: wraps a plugin's TLS material with the JWT's addr = ApiAddr().
  absl::StatusOr<wrapping::WrapResult> WrapForPlugin(wrapping::WrapRequest request);
  void PrintBanner() const;
  // "file", "etcd" or "inmem", as sys/seal-status's storage_type.
  std::string StorageType() const {
    switch (config_.storage.kind) {
      case config::StorageConfig::Kind::kFile:
        return "file";
      case config::StorageConfig::Kind::kEtcd:
        return "etcd";
      case config::StorageConfig::Kind::kInmem:
        break;
    }
    return "inmem";
  }
  void BeginShutdown();
  void StopNode();
  // The cluster port (docs/ha.md): on with HA, a cluster address (cluster_addr or the listener's
  // cluster_address) and without disable_clustering.
  bool ClusteringEnabled() const {
    return coordinator_ != nullptr && !config_.disable_clustering &&
           (!config_.cluster_addr.empty() || !config_.listener.cluster_address.empty());
  }
  cluster::ForwardingLimits ClusterLimits() const {
    cluster::ForwardingLimits limits;
    limits.max_message_bytes = config_.max_request_bytes + (size_t{1} << 20);
    return limits;
  }
  // On becoming active (Leadership's prepare_active): the cluster CA (created if this is the
  // cluster's first active node), this node's certificate, the listener. Once per process.
  absl::Status StartClusterPort();
  // A standby's forward: the client is made at the first forward (the CA must exist by then).
  void ForwardToActive(const std::string& cluster_addr, const http::Request& request,
                       api::ApiOptions::ForwardDone done);
  void SetUpPluginLimits();
  void Log(LogLevel level, std::string message) {
    LogRecord r;
    r.level = level;
    r.time = posix_.clock().WallNow();
    r.source = "server";
    r.message = std::move(message);
    log_.Write(r);
  }

  const ServerFlags& flags_;
  const config::ServerConfig config_;
  // Plugin cgroups (null: the rlimit fallback). Declared before posix_ so that it outlives the
  // launcher and every plugin process.
  std::unique_ptr<CgroupManager> cgroups_;
  PosixEnv posix_;
  StderrLogSink log_;
  metrics::Registry metrics_;
  PosixProcessSampler sampler_;  // Plugin CPU and memory from /proc, for sys/metrics.
  int lock_fd_ = -1;
  std::unique_ptr<Storage> storage_;
  // storage "etcd": the client under the storage; with ha_enabled the coordinator and the
  // leadership that drives the node's role (docs/ha.md).
  std::unique_ptr<etcd::Client> etcd_client_;
  etcd::EtcdStorage* etcd_storage_ = nullptr;
  std::unique_ptr<etcd::EtcdCoordinator> coordinator_;
  std::unique_ptr<ha::Leadership> leadership_;
  std::string runtime_dir_;
  std::unique_ptr<rpc::GrpcPluginTransport> transport_;
  std::unique_ptr<lifecycle::ExternalRunnerFactory> external_;
  std::unique_ptr<lifecycle::BuiltinRunnerFactory> builtin_;
  std::unique_ptr<lifecycle::SplitRunnerFactory> runners_;
  std::unique_ptr<node::Node> node_;
  std::unique_ptr<api::Api> api_;
  std::unique_ptr<http::Server> http_;
  std::unique_ptr<cluster::ForwardingServer> cluster_server_;
  std::unique_ptr<cluster::ForwardingClient> cluster_client_;
  std::string cluster_advertised_;  // "https://<bound address>" when cluster_addr is not set.
  std::thread closer_;
  bool node_stopping_ = false;
  std::string dev_unseal_key_, dev_root_token_;
  DevPluginReport dev_plugins_;
};

// Catalog entries' memory, pids and CPU limits: a cgroup per plugin process where the machine
// allows (docs/security.md, "Limits"), else rlimits. Says which, in the log and in sys/metrics.
void Server::SetUpPluginLimits() {
  absl::StatusOr<std::unique_ptr<CgroupManager>> cgroups = CgroupManager::Open(CgroupOptions());
  if (cgroups.ok()) {
    cgroups_ = *std::move(cgroups);
    posix_.launcher().UseCgroups(cgroups_.get());
    Log(LogLevel::kInfo, absl::StrCat("plugin limits: ", cgroups_->Describe()));
    if (cgroups_->swept() > 0) {
      Log(LogLevel::kInfo, absl::StrCat("plugin limits: removed the cgroups of ", cgroups_->swept(),
                                        " host(s) that ended without cleaning up"));
    }
    for (const std::string& problem : cgroups_->sweep_problems()) {
      Log(LogLevel::kWarn, absl::StrCat("plugin limits: a stale cgroup remains: ", problem));
    }
  } else {
    Log(LogLevel::kInfo, absl::StrCat("plugin limits: rlimit (memory_bytes as RLIMIT_AS, pids as "
                                      "RLIMIT_NPROC, cpu_weight not enforced): no usable cgroup "
                                      "hierarchy: ",
                                      cgroups.status().message()));
  }
  metrics_
      .Gauge("bulwark_plugin_limits_mechanism",
             "How catalog entries' memory, pids and CPU limits are enforced: 1 for the mechanism "
             "in force (cgroup_v2, cgroup_v1 or rlimit).")
      ->Set({{"mechanism", posix_.launcher().LimitsMechanism()}}, 1);
}

absl::Status Server::OpenStorage() {
  if (config_.storage.kind == config::StorageConfig::Kind::kInmem) {
    storage_ = std::make_unique<InMemoryStorage>();
    return absl::OkStatus();
  }
  if (config_.storage.kind == config::StorageConfig::Kind::kEtcd) {
    const config::EtcdStorageConfig& c = config_.storage.etcd;
    etcd::ClientOptions options;
    options.address = c.address;
    options.request_timeout = c.request_timeout;
    absl::StatusOr<std::unique_ptr<etcd::Client>> client = etcd::Client::Connect(options);
    if (!client.ok()) {
      return absl::Status(client.status().code(),
                          absl::StrCat("storage.etcd.address: ", client.status().message()));
    }
    etcd_client_ = *std::move(client);
    auto storage = std::make_unique<etcd::EtcdStorage>(*etcd_client_, c.path);
    // Fail at start, naming etcd, rather than at the first request.
    if (absl::StatusOr<std::optional<std::string>> probe = storage->Get("barrier/keyring");
        !probe.ok()) {
      return absl::Status(probe.status().code(),
                          absl::StrCat("storage.etcd: ", probe.status().message()));
    }
    etcd_storage_ = storage.get();
    storage_ = std::move(storage);
    if (c.ha_enabled) {
      etcd::CoordinatorOptions ha;
      ha.path = c.path;
      ha.lock_ttl = c.lock_ttl;
      ha.post = [this](absl::AnyInvocable<void()> task) { posix_.loop().Post(std::move(task)); };
      ha.cache_holder = true;
      coordinator_ = std::make_unique<etcd::EtcdCoordinator>(*etcd_client_, std::move(ha));
      etcd_storage_->EnableReadCache(coordinator_->lease_window());
      if (config_.performance_standby && config_.performance_standby_cached_reads) {
        etcd_storage_->EnableWatchedReads(coordinator_->watch_health());
      }
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<FileStorage>> file =
      FileStorage::Open(posix_.fs(), config_.storage.path);
  if (!file.ok()) {
    return absl::Status(file.status().code(),
                        absl::StrCat("storage.file.path \"", config_.storage.path,
                                     "\": ", file.status().message()));
  }
  // One server per data directory: FileStorage keeps an index in memory, so a second writer
  // would corrupt it. The lock goes away with the process, SIGKILL included.
  const std::string lock = config_.storage.path + "/LOCK";
  lock_fd_ = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0 || flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("storage.file.path \"", config_.storage.path,
                                                      "\" is in use by another bulwark server"));
  }
  storage_ = *std::move(file);
  return absl::OkStatus();
}

absl::Status Server::Start() {
  if (absl::Status s = OpenStorage(); !s.ok()) return s;
  // Plugin sockets live in the runtime directory, whose path must stay short (a socket path is
  // at most 107 bytes): $TMPDIR when it is short enough, as Go's os.TempDir, else /tmp.
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = absl::StrCat(
      tmp != nullptr && tmp[0] == '/' && std::strlen(tmp) <= 40 ? tmp : "/tmp", "/bulwark-XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot create a runtime directory ", dir, ": ", std::strerror(errno)));
  }
  runtime_dir_ = dir;
  transport_ = std::make_unique<rpc::GrpcPluginTransport>(posix_.loop());
  lifecycle::ExternalRunnerOptions runner_options;
  runner_options.runtime_dir = runtime_dir_;
  runner_options.vault_version = kVaultApiVersion;
  runner_options.log_sink = &log_;
  runner_options.automtls = !config_.disable_plugin_automtls;
  if (config_.disable_plugin_automtls) {
    runner_options.wrap_response = [this](wrapping::WrapRequest request) {
      return WrapForPlugin(std::move(request));
    };
    // What Vault's API client reads, so the plugin can reach and trust api_addr (Vault passes
    // its whole environment; bulwark only these).
    for (const char* name : kPluginClientEnvVars) {
      if (const char* value = std::getenv(name); value != nullptr) {
        runner_options.host_env.push_back(absl::StrCat(name, "=", value));
      }
    }
  }
  SetUpPluginLimits();
  external_ =
      std::make_unique<lifecycle::ExternalRunnerFactory>(posix_.env(), *transport_, runner_options);
  lifecycle::BuiltinBackend kv;
  kv.factory = sdk::InProcessBackend(examples::kv::KvBackendFactory());
  builtin_ = std::make_unique<lifecycle::BuiltinRunnerFactory>(
      posix_.loop(), std::map<std::string, lifecycle::BuiltinBackend>{{kBuiltinKv, kv}});
  runners_ = std::make_unique<lifecycle::SplitRunnerFactory>(*builtin_, *external_);
  node::NodeOptions options;
  options.catalog.plugin_directory = config_.plugin_directory;
  // ParseConfig accepted only the three names.
  options.catalog.signature_policy =
      catalog::ParseSignaturePolicy(config_.plugin_signature_policy).value();
  options.catalog.allowed_signers_file = config_.plugin_allowed_signers_file;
  options.catalog.builtins = {
      catalog::BuiltinPlugin{catalog::PluginType::kSecret, kBuiltinKv, kBuiltinKvVersion}};
  options.system_view.vault_version = kVaultApiVersion;
  // With HA the node starts as a standby and becomes active when it wins the lock.
  if (coordinator_ != nullptr) options.role = node::Role::kStandby;
  options.lifecycle.sampler = &sampler_;
  // How long a multiplexed database plugin process outlives the last instance the database
  // engine closed (docs/database.md, "Termination events"); "0s" is Vault's behaviour.
  if (const char* grace = std::getenv(kDatabaseIdleGraceVariable); grace != nullptr && *grace) {
    absl::Duration d;
    if (!absl::ParseDuration(grace, &d) || d < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(
          kDatabaseIdleGraceVariable, " must be a duration such as \"30s\" or \"0s\", not \"",
          absl::string_view(grace).substr(0, 40), "\""));
    }
    options.lifecycle.database_idle_grace = d;
  }
  absl::StatusOr<std::unique_ptr<node::Node>> node =
      node::Node::Open(posix_.env(), *storage_, *runners_, metrics_, log_, options);
  if (!node.ok()) return node.status();
  node_ = *std::move(node);
  api::ApiOptions api_options;
  api_options.version = kVaultApiVersion;
  api_options.storage_type = StorageType();
  if (coordinator_ != nullptr) {
    ha::LeadershipOptions leadership;
    leadership.advertise.api_addr = ApiAddr();
    leadership.advertise.cluster_addr = config_.cluster_addr;
    leadership.performance_standby = config_.performance_standby;
    leadership.drain_requests = [this](absl::AnyInvocable<void()> then) {
      api_->WhenDrained(ha::kStepDownDrainLimit, std::move(then));
    };
    if (ClusteringEnabled()) {
      leadership.prepare_active = [this] { return StartClusterPort(); };
      api_options.forward = [this](const std::string& cluster_addr, const http::Request& request,
                                   api::ApiOptions::ForwardDone done) {
        ForwardToActive(cluster_addr, request, std::move(done));
      };
      // The holder the forward went to may be gone: ask etcd again next time.
      api_options.forward_failed = [this] { coordinator_->InvalidateHolder(); };
    }
    leadership_ = std::make_unique<ha::Leadership>(posix_.env(), *node_, *coordinator_,
                                                   *etcd_storage_, log_, std::move(leadership));
    api_options.on_unsealed = [this] { leadership_->OnUnsealed(); };
    api_options.on_sealed = [this] { leadership_->OnSealed(); };
    api_options.step_down = [this] { leadership_->StepDown(); };
    api_options.leader = [this]() -> absl::StatusOr<api::LeaderStatus> {
      absl::StatusOr<ha::LeaderView> view = leadership_->Leader();
      if (!view.ok()) return view.status();
      api::LeaderStatus status;
      status.is_self = view->is_self;
      status.leader_address = view->is_self ? ApiAddr() : view->leader_address;
      status.leader_cluster_address = view->leader_cluster_address;
      status.active_time = view->active_since;
      return status;
    };
  }
  api_ = std::make_unique<api::Api>(posix_.env(), *node_, metrics_, log_, api_options);
  if (flags_.dev) {
    if (absl::Status s = SetUpDev(); !s.ok()) return s;
  }
  http::ServerOptions http_options;
  http_options.address = config_.listener.address;
  if (!config_.listener.tls_disable) {
    http_options.tls_cert_file = config_.listener.tls_cert_file;
    http_options.tls_key_file = config_.listener.tls_key_file;
  }
  http_options.max_request_bytes = config_.max_request_bytes;
  api::Api* api = api_.get();
  absl::StatusOr<std::unique_ptr<http::Server>> http =
      http::Server::Start(http_options, [api](http::Request request, http::Responder respond) {
        api->Handle(std::move(request), std::move(respond));
      });
  if (!http.ok()) {
    return absl::Status(http.status().code(),
                        absl::StrCat("listener.tcp: ", http.status().message()));
  }
  http_ = *std::move(http);
  if (leadership_ != nullptr) {
    leadership_->SetAdvertisement(
        {ApiAddr(), cluster_advertised_.empty() ? config_.cluster_addr : cluster_advertised_});
  }
  PrintBanner();
  Log(LogLevel::kInfo, absl::StrCat("listening on ", http_->address()));
  return absl::OkStatus();
}

absl::Status Server::StartClusterPort() {
  if (cluster_server_ != nullptr) return absl::OkStatus();
  const absl::Time now = posix_.clock().WallNow();
  absl::StatusOr<ha::ClusterCa> ca = ha::EnsureClusterCa(node_->barrier(), now);
  if (!ca.ok()) return ca.status();
  absl::StatusOr<ha::ClusterTls> tls = ha::IssueClusterTls(*ca, now);
  if (!tls.ok()) return tls.status();
  std::string bind = config_.listener.cluster_address;
  if (bind.empty()) {
    absl::StatusOr<std::string> from_addr = cluster::ClusterHostPort(config_.cluster_addr);
    if (!from_addr.ok()) return from_addr.status();
    bind = *from_addr;
  }
  api::Api* api = api_.get();
  etcd::EtcdStorage* storage = etcd_storage_;
  absl::StatusOr<std::unique_ptr<cluster::ForwardingServer>> server =
      cluster::ForwardingServer::Start(
          bind, *tls, ClusterLimits(),
          [api, storage](http::Request request, http::Responder respond) {
            api->Handle(std::move(request),
                        [storage, respond = std::move(respond)](http::Response r) mutable {
                          // Every write this answer depends on is at or below it.
                          r.headers.emplace_back(cluster::kStoreRevisionHeader,
                                                 absl::StrCat(storage->last_write_revision()));
                          std::move(respond)(std::move(r));
                        });
          });
  if (!server.ok()) return server.status();
  cluster_server_ = *std::move(server);
  if (config_.cluster_addr.empty()) {
    cluster_advertised_ = absl::StrCat("https://", cluster_server_->address());
  }
  leadership_->SetAdvertisement(
      {ApiAddr(), cluster_advertised_.empty() ? config_.cluster_addr : cluster_advertised_});
  Log(LogLevel::kInfo, absl::StrCat("cluster port listening on ", cluster_server_->address()));
  return absl::OkStatus();
}

void Server::ForwardToActive(const std::string& cluster_addr, const http::Request& request,
                             api::ApiOptions::ForwardDone done) {
  if (cluster_client_ == nullptr) {
    absl::StatusOr<std::optional<ha::ClusterCa>> ca = ha::LoadClusterCa(node_->barrier());
    if (!ca.ok()) return std::move(done)(ha::NotSent(ca.status()));
    if (!ca->has_value()) {
      return std::move(done)(ha::NotSent(absl::UnavailableError("no cluster CA in storage yet")));
    }
    absl::StatusOr<ha::ClusterTls> tls = ha::IssueClusterTls(**ca, posix_.clock().WallNow());
    if (!tls.ok()) return std::move(done)(ha::NotSent(tls.status()));
    cluster_client_ = std::make_unique<cluster::ForwardingClient>(*std::move(tls), ClusterLimits());
  }
  etcd::EtcdStorage* storage = etcd_storage_;
  cluster_client_->Forward(
      cluster_addr, request,
      [storage, done = std::move(done)](absl::StatusOr<http::Response> answer) mutable {
        if (answer.ok()) {
          auto& headers = answer->headers;
          for (auto it = headers.begin(); it != headers.end();) {
            if (!absl::EqualsIgnoreCase(it->first, cluster::kStoreRevisionHeader)) {
              ++it;
              continue;
            }
            int64_t revision = 0;
            if (absl::SimpleAtoi(it->second, &revision)) storage->AwaitRevision(revision);
            it = headers.erase(it);
          }
        }
        std::move(done)(std::move(answer));
      });
}

// Vault's dev mode: one share, unsealed, kv at secret/ (version 1: bulwark's kv has no v2).
absl::Status Server::SetUpDev() {
  absl::StatusOr<node::InitResult> init =
      node_->InitializeWithRootToken(1, 1, flags_.dev_root_token_id);
  if (!init.ok()) return init.status();
  dev_unseal_key_ = absl::Base64Escape(init->shares[0].view());
  dev_root_token_ = init->root_token;
  std::optional<absl::StatusOr<SealStatus>> unsealed;
  node_->Unseal(init->shares[0].view(), [&](absl::StatusOr<SealStatus> s) { unsealed = s; });
  if (!posix_.loop().RunUntil([&] { return unsealed.has_value(); }, kStartStepLimit)) {
    return absl::DeadlineExceededError("dev mode: the unseal did not finish");
  }
  if (!unsealed->ok()) return unsealed->status();
  mount::EnableRequest kv;
  kv.path = "secret";
  kv.plugin_name = kBuiltinKv;
  kv.description = "key/value secret storage";
  std::optional<absl::StatusOr<mount::MountEntry>> mounted;
  node_->EnableMount(kv, [&](absl::StatusOr<mount::MountEntry> e) { mounted = std::move(e); });
  if (!posix_.loop().RunUntil([&] { return mounted.has_value(); }, kStartStepLimit)) {
    return absl::DeadlineExceededError("dev mode: mounting kv at secret/ did not finish");
  }
  if (!mounted->ok()) return mounted->status();
  if (!config_.plugin_directory.empty()) LoadDevPlugins();
  return absl::OkStatus();
}

// Vault's dev mode registers every file of -dev-plugin-dir in the catalog under its file name
// (with the SHA-256 it computes) and stops at the first that fails. bulwark registers every
// executable file as a secrets engine, mounts each at its name, so that an author's plugin is
// usable at once, and reports a file that fails instead of refusing to start.
void Server::LoadDevPlugins() {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(config_.plugin_directory, ec)) {
    names.push_back(entry.path().filename().string());
  }
  if (ec) {
    dev_plugins_.failed.push_back(absl::StrCat("(the directory ", config_.plugin_directory,
                                               "): cannot list it: ", ec.message()));
    return;
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const std::string path = absl::StrCat(config_.plugin_directory, "/", name);
    std::error_code type_error;
    if (!fs::is_regular_file(path, type_error) || access(path.c_str(), X_OK) != 0) {
      dev_plugins_.skipped.push_back(absl::StrCat(
          name, fs::is_directory(path, type_error) ? ": a directory" : ": not an executable file"));
      continue;
    }
    auto fail = [&](absl::string_view what, const absl::Status& status) {
      dev_plugins_.failed.push_back(absl::StrCat(name, ": ", what, ": ", status.message()));
      Log(LogLevel::kWarn,
          absl::StrCat("dev plugin ", name, " skipped: ", what, ": ", status.message()));
    };
    absl::StatusOr<std::string> sha256 = FileSha256(path);
    if (!sha256.ok()) {
      fail("not registered", sha256.status());
      continue;
    }
    catalog::RegisterRequest r;
    r.type = catalog::PluginType::kSecret;
    r.name = name;
    r.command = name;
    r.sha256 = *sha256;
    if (absl::StatusOr<catalog::CatalogEntryView> registered = node_->RegisterPlugin(r);
        !registered.ok()) {
      fail("not registered", registered.status());
      continue;
    }
    dev_plugins_.registered.push_back(absl::StrCat(name, " (sha256: ", *sha256, ")"));
    Log(LogLevel::kInfo, absl::StrCat("dev plugin ", name, " registered, sha256 ", *sha256));

    mount::EnableRequest mount;
    mount.path = name;
    mount.plugin_name = name;
    mount.description = absl::StrCat("dev plugin ", name);
    // Shared with the callback: a mount still starting after the limit finishes later.
    auto mounted = std::make_shared<std::optional<absl::StatusOr<mount::MountEntry>>>();
    node_->EnableMount(mount,
                       [mounted](absl::StatusOr<mount::MountEntry> e) { *mounted = std::move(e); });
    if (!posix_.loop().RunUntil([&] { return mounted->has_value(); }, kStartStepLimit)) {
      fail("not mounted",
           absl::DeadlineExceededError(absl::StrCat("its plugin did not start within ",
                                                    absl::FormatDuration(kStartStepLimit))));
      continue;
    }
    if (!(*mounted)->ok()) {
      fail("not mounted", (*mounted)->status());
      continue;
    }
    dev_plugins_.mounted.push_back(absl::StrCat(name, "/ (secret plugin ", name, ")"));
    Log(LogLevel::kInfo, absl::StrCat("dev plugin ", name, " mounted at ", name, "/"));
  }
}

std::string Server::ApiAddr() const {
  if (!config_.api_addr.empty()) return config_.api_addr;
  if (http_ == nullptr) return "";
  return absl::StrCat(config_.listener.tls_disable ? "http" : "https", "://", http_->address());
}

absl::StatusOr<wrapping::WrapResult> Server::WrapForPlugin(wrapping::WrapRequest request) {
  request.addr = ApiAddr();
  if (request.addr.empty()) {
    // Vault wraps anyway (and warns); the plugin then fails with "no vault api_addr found".
    Log(LogLevel::kWarn,
        "no api_addr yet: the plugin's unwrap token carries no address to unwrap at");
  }
  absl::StatusOr<wrapping::WrapResult> wrapped = node_->WrapResponse(std::move(request));
  if (wrapped.ok()) {
    LogRecord r;
    r.level = LogLevel::kInfo;
    r.time = posix_.clock().WallNow();
    r.source = "server";
    r.message = "wrapped a plugin's TLS certificate and key for its bootstrap";
    r.fields = {{"addr", ApiAddr()},
                {"expire_time",
                 absl::FormatTime(absl::RFC3339_sec, wrapped->expire_time, absl::UTCTimeZone())}};
    log_.Write(r);
  }
  return wrapped;
}

void Server::PrintBanner() const {
  const std::string scheme = config_.listener.tls_disable ? "http" : "https";
  const std::string derived = absl::StrCat(scheme, "://", http_->address());
  const std::string api_addr = config_.api_addr.empty() ? derived : config_.api_addr;
  std::string out = absl::StrCat(
      "==> bulwark server configuration:\n\n", "             Api Address: ", api_addr, "\n",
      "              Listener 1: tcp (addr: \"", http_->address(), "\", max_request_size: \"",
      config_.max_request_bytes, "\", tls: \"",
      config_.listener.tls_disable ? "disabled" : "enabled", "\")\n",
      "               Log Level: ", absl::AsciiStrToLower(LogLevelName(config_.log_level)), "\n",
      "                   Mlock: supported: false, enabled: false\n",
      "                 Storage: ", StorageType(), coordinator_ != nullptr ? " (HA available)" : "",
      "\n", "                 Version: bulwark (Vault API ", kVaultApiVersion, ")\n\n");
  if (flags_.dev) {
    absl::StrAppend(&out,
                    "WARNING! dev mode is enabled! In this mode, bulwark runs entirely in-memory\n"
                    "and starts unsealed with a single unseal key.\n\n"
                    "You may need to set the following environment variables:\n\n"
                    "    $ export VAULT_ADDR='",
                    derived,
                    "'\n\n"
                    "The unseal key and root token are displayed below in case you want to\n"
                    "seal/unseal the server or re-authenticate.\n\n"
                    "Unseal Key: ",
                    dev_unseal_key_, "\nRoot Token: ", dev_root_token_, "\n");
    auto section = [&out](absl::string_view title, const std::vector<std::string>& lines) {
      if (lines.empty()) return;
      absl::StrAppend(&out, "\n", title, "\n");
      for (const std::string& line : lines) absl::StrAppend(&out, "    - ", line, "\n");
    };
    section("The following dev plugins are registered in the catalog:", dev_plugins_.registered);
    section("The following dev plugins are mounted:", dev_plugins_.mounted);
    section("The following dev plugins FAILED to be registered or mounted:", dev_plugins_.failed);
    section("The following files of the dev plugin directory were skipped:", dev_plugins_.skipped);
    absl::StrAppend(&out, "\nDevelopment mode should NOT be used in production installations!\n\n");
  }
  absl::StrAppend(&out, "==> bulwark server started! Log data will stream in below:\n\n");
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

void Server::Run() {
  posix_.loop().Run();
  if (closer_.joinable()) closer_.join();
  Log(LogLevel::kInfo, "shut down");
}

void Server::BeginShutdown() {
  Log(LogLevel::kInfo, "shutdown requested: no new connections, finishing requests in flight");
  http_->StopAccepting();
  api_->BeginShutdown([this] { StopNode(); });
  posix_.loop().PostAfter(kDrainGrace, [this] {
    if (!node_stopping_) Log(LogLevel::kWarn, "requests still in flight after the grace period");
    StopNode();
  });
}

void Server::StopNode() {
  if (node_stopping_) return;
  node_stopping_ = true;
  node_->Shutdown([this] {
    // Give the HA lock up at once, so that another node need not wait for the lease to expire.
    if (leadership_ != nullptr) leadership_->OnSealed();
    Log(LogLevel::kInfo, "every plugin stopped; closing the listener");
    // The transport's Shutdown blocks until its connections are closed, so it runs on its own
    // thread while the loop keeps answering (503) whatever still arrives.
    closer_ = std::thread([this] {
      if (cluster_server_ != nullptr) cluster_server_->Shutdown(kCloseGrace);
      http_->Shutdown(kCloseGrace);
      posix_.loop().Stop();
    });
  });
}

}  // namespace

absl::StatusOr<ServerFlags> ParseServerFlags(const std::vector<std::string>& args) {
  ServerFlags f;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (!absl::ConsumePrefix(&arg, "--")) absl::ConsumePrefix(&arg, "-");
    if (arg.size() == args[i].size() || arg.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", args[i], "\": bulwark server takes only flags"));
    }
    const size_t eq = arg.find('=');
    const std::string name(arg.substr(0, eq));
    std::optional<std::string> value;
    if (eq != absl::string_view::npos) value = std::string(arg.substr(eq + 1));
    if (name == "dev" || name == "h" || name == "help" || name == "dev-disable-plugin-automtls") {
      bool on = true;
      if (value.has_value() && !absl::SimpleAtob(*value, &on)) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid boolean value \"", *value, "\" for -", name));
      }
      (name == "dev"                           ? f.dev
       : name == "dev-disable-plugin-automtls" ? f.dev_disable_plugin_automtls
                                               : f.help) = on;
      continue;
    }
    std::string* target = name == "config"               ? &f.config_path
                          : name == "dev-root-token-id"  ? &f.dev_root_token_id
                          : name == "dev-listen-address" ? &f.dev_listen_address
                          : name == "dev-plugin-dir"     ? &f.dev_plugin_dir
                                                         : nullptr;
    if (target == nullptr && name != "log-level") {
      return absl::InvalidArgumentError(absl::StrCat("flag provided but not defined: -", name));
    }
    if (!value.has_value()) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("flag needs an argument: -", name));
      }
      value = args[++i];
    }
    if (name == "log-level") {
      f.log_level = ParseLogLevel(*value);
      if (!f.log_level.has_value()) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown log level \"", *value, "\" (trace, debug, info, warn, error)"));
      }
    } else {
      *target = *value;
    }
  }
  if (f.help) return f;
  if (f.dev && !f.config_path.empty()) {
    return absl::InvalidArgumentError("-dev and -config cannot be used together");
  }
  if (!f.dev && f.config_path.empty()) {
    return absl::InvalidArgumentError(
        "a configuration file must be given with -config (or use -dev)");
  }
  return f;
}

int ServerMain(const std::vector<std::string>& args) {
  absl::StatusOr<ServerFlags> flags = ParseServerFlags(args);
  if (!flags.ok()) {
    std::fprintf(stderr, "%s\n\n%s", std::string(flags.status().message()).c_str(), kUsage);
    return 1;
  }
  if (flags->help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  // Debian builds abseil without NDEBUG, so every absl::Mutex lock (gRPC takes many per plugin
  // call) also updates a process-wide deadlock graph: ~5% of a plugin call's host instructions
  // (docs/performance.md, "Host-side hand-offs"). A debugging aid, off as in the SDK's plugins.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Plugin calls move messages of tens of KiB: keep freed memory for the next one instead of
  // trimming after each (base/memory/malloc_tuning.h).
  TuneMallocForMessages();
  absl::StatusOr<config::ServerConfig> config = LoadConfig(*flags);
  if (!config.ok()) return Fail(config.status().message());
  // Failpoints for crash tests of real processes (docs/simulation.md): only when
  // BULWARK_FAILPOINTS is set, announced on stderr. The registry lives as long as the process.
  if (const char* fp = std::getenv(faultinject::kEnvironmentVariable); fp != nullptr && *fp) {
    // Never destroyed: a registry must not be destroyed while installed.
    auto* failpoints = new faultinject::Registry(*new PosixRandom());
    if (absl::Status s = faultinject::ConfigureFromEnvironment(*failpoints); !s.ok()) {
      return Fail(s.message());
    }
    faultinject::InstallRegistry(failpoints);
    std::fprintf(stderr, "WARNING: failpoints configured from %s (testing only)\n",
                 faultinject::kEnvironmentVariable);
  }

  // Signals go to one thread that waits for them: blocked here, before any other thread starts,
  // so every thread (gRPC's, the transport's) inherits the mask. Children get a clean mask from
  // the launcher. A closed client connection must not kill the process.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto server = std::make_unique<Server>(*flags, *std::move(config));
  if (absl::Status started = server->Start(); !started.ok()) {
    return Fail(started.message());
  }
  Server* raw = server.get();
  std::thread([stop_signals, raw] {
    int count = 0;
    while (true) {
      int sig = 0;
      if (sigwait(&stop_signals, &sig) != 0) continue;
      if (++count == 1) {
        raw->PostShutdown();
        continue;
      }
      static constexpr char kMessage[] = "second signal: exiting at once\n";
      (void)!write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
      _exit(1);
    }
  }).detach();
  server->Run();
  server.reset();
  return 0;
}

}  // namespace bulwark::server
