// A simulated node running the real core composition root (see node.h).
#include "sim/node.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/crypto/sha256.h"
#include "base/status/check.h"
#include "base/status/status_macros.h"
#include "examples/kv/kv_backend.h"
#include "sdk/dispatcher.h"

namespace bulwark::sim {
namespace {

// Artifacts larger than this are not hashed by the spawn check (the catalog refuses them anyway).
constexpr uint64_t kSpawnHashBytesMax = uint64_t{1} << 30;
constexpr size_t kSpawnHashChunkBytes = 64 * 1024;
// Rounds of follow-up work a stopping node hands its dying plugin clients.
constexpr int kStopDrainRounds = 8;
// Raw requests live under their own prefix, which no core component uses.
constexpr absl::string_view kRawPrefix = "sim-raw/";

// Reads the whole of `file` through ReadAt and hashes it.
absl::StatusOr<std::string> HashOpenFile(ReadableFile& file) {
  crypto::Sha256 hasher;
  std::string buffer(kSpawnHashChunkBytes, '\0');
  uint64_t offset = 0;
  while (offset <= kSpawnHashBytesMax) {
    ASSIGN_OR_RETURN(size_t n, file.ReadAt(offset, absl::MakeSpan(&buffer[0], buffer.size())));
    if (n == 0) break;
    hasher.Update(absl::string_view(buffer.data(), n));
    offset += n;
  }
  return crypto::HexEncode(hasher.Finish());
}

// A plugin that dies at every start before it says anything.
class CrashingProgram final : public SimProgram {
 public:
  void Start(SimProcessContext& context) override {
    context.Write(OutputStream::kStderr, "panic: crashing at start\n");
    context.Exit(2);
  }
};

// The argument "--mangle=<k>" of a kv-badhs process: which way its handshake line is wrong.
int MangleOf(const std::vector<std::string>& argv) {
  for (const std::string& arg : argv) {
    absl::string_view rest = arg;
    int mangle = 0;
    if (absl::ConsumePrefix(&rest, "--mangle=") && absl::SimpleAtoi(rest, &mangle)) {
      return mangle;
    }
  }
  return 0;
}

Response FromStatus(absl::Status status) {
  Response response;
  response.status = std::move(status);
  return response;
}

}  // namespace

// Sends every record of the node's core to the simulator, formatted as a log line.
class Node::HookLogSink final : public LogSink {
 public:
  explicit HookLogSink(Node& node) : node_(node) {}
  void Write(const LogRecord& record) override {
    if (node_.hooks_.log) node_.hooks_.log(node_.id(), FormatLogRecord(record));
  }

 private:
  Node& node_;
};

// The launcher the core sees: before each spawn, hashes the opened executable and tells the
// simulator, which checks it against what the catalog pinned.
class Node::CheckingLauncher final : public ProcessLauncher {
 public:
  explicit CheckingLauncher(Node& node) : node_(node) {}
  absl::StatusOr<std::unique_ptr<Process>> Spawn(const ExecutableFile& executable,
                                                 ProcessOptions options) override {
    // ReadAt is not const on the interface; reading does not change the file.
    ExecutableFile& file = const_cast<ExecutableFile&>(executable);
    absl::StatusOr<std::string> sha = HashOpenFile(file);
    if (sha.ok() && node_.hooks_.spawning) {
      node_.hooks_.spawning(node_.id(), executable.path(), *sha);
    }
    LaunchRecord record{executable.path(), sha.ok() ? *sha : "", options.argv, options.env};
    absl::StatusOr<std::unique_ptr<Process>> process =
        node_.launcher_.Spawn(executable, std::move(options));
    if (process.ok()) node_.launches_[(*process)->pid()] = std::move(record);
    return process;
  }

