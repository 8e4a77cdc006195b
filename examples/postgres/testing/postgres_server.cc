// PostgresServer: runs postgres_server.sh from the runfiles and talks libpq to the result.
#include "examples/postgres/testing/postgres_server.h"

#include <postgresql/libpq-fe.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace bulwark::examples::postgres::testing {
namespace {

constexpr char kScriptRelative[] = "bulwark/examples/postgres/testing/postgres_server.sh";
// Most output read from the script (its settings, or its logs on failure).
constexpr size_t kScriptOutputBytesMax = 1 << 20;

bool IsExecutable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

// Runs `command` through the shell; its stdout and stderr, and whether it exited 0.
absl::StatusOr<std::string> RunScript(const std::string& command) {
  FILE* pipe = ::popen(absl::StrCat(command, " 2>&1").c_str(), "r");
  if (pipe == nullptr) return absl::InternalError(absl::StrCat("popen failed: ", command));
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = ::fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    if (output.size() < kScriptOutputBytesMax) output.append(buffer, n);
  }
  const int status = ::pclose(pipe);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(command, " failed (status ", status, "):\n", output));
  }
  return output;
}

// Single-quotes `text` for the shell.
std::string ShellQuote(absl::string_view text) {
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"'", "'\\''"}}), "'");
}

// A libpq connection from keyword/value pairs (no conninfo string, so nothing needs quoting).
PGconn* ConnectAs(const std::string& host, int port, const std::string& database,
                  absl::string_view user, absl::string_view password) {
  const std::string port_text = absl::StrCat(port);
  const std::string user_text(user);
  const std::string password_text(password);
  const char* keys[] = {"host", "port", "dbname", "user", "password", "connect_timeout", nullptr};
  const char* values[] = {host.c_str(),
                          port_text.c_str(),
                          database.c_str(),
                          user_text.c_str(),
                          password_text.c_str(),
                          "60",
                          nullptr};
  return PQconnectdbParams(keys, values, /*expand_dbname=*/0);
}

std::string ConnectionError(PGconn* conn) {
  return std::string(absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn)));
}

}  // namespace

absl::StatusOr<std::string> PostgresServerScript() {
  std::vector<std::string> roots;
  if (const char* srcdir = std::getenv("TEST_SRCDIR"); srcdir != nullptr) roots.push_back(srcdir);
  if (const char* runfiles = std::getenv("RUNFILES_DIR"); runfiles != nullptr) {
    roots.push_back(runfiles);
  }
  char self[4096];
  const ssize_t len = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len > 0) roots.push_back(absl::StrCat(std::string(self, len), ".runfiles"));
  for (const std::string& root : roots) {
    const std::string path = absl::StrCat(root, "/", kScriptRelative);
    if (IsExecutable(path)) return path;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("cannot find ", kScriptRelative,
                   " in the runfiles: add //examples/postgres/testing:postgres_server.sh to "
                   "the target's data"));
}

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start() {
  absl::StatusOr<std::string> script = PostgresServerScript();
  if (!script.ok()) return script.status();
  absl::StatusOr<std::string> output = RunScript(absl::StrCat(ShellQuote(*script), " start"));
  if (!output.ok()) return output.status();
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  server->script_ = *script;
  for (absl::string_view line : absl::StrSplit(*output, '\n')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    if (kv.first == "BULWARK_PG_DIR") server->dir_ = kv.second;
    if (kv.first == "BULWARK_PG_HOST") server->host_ = kv.second;
    if (kv.first == "BULWARK_PG_PORT" && !absl::SimpleAtoi(kv.second, &server->port_)) {
      server->port_ = 0;
    }
    if (kv.first == "BULWARK_PG_USER") server->user_ = kv.second;
    if (kv.first == "BULWARK_PG_PASSWORD") server->password_ = kv.second;
    if (kv.first == "BULWARK_PG_DATABASE") server->database_ = kv.second;
  }
  if (server->dir_.empty() || server->host_.empty() || server->port_ == 0 ||
      server->user_.empty() || server->password_.empty() || server->database_.empty()) {
    return absl::InternalError(
        absl::StrCat("postgres_server.sh start printed no complete settings:\n", *output));
  }
  return server;
}

PostgresServer::~PostgresServer() {
  if (dir_.empty()) return;
  absl::StatusOr<std::string> stopped =
      RunScript(absl::StrCat(ShellQuote(script_), " stop ", ShellQuote(dir_)));
  if (!stopped.ok()) ::fprintf(stderr, "%s\n", std::string(stopped.status().message()).c_str());
}

std::string PostgresServer::TemplatedUrl() const {
  return absl::StrCat("postgresql://{{username}}:{{password}}@/", database_, "?host=", host_,
                      "&port=", port_);
}

absl::Status PostgresServer::TryLogin(absl::string_view user, absl::string_view password) const {
  PGconn* conn = ConnectAs(host_, port_, database_, user, password);
  absl::Status status;
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string message = ConnectionError(conn);
    status = message.find("authentication failed") != std::string::npos ||
                     message.find("does not exist") != std::string::npos ||
                     message.find("not permitted to log in") != std::string::npos
                 ? absl::PermissionDeniedError(message)
                 : absl::UnavailableError(message);
  } else {
    PGresult* result = PQexec(conn, "SELECT 1");
    if (PQresultStatus(result) != PGRES_TUPLES_OK) {
      status = absl::InternalError(PQresultErrorMessage(result));
    }
    PQclear(result);
  }
  PQfinish(conn);
  return status;
}

absl::StatusOr<std::optional<std::string>> PostgresServer::QueryAsSuperuser(
    absl::string_view sql) const {
  PGconn* conn = ConnectAs(host_, port_, database_, user_, password_);
  if (PQstatus(conn) != CONNECTION_OK) {
    absl::Status status = absl::UnavailableError(ConnectionError(conn));
    PQfinish(conn);
    return status;
  }
  PGresult* result = PQexec(conn, std::string(sql).c_str());
  absl::StatusOr<std::optional<std::string>> out;
  const ExecStatusType status = PQresultStatus(result);
  if (status == PGRES_TUPLES_OK) {
    if (PQntuples(result) == 0 || PQnfields(result) == 0) {
      out = std::optional<std::string>(std::string());
    } else if (PQgetisnull(result, 0, 0)) {
      out = std::optional<std::string>();
    } else {
      out = std::optional<std::string>(PQgetvalue(result, 0, 0));
    }
  } else if (status == PGRES_COMMAND_OK) {
    out = std::optional<std::string>(std::string());
  } else {
    out = absl::InternalError(absl::StrCat(sql, ": ", PQresultErrorMessage(result)));
  }
  PQclear(result);
  PQfinish(conn);
  return out;
}

}  // namespace bulwark::examples::postgres::testing
