// PostgresDatabase: one kept libpq connection, statements in one transaction each call.
#include "examples/postgres/postgres.h"

#include <postgresql/libpq-fe.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "base/status/status_macros.h"

namespace bulwark::examples::postgres {
namespace {

constexpr char kBase62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr char kRedacted[] = "[password]";

absl::Status ConfigError(absl::string_view key, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(key, " ", problem));
}

absl::StatusOr<std::string> StringField(const nlohmann::json& config, const char* key) {
  if (!config.contains(key) || config.at(key).is_null()) return std::string();
  if (!config.at(key).is_string()) return ConfigError(key, "must be a string");
  return config.at(key).get<std::string>();
}

absl::StatusOr<bool> BoolField(const nlohmann::json& config, const char* key) {
  if (!config.contains(key) || config.at(key).is_null()) return false;
  const nlohmann::json& v = config.at(key);
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) {
    const std::string s = absl::AsciiStrToLower(v.get<std::string>());
    if (s == "true" || s == "1") return true;
    if (s == "false" || s == "0" || s.empty()) return false;
  }
  return ConfigError(key, "must be a boolean");
}

bool IsUri(absl::string_view url) {
  return absl::StartsWith(url, "postgresql://") || absl::StartsWith(url, "postgres://");
}

std::string PercentEncode(absl::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppend(&out, "%", absl::string_view(&"0123456789ABCDEF"[c >> 4], 1),
                      absl::string_view(&"0123456789ABCDEF"[c & 15], 1));
    }
  }
  return out;
}

std::string ConninfoQuote(absl::string_view text) {
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"\\", "\\\\"}, {"'", "\\'"}}), "'");
}

absl::Status CheckName(absl::string_view name, absl::string_view what) {
  if (name.size() > kIdentifierBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is longer than ", kIdentifierBytesMax,
                                                   " bytes (PostgreSQL's identifier limit)"));
  }
  if (name.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, " contains a NUL byte"));
  }
  return absl::OkStatus();
}

absl::Status CheckPassword(absl::string_view password) {
  if (password.empty()) return absl::InvalidArgumentError("missing password");
  if (password.size() > kPasswordBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("password is longer than ", kPasswordBytesMax, " bytes"));
  }
  if (password.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("password contains a NUL byte");
  }
  return absl::OkStatus();
}

absl::Status CheckStatements(const std::vector<std::string>& statements) {
  if (statements.size() > kStatementsMax) {
    return absl::InvalidArgumentError(absl::StrCat("more than ", kStatementsMax, " statements"));
  }
  for (const std::string& s : statements) {
    if (s.size() > kStatementBytesMax) {
      return absl::InvalidArgumentError(
          absl::StrCat("a statement is longer than ", kStatementBytesMax, " bytes"));
    }
  }
  return absl::OkStatus();
}

absl::StatusCode CodeForSqlState(absl::string_view state) {
  if (state == "42704") return absl::StatusCode::kNotFound;       // undefined_object
  if (state == "42710") return absl::StatusCode::kAlreadyExists;  // duplicate_object
  if (state == "42501") return absl::StatusCode::kPermissionDenied;
  if (state == "2BP01") return absl::StatusCode::kFailedPrecondition;  // dependent objects
  if (absl::StartsWith(state, "08")) return absl::StatusCode::kUnavailable;
  if (absl::StartsWith(state, "42")) return absl::StatusCode::kInvalidArgument;
  return absl::StatusCode::kInternal;
}

std::string Trimmed(const char* text) {
  return std::string(absl::StripAsciiWhitespace(text == nullptr ? "" : text));
}

std::string Expiration(const std::optional<absl::Time>& when) {
  if (!when.has_value()) return "infinity";
  return absl::FormatTime(kExpirationFormat, *when, absl::UTCTimeZone());
}

}  // namespace

std::string TruncateUtf8(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t end = max_bytes;
  // Back off over continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end));
}