 private:
  Node& node_;
};

absl::string_view OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kInit:
      return "init";
    case OpKind::kUnseal:
      return "unseal";
    case OpKind::kSeal:
      return "seal";
    case OpKind::kRotate:
      return "rotate";
    case OpKind::kStatus:
      return "status";
    case OpKind::kPut:
      return "put";
    case OpKind::kGet:
      return "get";
    case OpKind::kList:
      return "list";
    case OpKind::kDelete:
      return "delete";
    case OpKind::kRawPut:
      return "raw-put";
    case OpKind::kRawGet:
      return "raw-get";
    case OpKind::kRawList:
      return "raw-list";
    case OpKind::kRawDelete:
      return "raw-delete";
    case OpKind::kRegister:
      return "register";
    case OpKind::kUnregister:
      return "unregister";
    case OpKind::kCatalogGet:
      return "catalog-get";
    case OpKind::kEnableMount:
      return "enable-mount";
    case OpKind::kDisableMount:
      return "disable-mount";
    case OpKind::kReload:
      return "reload";
    case OpKind::kLogical:
      return "logical";
    case OpKind::kRevokeLease:
      return "revoke-lease";
  }
  return "?";
}

std::string MangleHandshakeLine(const std::string& line, int mangle) {
  // CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT[|MUX]
  std::vector<std::string> f = absl::StrSplit(line, '|');
  if (f.size() < 6) return line;
  switch (((mangle % kHandshakeMangles) + kHandshakeMangles) % kHandshakeMangles) {
    case 0:
      f[0] = "2";  // A core protocol version other than 1.
      break;
    case 1:
      f[1] = "99";  // An app protocol version the host did not offer.
      break;
    case 2:
      f[1] = absl::StrCat("+", f[1]);  // Not plain decimal.
      break;
    case 3:
      f[4] = "netrpc";
      break;
    case 4:
      f[4] += " ";  // Stray whitespace.
      break;
    case 5:
      f[2] = "udp";  // An unknown network.
      break;
    case 6:
      f.resize(4);  // No PROTOCOL field (net/rpc).
      break;
    case 7:
      f.push_back("extra");  // Too many fields.
      if (f.size() == 7) f.push_back("extra");
      break;
    case 8:
      f.resize(7);
      f[6] = "yes";  // Not a Go boolean.
      break;
    case 9:
      // CERT: padded base64, or (without AutoMTLS) a long field that is not base64 at all.
      f[5] = f[5].size() > 50 ? f[5] + "==" : std::string(64, '!');
      break;
    case 10:
      f[3] += "\t";  // A control character.
      break;
    default:
      return "plugin starting";  // Text before (instead of) the handshake line.
  }
  return absl::StrJoin(f, "|");
}

absl::Status NodeComponent::OnStart(Node&) { return absl::OkStatus(); }
void NodeComponent::OnUnsealed(Node&) {}
void NodeComponent::OnSealing(Node&) {}
void NodeComponent::OnStop(Node&) {}
std::optional<Response> NodeComponent::Handle(Node&, const Request&) { return std::nullopt; }
bool NodeComponent::HandleLater(Node&, const Request&, absl::AnyInvocable<void(Response)>&) {
  return false;
}
bool NodeComponent::HandlesFault(FaultKind) const { return false; }
absl::Status NodeComponent::ApplyFault(Node&, const FaultEvent& event) {
  return absl::UnimplementedError(
      absl::StrCat("component ", name(), " does not inject ", FaultKindName(event.kind)));
}

