// DatabaseDispatcher: method routing, the instance table, and the translation between
// dbplugin.v5 messages and the author-facing Database API, with Vault's error codes and texts.
#include "sdk/database_dispatcher.h"

#include <google/protobuf/util/json_util.h>

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status/check.h"
#include "base/status/status_macros.h"
#include "proto/vault/database.pb.h"
#include "proto/vault/multiplexing.pb.h"
#include "proto/vault/version.pb.h"
#include "protocol/handshake.h"
#include "protocol/wire_names.h"
#include "sdk/backend.h"
#include "sdk/dispatch_wire.h"

namespace bulwark::sdk {

struct DatabaseDispatcher::Instance {
  std::string key;
  std::mutex mu;  // Serializes calls into `database`.
  std::unique_ptr<Database> database;
  bool closed = false;  // Guarded by mu.
};

namespace {

class DiscardLogSink final : public LogSink {
 public:
  void Write(const LogRecord&) override {}
};

// google.protobuf.Timestamp's valid range (0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z).
constexpr int64_t kTimestampSecondsMin = -62135596800;
constexpr int64_t kTimestampSecondsMax = 253402300799;

using internal::ParseRequest;
using internal::SerializeReply;

// As Go's ptypes.Timestamp: the same range check, a message naming the value.
absl::StatusOr<absl::Time> TimestampToTime(const google::protobuf::Timestamp& ts) {
  const std::string shown = absl::StrCat("seconds:", ts.seconds(), " nanos:", ts.nanos());
  if (ts.seconds() < kTimestampSecondsMin) {
    return absl::InvalidArgumentError(absl::StrCat("timestamp (", shown, ") before 0001-01-01"));
  }
  if (ts.seconds() > kTimestampSecondsMax) {
    return absl::InvalidArgumentError(absl::StrCat("timestamp (", shown, ") after 9999-12-31"));
  }
  if (ts.nanos() < 0 || ts.nanos() >= 1000000000) {
    return absl::InvalidArgumentError(
        absl::StrCat("timestamp (", shown, ") has out-of-range nanos"));
  }
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

// Go's time.Time.IsZero for a converted Timestamp: 0001-01-01T00:00:00Z exactly.
bool IsGoZeroTime(const google::protobuf::Timestamp& ts) {
  return ts.seconds() == kTimestampSecondsMin && ts.nanos() == 0;
}

Statements FromProto(const dbplugin::v5::Statements& statements) {
  return Statements{{statements.commands().begin(), statements.commands().end()}};
}

// Struct -> JSON object through protobuf's JSON mapping, as Vault's structToMap does.
absl::StatusOr<nlohmann::json> StructToJson(const google::protobuf::Struct& config) {
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(config, &text).ok()) {
    return absl::InvalidArgumentError("the config is not representable as JSON");
  }
  if (text.size() > kDatabaseConfigBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the config is ", text.size(), " bytes as JSON, more than ", kDatabaseConfigBytesMax));
  }
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError("the config is not valid JSON");
  if (json.is_null()) json = nlohmann::json::object();
  return json;
}

// JSON object -> Struct, as Vault's mapToStruct. Errors carry the reason for "failed to
// marshal new config to JSON: ...".
absl::StatusOr<google::protobuf::Struct> JsonToStruct(const nlohmann::json& config) {
  google::protobuf::Struct out;
  if (config.is_null()) return out;
  if (!config.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the config must be a JSON object, not ", config.type_name()));
  }
  std::string text;
  try {
    text = config.dump();
  } catch (const std::exception&) {
    return absl::InvalidArgumentError("the config contains a string that is not UTF-8");
  }
  if (!google::protobuf::util::JsonStringToMessage(text, &out).ok()) {
    return absl::InvalidArgumentError("the config cannot be represented as a protobuf Struct");
  }
  return out;
}

// Runs `fn`, a call into author code, turning an escaping exception into an error. The
// exception's text is neither returned nor logged: it may quote a password.
template <typename Fn>
auto Guarded(LogSink* log, absl::string_view what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception&) {
  } catch (...) {
  }
  Log(log, LogLevel::kError, "database threw an exception", {{"call", std::string(what)}});
  return absl::InternalError(absl::StrCat("the database's ", what, " threw an exception"));
}

absl::Status Prefixed(absl::StatusCode code, absl::string_view prefix, const absl::Status& s) {
  return absl::Status(code, absl::StrCat(prefix, s.message()));
}

}  // namespace