std::string DefaultUsername(const sdk::UsernameMetadata& metadata, Random& random, absl::Time now) {
  std::string suffix;
  for (size_t i = 0; i < kUsernameRandomChars; ++i) suffix += kBase62[random.Uniform(62)];
  return TruncateUtf8(absl::StrCat("v-", TruncateUtf8(metadata.display_name, kUsernamePartBytesMax),
                                   "-", TruncateUtf8(metadata.role_name, kUsernamePartBytesMax),
                                   "-", suffix, "-", absl::ToUnixSeconds(now)),
                      kIdentifierBytesMax);
}

std::string ExpandConnectionUrl(absl::string_view url, absl::string_view username,
                                absl::string_view password, bool disable_escaping) {
  std::string user(username);
  std::string pass(password);
  if (!disable_escaping) {
    if (IsUri(url)) {
      user = PercentEncode(username);
      pass = PercentEncode(password);
    } else {
      user = ConninfoQuote(username);
      pass = ConninfoQuote(password);
    }
  }
  return absl::StrReplaceAll(url, {{"{{username}}", user}, {"{{password}}", pass}});
}

PostgresDatabase::PostgresDatabase(Clock& clock, Random& random, LogSink* log)
    : clock_(clock), random_(random), log_(log) {}

PostgresDatabase::~PostgresDatabase() { Disconnect(); }

absl::Status PostgresDatabase::CheckOpen() const {
  if (closed_) return absl::FailedPreconditionError("the connection is closed");
  if (!initialized_) return absl::FailedPreconditionError("the connection is not initialized");
  return absl::OkStatus();
}

void PostgresDatabase::Disconnect() {
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = nullptr;
}

std::string PostgresDatabase::Sanitize(std::string text) const {
  std::vector<std::string> secrets = call_secrets_;
  if (!config_.password.empty()) {
    secrets.push_back(config_.password);
    secrets.push_back(PercentEncode(config_.password));
    secrets.push_back(ConninfoQuote(config_.password));
  }
  // Longest first, so a secret that contains another is replaced whole.
  std::sort(secrets.begin(), secrets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& secret : secrets) {
    if (!secret.empty()) absl::StrReplaceAll({{secret, kRedacted}}, &text);
  }
  return text;
}

absl::StatusOr<sdk::InitializeResponse> PostgresDatabase::Initialize(
    const sdk::InitializeRequest& request) {
  if (closed_) return absl::FailedPreconditionError("the connection is closed");
  const nlohmann::json& c = request.config;
  Config config;
  ASSIGN_OR_RETURN(config.connection_url, StringField(c, "connection_url"));
  if (config.connection_url.empty()) {
    return absl::InvalidArgumentError("connection_url cannot be empty");
  }
  ASSIGN_OR_RETURN(config.username, StringField(c, "username"));
  ASSIGN_OR_RETURN(config.password, StringField(c, "password"));
  for (const std::string* value : {&config.username, &config.password}) {
    if (absl::StrContains(*value, "{{username}}") || absl::StrContains(*value, "{{password}}")) {
      return absl::InvalidArgumentError(
          "username and/or password cannot contain the template "
          "variables");
    }
  }
  RETURN_IF_ERROR(CheckName(config.username, "username"));
  ASSIGN_OR_RETURN(config.disable_escaping, BoolField(c, "disable_escaping"));
  ASSIGN_OR_RETURN(std::string auth, StringField(c, "password_authentication"));
  if (auth == "scram-sha-256") {
    config.scram_in_plugin = true;
  } else if (!auth.empty() && auth != "password") {
    return ConfigError("password_authentication", "must be \"password\" or \"scram-sha-256\"");
  }
  ASSIGN_OR_RETURN(std::string username_template, StringField(c, "username_template"));
  if (!username_template.empty()) {
    ASSIGN_OR_RETURN(config.username_template, UsernameTemplate::Parse(username_template));
    // As Vault: render it once with empty metadata, so a template that cannot work fails now.
    RETURN_IF_ERROR(config.username_template->Render({}, random_, clock_.WallNow()).status());
  }
  Disconnect();
  config_ = std::move(config);
  initialized_ = true;
  if (request.verify_connection) {
    absl::StatusOr<PGconn*> conn = Connection();
    if (!conn.ok()) {
      initialized_ = false;
      return absl::Status(conn.status().code(),
                          absl::StrCat("error verifying connection: ", conn.status().message()));
    }
    if (absl::Status ping = Exec(*conn, "SELECT 1", "verify"); !ping.ok()) {
      initialized_ = false;
      Disconnect();
      return absl::Status(ping.code(),
                          absl::StrCat("error verifying connection: ", ping.message()));
    }
  }
  sdk::InitializeResponse response;
  response.config = request.config.is_null() ? nlohmann::json::object() : request.config;
  return response;
}