Node::Node(NodeOptions options, SimEventLoop& loop, SimClock& clock, NodeHooks hooks)
    : options_(std::move(options)),
      hooks_(std::move(hooks)),
      root_random_(options_.seed),
      core_random_(root_random_.Derive("core")),
      process_random_(root_random_.Derive("process")),
      network_random_(root_random_.Derive("plugin-network")),
      disk_random_(root_random_.Derive("disk").seed()),
      clock_(clock),
      executor_(
          loop,
          [this] {
            if (hooks_.before_task) hooks_.before_task(options_.id);
          },
          [this] {
            if (hooks_.after_task) hooks_.after_task(options_.id);
          }),
      disk_(disk_random_),
      fs_(disk_,
          [this](CrashMode mode) {
            if (hooks_.power_lost) hooks_.power_lost(options_.id, mode);
          }),
      launcher_(executor_, clock_, process_random_),
      checking_launcher_(std::make_unique<CheckingLauncher>(*this)),
      network_(executor_, network_random_, disk_),
      log_(std::make_unique<HookLogSink>(*this)),
      env_{clock_, executor_, core_random_, fs_, *checking_launcher_, options_.failpoints} {
  SimPluginSpec multiplexed;
  multiplexed.factory =
      options_.plugin ? options_.plugin->factory : examples::kv::KvBackendFactory();
  multiplexed.multiplexing = true;
  SimPluginSpec solo = multiplexed;
  solo.multiplexing = false;
  network_.RegisterPlugin(launcher_, std::string(kPluginMultiplexed), multiplexed);
  network_.RegisterPlugin(launcher_, std::string(kPluginSolo), solo);
  network_.RegisterPlugin(launcher_, std::string(kSwappedPlugin), multiplexed);
  SimPluginSpec bad_handshake = multiplexed;
  bad_handshake.handshake_filter = [](const std::string& line,
                                      const std::vector<std::string>& argv) {
    return MangleHandshakeLine(line, MangleOf(argv));
  };
  network_.RegisterPlugin(launcher_, std::string(kBadHandshakePlugin), bad_handshake);
  launcher_.RegisterProgram(std::string(kCrashingPlugin),
                            [] { return std::make_unique<CrashingProgram>(); });
  fs_.Kill();  // Down until Start.
}

Node::~Node() {
  // Components and core objects may reference each other: stop in order.
  Stop();
}

const LaunchRecord* Node::launched(int64_t pid) const {
  auto it = launches_.find(pid);
  return it == launches_.end() ? nullptr : &it->second;
}

void Node::Trace(absl::string_view kind, absl::string_view payload) {
  if (hooks_.trace) hooks_.trace(options_.id, kind, payload);
}

LogSink& Node::log_sink() { return *log_; }

absl::Status Node::Start() {
  CHECK(!running()) << "node " << options_.id << " started twice";
  fs_.Revive();
  if (options_.physical == nullptr) {
    absl::StatusOr<std::unique_ptr<FileStorage>> storage =
        FileStorage::Open(fs_, options_.data_dir, env_.failpoints);
    if (!storage.ok()) {
      fs_.Kill();
      return Annotate(storage.status(), "open file storage");
    }
    storage_ = *std::move(storage);
  }
  Storage& physical = options_.physical != nullptr ? *options_.physical : *storage_;
  metrics_ = std::make_unique<metrics::Registry>();
  lifecycle::ExternalRunnerOptions runner_options;
  runner_options.runtime_dir = options_.run_dir;
  runner_options.log_sink = log_.get();
  external_ = std::make_unique<lifecycle::ExternalRunnerFactory>(env_, network_, runner_options);
  lifecycle::BuiltinBackend builtin;
  builtin.factory = sdk::InProcessBackend(options_.plugin ? options_.plugin->factory
                                                          : examples::kv::KvBackendFactory());
  builtin_ = std::make_unique<lifecycle::BuiltinRunnerFactory>(
      executor_,
      std::map<std::string, lifecycle::BuiltinBackend>{{std::string(kBuiltinPlugin), builtin}});
  runners_ = std::make_unique<lifecycle::SplitRunnerFactory>(*builtin_, *external_);
  node::NodeOptions core_options;
  core_options.catalog.plugin_directory = options_.plugin_dir;
  core_options.catalog.check_permissions = true;
  core_options.catalog.expected_uid = 0;
  core_options.catalog.builtins = {catalog::BuiltinPlugin{
      catalog::PluginType::kSecret, std::string(kBuiltinPlugin), std::string(kBuiltinVersion)}};
  if (options_.signatures_required) {
    core_options.catalog.signature_policy = catalog::SignaturePolicy::kRequired;
    core_options.catalog.allowed_signers_file = options_.allowed_signers_file;
  }
  core_options.lifecycle = options_.lifecycle;
  core_options.role = options_.role;
  absl::StatusOr<std::unique_ptr<node::Node>> core =
      node::Node::Open(env_, physical, *runners_, *metrics_, *log_, core_options);
  if (!core.ok()) {
    Stop();
    return Annotate(core.status(), "open node");
  }
  core_ = *std::move(core);
  for (const std::unique_ptr<NodeComponent>& component : components_) {
    absl::Status started = component->OnStart(*this);
    if (!started.ok()) {
      Stop();
      return Annotate(started, absl::StrCat("start component ", component->name()));
    }
  }
  Trace("node-start", absl::StrCat("initialized=", core_->seal_status().initialized));
  return absl::OkStatus();
}

