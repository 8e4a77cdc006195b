// BackendDispatcher: method routing, the instance table, and the translation between pb.Backend
// messages and the author-facing Backend API.
#include "sdk/dispatcher.h"

#include <exception>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status/check.h"
#include "base/status/status_macros.h"
#include "faultinject/failpoint.h"
#include "proto/vault/backend.pb.h"
#include "proto/vault/multiplexing.pb.h"
#include "proto/vault/version.pb.h"
#include "protocol/handshake.h"
#include "sdk/dispatch_wire.h"

namespace bulwark::sdk {

struct BackendDispatcher::Instance {
  std::string multiplex_id;
  std::shared_ptr<StorageClient> storage;
  std::unique_ptr<Backend> backend;
};

namespace {

class DiscardLogSink final : public LogSink {
 public:
  void Write(const LogRecord&) override {}
};

template <typename Message>
absl::StatusOr<Message> ParseRequest(absl::string_view bytes, absl::string_view method) {
  absl::StatusOr<Message> message = internal::ParseRequest<Message>(bytes, method);
  if (!message.ok()) {
    // A planted bug for the conformance fixtures: "crash" here aborts on a malformed message.
    RETURN_IF_ERROR(BW_PLANTED_BUG_STATUS("bug.sdk.dispatcher.crash_on_malformed_data"));
  }
  return message;
}

using internal::SerializeReply;

bool IsSentinel(ErrorType type) {
  return static_cast<uint32_t>(type) >= static_cast<uint32_t>(ErrorType::kUnsupportedOperation);
}

// Runs `fn`, a call into author code, turning an escaping exception into an internal error.
// The exception's text is neither returned nor logged: it may quote request data.
template <typename Fn>
auto Guarded(LogSink* log, absl::string_view what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception&) {
  } catch (...) {
  }
  Log(log, LogLevel::kError, "backend threw an exception", {{"call", std::string(what)}});
  return InternalError(absl::StrCat("internal error: the backend's ", what, " failed"));
}

}  // namespace

BackendDispatcher::BackendDispatcher(BackendFactory factory, protocol::HostDialer& dialer,
                                     DispatcherOptions options)
    : factory_(std::move(factory)),
      dialer_(dialer),
      options_(std::move(options)),
      log_(options_.log != nullptr ? options_.log : new DiscardLogSink()),
      discard_log_(options_.log != nullptr ? nullptr : log_) {
  CHECK(factory_ != nullptr) << "BackendDispatcher needs a backend factory";
  CHECK(options_.max_instances >= 1 && options_.max_instances <= kInstancesMax)
      << "max_instances must be 1.." << kInstancesMax << ", got " << options_.max_instances;
}

BackendDispatcher::~BackendDispatcher() = default;

size_t BackendDispatcher::instance_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return instances_.size();
}

void BackendDispatcher::CleanupAll() {
  std::map<std::string, std::shared_ptr<Instance>> instances;
  {
    std::lock_guard<std::mutex> lock(mu_);
    instances.swap(instances_);
  }
  for (auto& [key, instance] : instances) {
    Guarded(log_, "Cleanup", [&]() -> absl::Status {
      instance->backend->Cleanup();
      return absl::OkStatus();
    }).IgnoreError();
  }
}

absl::StatusOr<std::string> BackendDispatcher::InstanceKey(absl::string_view multiplex_id) const {
  if (!options_.multiplexing) return std::string();
  // The failpoint is a planted bug: calls without an id then reach the instance "".
  if (multiplex_id.empty() && !BW_PLANTED_BUG("bug.sdk.dispatcher.accept_missing_multiplex_id")) {
    return absl::InvalidArgumentError(
        "missing plugin multiplexing metadata: this plugin multiplexes, so every call needs a "
        "\"multiplex_id\" metadata entry");
  }
  if (multiplex_id.size() > kMultiplexIdBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("multiplex id ", protocol::QuoteForError(multiplex_id), " is longer than ",
                     kMultiplexIdBytesMax, " bytes"));
  }
  return std::string(multiplex_id);
}