absl::StatusOr<PGconn*> PostgresDatabase::Connection() {
  // PQconsumeInput reads what the server sent while the connection was idle without waiting:
  // a server that ended the session (restart, pg_terminate_backend) has sent its FATAL and
  // closed, so the kept connection is seen broken here, before a call is sent into it.
  if (conn_ != nullptr && PQconsumeInput(conn_) == 1 && PQstatus(conn_) == CONNECTION_OK) {
    return conn_;
  }
  Disconnect();
  const std::string url = ExpandConnectionUrl(config_.connection_url, config_.username,
                                              config_.password, config_.disable_escaping);
  const std::string timeout = absl::StrCat(kConnectTimeoutDefaultSeconds);
  // Later keywords win: the connection_url may set its own connect_timeout.
  const char* keys[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), "bulwark-postgres-plugin", url.c_str(), nullptr};
  conn_ = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn_ == nullptr)
    return absl::ResourceExhaustedError("libpq could not allocate a connection");
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string message = Sanitize(Trimmed(PQerrorMessage(conn_)));
    Disconnect();
    return absl::UnavailableError(absl::StrCat("cannot connect to PostgreSQL: ", message));
  }
  if (log_ != nullptr) {
    LogRecord record;
    record.level = LogLevel::kDebug;
    record.message = "connected to PostgreSQL";
    record.fields = {{"user", PQuser(conn_)}, {"database", PQdb(conn_)}};
    log_->Write(record);
  }
  return conn_;
}

absl::StatusOr<std::string> PostgresDatabase::Quote(absl::string_view value, QuoteAs quote_as) {
  if (value.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("a template value contains a NUL byte");
  }
  ASSIGN_OR_RETURN(PGconn * conn, Connection());
  char* quoted = quote_as == QuoteAs::kIdentifier
                     ? PQescapeIdentifier(conn, value.data(), value.size())
                     : PQescapeLiteral(conn, value.data(), value.size());
  if (quoted == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("a template value cannot be quoted: ",
                                                   Sanitize(Trimmed(PQerrorMessage(conn)))));
  }
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

absl::Status PostgresDatabase::ResultError(const PGresult* result, absl::string_view what) const {
  const std::string state = Trimmed(PQresultErrorField(result, PG_DIAG_SQLSTATE));
  std::string primary = Trimmed(PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY));
  if (primary.empty()) primary = Trimmed(PQresultErrorMessage(result));
  return absl::Status(CodeForSqlState(state),
                      absl::StrCat(what, ": ", Sanitize(primary),
                                   state.empty() ? "" : absl::StrCat(" (SQLSTATE ", state, ")")));
}

absl::Status PostgresDatabase::Exec(PGconn* conn, const std::string& query,
                                    absl::string_view what) {
  PGresult* result = PQexec(conn, query.c_str());
  const ExecStatusType status = PQresultStatus(result);
  absl::Status out;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) out = ResultError(result, what);
  PQclear(result);
  if (!out.ok() && PQstatus(conn) != CONNECTION_OK) {
    out = absl::UnavailableError(out.message());
    Disconnect();
  }
  return out;
}

