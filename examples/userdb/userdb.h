// userdb: an example database plugin (dbplugin.v5.Database) managing the users of a small
// file-based credential store: one JSON file per user in the directory named by the
// connection's "connection_url", holding a salted SHA-256 of the password (never the password).
// File access and randomness come through the Env seams (FileSystem, Random), so the same code
// runs on the real disk and on the simulator's crash-modelling SimFileSystem.
#ifndef BULWARK_EXAMPLES_USERDB_USERDB_H_
#define BULWARK_EXAMPLES_USERDB_USERDB_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/env/file_system.h"
#include "base/env/random.h"
#include "sdk/database.h"

namespace bulwark::examples::userdb {

inline constexpr char kUserDbType[] = "userdb";
// Longest username (PostgreSQL's limit, a common one), and how much of the display and role
// names goes into it.
inline constexpr size_t kUsernameBytesMax = 63;
inline constexpr size_t kUsernamePartBytesMax = 16;
// Random suffix length (base-36 characters), salt size, and attempts at a fresh name.
inline constexpr size_t kUsernameSuffixChars = 10;
inline constexpr size_t kSaltBytes = 16;
inline constexpr int kNewUserNameAttempts = 5;
// Longest password accepted, and largest user file read back.
inline constexpr size_t kPasswordBytesMax = 4096;
inline constexpr size_t kUserFileBytesMax = 64 * 1024;
// The file suffix of a user record, and the name of the write probe.
inline constexpr char kUserFileSuffix[] = ".user";
inline constexpr char kProbeFileName[] = ".userdb-probe";

// One stored user, as read back (for tests and tooling).
struct UserRecord {
  std::string username;
  std::string salt_hex;
  std::string password_sha256_hex;  // SHA-256(salt || password), hex.
  std::optional<absl::Time> expiration;
};

// One connection. Calls are serialized by the SDK's dispatcher; the object is not thread-safe.
// Errors (the SDK adds Vault's prefix, e.g. "unable to create new user: "):
//   kInvalidArgument     no/empty connection_url, a non-password credential, an empty or
//                        oversized password, a username that is not [a-z0-9_-]{1,63}
//   kFailedPrecondition  a call before Initialize or after Close; verify_connection and the
//                        directory is missing, not a directory or not writable, or the
//                        configured root "username" / "password" do not log in
//   kNotFound            UpdateUser of a user that does not exist
//   kAlreadyExists       no fresh username after kNewUserNameAttempts tries
//   what the FileSystem returned, annotated with the operation
class UserDb final : public sdk::Database {
 public:
  // `fs` and `random` must outlive the object. `random` salts passwords and picks username
  // suffixes: give it a CSPRNG in production (PosixRandom).
  UserDb(FileSystem& fs, Random& random, LogSink* log);

  absl::StatusOr<sdk::InitializeResponse> Initialize(
      const sdk::InitializeRequest& request) override;
  absl::StatusOr<sdk::NewUserResponse> NewUser(const sdk::NewUserRequest& request) override;
  absl::Status UpdateUser(const sdk::UpdateUserRequest& request) override;
  absl::Status DeleteUser(const sdk::DeleteUserRequest& request) override;
  absl::StatusOr<std::string> Type() override { return std::string(kUserDbType); }
  absl::Status Close() override;

  // Creates (or replaces) user `username` with `password`: how an operator makes the root user
  // the engine logs in as. Requires Initialize.
  absl::Status CreateUser(absl::string_view username, absl::string_view password);
  // Reads a user's record. kNotFound when there is none. Requires Initialize.
  absl::StatusOr<UserRecord> ReadUser(absl::string_view username);
  // Whether `password` is the user's current password.
  absl::StatusOr<bool> CheckPassword(absl::string_view username, absl::string_view password);

 private:
  absl::Status CheckOpen() const;
  std::string UserPath(absl::string_view username) const;
  std::string MakeUsername(const sdk::UsernameMetadata& metadata);
  // Writes `record` crash-safely: temp file, Sync, rename over the old one, SyncDir.
  absl::Status WriteUser(const UserRecord& record);
  UserRecord HashPassword(const std::string& username, absl::string_view password);

  FileSystem& fs_;
  Random& random_;
  LogSink* const log_;
  std::string dir_;  // Set by Initialize.
  bool closed_ = false;
};

// A DatabaseFactory making UserDbs over `fs` and `random` (which must outlive every UserDb).
sdk::DatabaseFactory UserDbFactory(FileSystem& fs, Random& random);

// Whether `username` is one UserDb accepts: 1..kUsernameBytesMax of [a-z0-9_-], no leading '-'.
bool IsValidUsername(absl::string_view username);

}  // namespace bulwark::examples::userdb

#endif  // BULWARK_EXAMPLES_USERDB_USERDB_H_