absl::StatusOr<std::shared_ptr<BackendDispatcher::Instance>> BackendDispatcher::FindInstance(
    absl::string_view multiplex_id) const {
  ASSIGN_OR_RETURN(std::string key, InstanceKey(multiplex_id));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = instances_.find(key);
  // Only reachable through the planted bug bug.sdk.dispatcher.accept_missing_multiplex_id
  // (InstanceKey refuses an empty id otherwise): the call is served by some other instance.
  if (it == instances_.end() && key.empty() && options_.multiplexing && !instances_.empty()) {
    it = instances_.begin();
  }
  if (it == instances_.end()) {
    if (!options_.multiplexing) {
      return absl::FailedPreconditionError(
          "no backend instance: the host has not called Setup yet, or has cleaned it up");
    }
    return absl::FailedPreconditionError(
        absl::StrCat("no backend instance for multiplex id ", protocol::QuoteForError(key),
                     ": the host has not called Setup for it, or has cleaned it up"));
  }
  return it->second;
}

absl::Status BackendDispatcher::CheckNotMetadataMode() const {
  if (options_.metadata_mode) return absl::FailedPreconditionError(kMetadataModeError);
  return absl::OkStatus();
}

absl::StatusOr<std::string> BackendDispatcher::Dispatch(absl::string_view method,
                                                        absl::string_view request,
                                                        absl::string_view multiplex_id) {
  if (method == kHandleRequestMethod) return HandleRequest(request, multiplex_id);
  if (method == kHandleExistenceCheckMethod) return HandleExistenceCheck(request, multiplex_id);
  if (method == kSetupMethod) return Setup(request, multiplex_id);
  if (method == kInitializeMethod) return Initialize(multiplex_id);
  if (method == kCleanupMethod) return Cleanup(multiplex_id);
  if (method == kInvalidateKeyMethod) return InvalidateKey(request, multiplex_id);
  if (method == kSpecialPathsMethod) return SpecialPathsReply(multiplex_id);
  if (method == kTypeMethod) return Type(multiplex_id);
  if (method == kMultiplexingSupportMethod) {
    pluginutil::multiplexing::MultiplexingSupportResponse reply;
    reply.set_supported(options_.multiplexing);
    return SerializeReply(reply);
  }
  if (method == kVersionMethod) {
    logical::VersionReply reply;
    reply.set_plugin_version(options_.plugin_version);
    return SerializeReply(reply);
  }
  return absl::UnimplementedError(absl::StrCat(
      "unknown method ", protocol::QuoteForError(method), " (this plugin serves ",
      "pb.Backend, pluginutil.multiplexing.PluginMultiplexing and ", "logical.PluginVersion)"));
}

absl::StatusOr<std::string> BackendDispatcher::Setup(absl::string_view request,
                                                     absl::string_view multiplex_id) {
  ASSIGN_OR_RETURN(pb::SetupArgs args, ParseRequest<pb::SetupArgs>(request, kSetupMethod));
  ASSIGN_OR_RETURN(std::string key, InstanceKey(multiplex_id));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (instances_.count(key) != 0 || setting_up_.count(key) != 0) {
      return absl::AlreadyExistsError(
          options_.multiplexing
              ? absl::StrCat("multiplex id ", protocol::QuoteForError(key),
                             " already has a backend instance; Cleanup it first")
              : std::string("the backend instance is already set up; Cleanup it first"));
    }
    if (instances_.size() + setting_up_.size() >= options_.max_instances) {
      return absl::ResourceExhaustedError(
          absl::StrCat("too many backend instances: this plugin serves at most ",
                       options_.max_instances, "; Cleanup unused mounts first"));
    }
    setting_up_.insert(key);
  }
  // Runs on every failing path out, so a failed Setup never keeps the id reserved.
  struct Unreserve {
    BackendDispatcher* self;
    const std::string& key;
    bool active = true;
    ~Unreserve() {
      if (!active) return;
      std::lock_guard<std::mutex> lock(self->mu_);
      self->setting_up_.erase(key);
    }
  } unreserve{this, key};

  absl::StatusOr<std::shared_ptr<protocol::HostConnection>> connection =
      dialer_.Dial(args.broker_id());
  if (!connection.ok()) {
    Log(log_, LogLevel::kError, "setup: cannot reach the host's services",
        {{"broker_id", absl::StrCat(args.broker_id())},
         {"multiplex_id", key},
         {"error", std::string(connection.status().message())}});
    return Annotate(connection.status(),
                    absl::StrCat("setup: dial host services (broker id ", args.broker_id(), ")"));
  }
  auto instance = std::make_shared<Instance>();
  instance->multiplex_id = key;
  instance->storage = std::make_shared<StorageClient>(*std::move(connection));

  BackendConfig config;
  config.config.insert(args.config().begin(), args.config().end());
  config.backend_uuid = args.backenduuid();
  config.multiplex_id = key;
  config.storage = instance->storage;
  config.log = log_;
  absl::StatusOr<std::unique_ptr<Backend>> backend =
      Guarded(log_, "factory",
              [&]() -> absl::StatusOr<std::unique_ptr<Backend>> { return factory_(config); });
  pb::SetupReply reply;
  if (!backend.ok()) {
    reply.set_err(std::string(backend.status().message()));
  } else if (*backend == nullptr) {
    reply.set_err("the backend factory returned no backend");
  }
  if (!reply.err().empty()) {
    Log(log_, LogLevel::kError, "setup: the backend factory failed", {{"multiplex_id", key}});
    return SerializeReply(reply);
  }
  instance->backend = *std::move(backend);
  size_t count = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Reserved -> live in one step, so the instance limit never counts it twice.
    setting_up_.erase(key);
    unreserve.active = false;
    instances_.emplace(key, std::move(instance));
    count = instances_.size();
  }
  Log(log_, LogLevel::kInfo, "backend instance set up",
      {{"multiplex_id", key},
       {"broker_id", absl::StrCat(args.broker_id())},
       {"instances", absl::StrCat(count)}});
  return SerializeReply(reply);
}