void Node::Stop() {
  const bool was_running = running();
  if (was_running) {
    for (auto it = components_.rbegin(); it != components_.rend(); ++it) (*it)->OnStop(*this);
  }
  // The process is gone at once: no graceful plugin shutdown, no more disk writes; its plugins
  // die with it (PR_SET_PDEATHSIG).
  fs_.Kill();
  core_.reset();
  launcher_.KillAll();
  // What the operating system would do for free: the dead process's memory goes away. A plugin
  // start in flight owns itself until it reports, so the exit notifications of the killed
  // plugins are handed over (with the disk dead and the clients' connections already broken,
  // nothing of it is observable) before the rest of the pending work is dropped.
  executor_.DrainPosted(kStopDrainRounds);
  runners_.reset();
  builtin_.reset();
  external_.reset();
  metrics_.reset();
  storage_.reset();
  executor_.Kill();
  if (was_running) Trace("node-stop", "");
}

void Node::AddComponent(std::unique_ptr<NodeComponent> component) {
  CHECK(components_.size() < kNodeComponentsMax) << "too many node components";
  components_.push_back(std::move(component));
}

std::vector<NodeComponent*> Node::ComponentsHandling(FaultKind kind) const {
  std::vector<NodeComponent*> out;
  for (const std::unique_ptr<NodeComponent>& component : components_) {
    if (component->HandlesFault(kind)) out.push_back(component.get());
  }
  return out;
}

void Node::UnsealNext(std::vector<std::string> shares, size_t next, Done done) {
  if (next >= shares.size()) {
    const SealStatus status = core_->seal_status();
    Response response;
    response.sealed = status.sealed;
    response.status = absl::FailedPreconditionError(
        absl::StrCat("unseal: ", status.progress, " of ", status.threshold, " shares given"));
    done(std::move(response));
    return;
  }
  const std::string share = shares[next];
  core_->Unseal(share, [this, shares = std::move(shares), next,
                        done = std::move(done)](absl::StatusOr<SealStatus> status) mutable {
    if (!status.ok()) {
      Response response = FromStatus(status.status());
      response.sealed = core_ == nullptr || core_->sealed();
      done(std::move(response));
      return;
    }
    if (!status->sealed) {
      for (const std::unique_ptr<NodeComponent>& component : components_) {
        component->OnUnsealed(*this);
      }
      Response response;
      response.sealed = false;
      done(std::move(response));
      return;
    }
    UnsealNext(std::move(shares), next + 1, std::move(done));
  });
}

