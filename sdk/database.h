// What a C++ author implements for a Vault database plugin (dbplugin.v5.Database): one object
// per database connection, with Vault's request types. No gRPC here: ServeDatabase (serve.h)
// serves it over go-plugin's protocol and DatabaseDispatcher (database_dispatcher.h) runs it
// without a transport.
#ifndef BULWARK_SDK_DATABASE_H_
#define BULWARK_SDK_DATABASE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/log/log.h"

namespace bulwark::sdk {

// dbplugin.CredentialType (sdk/database/dbplugin/v5/types.go). Other values pass through.
enum class CredentialType : int32_t {
  kPassword = 0,
  kRsaPrivateKey = 1,
  kClientCertificate = 2,
};

// Statements the operator configured for a role (SQL, or whatever the database speaks).
struct Statements {
  std::vector<std::string> commands;
};

struct InitializeRequest {
  // The connection configuration as the operator gave it to Vault: a JSON object (numbers as
  // JSON numbers, as protobuf's Struct carries them).
  nlohmann::json config = nlohmann::json::object();
  // Vault sets it when the operator asked for verify_connection (the default): check that the
  // database is reachable with this configuration and fail otherwise.
  bool verify_connection = false;
};

struct InitializeResponse {
  // The configuration Vault stores (the plugin may rewrite or drop values). Must be a JSON
  // object (null counts as empty).
  nlohmann::json config = nlohmann::json::object();
};

struct UsernameMetadata {
  std::string display_name;  // The token's display name.
  std::string role_name;     // The Vault role the credential is for.
};

struct NewUserRequest {
  UsernameMetadata username_config;
  CredentialType credential_type = CredentialType::kPassword;
  std::string password;    // With kPassword. A secret: never log it.
  std::string public_key;  // With kRsaPrivateKey: the PEM public key.
  std::string subject;     // With kClientCertificate.
  // When the credential should stop working; nullopt when Vault sent none.
  std::optional<absl::Time> expiration;
  Statements statements;
  Statements rollback_statements;
};

struct NewUserResponse {
  std::string username;  // Must not be empty.
};

struct ChangePassword {
  std::string new_password;  // Never empty. A secret: never log it.
  Statements statements;
};

struct ChangePublicKey {
  std::string new_public_key;  // Never empty.
  Statements statements;
};

struct ChangeExpiration {
  absl::Time new_expiration;
  Statements statements;
};

// At least one change is present (the dispatcher refuses requests without one).
struct UpdateUserRequest {
  std::string username;  // Never empty.
  CredentialType credential_type = CredentialType::kPassword;
  std::optional<ChangePassword> password;
  std::optional<ChangePublicKey> public_key;
  std::optional<ChangeExpiration> expiration;
  // Vault's static roles with self-managed passwords: the user's current password, to log in
  // as the user. A secret.
  std::string self_managed_password;
};

struct DeleteUserRequest {
  std::string username;  // Never empty.
  Statements statements;
};

// One database connection (a Vault "database config"). The dispatcher never runs two calls on
// the same object at once, so implementations need no locking of their own; different objects
// (different connections of a multiplexed plugin) run concurrently.
//
// Errors: any non-OK status fails the call. The host sees it as gRPC INTERNAL with Vault's
// prefix ("failed to initialize: <message>", "unable to create new user: <message>", ...), so
// the message must make sense to an operator and must never contain a password or key.
// Exceptions escaping a method are caught and reported as an internal error.
class Database {
 public:
  virtual ~Database() = default;

  // Configures the connection; with verify_connection, also checks that it works. Vault calls
  // it once per connection (and again after a reset or reload, on a new object).
  virtual absl::StatusOr<InitializeResponse> Initialize(const InitializeRequest& request) = 0;

  // Creates a user with a unique name (derived from username_config) and the given
  // credential. Called only after a successful Initialize in practice, but must fail cleanly
  // (not crash) before one.
  virtual absl::StatusOr<NewUserResponse> NewUser(const NewUserRequest& request) = 0;

  // Changes the user's password, public key and/or expiration.
  virtual absl::Status UpdateUser(const UpdateUserRequest& request) = 0;

  // Removes the user. Vault retries revocations, so deleting a user that no longer exists
  // should succeed.
  virtual absl::Status DeleteUser(const DeleteUserRequest& request) = 0;

  // The database type, e.g. "postgres". Constant for the object's life.
  virtual absl::StatusOr<std::string> Type() = 0;

  // Releases the connection. No other call follows on this object.
  virtual absl::Status Close() = 0;
};

// What a factory learns about the connection it creates an object for.
struct DatabaseContext {
  // The connection's multiplex id; "" when the plugin does not multiplex.
  std::string multiplex_id;
  // Where the database logs. Never null; outlives the object. Never log passwords or keys.
  LogSink* log = nullptr;
};

// Creates the object for one connection. Called lazily (the first Initialize or Type for a
// multiplex id), under the dispatcher's instance-table lock as in Vault, so keep it quick: do
// the connecting in Initialize. An error fails that call with gRPC UNKNOWN and the error's
// message, as in Vault.
using DatabaseFactory =
    std::function<absl::StatusOr<std::unique_ptr<Database>>(const DatabaseContext& context)>;

}  // namespace bulwark::sdk

#endif  // BULWARK_SDK_DATABASE_H_
