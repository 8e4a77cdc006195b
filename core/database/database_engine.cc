// The database engine's paths, its connection cache, rotate-root with its WAL, and rollback.
#include "core/database/database_engine.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status/status_macros.h"
#include "faultinject/failpoint.h"
#include "proto/vault/database.pb.h"
#include "protocol/wire_names.h"

namespace bulwark::database {

using Json = nlohmann::json;
using lifecycle::TerminationEvent;

namespace {

namespace v5 = ::dbplugin::v5;

constexpr char kConfigPrefix[] = "config/";
constexpr char kRolePrefix[] = "role/";
constexpr char kWalPrefix[] = "wal/";

// Vault's logical.ErrorResponse: a 400 with this text.
absl::Status UserError(absl::string_view msg) { return absl::InvalidArgumentError(msg); }
// A bare Go error from a handler: Vault answers 500 with multierror's text.
absl::Status BareError(absl::string_view msg) {
  return absl::InternalError(absl::StrCat("1 error occurred:\n\t* ", msg, "\n\n"));
}

lifecycle::Reply DataReply(Json data, std::vector<std::string> warnings = {}) {
  pb::Response r;
  r.set_data(data.dump());
  for (std::string& w : warnings) r.add_warnings(std::move(w));
  return r;
}

// A JSON value as a google.protobuf.Value and back (Vault sends the connection details as a
// Struct).
void ToValue(const Json& j, google::protobuf::Value* v) {
  if (j.is_null()) {
    v->set_null_value(google::protobuf::NULL_VALUE);
  } else if (j.is_boolean()) {
    v->set_bool_value(j.get<bool>());
  } else if (j.is_number()) {
    v->set_number_value(j.get<double>());
  } else if (j.is_string()) {
    v->set_string_value(j.get<std::string>());
  } else if (j.is_array()) {
    auto* list = v->mutable_list_value();
    for (const Json& e : j) ToValue(e, list->add_values());
  } else {
    auto* fields = v->mutable_struct_value()->mutable_fields();
    for (auto it = j.begin(); it != j.end(); ++it) ToValue(it.value(), &(*fields)[it.key()]);
  }
}

Json FromValue(const google::protobuf::Value& v) {
  switch (v.kind_case()) {
    case google::protobuf::Value::kBoolValue:
      return v.bool_value();
    case google::protobuf::Value::kNumberValue: {
      const double d = v.number_value();
      if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
      return d;
    }
    case google::protobuf::Value::kStringValue:
      return v.string_value();
    case google::protobuf::Value::kListValue: {
      Json a = Json::array();
      for (const auto& e : v.list_value().values()) a.push_back(FromValue(e));
      return a;
    }
    case google::protobuf::Value::kStructValue: {
      Json o = Json::object();
      for (const auto& [k, e] : v.struct_value().fields()) o[k] = FromValue(e);
      return o;
    }
    default:
      return nullptr;
  }
}

google::protobuf::Struct ToStruct(const Json& object) {
  google::protobuf::Value v;
  ToValue(object.is_object() ? object : Json::object(), &v);
  return v.struct_value();
}

Json FromStruct(const google::protobuf::Struct& s) {
  Json o = Json::object();
  for (const auto& [k, e] : s.fields()) o[k] = FromValue(e);
  return o;
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts) {
  const int64_t nanos = absl::ToUnixNanos(t);
  ts->set_seconds(nanos / 1000000000);
  ts->set_nanos(static_cast<int32_t>(nanos % 1000000000));
}

// Vault's TypeStringSlice / TypeCommaStringSlice: a list, or a string (split on commas for the
// comma form, else one element).
absl::StatusOr<std::vector<std::string>> StringList(const Json& j, absl::string_view field,
                                                    bool comma) {
  std::vector<std::string> out;
  if (j.is_null()) return out;
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    if (s.empty()) return out;
    if (!comma) return std::vector<std::string>{s};
    for (absl::string_view part : absl::StrSplit(s, ',')) {
      part = absl::StripAsciiWhitespace(part);
      if (!part.empty()) out.emplace_back(part);
    }
    return out;
  }
  if (j.is_array()) {
    for (const Json& e : j) {
      if (!e.is_string()) {
        return UserError(absl::StrCat("error converting input for field \"", field,
                                      "\": expected a list of strings"));
      }
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  return UserError(
      absl::StrCat("error converting input for field \"", field, "\": expected a list of strings"));
}

// Vault's TypeDurationSecond: a number of seconds, or a Go duration string ("1h", "90s").
absl::StatusOr<absl::Duration> DurationSeconds(const Json& j, absl::string_view field) {
  if (j.is_number_integer()) return absl::Seconds(j.get<int64_t>());
  if (j.is_number()) return absl::Seconds(j.get<double>());
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    int64_t secs = 0;
    if (s.empty()) return absl::ZeroDuration();
    if (absl::SimpleAtoi(s, &secs)) return absl::Seconds(secs);
    absl::Duration d;
    if (absl::ParseDuration(s, &d) && d >= absl::ZeroDuration()) return d;
  }
  return UserError(absl::StrCat("error converting input for field \"", field,
                                "\": expected a duration such as 3600 or \"1h\""));
}

bool GlobMatch(absl::string_view pattern, absl::string_view s) {
  // Vault's glob: '*' matches any run of characters (StrListContainsGlob).
  if (pattern.empty()) return s.empty();
  if (pattern[0] == '*') {
    for (size_t i = 0; i <= s.size(); ++i) {
      if (GlobMatch(pattern.substr(1), s.substr(i))) return true;
    }
    return false;
  }
  return !s.empty() && pattern[0] == s[0] && GlobMatch(pattern.substr(1), s.substr(1));
}

// "postgresql://user:secret@host/db" -> "postgresql://user:xxxxx@host/db", as Go's
// url.Redacted(); templated or unparsable URLs are returned unchanged.
std::optional<std::string> RedactUrl(const std::string& url) {
  if (absl::StrContains(url, "{{")) return std::nullopt;
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return std::nullopt;
  const size_t start = scheme + 3;
  const size_t end = url.find_first_of("/?#", start);
  const std::string authority = url.substr(start, end == std::string::npos ? end : end - start);
  const size_t at = authority.rfind('@');
  if (at == std::string::npos) return std::nullopt;
  const size_t colon = authority.find(':');
  if (colon == std::string::npos || colon > at) return std::nullopt;
  return absl::StrCat(url.substr(0, start + colon + 1), "xxxxx", url.substr(start + at));
}

// What to do at a failpoint of an asynchronous step: go on, fail with the injected error, or
// stop here for good (hang, or a crash of the node: the step's reply never comes).
enum class Step { kGo, kFail, kStop };
Step AtFailpoint(const faultinject::Action& a) {
  switch (a.kind) {
    case faultinject::ActionKind::kNone:
    case faultinject::ActionKind::kDelay:
      return Step::kGo;
    case faultinject::ActionKind::kReturn:
      return Step::kFail;
    default:
      return Step::kStop;
  }
}

}  // namespace

// ---- Stored records ----------------------------------------------------------------------------

struct DatabaseEngine::Config {
  std::string name;  // Not stored: the key says it.
  std::string plugin_name;
  std::string plugin_version;
  Json connection_details = Json::object();
  std::vector<std::string> allowed_roles;
  std::vector<std::string> root_rotation_statements;
  std::string password_policy;
  bool verify_connection = true;