absl::StatusOr<std::string> BackendDispatcher::Cleanup(absl::string_view multiplex_id) {
  ASSIGN_OR_RETURN(std::shared_ptr<Instance> instance, FindInstance(multiplex_id));
  size_t count = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = instances_.find(instance->multiplex_id);
    // A concurrent Cleanup of the same id got there first: report it as the missing instance.
    if (it == instances_.end() || it->second != instance) {
      return absl::FailedPreconditionError(
          absl::StrCat("backend instance ", protocol::QuoteForError(instance->multiplex_id),
                       " is already cleaned up"));
    }
    instances_.erase(it);
    count = instances_.size();
  }
  Guarded(log_, "Cleanup", [&]() -> absl::Status {
    instance->backend->Cleanup();
    return absl::OkStatus();
  }).IgnoreError();
  Log(log_, LogLevel::kInfo, "backend instance cleaned up",
      {{"multiplex_id", instance->multiplex_id}, {"instances", absl::StrCat(count)}});
  return SerializeReply(pb::Empty());
}

absl::StatusOr<std::string> BackendDispatcher::Initialize(absl::string_view multiplex_id) {
  ASSIGN_OR_RETURN(std::shared_ptr<Instance> instance, FindInstance(multiplex_id));
  RETURN_IF_ERROR(CheckNotMetadataMode());
  const absl::Status status =
      Guarded(log_, "Initialize", [&]() { return instance->backend->Initialize(); });
  pb::InitializeReply reply;
  if (!status.ok()) *reply.mutable_err() = ToProtoError(status);
  return SerializeReply(reply);
}

absl::StatusOr<std::string> BackendDispatcher::HandleRequest(absl::string_view request,
                                                             absl::string_view multiplex_id) {
  ASSIGN_OR_RETURN(std::shared_ptr<Instance> instance, FindInstance(multiplex_id));
  RETURN_IF_ERROR(CheckNotMetadataMode());
  ASSIGN_OR_RETURN(pb::HandleRequestArgs args,
                   ParseRequest<pb::HandleRequestArgs>(request, kHandleRequestMethod));
  absl::StatusOr<Request> parsed = Request::FromProto(std::move(*args.mutable_request()));
  if (!parsed.ok()) {
    // A planted bug for the conformance fixtures: "crash" here aborts on unusable request data.
    RETURN_IF_ERROR(BW_PLANTED_BUG_STATUS("bug.sdk.dispatcher.crash_on_malformed_data"));
    return parsed.status();
  }
  const Request logical_request = *std::move(parsed);
  HandleResult result = Guarded(log_, "HandleRequest", [&]() -> HandleResult {
    return instance->backend->HandleRequest(logical_request);
  });
  // A planted bug: a logical error sent as a gRPC status instead of in the reply.
  if (!result.ok() && BW_PLANTED_BUG("bug.sdk.dispatcher.errors_as_grpc_status")) {
    return result.status();
  }
  pb::HandleRequestReply reply;
  if (result.ok()) {
    if (result->has_value()) *reply.mutable_response() = (*result)->ToProto();
  } else {
    *reply.mutable_err() = ToProtoError(result.status());
    // Vault drops a sentinel's message; an error response carries it to the client.
    if (IsSentinel(static_cast<ErrorType>(reply.err().err_type())) &&
        !reply.err().err_msg().empty()) {
      *reply.mutable_response() = Response::ErrorResponse(reply.err().err_msg()).ToProto();
    }
  }
  return SerializeReply(reply);
}