absl::Status PostgresDatabase::RunInTransaction(const std::vector<std::string>& statements,
                                                const TemplateVars& vars) {
  RETURN_IF_ERROR(CheckStatements(statements));
  std::vector<std::string> queries;
  const Quoter quote = [this](absl::string_view value, QuoteAs quote_as) {
    return Quote(value, quote_as);
  };
  for (const std::string& statement : statements) {
    ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitStatement(statement));
    for (const std::string& part : parts) {
      ASSIGN_OR_RETURN(std::string query, ExpandQuery(part, vars, quote));
      queries.push_back(std::move(query));
    }
  }
  ASSIGN_OR_RETURN(PGconn * conn, Connection());
  return RunPipelined(conn, queries);
}

absl::Status PostgresDatabase::RunPipelined(PGconn* conn, const std::vector<std::string>& queries) {
  // BEGIN, the queries and COMMIT go out together (libpq's pipeline mode: one round trip); the
  // server skips everything after the first error up to the sync, and we roll back.
  std::vector<std::string> all = {"BEGIN"};
  all.insert(all.end(), queries.begin(), queries.end());
  all.push_back("COMMIT");
  auto what = [&](size_t i) {
    if (i == 0) return std::string("BEGIN");
    if (i + 1 == all.size()) return std::string("COMMIT");
    return absl::StrCat("query ", i, " of ", queries.size(), " failed");
  };
  auto broken = [&](absl::string_view step) {
    absl::Status status = absl::UnavailableError(absl::StrCat(
        step, ": the connection to PostgreSQL failed: ", Sanitize(Trimmed(PQerrorMessage(conn)))));
    Disconnect();
    return status;
  };
  if (PQenterPipelineMode(conn) != 1) return broken("pipeline mode");
  for (const std::string& query : all) {
    if (PQsendQueryParams(conn, query.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) != 1) {
      return broken("send");
    }
  }
  if (PQpipelineSync(conn) != 1) return broken("sync");
  absl::Status first_error;
  for (size_t i = 0; i < all.size(); ++i) {
    // Each query's results end with a null result.
    while (PGresult* result = PQgetResult(conn)) {
      const ExecStatusType status = PQresultStatus(result);
      if (status == PGRES_FATAL_ERROR && first_error.ok())
        first_error = ResultError(result, what(i));
      PQclear(result);
    }
    if (PQstatus(conn) != CONNECTION_OK) return broken(what(i));
  }
  // Then the sync's own result.
  for (;;) {
    PGresult* result = PQgetResult(conn);
    if (result == nullptr) {
      if (PQstatus(conn) != CONNECTION_OK) return broken("sync");
      continue;
    }
    const bool sync = PQresultStatus(result) == PGRES_PIPELINE_SYNC;
    PQclear(result);
    if (sync) break;
  }
  if (PQexitPipelineMode(conn) != 1) return broken("leaving pipeline mode");
  if (!first_error.ok() && PQtransactionStatus(conn) != PQTRANS_IDLE) {
    (void)Exec(conn, "ROLLBACK", "ROLLBACK");
  }
  return first_error;
}

absl::StatusOr<std::string> PostgresDatabase::PasswordForServer(const std::string& username,
                                                                const std::string& password) {
  if (!config_.scram_in_plugin) return password;
  ASSIGN_OR_RETURN(PGconn * conn, Connection());
  char* verifier = PQencryptPasswordConn(conn, password.c_str(), username.c_str(), "scram-sha-256");
  if (verifier == nullptr) {
    return absl::InternalError(absl::StrCat("cannot hash the password (scram-sha-256): ",
                                            Sanitize(Trimmed(PQerrorMessage(conn)))));
  }
  std::string out(verifier);
  PQfreemem(verifier);
  return out;
}