DatabaseDispatcher::DatabaseDispatcher(DatabaseFactory factory, DatabaseDispatcherOptions options)
    : factory_(std::move(factory)),
      options_(std::move(options)),
      log_(options_.log != nullptr ? options_.log : new DiscardLogSink()),
      discard_log_(options_.log != nullptr ? nullptr : log_) {
  CHECK(factory_ != nullptr) << "DatabaseDispatcher needs a database factory";
  CHECK(options_.max_instances >= 1 && options_.max_instances <= kDatabaseInstancesMax)
      << "max_instances must be 1.." << kDatabaseInstancesMax << ", got " << options_.max_instances;
}

DatabaseDispatcher::~DatabaseDispatcher() = default;

size_t DatabaseDispatcher::instance_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return instances_.size();
}

absl::StatusOr<std::string> DatabaseDispatcher::InstanceKey(absl::string_view multiplex_id) const {
  if (!options_.multiplexing) return std::string();
  if (multiplex_id.empty()) return absl::UnknownError(kNoMultiplexIdError);
  if (multiplex_id.size() > kDatabaseMultiplexIdBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("multiplex id ", protocol::QuoteForError(multiplex_id), " is longer than ",
                     kDatabaseMultiplexIdBytesMax, " bytes"));
  }
  return std::string(multiplex_id);
}

absl::StatusOr<std::shared_ptr<DatabaseDispatcher::Instance>> DatabaseDispatcher::GetOrCreate(
    absl::string_view multiplex_id) {
  ASSIGN_OR_RETURN(std::string key, InstanceKey(multiplex_id));
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = instances_.find(key); it != instances_.end()) return it->second;
  if (instances_.size() >= options_.max_instances) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many database instances: this plugin serves at most ",
                     options_.max_instances, "; Close unused connections first"));
  }
  DatabaseContext context{key, log_};
  absl::StatusOr<std::unique_ptr<Database>> database =
      Guarded(log_, "factory",
              [&]() -> absl::StatusOr<std::unique_ptr<Database>> { return factory_(context); });
  if (!database.ok()) {
    Log(log_, LogLevel::kError, "the database factory failed", {{"multiplex_id", key}});
    return absl::UnknownError(database.status().message());
  }
  if (*database == nullptr) return absl::UnknownError("the database factory returned no database");
  auto instance = std::make_shared<Instance>();
  instance->key = key;
  instance->database = *std::move(database);
  instances_.emplace(key, instance);
  Log(log_, LogLevel::kDebug, "database instance created",
      {{"multiplex_id", key}, {"instances", absl::StrCat(instances_.size())}});
  return instance;
}

absl::StatusOr<std::shared_ptr<DatabaseDispatcher::Instance>> DatabaseDispatcher::Get(
    absl::string_view multiplex_id) {
  if (!options_.multiplexing) return GetOrCreate(multiplex_id);
  ASSIGN_OR_RETURN(std::string key, InstanceKey(multiplex_id));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = instances_.find(key);
  if (it == instances_.end()) return absl::UnknownError(kNoDatabaseInstanceError);
  return it->second;
}

absl::StatusOr<std::string> DatabaseDispatcher::Dispatch(absl::string_view method,
                                                         absl::string_view request,
                                                         absl::string_view multiplex_id) {
  if (method == kDatabaseNewUserMethod) return NewUser(request, multiplex_id);
  if (method == kDatabaseUpdateUserMethod) return UpdateUser(request, multiplex_id);
  if (method == kDatabaseDeleteUserMethod) return DeleteUser(request, multiplex_id);
  if (method == kDatabaseInitializeMethod) return Initialize(request, multiplex_id);
  if (method == kDatabaseTypeMethod) return Type(multiplex_id);
  if (method == kDatabaseCloseMethod) return Close(multiplex_id);
  if (method == protocol::kVersionMethod) {
    logical::VersionReply reply;
    reply.set_plugin_version(options_.plugin_version);
    return SerializeReply(reply);
  }
  if (method == protocol::kMultiplexingSupportMethod && options_.multiplexing) {
    pluginutil::multiplexing::MultiplexingSupportResponse reply;
    reply.set_supported(true);
    return SerializeReply(reply);
  }
  return absl::UnimplementedError(absl::StrCat(
      "unknown method ", protocol::QuoteForError(method),
      " (this plugin serves dbplugin.v5.Database and logical.PluginVersion",
      options_.multiplexing ? " and pluginutil.multiplexing.PluginMultiplexing)" : ")"));
}

// Each call below: validate the request exactly as Vault does, find the instance, then run the
// database under the instance's lock (a Close that got there first makes it "not found").