void Node::ExecuteData(const Request& request, Done done) {
  if (options_.plugin) return ExecuteProbe(request, std::move(done));
  std::string operation;
  std::string data;
  switch (request.kind) {
    case OpKind::kPut:
      operation = "update";
      data = nlohmann::json{{"v", request.value}}.dump();
      break;
    case OpKind::kGet:
      operation = "read";
      break;
    case OpKind::kList:
      operation = "list";
      break;
    default:
      operation = "delete";
      break;
  }
  const OpKind kind = request.kind;
  const std::string folder = request.key;
  core_->Handle(
      request.key, operation, std::move(data),
      [kind, folder, done = std::move(done)](absl::StatusOr<lifecycle::Reply> reply) mutable {
        Response response;
        if (!reply.ok()) {
          response.status = reply.status();
          done(std::move(response));
          return;
        }
        if ((kind == OpKind::kGet || kind == OpKind::kList) && reply->has_value() &&
            !(*reply)->data().empty()) {
          const nlohmann::json parsed =
              nlohmann::json::parse((*reply)->data(), nullptr, /*allow_exceptions=*/false);
          if (kind == OpKind::kGet && parsed.is_object() && parsed.contains("v") &&
              parsed["v"].is_string()) {
            response.value = parsed["v"].get<std::string>();
          } else if (kind == OpKind::kList && parsed.is_object() && parsed.contains("keys") &&
                     parsed["keys"].is_array()) {
            for (const nlohmann::json& key : parsed["keys"]) {
              if (key.is_string()) response.keys.push_back(folder + key.get<std::string>());
            }
          } else {
            response.status = absl::InternalError(absl::StrCat(
                "the plugin's ", OpKindName(kind), " reply does not have the expected shape"));
          }
        }
        done(std::move(response));
      });
}

void Node::ExecuteProbe(const Request& request, Done done) {
  std::string operation = "read";
  if (request.kind == OpKind::kPut) operation = request.operation;
  if (request.kind == OpKind::kDelete) operation = "delete";
  if (request.kind == OpKind::kList) operation = "list";
  core_->Handle(request.key, operation, request.kind == OpKind::kPut ? request.data_json : "",
                [done = std::move(done)](absl::StatusOr<lifecycle::Reply> reply) mutable {
                  Response response;
                  if (!reply.ok()) {
                    response.status = reply.status();
                  } else if (reply->has_value() && !(*reply)->data().empty()) {
                    response.value = (*reply)->data();
                  }
                  done(std::move(response));
                });
}

void Node::ExecuteRaw(const Request& request, Done done) {
  // Straight to the barrier, like Vault's sys/raw: the barrier's own seal check is the only one.
  Barrier& barrier = core_->barrier();
  const std::string key = absl::StrCat(kRawPrefix, request.key);
  Response response;
  switch (request.kind) {
    case OpKind::kRawPut:
      response.status = barrier.Put(key, request.value);
      break;
    case OpKind::kRawGet: {
      absl::StatusOr<std::optional<std::string>> value = barrier.Get(key);
      if (value.ok()) {
        response.value = *std::move(value);
      } else {
        response.status = value.status();
      }
      break;
    }
    case OpKind::kRawList: {
      absl::StatusOr<std::vector<std::string>> keys = barrier.List(key);
      if (keys.ok()) {
        for (std::string& k : *keys) response.keys.push_back(k.substr(kRawPrefix.size()));
      } else {
        response.status = keys.status();
      }
      break;
    }
    default:
      response.status = barrier.Delete(key);
      break;
  }
  done(std::move(response));
}

void Node::Execute(const Request& request, Done done) {
  CHECK(running()) << "Execute on stopped node " << options_.id;
  for (const std::unique_ptr<NodeComponent>& component : components_) {
    if (std::optional<Response> handled = component->Handle(*this, request)) {
      done(*std::move(handled));
      return;
    }
    if (component->HandleLater(*this, request, done)) return;
  }
  Serve(request, std::move(done));
}

