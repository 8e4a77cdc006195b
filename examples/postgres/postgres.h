// The PostgreSQL database plugin (dbplugin.v5.Database) over libpq, after Vault's builtin
// postgresql-database-plugin: Initialize with connection_url templating and verification,
// NewUser from creation statements with Vault's default username template, UpdateUser for
// passwords (root rotation included) and expirations, DeleteUser from revocation statements or
// a safe default, Type "pgx". Every value reaches SQL quoted by libpq (sql_template.h); every
// error is free of passwords. README.md documents the statements and the templates.
#ifndef BULWARK_EXAMPLES_POSTGRES_POSTGRES_H_
#define BULWARK_EXAMPLES_POSTGRES_POSTGRES_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/env/clock.h"
#include "base/env/random.h"
#include "examples/postgres/sql_template.h"
#include "examples/postgres/username_template.h"
#include "sdk/database.h"

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace bulwark::examples::postgres {

// Vault's name for the type (the Go driver's name, postgreSQLTypeName).
inline constexpr char kPostgresType[] = "pgx";
// PostgreSQL's identifier limit (NAMEDATALEN - 1): longer names are refused, never truncated
// by the server onto some other role.
inline constexpr size_t kIdentifierBytesMax = 63;
// Vault's default username template: v-<display 8>-<role 8>-<20 base62>-<unix seconds>, cut to
// 63 bytes.
inline constexpr size_t kUsernamePartBytesMax = 8;
inline constexpr size_t kUsernameRandomChars = 20;
// Longest password accepted, most statements per call, longest statement.
inline constexpr size_t kPasswordBytesMax = 1024;
inline constexpr size_t kStatementsMax = 256;
inline constexpr size_t kStatementBytesMax = 64 * 1024;
// libpq's connect_timeout when the connection_url sets none (seconds): a hang guard for a host
// that drops packets; refused connections fail at once.
inline constexpr int kConnectTimeoutDefaultSeconds = 30;
// Vault's default username template, as text (what DefaultUsername renders).
inline constexpr char kDefaultUsernameTemplate[] =
    "{{ printf \"v-%s-%s-%s-%s\" (.DisplayName | truncate 8) (.RoleName | truncate 8) "
    "(random 20) (unix_time) | truncate 63 }}";
// Vault's expiration layout (Go "2006-01-02 15:04:05-0700", UTC).
inline constexpr char kExpirationFormat[] = "%Y-%m-%d %H:%M:%S%z";

// The default statements (Vault's), used when a call brings none.
inline constexpr char kDefaultChangePassword[] =
    "ALTER ROLE \"{{name}}\" WITH PASSWORD '{{password}}';";
inline constexpr char kDefaultChangeExpiration[] =
    "ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}';";

// Vault's default username: "v-" + display (8 bytes) + "-" + role (8 bytes) + "-" + 20 random
// base62 characters + "-" + unix seconds, cut to 63 bytes. Cuts never split a UTF-8 character.
std::string DefaultUsername(const sdk::UsernameMetadata& metadata, Random& random, absl::Time now);

// `text` cut to at most `max_bytes` bytes, shortened further so no UTF-8 character is split.
std::string TruncateUtf8(absl::string_view text, size_t max_bytes);

// The connection_url with {{username}} and {{password}} replaced: percent-encoded (every byte
// outside A-Za-z0-9-._~) in a postgres:// or postgresql:// URI, a quoted conninfo value
// ('...' with \ and ' escaped) in a keyword=value string, as is with disable_escaping.
std::string ExpandConnectionUrl(absl::string_view url, absl::string_view username,
                                absl::string_view password, bool disable_escaping);

// One connection (a Vault "database config"). Calls are serialized by the SDK's dispatcher;
// not thread-safe.
//
// Errors (the SDK adds Vault's prefix, e.g. "unable to create new user: "):
//   kInvalidArgument     bad config (missing connection_url, a template variable in username or
//                        password, a bad password_authentication or username_template, a type
//                        mismatch), a templated username over 63 bytes or empty, empty
//                        creation statements, a statement the templating refuses, a non-password
//                        credential type, a password or name too long or with a NUL byte
//   kFailedPrecondition  a call before Initialize or after Close
//   kUnavailable         cannot connect ("error verifying connection: ..." at Initialize)
//   kNotFound / kAlreadyExists / kPermissionDenied / kInternal  the server refused a statement
//                        (SQLSTATE 42704 / 42710 / 42501 / others), with the statement's
//                        position and the server's primary message
class PostgresDatabase final : public sdk::Database {
 public:
  // `clock` (unix_time in usernames) and `random` (usernames) must outlive the object; give
  // `random` a CSPRNG in production (PosixRandom).
  PostgresDatabase(Clock& clock, Random& random, LogSink* log);
  ~PostgresDatabase() override;

  absl::StatusOr<sdk::InitializeResponse> Initialize(
      const sdk::InitializeRequest& request) override;
  absl::StatusOr<sdk::NewUserResponse> NewUser(const sdk::NewUserRequest& request) override;
  absl::Status UpdateUser(const sdk::UpdateUserRequest& request) override;
  absl::Status DeleteUser(const sdk::DeleteUserRequest& request) override;
  absl::StatusOr<std::string> Type() override { return std::string(kPostgresType); }
  absl::Status Close() override;

 private:
  struct Config {
    std::string connection_url;  // As configured (templated).
    std::string username;
    std::string password;
    bool disable_escaping = false;
    bool scram_in_plugin = false;                       // password_authentication = scram-sha-256.
    std::optional<UsernameTemplate> username_template;  // Unset: Vault's default.
  };

  absl::Status CheckOpen() const;
  // The kept connection, (re)connecting when there is none or it broke.
  absl::StatusOr<PGconn*> Connection();
  void Disconnect();
  // Quotes with libpq on the current connection.
  absl::StatusOr<std::string> Quote(absl::string_view value, QuoteAs quote_as);
  // Splits and expands every statement, then runs all queries in one transaction.
  absl::Status RunInTransaction(const std::vector<std::string>& statements,
                                const TemplateVars& vars);
  // Runs BEGIN, `queries` and COMMIT in one round trip (libpq pipeline mode); the first error,
  // with everything rolled back.
  absl::Status RunPipelined(PGconn* conn, const std::vector<std::string>& queries);
  absl::Status Exec(PGconn* conn, const std::string& query, absl::string_view what);
  absl::Status ResultError(const PGresult* result, absl::string_view what) const;
  // What the server reported, with every known secret replaced by "[password]".
  std::string Sanitize(std::string text) const;
  absl::Status DefaultRevoke(const std::string& username);
  absl::StatusOr<std::string> PasswordForServer(const std::string& username,
                                                const std::string& password);

  Clock& clock_;
  Random& random_;
  LogSink* const log_;
  bool initialized_ = false;
  bool closed_ = false;
  Config config_;
  PGconn* conn_ = nullptr;
  // Passwords this call handles, removed from any error text (with the root password).
  std::vector<std::string> call_secrets_;
};

// A DatabaseFactory making PostgresDatabases (clock and random must outlive them).
sdk::DatabaseFactory PostgresFactory(Clock& clock, Random& random);

}  // namespace bulwark::examples::postgres

#endif  // BULWARK_EXAMPLES_POSTGRES_POSTGRES_H_