  Json ToJson() const {
    return {{"plugin_name", plugin_name},
            {"plugin_version", plugin_version},
            {"connection_details", connection_details},
            {"allowed_roles", allowed_roles},
            {"root_credentials_rotate_statements", root_rotation_statements},
            {"password_policy", password_policy},
            {"verify_connection", verify_connection}};
  }
  static absl::StatusOr<Config> FromJson(const Json& j) {
    Config c;
    try {
      c.plugin_name = j.at("plugin_name").get<std::string>();
      c.plugin_version = j.value("plugin_version", "");
      c.connection_details = j.value("connection_details", Json::object());
      c.allowed_roles = j.value("allowed_roles", std::vector<std::string>{});
      c.root_rotation_statements =
          j.value("root_credentials_rotate_statements", std::vector<std::string>{});
      c.password_policy = j.value("password_policy", "");
      c.verify_connection = j.value("verify_connection", true);
    } catch (const Json::exception& e) {
      return absl::DataLossError(absl::StrCat("stored database config is malformed: ", e.what()));
    }
    return c;
  }
  std::string Detail(const char* key) const {
    auto it = connection_details.find(key);
    return it != connection_details.end() && it->is_string() ? it->get<std::string>() : "";
  }
};

struct DatabaseEngine::Role {
  std::string db_name;
  std::vector<std::string> creation_statements;
  std::vector<std::string> revocation_statements;
  std::vector<std::string> rollback_statements;
  std::vector<std::string> renew_statements;
  absl::Duration default_ttl = absl::ZeroDuration();
  absl::Duration max_ttl = absl::ZeroDuration();
  std::string credential_type = "password";

  Json ToJson() const {
    return {{"db_name", db_name},
            {"creation_statements", creation_statements},
            {"revocation_statements", revocation_statements},
            {"rollback_statements", rollback_statements},
            {"renew_statements", renew_statements},
            {"default_ttl", absl::ToInt64Seconds(default_ttl)},
            {"max_ttl", absl::ToInt64Seconds(max_ttl)},
            {"credential_type", credential_type}};
  }
  static absl::StatusOr<Role> FromJson(const Json& j) {
    Role r;
    try {
      r.db_name = j.at("db_name").get<std::string>();
      r.creation_statements = j.value("creation_statements", std::vector<std::string>{});
      r.revocation_statements = j.value("revocation_statements", std::vector<std::string>{});
      r.rollback_statements = j.value("rollback_statements", std::vector<std::string>{});
      r.renew_statements = j.value("renew_statements", std::vector<std::string>{});
      r.default_ttl = absl::Seconds(j.value("default_ttl", int64_t{0}));
      r.max_ttl = absl::Seconds(j.value("max_ttl", int64_t{0}));
      r.credential_type = j.value("credential_type", "password");
    } catch (const Json::exception& e) {
      return absl::DataLossError(absl::StrCat("stored database role is malformed: ", e.what()));
    }
    return r;
  }
};

bool IsValidName(absl::string_view name) {
  if (name.empty() || name.size() > kNameBytesMax) return false;
  auto word = [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(name.front()) || !word(name.back())) return false;
  for (char c : name) {
    if (!word(c) && c != '-' && c != '.') return false;
  }
  return true;
}

// ---- Construction --------------------------------------------------------------------------

DatabaseEngine::DatabaseEngine(Env& env, Storage& storage, mount::MountEntry mount,
                               lifecycle::LifecycleManager& lifecycle, lease::LeaseManager& leases,
                               LogSink& log, DatabaseEngineOptions options)
    : env_(env),
      storage_(storage),
      mount_(std::move(mount)),
      lifecycle_(lifecycle),
      leases_(leases),
      log_(log),
      options_(options) {}

DatabaseEngine::~DatabaseEngine() {
  *alive_ = false;
  if (rollback_done_) {
    env_.executor.Post([done = std::move(rollback_done_)]() mutable {
      done(absl::AbortedError("the database engine stopped during the rollback pass"));
    });
  }
}

void DatabaseEngine::Log(LogLevel level, std::string message,
                         std::vector<std::pair<std::string, std::string>> fields) {
  LogRecord r;
  r.level = level;
  r.time = env_.clock.WallNow();
  r.source = absl::StrCat("database:", mount_.path);
  r.message = std::move(message);
  r.fields = std::move(fields);
  log_.Write(r);
}

std::string DatabaseEngine::MicrosSince(absl::Duration start) const {
  return absl::StrCat(absl::ToInt64Microseconds(env_.clock.MonotonicNow() - start));
}

std::string DatabaseEngine::NewId() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) id += '-';
    id += kHex[env_.random.Uniform(16)];
  }
  return id;
}