void Node::Serve(const Request& request, Done done) {
  CHECK(running()) << "Serve on stopped node " << options_.id;
  switch (request.kind) {
    case OpKind::kInit: {
      absl::StatusOr<std::vector<crypto::SecureBuffer>> shares =
          core_->Initialize(request.shares, request.threshold);
      Response response = FromStatus(shares.status());
      if (shares.ok()) {
        for (const crypto::SecureBuffer& share : *shares) {
          response.shares.emplace_back(share.view());
        }
      }
      done(std::move(response));
      return;
    }
    case OpKind::kUnseal:
      UnsealNext(request.unseal_shares, 0, std::move(done));
      return;
    case OpKind::kSeal:
      for (auto it = components_.rbegin(); it != components_.rend(); ++it) {
        (*it)->OnSealing(*this);
      }
      core_->Seal([done = std::move(done)]() mutable {
        Response response;
        response.sealed = true;
        done(std::move(response));
      });
      return;
    case OpKind::kRotate:
      // sys/rotate as the server runs it (api::Api): the keyring read again, then a new term.
      done(FromStatus(core_->RotateBarrierKey().status()));
      return;
    case OpKind::kStatus: {
      Response response;
      const SealStatus status = core_->seal_status();
      response.sealed = core_->sealed();
      response.initialized = status.initialized;
      done(std::move(response));
      return;
    }
    case OpKind::kPut:
    case OpKind::kGet:
    case OpKind::kList:
    case OpKind::kDelete:
      ExecuteData(request, std::move(done));
      return;
    case OpKind::kRawPut:
    case OpKind::kRawGet:
    case OpKind::kRawList:
    case OpKind::kRawDelete:
      ExecuteRaw(request, std::move(done));
      return;
    case OpKind::kRegister: {
      absl::StatusOr<catalog::CatalogEntryView> view = core_->RegisterPlugin(request.registration);
      Response response = FromStatus(view.status());
      if (view.ok()) response.view = *std::move(view);
      done(std::move(response));
      return;
    }
    case OpKind::kUnregister:
      done(FromStatus(core_->DeregisterPlugin(request.type, request.name, request.version)));
      return;
    case OpKind::kCatalogGet: {
      // The catalog stays in memory across a seal; like Vault's sys/plugins/catalog, the read
      // is refused while sealed.
      if (core_->sealed() || core_->catalog() == nullptr) {
        done(FromStatus(absl::FailedPreconditionError("Vault is sealed")));
        return;
      }
      absl::StatusOr<catalog::CatalogEntryView> view =
          core_->catalog()->Get(request.type, request.name, request.version);
      Response response = FromStatus(view.status());
      if (view.ok()) response.view = *std::move(view);
      done(std::move(response));
      return;
    }
    case OpKind::kEnableMount: {
      mount::EnableRequest enable;
      enable.path = request.mount_path;
      enable.type = request.type;
      enable.plugin_name = request.name;
      enable.plugin_version = request.version;
      core_->EnableMount(enable,
                         [done = std::move(done)](absl::StatusOr<mount::MountEntry> entry) mutable {
                           done(FromStatus(entry.status()));
                         });
      return;
    }
    case OpKind::kDisableMount:
      core_->DisableMount(request.mount_path, [done = std::move(done)](absl::Status s) mutable {
        done(FromStatus(std::move(s)));
      });
      return;
    case OpKind::kReload:
      core_->ReloadPlugins(request.name, {}, [done = std::move(done)](absl::Status s) mutable {
        done(FromStatus(std::move(s)));
      });
      return;
    case OpKind::kLogical:
      core_->Handle(request.key, request.operation, request.data_json,
                    [done = std::move(done)](absl::StatusOr<lifecycle::Reply> reply) mutable {
                      Response response = FromStatus(reply.status());
                      if (reply.ok() && reply->has_value()) {
                        response.value = (*reply)->data();
                        if ((*reply)->has_secret()) {
                          response.lease_id = (*reply)->secret().lease_id();
                          response.lease_ttl =
                              absl::Nanoseconds((*reply)->secret().lease_options().ttl());
                        }
                      }
                      done(std::move(response));
                    });
      return;
    case OpKind::kRevokeLease:
      core_->RevokeLease(request.key, [done = std::move(done)](absl::Status s) mutable {
        done(FromStatus(std::move(s)));
      });
      return;
  }
}

}  // namespace bulwark::sim