absl::StatusOr<sdk::NewUserResponse> PostgresDatabase::NewUser(const sdk::NewUserRequest& request) {
  RETURN_IF_ERROR(CheckOpen());
  if (request.credential_type != sdk::CredentialType::kPassword) {
    return absl::InvalidArgumentError(
        "unsupported credential type: the PostgreSQL plugin issues passwords only");
  }
  if (request.statements.commands.empty()) {
    return absl::InvalidArgumentError("empty creation statements");
  }
  RETURN_IF_ERROR(CheckPassword(request.password));
  std::string username;
  if (config_.username_template.has_value()) {
    ASSIGN_OR_RETURN(username, config_.username_template->Render(request.username_config, random_,
                                                                 clock_.WallNow()));
    if (username.empty()) {
      return absl::InvalidArgumentError("the username template rendered an empty username");
    }
    RETURN_IF_ERROR(CheckName(username, "the username the template rendered"));
  } else {
    username = DefaultUsername(request.username_config, random_, clock_.WallNow());
  }
  call_secrets_ = {request.password};
  absl::StatusOr<std::string> password = PasswordForServer(username, request.password);
  absl::Status status = password.status();
  if (status.ok()) {
    TemplateVars vars = {{"name", {username, QuoteAs::kIdentifier}},
                         {"username", {username, QuoteAs::kIdentifier}},
                         {"password", {*password, QuoteAs::kLiteral}},
                         {"expiration", {Expiration(request.expiration), QuoteAs::kLiteral}}};
    status = RunInTransaction(request.statements.commands, vars);
  }
  call_secrets_.clear();
  if (!status.ok()) return status;
  return sdk::NewUserResponse{username};
}

absl::Status PostgresDatabase::UpdateUser(const sdk::UpdateUserRequest& request) {
  RETURN_IF_ERROR(CheckOpen());
  RETURN_IF_ERROR(CheckName(request.username, "username"));
  if (request.public_key.has_value()) {
    return absl::InvalidArgumentError("the PostgreSQL plugin does not manage public keys");
  }
  if (!request.password.has_value() && !request.expiration.has_value()) {
    return absl::InvalidArgumentError("no changes requested");
  }
  std::vector<std::string> statements;
  TemplateVars vars = {{"name", {request.username, QuoteAs::kIdentifier}},
                       {"username", {request.username, QuoteAs::kIdentifier}}};
  call_secrets_.clear();
  if (request.password.has_value()) {
    RETURN_IF_ERROR(CheckPassword(request.password->new_password));
    call_secrets_.push_back(request.password->new_password);
    absl::StatusOr<std::string> password =
        PasswordForServer(request.username, request.password->new_password);
    if (!password.ok()) {
      call_secrets_.clear();
      return password.status();
    }
    vars["password"] = {*password, QuoteAs::kLiteral};
    const std::vector<std::string>& given = request.password->statements.commands;
    if (given.empty()) {
      statements.push_back(kDefaultChangePassword);
    } else {
      statements.insert(statements.end(), given.begin(), given.end());
    }
  }
  if (request.expiration.has_value()) {
    vars["expiration"] = {Expiration(request.expiration->new_expiration), QuoteAs::kLiteral};
    const std::vector<std::string>& given = request.expiration->statements.commands;
    if (given.empty()) {
      statements.push_back(kDefaultChangeExpiration);
    } else {
      statements.insert(statements.end(), given.begin(), given.end());
    }
  }
  absl::Status status = RunInTransaction(statements, vars);
  call_secrets_.clear();
  // Root rotation: later reconnects must log in with the new password.
  if (status.ok() && request.password.has_value() && request.username == config_.username) {
    config_.password = request.password->new_password;
  }
  return status;
}