std::string DatabaseEngine::NewPassword() {
  static constexpr char kChars[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
  constexpr size_t kCount = sizeof(kChars) - 1;
  while (true) {
    std::string p;
    for (size_t i = 0; i < kPasswordChars; ++i) p += kChars[env_.random.Uniform(kCount)];
    const bool lower = std::any_of(p.begin(), p.end(), [](char c) { return c >= 'a' && c <= 'z'; });
    const bool upper = std::any_of(p.begin(), p.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
    const bool digit = std::any_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
    const bool dash = p.find('-') != std::string::npos;
    if (lower && upper && digit && dash) return p;
  }
}

std::string DatabaseEngine::CachedInstance(const std::string& name) const {
  auto it = connections_.find(name);
  return it == connections_.end() ? "" : it->second.key;
}

absl::StatusOr<std::optional<DatabaseEngine::Config>> DatabaseEngine::LoadConfig(
    const std::string& name) {
  ASSIGN_OR_RETURN(std::optional<std::string> raw, storage_.Get(kConfigPrefix + name));
  if (!raw.has_value()) return std::optional<Config>();
  Json j = Json::parse(*raw, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::DataLossError("stored database config is not a JSON object");
  ASSIGN_OR_RETURN(Config c, Config::FromJson(j));
  c.name = name;
  return std::optional<Config>(std::move(c));
}

absl::Status DatabaseEngine::StoreConfig(const std::string& name, const Config& config) {
  return storage_.Put(kConfigPrefix + name, config.ToJson().dump());
}

absl::StatusOr<std::optional<DatabaseEngine::Role>> DatabaseEngine::LoadRole(
    const std::string& name) {
  ASSIGN_OR_RETURN(std::optional<std::string> raw, storage_.Get(kRolePrefix + name));
  if (!raw.has_value()) return std::optional<Role>();
  Json j = Json::parse(*raw, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::DataLossError("stored database role is not a JSON object");
  ASSIGN_OR_RETURN(Role r, Role::FromJson(j));
  return std::optional<Role>(std::move(r));
}

// ---- Routing -------------------------------------------------------------------------------

void DatabaseEngine::HandleRequest(const pb::Request& request, lifecycle::ResponseCallback done) {
  auto answer = [this, &done](absl::StatusOr<lifecycle::Reply> r) {
    env_.executor.Post(
        [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  };
  const std::string& op = request.operation();
  const bool write = op == "update" || op == "create";
  std::string path = request.path();
  if (absl::EndsWith(path, "/") && op == "list") path.pop_back();
  const size_t slash = path.find('/');
  const std::string section = path.substr(0, slash);
  const std::string name = slash == std::string::npos ? "" : path.substr(slash + 1);
  auto unsupported_op = [&]() {
    answer(absl::UnimplementedError(absl::StrCat("unsupported operation: ", op, " on ", path)));
  };
  if ((section == "config" || section == "roles") && name.empty()) {
    if (op != "list") return unsupported_op();
    return List(section == "config" ? kConfigPrefix : kRolePrefix, std::move(done));
  }
  if (name.empty() || !IsValidName(name)) {
    return answer(absl::NotFoundError(absl::StrCat("unsupported path: ", path)));
  }
  if (section == "config") {
    if (write) {
      absl::StatusOr<std::optional<Config>> existing = LoadConfig(name);
      if (!existing.ok()) return answer(existing.status());
      return WriteConfig(name, request.data(), !existing->has_value(), std::move(done));
    }
    if (op == "read") return ReadConfig(name, std::move(done));
    if (op == "delete") return DeleteConfig(name, std::move(done));
    return unsupported_op();
  }
  if (section == "reset") return write ? Reset(name, std::move(done)) : unsupported_op();
  if (section == "reload") return write ? ReloadPlugin(name, std::move(done)) : unsupported_op();
  if (section == "rotate-root") return write ? RotateRoot(name, std::move(done)) : unsupported_op();
  if (section == "creds") {
    return op == "read" || write ? Creds(name, request, std::move(done)) : unsupported_op();
  }
  if (section == "roles") {
    if (write) return WriteRole(name, request.data(), std::move(done));
    if (op == "read") return ReadRole(name, std::move(done));
    if (op == "delete") {
      absl::Status s = storage_.Delete(kRolePrefix + name);
      if (!s.ok()) return answer(s);
      return answer(lifecycle::Reply());
    }
    return unsupported_op();
  }
  answer(absl::NotFoundError(absl::StrCat("unsupported path: ", path)));
}

void DatabaseEngine::List(const std::string& prefix, lifecycle::ResponseCallback done) {
  absl::StatusOr<std::vector<std::string>> keys = storage_.List(prefix);
  absl::StatusOr<lifecycle::Reply> r = lifecycle::Reply();
  if (!keys.ok()) {
    r = keys.status();
  } else {
    Json names = Json::array();
    for (const std::string& k : *keys) {
      const std::string rest = k.substr(prefix.size());
      if (rest.find('/') == std::string::npos) names.push_back(rest);
    }
    r = DataReply({{"keys", names}});
  }
  env_.executor.Post([done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
}

// ---- config/:name --------------------------------------------------------------------------

void DatabaseEngine::WriteConfig(const std::string& name, const std::string& data_json, bool create,
                                 lifecycle::ResponseCallback done) {
  auto fail = [this, &done](absl::Status s) {
    env_.executor.Post([done = std::move(done), s]() mutable { done(s); });
  };
  Json data = data_json.empty() ? Json::object()
                                : Json::parse(data_json, nullptr, /*allow_exceptions=*/false);
  if (!data.is_object()) return fail(UserError("the request body is not a JSON object"));
  Config config;
  if (!create) config = **LoadConfig(name);
  config.name = name;
  if (auto it = data.find("plugin_name"); it != data.end()) {
    if (!it->is_string()) return fail(UserError("plugin_name must be a string"));
    config.plugin_name = it->get<std::string>();
  }
  if (config.plugin_name.empty()) return fail(UserError("empty plugin name"));
  if (auto it = data.find("plugin_version"); it != data.end() && it->is_string()) {
    std::string v = it->get<std::string>();
    if (!v.empty() && v[0] != 'v') v = "v" + v;
    config.plugin_version = v;
  }
  if (auto it = data.find("verify_connection"); it != data.end()) {
    if (!it->is_boolean()) return fail(UserError("verify_connection must be a boolean"));
    config.verify_connection = it->get<bool>();
  } else if (create) {
    config.verify_connection = true;
  }
  if (auto it = data.find("allowed_roles"); it != data.end()) {
    absl::StatusOr<std::vector<std::string>> l = StringList(*it, "allowed_roles", true);
    if (!l.ok()) return fail(l.status());
    config.allowed_roles = *l;
  }
  if (auto it = data.find("root_rotation_statements"); it != data.end()) {
    absl::StatusOr<std::vector<std::string>> l = StringList(*it, "root_rotation_statements", false);
    if (!l.ok()) return fail(l.status());
    config.root_rotation_statements = *l;
  }
  if (auto it = data.find("password_policy"); it != data.end() && it->is_string()) {
    config.password_policy = it->get<std::string>();
  }
  // Everything else is the connection's details: replaced on create, merged on update.
  Json details = create ? Json::object() : config.connection_details;
  for (auto it = data.begin(); it != data.end(); ++it) {
    static constexpr absl::string_view kEngineFields[] = {
        "plugin_name",   "plugin_version",           "verify_connection",
        "allowed_roles", "root_rotation_statements", "password_policy",
        "name"};
    if (std::find(std::begin(kEngineFields), std::end(kEngineFields), it.key()) !=
        std::end(kEngineFields)) {
      continue;
    }
    details[it.key()] = it.value();
  }
  std::vector<std::string> warnings;
  if (auto it = details.find("connection_url"); it != details.end() && it->is_string()) {
    if (RedactUrl(it->get<std::string>()).has_value()) {
      warnings.push_back(
          "Password found in connection_url, use a templated url to enable root rotation and "
          "prevent read access to password information.");
    }
  }
  std::weak_ptr<bool> alive = alive_;
  OpenInstance(
      config, details.dump(), config.verify_connection, TerminationEvent::kConnectionChange,
      [this, alive, name, config, warnings = std::move(warnings),
       done = std::move(done)](absl::StatusOr<std::pair<std::string, std::string>> opened) mutable {
        if (alive.expired()) return;
        if (!opened.ok()) {
          return done(UserError(
              absl::StrCat("error creating database object: ", opened.status().message())));
        }
        config.connection_details = Json::parse(opened->second, nullptr, false);
        if (!config.connection_details.is_object()) config.connection_details = Json::object();
        // The new instance replaces the cached one, which is closed: before storage is written,
        // as Vault does.
        std::string old;
        if (auto it = connections_.find(name); it != connections_.end()) {
          old = it->second.key;
        }
        Changed(name, TerminationEvent::kConnectionChange);
        Connection& c = connections_[name];
        c.key = opened->first;
        auto store = [this, alive, name, config, warnings = std::move(warnings),
                      done = std::move(done)]() mutable {
          if (alive.expired()) return;
          absl::Status s = StoreConfig(name, config);
          if (!s.ok()) return done(s);
          Log(LogLevel::kInfo, "connection configured",
              {{"connection", name}, {"plugin", config.plugin_name}});
          if (warnings.empty()) return done(lifecycle::Reply());
          done(DataReply(nullptr, std::move(warnings)));
        };
        // A planted bug for the simulator's drill: the replaced instance is uncached but never
        // closed, so it keeps its database session.
        if (old.empty() ||
            BW_PLANTED_BUG_IN(env_.failpoints, "bug.database.keep_instance_on_config_write")) {
          return store();
        }
        CloseInstance(old, TerminationEvent::kConnectionChange, std::move(store));
      });
}

void DatabaseEngine::ReadConfig(const std::string& name, lifecycle::ResponseCallback done) {
  absl::StatusOr<lifecycle::Reply> r = lifecycle::Reply();
  absl::StatusOr<std::optional<Config>> c = LoadConfig(name);
  if (!c.ok()) {
    r = c.status();
  } else if (c->has_value()) {
    Json details = (*c)->connection_details;
    details.erase("password");
    details.erase("private_key");
    if (auto it = details.find("connection_url"); it != details.end() && it->is_string()) {
      if (std::optional<std::string> red = RedactUrl(it->get<std::string>())) *it = *red;
    }
    Json data = (*c)->ToJson();
    data["connection_details"] = details;
    r = DataReply(data);
  }
  env_.executor.Post([done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
}

void DatabaseEngine::DeleteConfig(const std::string& name, lifecycle::ResponseCallback done) {
  absl::Status s = storage_.Delete(kConfigPrefix + name);
  if (!s.ok()) {
    env_.executor.Post([done = std::move(done), s]() mutable { done(s); });
    return;
  }
  ClearConnection(name, TerminationEvent::kConnectionChange,
                  [done = std::move(done)]() mutable { done(lifecycle::Reply()); });
}

void DatabaseEngine::Reset(const std::string& name, lifecycle::ResponseCallback done) {
  std::weak_ptr<bool> alive = alive_;
  ClearConnection(name, TerminationEvent::kConnectionChange,
                  [this, alive, name, done = std::move(done)]() mutable {
                    if (alive.expired()) return;
                    GetConnection(
                        name, [done = std::move(done)](absl::StatusOr<std::string> key) mutable {
                          if (!key.ok()) return done(BareError(key.status().message()));
                          done(lifecycle::Reply());
                        });
                  });
}

void DatabaseEngine::ReloadPlugin(const std::string& plugin_name,
                                  lifecycle::ResponseCallback done) {
  absl::StatusOr<std::vector<std::string>> keys = storage_.List(kConfigPrefix);
  if (!keys.ok()) {
    env_.executor.Post([done = std::move(done), s = keys.status()]() mutable { done(s); });
    return;
  }
  auto names = std::make_shared<std::vector<std::string>>();
  for (const std::string& k : *keys) {
    const std::string name = k.substr(sizeof(kConfigPrefix) - 1);
    absl::StatusOr<std::optional<Config>> c = LoadConfig(name);
    if (c.ok() && c->has_value() && (*c)->plugin_name == plugin_name) names->push_back(name);
  }
  auto reloaded = std::make_shared<std::vector<std::string>>();
  auto step = std::make_shared<absl::AnyInvocable<void(size_t)>>();
  auto shared_done = std::make_shared<lifecycle::ResponseCallback>(std::move(done));
  std::weak_ptr<bool> alive = alive_;
  *step = [this, alive, names, reloaded, step, shared_done, plugin_name](size_t i) {
    if (alive.expired()) return;
    if (i == names->size()) {
      Json data = {{"connections", *reloaded}, {"count", reloaded->size()}};
      std::vector<std::string> warnings;
      if (reloaded->empty()) {
        warnings.push_back(
            absl::StrCat("no connections were found with plugin_name \"", plugin_name, "\""));
      }
      (*shared_done)(DataReply(data, std::move(warnings)));
      *step = nullptr;  // Break the cycle.
      return;
    }
    const std::string name = (*names)[i];
    ClearConnection(
        name, TerminationEvent::kConnectionChange,
        [this, alive, name, i, names, reloaded, step, shared_done]() {
          if (alive.expired()) return;
          GetConnection(
              name, [name, i, reloaded, step, shared_done](absl::StatusOr<std::string> k) {
                if (!k.ok()) {
                  (*shared_done)(BareError(absl::StrCat(
                      "successfully reloaded ", reloaded->size(),
                      " connection(s): ", absl::StrJoin(*reloaded, ", "),
                      "; failed to reload connection \"", name, "\": ", k.status().message())));
                  *step = nullptr;
                  return;
                }
                reloaded->push_back(name);
                (*step)(i + 1);
              });
        });
  };
  (*step)(0);
}

// ---- roles/:name ---------------------------------------------------------------------------

void DatabaseEngine::WriteRole(const std::string& name, const std::string& data_json,
                               lifecycle::ResponseCallback done) {
  auto answer = [this, &done](absl::StatusOr<lifecycle::Reply> r) {
    env_.executor.Post(
        [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  };
  Json data = data_json.empty() ? Json::object()
                                : Json::parse(data_json, nullptr, /*allow_exceptions=*/false);
  if (!data.is_object()) return answer(UserError("the request body is not a JSON object"));
  absl::StatusOr<std::optional<Role>> existing = LoadRole(name);
  if (!existing.ok()) return answer(existing.status());
  Role role = existing->value_or(Role());
  if (auto it = data.find("db_name"); it != data.end()) {
    role.db_name = it->is_string() ? it->get<std::string>() : "";
  }
  if (role.db_name.empty()) return answer(UserError("database name is required"));
  struct ListField {
    const char* key;
    std::vector<std::string>* out;
  };
  for (ListField f : {ListField{"creation_statements", &role.creation_statements},
                      ListField{"revocation_statements", &role.revocation_statements},
                      ListField{"rollback_statements", &role.rollback_statements},
                      ListField{"renew_statements", &role.renew_statements}}) {
    if (auto it = data.find(f.key); it != data.end()) {
      absl::StatusOr<std::vector<std::string>> l = StringList(*it, f.key, false);
      if (!l.ok()) return answer(l.status());
      *f.out = *l;
    }
  }
  for (auto [key, out] : {std::pair<const char*, absl::Duration*>{"default_ttl", &role.default_ttl},
                          std::pair<const char*, absl::Duration*>{"max_ttl", &role.max_ttl}}) {
    if (auto it = data.find(key); it != data.end()) {
      absl::StatusOr<absl::Duration> d = DurationSeconds(*it, key);
      if (!d.ok()) return answer(d.status());
      *out = *d;
    }
  }
  if (auto it = data.find("credential_type"); it != data.end() && it->is_string()) {
    const std::string t = it->get<std::string>();
    if (t != "password" && t != "rsa_private_key" && t != "client_certificate") {
      return answer(UserError(absl::StrCat("invalid credential_type \"", t, "\"")));
    }
    role.credential_type = t;
  }
  absl::Status s = storage_.Put(kRolePrefix + name, role.ToJson().dump());
  if (!s.ok()) return answer(s);
  answer(lifecycle::Reply());
}

void DatabaseEngine::ReadRole(const std::string& name, lifecycle::ResponseCallback done) {
  absl::StatusOr<lifecycle::Reply> r = lifecycle::Reply();
  absl::StatusOr<std::optional<Role>> role = LoadRole(name);
  if (!role.ok()) {
    r = role.status();
  } else if (role->has_value()) {
    r = DataReply((*role)->ToJson());
  }
  env_.executor.Post([done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
}

// ---- creds/:role ---------------------------------------------------------------------------

void DatabaseEngine::Creds(const std::string& role_name, const pb::Request& request,
                           lifecycle::ResponseCallback done) {
  auto fail = [this, &done](absl::Status s) {
    env_.executor.Post([done = std::move(done), s]() mutable { done(s); });
  };
  absl::StatusOr<std::optional<Role>> role = LoadRole(role_name);
  if (!role.ok()) return fail(role.status());
  if (!role->has_value()) return fail(UserError(absl::StrCat("unknown role: ", role_name)));
  const Role r = **role;
  absl::StatusOr<std::optional<Config>> config = LoadConfig(r.db_name);
  if (!config.ok()) return fail(config.status());
  if (!config->has_value()) {
    return fail(BareError(
        absl::StrCat("failed to find entry for connection with name: \"", r.db_name, "\"")));
  }
  const std::vector<std::string>& allowed = (*config)->allowed_roles;
  const bool allowed_role = std::any_of(allowed.begin(), allowed.end(), [&](const std::string& p) {
    return p == "*" || GlobMatch(p, role_name);
  });
  if (!allowed_role)
    return fail(BareError(absl::StrCat("\"", role_name, "\" is not an allowed role")));
  if (r.credential_type != "password") {
    return fail(
        UserError(absl::StrCat("unsupported credential_type: \"", r.credential_type, "\"")));
  }
  // Vault's CalculateTTL and the expiration manager's caps.
  const lease::LeaseOptions& lo = leases_.options();
  absl::Duration max_ttl = lo.max_ttl;
  if (r.max_ttl > absl::ZeroDuration()) max_ttl = std::min(max_ttl, r.max_ttl);
  absl::Duration ttl = r.default_ttl > absl::ZeroDuration() ? r.default_ttl : lo.default_ttl;
  ttl = std::min(ttl, max_ttl);
  std::weak_ptr<bool> alive = alive_;
  const std::string db_name = r.db_name;
  std::string display_name = request.client_token().empty() ? "token" : "root";
  GetConnection(db_name, [this, alive, r, role_name, ttl, display_name,
                          done = std::move(done)](absl::StatusOr<std::string> key) mutable {
    if (alive.expired()) return;
    if (!key.ok()) return done(BareError(key.status().message()));
    const std::string password = NewPassword();
    v5::NewUserRequest req;
    req.mutable_username_config()->set_display_name(display_name);
    req.mutable_username_config()->set_role_name(role_name);
    req.set_password(password);
    SetTimestamp(env_.clock.WallNow() + ttl + kExpirationSlack, req.mutable_expiration());
    for (const std::string& s : r.creation_statements) req.mutable_statements()->add_commands(s);
    for (const std::string& s : r.rollback_statements) {
      req.mutable_rollback_statements()->add_commands(s);
    }
    req.set_credential_type(0);
    const std::string k = *key;
    Call(k, protocol::kDatabaseNewUserMethod, req.SerializeAsString(),
         [this, alive, r, role_name, ttl, password, k,
          done = std::move(done)](absl::StatusOr<std::string> reply) mutable {
           if (alive.expired()) return;
           if (!reply.ok()) {
             CloseIfShutdown(r.db_name, k, reply.status());
             return done(BareError(reply.status().message()));
           }
           v5::NewUserResponse resp;
           if (!resp.ParseFromString(*reply)) {
             return done(BareError("the database plugin sent a malformed NewUser reply"));
           }
           Json internal = {{"username", resp.username()},
                            {"role", role_name},
                            {"db_name", r.db_name},
                            {"revocation_statements", r.revocation_statements}};
           absl::StatusOr<lease::LeaseEntry> lease =
               leases_.Register(mount_.path, absl::StrCat("creds/", role_name), internal.dump(),
                                r.default_ttl, r.max_ttl);
           if (!lease.ok()) {
             // The user exists but nothing would ever revoke it: drop it now.
             v5::DeleteUserRequest del;
             del.set_username(resp.username());
             for (const std::string& s : r.revocation_statements) {
               del.mutable_statements()->add_commands(s);
             }
             Call(k, protocol::kDatabaseDeleteUserMethod, del.SerializeAsString(),
                  [](absl::StatusOr<std::string>) {});
             return done(BareError(lease.status().message()));
           }
           pb::Response out;
           out.set_data(Json{{"username", resp.username()}, {"password", password}}.dump());
           pb::Secret* secret = out.mutable_secret();
           secret->set_lease_id(lease->lease_id);
           secret->mutable_lease_options()->set_ttl(
               absl::ToInt64Nanoseconds(lease->expire_time - lease->issue_time));
           secret->mutable_lease_options()->set_maxttl(absl::ToInt64Nanoseconds(r.max_ttl));
           secret->mutable_lease_options()->set_renewable(true);
           secret->set_internal_data(internal.dump());
           done(lifecycle::Reply(std::move(out)));
         });
  });
}

// ---- Leases ----------------------------------------------------------------------------------

void DatabaseEngine::RevokeLease(const lease::LeaseEntry& lease,
                                 absl::AnyInvocable<void(absl::Status)> done) {
  auto fail = [this, &done](absl::Status s) {
    env_.executor.Post([done = std::move(done), s]() mutable { done(s); });
  };
  Json internal = Json::parse(lease.internal_data_json, nullptr, false);
  if (!internal.is_object() || !internal.contains("username") ||
      !internal["username"].is_string()) {
    return fail(absl::InternalError("error during revoke: secret has no username"));
  }
  const std::string username = internal["username"].get<std::string>();
  const std::string role_name = internal.value("role", "");
  std::string db_name;
  std::vector<std::string> statements;
  absl::StatusOr<std::optional<Role>> role = LoadRole(role_name);
  if (!role.ok()) return fail(role.status());
  if (role->has_value()) {
    db_name = (*role)->db_name;
    statements = (*role)->revocation_statements;
  } else if (internal.contains("db_name") && internal["db_name"].is_string()) {
    // The role was deleted: the lease carries what revocation needs.
    db_name = internal["db_name"].get<std::string>();
    statements = internal.value("revocation_statements", std::vector<std::string>{});
  } else {
    return fail(
        absl::InternalError(absl::StrCat("error during revoke: could not find role with name ",
                                         role_name, " or embedded revocation db name data")));
  }
  std::weak_ptr<bool> alive = alive_;
  GetConnection(db_name, [this, alive, db_name, username, statements,
                          done = std::move(done)](absl::StatusOr<std::string> key) mutable {
    if (alive.expired()) return;
    if (!key.ok()) return done(key.status());
    v5::DeleteUserRequest req;
    req.set_username(username);
    for (const std::string& s : statements) req.mutable_statements()->add_commands(s);
    const std::string k = *key;
    Call(k, protocol::kDatabaseDeleteUserMethod, req.SerializeAsString(),
         [this, alive, db_name, k, done = std::move(done)](absl::StatusOr<std::string> r) mutable {
           if (alive.expired()) return;
           if (!r.ok()) CloseIfShutdown(db_name, k, r.status());
           done(r.status());
         });
  });
}

void DatabaseEngine::RenewLease(const lease::LeaseEntry& lease, absl::Duration ttl,
                                absl::AnyInvocable<void(absl::Status)> done) {
  auto fail = [this, &done](absl::Status s) {
    env_.executor.Post([done = std::move(done), s]() mutable { done(s); });
  };
  Json internal = Json::parse(lease.internal_data_json, nullptr, false);
  const std::string role_name = internal.is_object() ? internal.value("role", "") : "";
  const std::string username = internal.is_object() ? internal.value("username", "") : "";
  absl::StatusOr<std::optional<Role>> role = LoadRole(role_name);
  if (!role.ok()) return fail(role.status());
  if (!role->has_value()) {
    return fail(absl::InternalError(
        absl::StrCat("error during renew: could not find role with name ", role_name)));
  }
  const Role r = **role;
  std::weak_ptr<bool> alive = alive_;
  GetConnection(r.db_name, [this, alive, r, username, ttl,
                            done = std::move(done)](absl::StatusOr<std::string> key) mutable {
    if (alive.expired()) return;
    if (!key.ok()) return done(key.status());
    v5::UpdateUserRequest req;
    req.set_username(username);
    SetTimestamp(env_.clock.WallNow() + ttl + kExpirationSlack,
                 req.mutable_expiration()->mutable_new_expiration());
    for (const std::string& s : r.renew_statements) {
      req.mutable_expiration()->mutable_statements()->add_commands(s);
    }
    const std::string k = *key;
    Call(k, protocol::kDatabaseUpdateUserMethod, req.SerializeAsString(),
         [this, alive, r, k, done = std::move(done)](absl::StatusOr<std::string> reply) mutable {
           if (alive.expired()) return;
           if (!reply.ok()) CloseIfShutdown(r.db_name, k, reply.status());
           done(reply.status());
         });
  });
}

// ---- The connection cache --------------------------------------------------------------------

void DatabaseEngine::Call(const std::string& key, absl::string_view method, std::string request,
                          absl::AnyInvocable<void(absl::StatusOr<std::string>)> done) {
  lifecycle_.CallDatabaseInstance(key, method, std::move(request), std::move(done));
}

void DatabaseEngine::OpenInstance(
    const Config& config, const std::string& details_json, bool verify, TerminationEvent why,
    absl::AnyInvocable<void(absl::StatusOr<std::pair<std::string, std::string>>)> done) {
  // The instance's key names the connection for logs and a fresh id, as Vault's instance UUID.
  const std::string key = absl::StrCat(mount_.path, "config/", config.name, "#", NewId());
  std::weak_ptr<bool> alive = alive_;
  const absl::Duration started = env_.clock.MonotonicNow();
  lifecycle_.OpenDatabaseInstance(
      key, config.plugin_name, config.plugin_version,
      [this, alive, key, details_json, verify, why, started,
       done = std::move(done)](absl::Status s) mutable {
        // The engine went away while the instance opened: nothing will use or close it but this.
        // (The lifecycle runs this callback, so it is still there.)
        if (alive.expired()) {
          if (s.ok())
            lifecycle_.CloseDatabaseInstance(key, TerminationEvent::kUnmount, [](auto) {});
          return;
        }
        if (!s.ok()) return done(s);
        const std::string process_us = MicrosSince(started);
        const absl::Duration initializing = env_.clock.MonotonicNow();
        v5::InitializeRequest req;
        *req.mutable_config_data() = ToStruct(Json::parse(details_json, nullptr, false));
        req.set_verify_connection(verify);
        Call(key, protocol::kDatabaseInitializeMethod, req.SerializeAsString(),
             [this, alive, key, why, process_us, initializing,
              done = std::move(done)](absl::StatusOr<std::string> r) mutable {
               if (alive.expired()) {
                 lifecycle_.CloseDatabaseInstance(key, TerminationEvent::kUnmount, [](auto) {});
                 return;
               }
               // Where an open's time goes (docs/performance.md, the rotate-root breakdown).
               Log(LogLevel::kDebug, "database instance opened",
                   {{"instance_us", process_us}, {"initialize_us", MicrosSince(initializing)}});
               v5::InitializeResponse resp;
               if (r.ok() && !resp.ParseFromString(*r)) {
                 r = absl::InternalError("the database plugin sent a malformed Initialize reply");
               }
               if (!r.ok()) {
                 CloseInstance(key, why,
                               [done = std::move(done), s = r.status()]() mutable { done(s); });
                 return;
               }
               done(std::make_pair(key, FromStruct(resp.config_data()).dump()));
             });
      });
}

void DatabaseEngine::GetConnection(const std::string& name, KeyCallback done) {
  if (auto it = connections_.find(name); it != connections_.end()) {
    if (it->second.rotating) {
      // rotate-root holds the instance's write lock: wait for it, then look again.
      it->second.after_rotation.push_back(
          [this, alive = std::weak_ptr<bool>(alive_), name, done = std::move(done)]() mutable {
            if (alive.expired()) return;
            GetConnection(name, std::move(done));
          });
      return;
    }
    env_.executor.Post([done = std::move(done), key = it->second.key]() mutable { done(key); });
    return;
  }
  std::vector<KeyCallback>& waiting = connecting_[name];
  waiting.push_back(std::move(done));
  if (waiting.size() > 1) return;  // Another request is connecting it already.
  auto finish = [this, name](absl::StatusOr<std::string> key) {
    std::vector<KeyCallback> waiters = std::move(connecting_[name]);
    connecting_.erase(name);
    for (KeyCallback& w : waiters) w(key);
  };
  absl::StatusOr<std::optional<Config>> config = LoadConfig(name);
  if (!config.ok() || !config->has_value()) {
    absl::Status s = config.ok()
                         ? absl::NotFoundError(absl::StrCat(
                               "failed to find entry for connection with name: \"", name, "\""))
                         : config.status();
    env_.executor.Post([finish, s]() mutable { finish(s); });
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  const uint64_t generation = changes_[name].generation;
  // Vault's GetConnection always verifies.
  OpenInstance(**config, (*config)->connection_details.dump(), /*verify=*/true,
               TerminationEvent::kConnectionChange,
               [this, alive, name, generation,
                finish](absl::StatusOr<std::pair<std::string, std::string>> opened) mutable {
                 if (alive.expired()) return;
                 if (!opened.ok()) return finish(opened.status());
                 const Changes& changes = changes_[name];
                 if (changes.generation != generation) {
                   // Cleared or replaced while it opened (a config write or delete, a reset, a
                   // reload, a rollback, an unmount): this instance may hold what that event ended.
                   // It is closed as that event's, and its waiters look again.
                   std::vector<KeyCallback> waiters = std::move(connecting_[name]);
                   connecting_.erase(name);
                   CloseInstance(opened->first, changes.last,
                                 [this, alive, name, waiters = std::move(waiters)]() mutable {
                                   if (alive.expired()) return;
                                   for (KeyCallback& w : waiters) GetConnection(name, std::move(w));
                                 });
                   return;
                 }
                 connections_[name].key = opened->first;
                 finish(opened->first);
               });
}

void DatabaseEngine::Changed(const std::string& name, TerminationEvent why) {
  Changes& c = changes_[name];
  ++c.generation;
  c.last = why;
}

void DatabaseEngine::CloseInstance(const std::string& key, TerminationEvent why,
                                   absl::AnyInvocable<void()> done) {
  std::weak_ptr<bool> alive = alive_;
  lifecycle_.CloseDatabaseInstance(key, why, [alive, done = std::move(done)](absl::Status) mutable {
    if (alive.expired()) return;
    done();
  });
}

void DatabaseEngine::ClearConnection(const std::string& name, TerminationEvent why,
                                     absl::AnyInvocable<void()> done) {
  Changed(name, why);
  auto it = connections_.find(name);
  if (it == connections_.end()) {
    env_.executor.Post(std::move(done));
    return;
  }
  const std::string key = it->second.key;
  std::vector<absl::AnyInvocable<void()>> waiters = std::move(it->second.after_rotation);
  connections_.erase(it);
  for (auto& w : waiters) env_.executor.Post(std::move(w));
  CloseInstance(key, why, std::move(done));
}

void DatabaseEngine::CloseIfShutdown(const std::string& name, const std::string& key,
                                     const absl::Status& s) {
  if (s.code() != absl::StatusCode::kUnavailable ||
      !absl::StartsWith(s.message(), "plugin shutdown")) {
    return;
  }
  if (auto it = connections_.find(name); it != connections_.end() && it->second.key == key) {
    // Requests waiting for a rotation on this connection go on (found by the simulator: a
    // rotation whose plugin hung left a creds request waiting forever).
    std::vector<absl::AnyInvocable<void()>> waiters = std::move(it->second.after_rotation);
    connections_.erase(it);
    for (auto& w : waiters) env_.executor.Post(std::move(w));
  }
  CloseInstance(key, TerminationEvent::kPluginShutdown, [] {});
}

void DatabaseEngine::Cleanup(TerminationEvent why, absl::AnyInvocable<void()> done) {
  std::set<std::string> names;  // Cached, or being opened (closed when the open completes).
  for (const auto& [name, c] : connections_) names.insert(name);
  for (const auto& [name, w] : connecting_) names.insert(name);
  auto left = std::make_shared<size_t>(names.size() + 1);
  std::weak_ptr<bool> alive = alive_;
  // Then the plugin processes the lifecycle kept idle after earlier closes stop too: the
  // engine is going away (unmount), so nothing of it keeps a process up.
  auto shared_done =
      std::make_shared<absl::AnyInvocable<void()>>([this, alive, done = std::move(done)]() mutable {
        if (alive.expired()) return done();
        lifecycle_.StopIdleDatabaseProcesses(std::move(done));
      });
  auto one = [left, shared_done]() {
    if (--*left == 0) (*shared_done)();
  };
  for (const std::string& name : names) ClearConnection(name, why, one);
  one();
}

// ---- rotate-root/:name -----------------------------------------------------------------------

namespace {

// The time each step of a rotation took, logged at debug level when it ends (where the time
// goes: docs/performance.md, "Database rotate-root breakdown").
struct StepTimes {
  absl::Duration last;
  std::vector<std::pair<std::string, std::string>> fields;
  void Step(const char* name, absl::Duration now) {
    fields.emplace_back(name, absl::StrCat(absl::ToInt64Microseconds(now - last)));
    last = now;
  }
};

}  // namespace

void DatabaseEngine::RotateRoot(const std::string& name, lifecycle::ResponseCallback done) {
  auto fail = [this, &done](absl::Status s) {
    env_.executor.Post([done = std::move(done), s]() mutable { done(s); });
  };
  // 1-2. The config and its root credentials.
  absl::StatusOr<std::optional<Config>> loaded = LoadConfig(name);
  if (!loaded.ok()) return fail(loaded.status());
  if (!loaded->has_value()) {
    return fail(
        BareError(absl::StrCat("failed to find entry for connection with name: \"", name, "\"")));
  }
  Config config = **loaded;
  const std::string username = config.Detail("username");
  const std::string old_password = config.Detail("password");
  if (username.empty()) {
    return fail(BareError("unable to rotate root credentials: no username in configuration"));
  }
  if (old_password.empty()) {
    return fail(BareError("unable to rotate root credentials: no password in configuration"));
  }
  std::weak_ptr<bool> alive = alive_;
  auto times = std::make_shared<StepTimes>();
  times->last = env_.clock.MonotonicNow();
  // 3. The connection.
  GetConnection(name, [this, alive, name, config, username, old_password, times,
                       done = std::move(done)](absl::StatusOr<std::string> key) mutable {
    if (alive.expired()) return;
    if (!key.ok()) return done(BareError(key.status().message()));
    times->Step("connection_us", env_.clock.MonotonicNow());
    const std::string k = *key;
    // The connection is handed over asynchronously: another rotation may have taken its lock
    // since, or an event cleared it. Then wait for that rotation (or not) and start over, so the
    // config (the old password the WAL records) is read under the lock, never before it (found
    // by the simulator, seed 6492 of the rotation scenario: two rotate-roots on one connection
    // ran at once and the stored root credential stopped logging in).
    auto it = connections_.find(name);
    if (it == connections_.end() || it->second.key != k || it->second.rotating) {
      auto again = [this, alive, name, done = std::move(done)]() mutable {
        if (alive.expired()) return;
        RotateRoot(name, std::move(done));
      };
      if (it != connections_.end() && it->second.rotating) {
        it->second.after_rotation.push_back(std::move(again));
      } else {
        env_.executor.Post(std::move(again));
      }
      return;
    }
    absl::StatusOr<std::optional<Config>> reloaded = LoadConfig(name);
    if (!reloaded.ok()) return done(reloaded.status());
    if (!reloaded->has_value() || (*reloaded)->Detail("username") != username ||
        (*reloaded)->Detail("password") != old_password) {
      // Changed between the first read and the lock: start over on what is stored now.
      env_.executor.Post([this, alive, name, done = std::move(done)]() mutable {
        if (alive.expired()) return;
        RotateRoot(name, std::move(done));
      });
      return;
    }
    config = **reloaded;
    // 4. The write lock, and the deferred cleanup that runs on every exit from here: the
    // instance used is closed and uncached, then waiting requests go on.
    it->second.rotating = true;
    auto shared_done = std::make_shared<lifecycle::ResponseCallback>(std::move(done));
    auto finish = [this, alive, name, k, shared_done, times](absl::StatusOr<lifecycle::Reply> r) {
      if (alive.expired()) return;
      std::vector<absl::AnyInvocable<void()>> waiters;
      if (auto it = connections_.find(name); it != connections_.end() && it->second.key == k) {
        waiters = std::move(it->second.after_rotation);
        connections_.erase(it);
      }
      // A planted bug for the simulator's drill: the rotation's instance is uncached but never
      // closed, so it keeps its database session (and the process it lives in).
      if (BW_PLANTED_BUG_IN(env_.failpoints, "bug.database.keep_instance_on_rotation")) {
        for (auto& w : waiters) w();
        return (*shared_done)(std::move(r));
      }
      CloseInstance(k, TerminationEvent::kRootRotation,
                    [this, alive, name, times, waiters = std::move(waiters), shared_done,
                     r = std::move(r)]() mutable {
                      if (alive.expired()) return;
                      times->Step("close_us", env_.clock.MonotonicNow());
                      times->fields.emplace_back("connection", name);
                      Log(LogLevel::kDebug, "rotate-root timing", std::move(times->fields));
                      const bool rotated = r.ok();
                      for (auto& w : waiters) w();
                      (*shared_done)(std::move(r));
                      // The closed instance's successor, opened now with the stored (new) password,
                      // so the next request finds it ready; a request that comes first joins this
                      // open. A failed rotation leaves it to the next request, as Vault does.
                      if (rotated && options_.reopen_after_rotation) {
                        GetConnection(name, [](absl::StatusOr<std::string>) {});
                      }
                    });
    };
    // 5-6. The new password, in memory.
    const std::string new_password = NewPassword();
    config.connection_details["password"] = new_password;
    // 7. The WAL, before anything changes in the database.
    const std::string wal_key = absl::StrCat(kWalPrefix, NewId());
    Json wal = {{"type", kRotateRootWalKind},
                {"data",
                 {{"ConnectionName", name},
                  {"UserName", username},
                  {"OldPassword", old_password},
                  {"NewPassword", new_password}}},
                {"created_at", absl::ToUnixSeconds(env_.clock.WallNow())}};
    absl::Status put = BW_FAILPOINT_STATUS_IN(env_.failpoints, "database.rotate_root.wal_put");
    // A planted bug for the rollback tests: the rotation runs with no WAL to recover from.
    const bool skip_wal =
        static_cast<bool>(BW_PLANTED_BUG_IN(env_.failpoints, "bug.database.rotate_without_wal"));
    if (put.ok() && !skip_wal) put = storage_.Put(wal_key, wal.dump());
    times->Step("wal_put_us", env_.clock.MonotonicNow());
    if (!put.ok()) return finish(put);
    // 8. UpdateUser on the root user.
    faultinject::Action before =
        BW_FAILPOINT_IN(env_.failpoints, "database.rotate_root.before_update_user");
    if (AtFailpoint(before) == Step::kStop) return;
    if (AtFailpoint(before) == Step::kFail) {
      return finish(BareError(
          absl::StrCat("failed to update user: ",
                       before.ToStatus("database.rotate_root.before_update_user").message())));
    }
    v5::UpdateUserRequest req;
    req.set_username(username);
    req.set_credential_type(0);
    req.mutable_password()->set_new_password(new_password);
    for (const std::string& s : config.root_rotation_statements) {
      req.mutable_password()->mutable_statements()->add_commands(s);
    }
    Call(
        k, protocol::kDatabaseUpdateUserMethod, req.SerializeAsString(),
        [this, alive, name, config, wal_key, finish, times](absl::StatusOr<std::string> r) mutable {
          if (alive.expired()) return;
          times->Step("update_user_us", env_.clock.MonotonicNow());
          // Applied, but the reply is lost (a timeout): the WAL stays for the rollback.
          faultinject::Action lost =
              BW_FAILPOINT_IN(env_.failpoints, "database.rotate_root.update_user_reply");
          if (AtFailpoint(lost) == Step::kStop) return;
          if (r.ok() && AtFailpoint(lost) == Step::kFail) {
            r = lost.ToStatus("database.rotate_root.update_user_reply");
          }
          if (!r.ok()) {
            return finish(BareError(absl::StrCat("failed to update user: ", r.status().message())));
          }
          // 10. The new password in storage.
          faultinject::Action store =
              BW_FAILPOINT_IN(env_.failpoints, "database.rotate_root.store_config");
          if (AtFailpoint(store) == Step::kStop) return;
          absl::Status stored = AtFailpoint(store) == Step::kFail
                                    ? store.ToStatus("database.rotate_root.store_config")
                                    : StoreConfig(name, config);
          times->Step("store_config_us", env_.clock.MonotonicNow());
          if (!stored.ok()) return finish(stored);
          // 11. The WAL is done with; failing to delete it is only a warning.
          faultinject::Action del =
              BW_FAILPOINT_IN(env_.failpoints, "database.rotate_root.delete_wal");
          if (AtFailpoint(del) == Step::kStop) return;
          absl::Status deleted = AtFailpoint(del) == Step::kFail
                                     ? del.ToStatus("database.rotate_root.delete_wal")
                                     : storage_.Delete(wal_key);
          times->Step("delete_wal_us", env_.clock.MonotonicNow());
          if (!deleted.ok()) {
            Log(LogLevel::kWarn, "unable to delete WAL",
                {{"connection", name}, {"error", deleted.ToString()}});
          }
          Log(LogLevel::kInfo, "root credentials rotated", {{"connection", name}});
          finish(lifecycle::Reply());
        });
  });
}

// ---- Rollback --------------------------------------------------------------------------------

void DatabaseEngine::Rollback(bool immediate, absl::AnyInvocable<void(absl::Status)> done) {
  if (rolling_back_) {
    env_.executor.Post([done = std::move(done)]() mutable { done(absl::OkStatus()); });
    return;
  }
  absl::StatusOr<std::vector<std::string>> keys = storage_.List(kWalPrefix);
  if (!keys.ok()) {
    env_.executor.Post([done = std::move(done), s = keys.status()]() mutable { done(s); });
    return;
  }
  rolling_back_ = true;
  rollback_done_ = std::move(done);
  std::weak_ptr<bool> alive = alive_;
  env_.executor.Post([this, alive, keys = std::move(*keys), immediate]() mutable {
    if (alive.expired()) return;
    RollbackNext(std::move(keys), 0, immediate, absl::OkStatus(), [this, alive](absl::Status s) {
      if (alive.expired()) return;
      rolling_back_ = false;
      absl::AnyInvocable<void(absl::Status)> done = std::move(rollback_done_);
      rollback_done_ = nullptr;
      if (done) done(s);
    });
  });
}

void DatabaseEngine::RollbackNext(std::vector<std::string> keys, size_t i, bool immediate,
                                  absl::Status first, absl::AnyInvocable<void(absl::Status)> done) {
  const absl::Time min_created = env_.clock.WallNow() - options_.rollback_min_age;
  for (; i < keys.size(); ++i) {
    absl::StatusOr<std::optional<std::string>> raw = storage_.Get(keys[i]);
    if (!raw.ok()) {
      if (first.ok()) first = raw.status();
      continue;
    }
    if (!raw->has_value()) continue;
    Json wal = Json::parse(**raw, nullptr, false);
    const int64_t created = wal.is_object() ? wal.value("created_at", int64_t{0}) : 0;
    const absl::Duration now = env_.clock.MonotonicNow();
    const absl::Duration known_for = now - wal_first_seen_.try_emplace(keys[i], now).first->second;
    if (!immediate && absl::FromUnixSeconds(created) > min_created &&
        known_for < options_.rollback_min_age) {
      continue;  // Too young by both clocks.
    }
    break;
  }
  if (i == keys.size()) return done(first);
  const std::string key = keys[i];
  std::weak_ptr<bool> alive = alive_;
  RollbackRootWal(**storage_.Get(key), [this, alive, key, keys = std::move(keys), i, immediate,
                                        first, done = std::move(done)](absl::Status s) mutable {
    if (alive.expired()) return;
    if (s.ok()) s = storage_.Delete(key);
    if (s.ok()) wal_first_seen_.erase(key);
    if (!s.ok()) {
      Log(LogLevel::kWarn, "WAL rollback failed; retried at the next pass",
          {{"wal", key}, {"error", s.ToString()}});
      if (first.ok()) first = s;
    } else {
      Log(LogLevel::kInfo, "WAL rolled back", {{"wal", key}});
    }
    RollbackNext(std::move(keys), i + 1, immediate, first, std::move(done));
  });
}

void DatabaseEngine::RollbackRootWal(const std::string& wal_json,
                                     absl::AnyInvocable<void(absl::Status)> done) {
  auto fail = [this, &done](absl::Status s) {
    env_.executor.Post([done = std::move(done), s]() mutable { done(s); });
  };
  Json wal = Json::parse(wal_json, nullptr, false);
  if (!wal.is_object() || wal.value("type", "") != kRotateRootWalKind) {
    return fail(absl::InvalidArgumentError("unknown type to rollback"));
  }
  const Json data = wal.value("data", Json::object());
  const std::string name = data.value("ConnectionName", "");
  const std::string username = data.value("UserName", "");
  const std::string old_password = data.value("OldPassword", "");
  const std::string new_password = data.value("NewPassword", "");
  absl::StatusOr<std::optional<Config>> loaded = LoadConfig(name);
  if (!loaded.ok()) return fail(loaded.status());
  if (!loaded->has_value()) {
    return fail(absl::NotFoundError(
        absl::StrCat("failed to find entry for connection with name: \"", name, "\"")));
  }
  const Config config = **loaded;
  // 3. Storage already holds the new password: only the WAL delete had failed.
  if (config.Detail("password") == new_password) return fail(absl::OkStatus());
  std::weak_ptr<bool> alive = alive_;
  // 4.1-4.2. Reconnect with the stored (old) password; if that works the database still has it.
  ClearConnection(
      name, TerminationEvent::kWalRollback,
      [this, alive, name, config, username, old_password, new_password,
       done = std::move(done)]() mutable {
        if (alive.expired()) return;
        GetConnection(name, [this, alive, name, config, username, old_password, new_password,
                             done = std::move(done)](absl::StatusOr<std::string> key) mutable {
          if (alive.expired()) return;
          if (key.ok()) return done(absl::OkStatus());
          // 4.3. The database has the new password: log in with it and set the old one back.
          Json details = config.connection_details;
          details["password"] = new_password;
          OpenInstance(config, details.dump(), /*verify=*/true, TerminationEvent::kWalRollback,
                       [this, alive, name, config, username, old_password, done = std::move(done)](
                           absl::StatusOr<std::pair<std::string, std::string>> opened) mutable {
                         if (alive.expired()) return;
                         if (!opened.ok()) return done(opened.status());
                         const std::string k = opened->first;
                         // Cached under the name, then cleared on return.
                         Changed(name, TerminationEvent::kWalRollback);
                         connections_[name].key = k;
                         v5::UpdateUserRequest req;
                         req.set_username(username);
                         req.set_credential_type(0);
                         req.mutable_password()->set_new_password(old_password);
                         for (const std::string& s : config.root_rotation_statements) {
                           req.mutable_password()->mutable_statements()->add_commands(s);
                         }
                         Call(k, protocol::kDatabaseUpdateUserMethod, req.SerializeAsString(),
                              [this, alive, name,
                               done = std::move(done)](absl::StatusOr<std::string> r) mutable {
                                if (alive.expired()) return;
                                absl::Status s = r.status();
                                if (s.code() == absl::StatusCode::kUnimplemented)
                                  s = absl::OkStatus();
                                ClearConnection(name, TerminationEvent::kWalRollback,
                                                [done = std::move(done), s]() mutable { done(s); });
                              });
                       });
        });
      });
}

}  // namespace bulwark::database