absl::StatusOr<std::string> DatabaseDispatcher::Initialize(absl::string_view request,
                                                           absl::string_view multiplex_id) {
  ASSIGN_OR_RETURN(
      dbplugin::v5::InitializeRequest args,
      ParseRequest<dbplugin::v5::InitializeRequest>(request, kDatabaseInitializeMethod));
  ASSIGN_OR_RETURN(std::shared_ptr<Instance> instance, GetOrCreate(multiplex_id));
  InitializeRequest db_request;
  ASSIGN_OR_RETURN(db_request.config, StructToJson(args.config_data()));
  db_request.verify_connection = args.verify_connection();
  std::lock_guard<std::mutex> lock(instance->mu);
  if (instance->closed) return absl::UnknownError(kNoDatabaseInstanceError);
  absl::StatusOr<InitializeResponse> response =
      Guarded(log_, "Initialize", [&]() -> absl::StatusOr<InitializeResponse> {
        return instance->database->Initialize(db_request);
      });
  if (!response.ok()) {
    return Prefixed(absl::StatusCode::kInternal, "failed to initialize: ", response.status());
  }
  absl::StatusOr<google::protobuf::Struct> config = JsonToStruct(response->config);
  if (!config.ok()) {
    return Prefixed(absl::StatusCode::kInternal,
                    "failed to marshal new config to JSON: ", config.status());
  }
  dbplugin::v5::InitializeResponse reply;
  *reply.mutable_config_data() = *std::move(config);
  return SerializeReply(reply);
}

absl::StatusOr<std::string> DatabaseDispatcher::NewUser(absl::string_view request,
                                                        absl::string_view multiplex_id) {
  ASSIGN_OR_RETURN(dbplugin::v5::NewUserRequest args,
                   ParseRequest<dbplugin::v5::NewUserRequest>(request, kDatabaseNewUserMethod));
  if (!args.has_username_config()) return absl::InvalidArgumentError("missing username config");
  NewUserRequest db_request;
  if (args.has_expiration()) {
    absl::StatusOr<absl::Time> expiration = TimestampToTime(args.expiration());
    if (!expiration.ok()) {
      return Prefixed(absl::StatusCode::kInvalidArgument,
                      "unable to parse expiration date: ", expiration.status());
    }
    db_request.expiration = *expiration;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Instance> instance, Get(multiplex_id));
  db_request.username_config.display_name = args.username_config().display_name();
  db_request.username_config.role_name = args.username_config().role_name();
  db_request.credential_type = static_cast<CredentialType>(args.credential_type());
  db_request.password = args.password();
  db_request.public_key = args.public_key();
  db_request.subject = args.subject();
  db_request.statements = FromProto(args.statements());
  db_request.rollback_statements = FromProto(args.rollback_statements());
  std::lock_guard<std::mutex> lock(instance->mu);
  if (instance->closed) return absl::UnknownError(kNoDatabaseInstanceError);
  absl::StatusOr<NewUserResponse> response = Guarded(
      log_, "NewUser",
      [&]() -> absl::StatusOr<NewUserResponse> { return instance->database->NewUser(db_request); });
  if (!response.ok()) {
    return Prefixed(absl::StatusCode::kInternal, "unable to create new user: ", response.status());
  }
  dbplugin::v5::NewUserResponse reply;
  reply.set_username(response->username);
  return SerializeReply(reply);
}

