// A real PostgreSQL 15 for tests: PostgresServer::Start runs postgres_server.sh (initdb and
// pg_ctl in a fresh directory under /tmp, a unix socket only, scram-sha-256 password logins, a
// superuser with a random password; as `nobody` when the test runs as root) and the destructor
// stops the server and removes the directory. Plus the libpq one-liners tests need: log in as
// someone, run a statement as the superuser.
#ifndef BULWARK_EXAMPLES_POSTGRES_TESTING_POSTGRES_SERVER_H_
#define BULWARK_EXAMPLES_POSTGRES_TESTING_POSTGRES_SERVER_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bulwark::examples::postgres::testing {

class PostgresServer {
 public:
  // Starts a server and returns once it accepts connections. Errors: kFailedPrecondition when
  // the script cannot be found; kInternal with the script's output when it fails.
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start();
  // Stops the server (pg_ctl stop -m immediate) and removes its directory.
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  const std::string& dir() const { return dir_; }
  const std::string& socket_dir() const { return host_; }
  int port() const { return port_; }
  const std::string& superuser() const { return user_; }
  const std::string& superuser_password() const { return password_; }
  const std::string& database() const { return database_; }

  // A libpq URI with "{{username}}:{{password}}" in place of the credentials, as Vault's
  // connection_url templates them: postgresql://{{username}}:{{password}}@/postgres?host=...
  std::string TemplatedUrl() const;

  // Logs in as `user` with `password` (libpq, password authentication over the socket) and runs
  // SELECT 1. OK, or kPermissionDenied / kUnavailable with libpq's message (no password in it).
  absl::Status TryLogin(absl::string_view user, absl::string_view password) const;

  // Runs `sql` as the superuser (with the password it has now, see set_superuser_password) and
  // returns the first column of the first row ("" without rows; nullopt for NULL).
  absl::StatusOr<std::optional<std::string>> QueryAsSuperuser(absl::string_view sql) const;

  // After a test rotated the superuser's password.
  void set_superuser_password(std::string password) { password_ = std::move(password); }

 private:
  PostgresServer() = default;

  std::string script_;
  std::string dir_;
  std::string host_;
  int port_ = 0;
  std::string user_;
  std::string password_;
  std::string database_;
};

// Path of postgres_server.sh in the test's runfiles (for wrappers and benchmarks).
absl::StatusOr<std::string> PostgresServerScript();

}  // namespace bulwark::examples::postgres::testing

#endif  // BULWARK_EXAMPLES_POSTGRES_TESTING_POSTGRES_SERVER_H_