absl::StatusOr<std::string> BackendDispatcher::HandleExistenceCheck(
    absl::string_view request, absl::string_view multiplex_id) {
  ASSIGN_OR_RETURN(std::shared_ptr<Instance> instance, FindInstance(multiplex_id));
  RETURN_IF_ERROR(CheckNotMetadataMode());
  ASSIGN_OR_RETURN(pb::HandleExistenceCheckArgs args, ParseRequest<pb::HandleExistenceCheckArgs>(
                                                          request, kHandleExistenceCheckMethod));
  ASSIGN_OR_RETURN(Request logical_request, Request::FromProto(std::move(*args.mutable_request())));
  absl::StatusOr<ExistenceCheck> check =
      Guarded(log_, "HandleExistenceCheck", [&]() -> absl::StatusOr<ExistenceCheck> {
        return instance->backend->HandleExistenceCheck(logical_request);
      });
  pb::HandleExistenceCheckReply reply;
  if (check.ok()) {
    reply.set_check_found(check->check_found);
    reply.set_exists(check->exists);
  } else {
    *reply.mutable_err() = ToProtoError(check.status());
  }
  return SerializeReply(reply);
}

absl::StatusOr<std::string> BackendDispatcher::InvalidateKey(absl::string_view request,
                                                             absl::string_view multiplex_id) {
  ASSIGN_OR_RETURN(std::shared_ptr<Instance> instance, FindInstance(multiplex_id));
  RETURN_IF_ERROR(CheckNotMetadataMode());
  ASSIGN_OR_RETURN(pb::InvalidateKeyArgs args,
                   ParseRequest<pb::InvalidateKeyArgs>(request, kInvalidateKeyMethod));
  Guarded(log_, "InvalidateKey", [&]() -> absl::Status {
    instance->backend->InvalidateKey(args.key());
    return absl::OkStatus();
  }).IgnoreError();
  return SerializeReply(pb::Empty());
}

absl::StatusOr<std::string> BackendDispatcher::SpecialPathsReply(absl::string_view multiplex_id) {
  ASSIGN_OR_RETURN(std::shared_ptr<Instance> instance, FindInstance(multiplex_id));
  absl::StatusOr<SpecialPaths> paths =
      Guarded(log_, "special_paths",
              [&]() -> absl::StatusOr<SpecialPaths> { return instance->backend->special_paths(); });
  RETURN_IF_ERROR(paths.status());
  pb::SpecialPathsReply reply;
  pb::Paths& out = *reply.mutable_paths();
  for (const std::string& p : paths->root) out.add_root(p);
  for (const std::string& p : paths->unauthenticated) out.add_unauthenticated(p);
  for (const std::string& p : paths->local_storage) out.add_local_storage(p);
  for (const std::string& p : paths->seal_wrap_storage) out.add_seal_wrap_storage(p);
  for (const std::string& p : paths->write_forwarded_storage) out.add_write_forwarded_storage(p);
  for (const std::string& p : paths->binary) out.add_binary(p);
  for (const std::string& p : paths->limited) out.add_limited(p);
  for (const std::string& p : paths->allow_snapshot_read) out.add_allow_snapshot_read(p);
  return SerializeReply(reply);
}

absl::StatusOr<std::string> BackendDispatcher::Type(absl::string_view multiplex_id) {
  ASSIGN_OR_RETURN(std::shared_ptr<Instance> instance, FindInstance(multiplex_id));
  absl::StatusOr<BackendType> type = Guarded(
      log_, "type", [&]() -> absl::StatusOr<BackendType> { return instance->backend->type(); });
  RETURN_IF_ERROR(type.status());
  pb::TypeReply reply;
  reply.set_type(static_cast<uint32_t>(*type));
  return SerializeReply(reply);
}

DispatcherOptions BuiltinDispatcherOptions() {
  DispatcherOptions options;
  options.multiplexing = false;
  return options;
}

protocol::InProcessPluginFactory InProcessBackend(BackendFactory factory,
                                                  DispatcherOptions options) {
  return [factory = std::move(factory), options](protocol::HostDialer& dialer) {
    return std::make_unique<BackendDispatcher>(factory, dialer, options);
  };
}

}  // namespace bulwark::sdk