absl::StatusOr<std::string> DatabaseDispatcher::UpdateUser(absl::string_view request,
                                                           absl::string_view multiplex_id) {
  ASSIGN_OR_RETURN(
      dbplugin::v5::UpdateUserRequest args,
      ParseRequest<dbplugin::v5::UpdateUserRequest>(request, kDatabaseUpdateUserMethod));
  if (args.username().empty()) return absl::InvalidArgumentError("no username provided");
  UpdateUserRequest db_request;
  db_request.username = args.username();
  db_request.credential_type = static_cast<CredentialType>(args.credential_type());
  db_request.self_managed_password = args.self_managed_password();
  if (args.has_password() && !args.password().new_password().empty()) {
    db_request.password =
        ChangePassword{args.password().new_password(), FromProto(args.password().statements())};
  }
  if (args.has_public_key() && !args.public_key().new_public_key().empty()) {
    db_request.public_key = ChangePublicKey{args.public_key().new_public_key(),
                                            FromProto(args.public_key().statements())};
  }
  bool expiration_changes = false;
  if (args.has_expiration() && args.expiration().has_new_expiration()) {
    absl::StatusOr<absl::Time> expiration = TimestampToTime(args.expiration().new_expiration());
    if (!expiration.ok()) {
      return Prefixed(absl::StatusCode::kInvalidArgument,
                      "unable to parse new expiration: ", expiration.status());
    }
    db_request.expiration =
        ChangeExpiration{*expiration, FromProto(args.expiration().statements())};
    expiration_changes = !IsGoZeroTime(args.expiration().new_expiration());
  }
  if (!db_request.password.has_value() && !db_request.public_key.has_value() &&
      !expiration_changes) {
    return absl::InvalidArgumentError("update user request has no changes");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Instance> instance, Get(multiplex_id));
  std::lock_guard<std::mutex> lock(instance->mu);
  if (instance->closed) return absl::UnknownError(kNoDatabaseInstanceError);
  const absl::Status status = Guarded(log_, "UpdateUser", [&]() -> absl::Status {
    return instance->database->UpdateUser(db_request);
  });
  if (!status.ok()) {
    return Prefixed(absl::StatusCode::kInternal, "unable to update user: ", status);
  }
  return SerializeReply(dbplugin::v5::UpdateUserResponse());
}

absl::StatusOr<std::string> DatabaseDispatcher::DeleteUser(absl::string_view request,
                                                           absl::string_view multiplex_id) {
  ASSIGN_OR_RETURN(
      dbplugin::v5::DeleteUserRequest args,
      ParseRequest<dbplugin::v5::DeleteUserRequest>(request, kDatabaseDeleteUserMethod));
  if (args.username().empty()) return absl::InvalidArgumentError("no username provided");
  DeleteUserRequest db_request{args.username(), FromProto(args.statements())};
  ASSIGN_OR_RETURN(std::shared_ptr<Instance> instance, Get(multiplex_id));
  std::lock_guard<std::mutex> lock(instance->mu);
  if (instance->closed) return absl::UnknownError(kNoDatabaseInstanceError);
  const absl::Status status = Guarded(log_, "DeleteUser", [&]() -> absl::Status {
    return instance->database->DeleteUser(db_request);
  });
  if (!status.ok()) {
    return Prefixed(absl::StatusCode::kInternal, "unable to delete user: ", status);
  }
  return SerializeReply(dbplugin::v5::DeleteUserResponse());
}

absl::StatusOr<std::string> DatabaseDispatcher::Type(absl::string_view multiplex_id) {
  ASSIGN_OR_RETURN(std::shared_ptr<Instance> instance, GetOrCreate(multiplex_id));
  std::lock_guard<std::mutex> lock(instance->mu);
  if (instance->closed) return absl::UnknownError(kNoDatabaseInstanceError);
  absl::StatusOr<std::string> type = Guarded(
      log_, "Type", [&]() -> absl::StatusOr<std::string> { return instance->database->Type(); });
  if (!type.ok()) {
    return Prefixed(absl::StatusCode::kInternal, "unable to retrieve type: ", type.status());
  }
  dbplugin::v5::TypeResponse reply;
  reply.set_type(*type);
  return SerializeReply(reply);
}

absl::StatusOr<std::string> DatabaseDispatcher::Close(absl::string_view multiplex_id) {
  ASSIGN_OR_RETURN(std::string key, InstanceKey(multiplex_id));
  std::shared_ptr<Instance> instance;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = instances_.find(key);
    if (it == instances_.end()) {
      // Vault's single instance always exists and closing it twice is the database's
      // business; here there is simply nothing to close.
      if (!options_.multiplexing) return SerializeReply(dbplugin::v5::Empty());
      return absl::UnknownError(kNoDatabaseInstanceError);
    }
    // Out of the table first, so no new call finds it while it closes.
    instance = it->second;
    instances_.erase(it);
  }
  std::lock_guard<std::mutex> instance_lock(instance->mu);
  const absl::Status status =
      Guarded(log_, "Close", [&]() -> absl::Status { return instance->database->Close(); });
  if (!status.ok()) {
    // As Vault: put it back so the host may retry Close, unless the id got a new instance.
    std::lock_guard<std::mutex> lock(mu_);
    instances_.emplace(key, instance);
    return Prefixed(absl::StatusCode::kInternal, "unable to close database plugin: ", status);
  }
  instance->closed = true;
  Log(log_, LogLevel::kDebug, "database instance closed", {{"multiplex_id", key}});
  return SerializeReply(dbplugin::v5::Empty());
}

}  // namespace bulwark::sdk