absl::Status PostgresDatabase::DeleteUser(const sdk::DeleteUserRequest& request) {
  RETURN_IF_ERROR(CheckOpen());
  RETURN_IF_ERROR(CheckName(request.username, "username"));
  if (!request.statements.commands.empty()) {
    TemplateVars vars = {{"name", {request.username, QuoteAs::kIdentifier}},
                         {"username", {request.username, QuoteAs::kIdentifier}}};
    return RunInTransaction(request.statements.commands, vars);
  }
  return DefaultRevoke(request.username);
}

absl::Status PostgresDatabase::DefaultRevoke(const std::string& username) {
  ASSIGN_OR_RETURN(PGconn * conn, Connection());
  // The schemas where the role holds privileges on the schema or on a relation in it.
  constexpr char kSchemas[] =
      "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "CROSS JOIN LATERAL aclexplode(c.relacl) a JOIN pg_roles r ON r.oid = a.grantee "
      "WHERE r.rolname = $1 "
      "UNION SELECT n.nspname FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a "
      "JOIN pg_roles r ON r.oid = a.grantee WHERE r.rolname = $1 "
      "UNION SELECT 'public' WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) "
      "ORDER BY 1";
  const char* params[] = {username.c_str()};
  PGresult* result = PQexecParams(conn, kSchemas, 1, nullptr, params, nullptr, nullptr, 0);
  if (PQresultStatus(result) != PGRES_TUPLES_OK) {
    std::string message = Sanitize(Trimmed(PQresultErrorMessage(result)));
    PQclear(result);
    return absl::InternalError(absl::StrCat("cannot list the role's privileges: ", message));
  }
  std::vector<std::string> schemas;
  for (int i = 0; i < PQntuples(result); ++i) schemas.emplace_back(PQgetvalue(result, i, 0));
  PQclear(result);
  if (schemas.empty()) return absl::OkStatus();  // No such role: already revoked.
  std::vector<std::string> statements;
  for (const std::string& schema : schemas) {
    ASSIGN_OR_RETURN(std::string s, Quote(schema, QuoteAs::kIdentifier));
    for (const char* kind : {"TABLES", "SEQUENCES", "FUNCTIONS"}) {
      statements.push_back(
          absl::StrCat("REVOKE ALL PRIVILEGES ON ALL ", kind, " IN SCHEMA ", s, " FROM {{name}}"));
    }
    statements.push_back(absl::StrCat("REVOKE ALL PRIVILEGES ON SCHEMA ", s, " FROM {{name}}"));
  }
  statements.push_back(
      "DO $bulwark$ BEGIN EXECUTE format('REVOKE ALL PRIVILEGES ON DATABASE %I FROM %I', "
      "current_database(), {{name_literal}}); END $bulwark$");
  statements.push_back("DROP ROLE IF EXISTS {{name}}");
  TemplateVars vars = {{"name", {username, QuoteAs::kIdentifier}},
                       {"name_literal", {username, QuoteAs::kLiteral}}};
  absl::Status status = RunInTransaction(statements, vars);
  if (status.code() == absl::StatusCode::kFailedPrecondition) {
    return absl::FailedPreconditionError(absl::StrCat(
        status.message(),
        "; the role still owns objects or holds privileges the default revocation does not "
        "remove: give revocation statements, e.g. REASSIGN OWNED BY \"{{name}}\" TO <owner>; "
        "DROP OWNED BY \"{{name}}\"; DROP ROLE \"{{name}}\""));
  }
  return status;
}

absl::Status PostgresDatabase::Close() {
  Disconnect();
  closed_ = true;
  return absl::OkStatus();
}

sdk::DatabaseFactory PostgresFactory(Clock& clock, Random& random) {
  return
      [&clock, &random](
          const sdk::DatabaseContext& context) -> absl::StatusOr<std::unique_ptr<sdk::Database>> {
        return std::unique_ptr<sdk::Database>(new PostgresDatabase(clock, random, context.log));
      };
}

}  // namespace bulwark::examples::postgres
