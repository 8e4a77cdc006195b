// UserDb: usernames from a template, salted password hashes, crash-safe user files.
#include "examples/userdb/userdb.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/crypto/sha256.h"
#include "base/status/status_macros.h"
#include "sdk/backend.h"

namespace bulwark::examples::userdb {
namespace {

// Keeps [a-z0-9_] of `text` (lower-cased), other characters become '_', at most `max` bytes.
std::string Sanitize(absl::string_view text, size_t max) {
  std::string out;
  for (char c : text) {
    if (out.size() >= max) break;
    const char lower = absl::ascii_tolower(static_cast<unsigned char>(c));
    out.push_back((absl::ascii_isalnum(static_cast<unsigned char>(lower)) || lower == '_') ? lower
                                                                                           : '_');
  }
  return out;
}

// Constant-time comparison: the stored hash must not leak through timing.
bool EqualConstantTime(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

absl::Status InvalidUsername(absl::string_view username) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid username (", username.size(), " bytes): userdb names are 1..",
                   kUsernameBytesMax, " characters of [a-z0-9_-] not starting with '-'"));
}

}  // namespace

bool IsValidUsername(absl::string_view username) {
  if (username.empty() || username.size() > kUsernameBytesMax || username[0] == '-') return false;
  for (char c : username) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

UserDb::UserDb(FileSystem& fs, Random& random, LogSink* log)
    : fs_(fs), random_(random), log_(log) {}

absl::Status UserDb::CheckOpen() const {
  if (closed_) return absl::FailedPreconditionError("the connection is closed");
  if (dir_.empty()) return absl::FailedPreconditionError("not initialized: call Initialize first");
  return absl::OkStatus();
}

std::string UserDb::UserPath(absl::string_view username) const {
  return JoinPath(dir_, absl::StrCat(username, kUserFileSuffix));
}

absl::StatusOr<sdk::InitializeResponse> UserDb::Initialize(const sdk::InitializeRequest& request) {
  if (closed_) return absl::FailedPreconditionError("the connection is closed");
  auto url = request.config.find("connection_url");
  if (url == request.config.end() || !url->is_string() || url->get<std::string>().empty()) {
    return absl::InvalidArgumentError(
        "connection_url is required: the directory that holds the user files");
  }
  const std::string dir = url->get<std::string>();
  if (request.verify_connection) {
    absl::StatusOr<FileInfo> info = fs_.Stat(dir);
    if (!info.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot verify connection: connection_url ", dir,
                       " is not usable: ", info.status().message()));
    }
    if (info->type != FileType::kDirectory) {
      return absl::FailedPreconditionError(absl::StrCat("cannot verify connection: connection_url ",
                                                        dir, " is a ", FileTypeName(info->type),
                                                        ", not a directory"));
    }
    // Writable: write, sync and remove a probe file.
    const std::string probe = JoinPath(dir, kProbeFileName);
    absl::Status writable = [&]() -> absl::Status {
      ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, fs_.NewWritableFile(probe));
      RETURN_IF_ERROR(file->Append("probe"));
      RETURN_IF_ERROR(file->Sync());
      RETURN_IF_ERROR(file->Close());
      return fs_.Remove(probe);
    }();
    if (!writable.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("cannot verify connection: directory ", dir,
                                                        " is not writable: ", writable.message()));
    }
  }
  dir_ = dir;
  // The root login, when configured: like a real database, a connection whose root password is
  // wrong does not verify (the database engine's rotate-root and its rollback rely on it).
  auto user = request.config.find("username");
  if (request.verify_connection && user != request.config.end() && user->is_string() &&
      !user->get<std::string>().empty()) {
    auto pass = request.config.find("password");
    const std::string password =
        pass != request.config.end() && pass->is_string() ? pass->get<std::string>() : "";
    absl::StatusOr<bool> ok = CheckPassword(user->get<std::string>(), password);
    if (!ok.ok() || !*ok) {
      dir_.clear();
      return absl::FailedPreconditionError(
          absl::StrCat("cannot verify connection: password authentication failed for user \"",
                       user->get<std::string>(), "\""));
    }
  }
  sdk::Log(log_, LogLevel::kInfo, "userdb connection configured",
           {{"verified", request.verify_connection ? "true" : "false"}});
  return sdk::InitializeResponse{request.config};
}

std::string UserDb::MakeUsername(const sdk::UsernameMetadata& metadata) {
  static constexpr char kAlphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string suffix;
  for (size_t i = 0; i < kUsernameSuffixChars; ++i)
    suffix.push_back(kAlphabet[random_.Uniform(36)]);
  std::string name = absl::StrCat("v-", Sanitize(metadata.display_name, kUsernamePartBytesMax), "-",
                                  Sanitize(metadata.role_name, kUsernamePartBytesMax), "-", suffix);
  if (name.size() > kUsernameBytesMax) name = name.substr(name.size() - kUsernameBytesMax);
  return name;
}

UserRecord UserDb::HashPassword(const std::string& username, absl::string_view password) {
  const std::string salt = random_.Bytes(kSaltBytes);
  crypto::Sha256 hasher;
  hasher.Update(salt);
  hasher.Update(password);
  UserRecord record;
  record.username = username;
  record.salt_hex = crypto::HexEncode(salt);
  record.password_sha256_hex = crypto::HexEncode(hasher.Finish());
  return record;
}

absl::Status UserDb::WriteUser(const UserRecord& record) {
  nlohmann::json json = {{"username", record.username},
                         {"salt", record.salt_hex},
                         {"password_sha256", record.password_sha256_hex}};
  if (record.expiration.has_value()) {
    json["expires_unix"] = absl::ToUnixSeconds(*record.expiration);
  }
  const std::string final_path = UserPath(record.username);
  // A dot name never collides with a user file (usernames cannot start with '.').
  const std::string temp_path = JoinPath(dir_, absl::StrCat(".", record.username, ".tmp"));
  {
    ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, fs_.NewWritableFile(temp_path));
    RETURN_IF_ERROR(file->Append(json.dump()));
    RETURN_IF_ERROR(file->Sync());
    RETURN_IF_ERROR(file->Close());
  }
  RETURN_IF_ERROR(fs_.Rename(temp_path, final_path));
  return fs_.SyncDir(dir_);
}

absl::StatusOr<UserRecord> UserDb::ReadUser(absl::string_view username) {
  RETURN_IF_ERROR(CheckOpen());
  if (!IsValidUsername(username)) return InvalidUsername(username);
  absl::StatusOr<std::string> text = fs_.ReadFile(UserPath(username), kUserFileBytesMax);
  if (absl::IsNotFound(text.status())) {
    return absl::NotFoundError(absl::StrCat("user ", username, " does not exist"));
  }
  RETURN_IF_ERROR(text.status());
  nlohmann::json json = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("salt") || !json.contains("password_sha256") ||
      !json["salt"].is_string() || !json["password_sha256"].is_string()) {
    return absl::DataLossError(absl::StrCat("the record of user ", username, " is corrupt"));
  }
  UserRecord record;
  record.username = std::string(username);
  record.salt_hex = json["salt"].get<std::string>();
  record.password_sha256_hex = json["password_sha256"].get<std::string>();
  if (json.contains("expires_unix") && json["expires_unix"].is_number_integer()) {
    record.expiration = absl::FromUnixSeconds(json["expires_unix"].get<int64_t>());
  }
  return record;
}

absl::StatusOr<bool> UserDb::CheckPassword(absl::string_view username, absl::string_view password) {
  ASSIGN_OR_RETURN(UserRecord record, ReadUser(username));
  ASSIGN_OR_RETURN(std::string salt, crypto::HexDecode(record.salt_hex));
  crypto::Sha256 hasher;
  hasher.Update(salt);
  hasher.Update(password);
  return EqualConstantTime(crypto::HexEncode(hasher.Finish()), record.password_sha256_hex);
}

absl::Status UserDb::CreateUser(absl::string_view username, absl::string_view password) {
  RETURN_IF_ERROR(CheckOpen());
  if (!IsValidUsername(username)) return InvalidUsername(username);
  if (password.empty() || password.size() > kPasswordBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("the password must be 1..", kPasswordBytesMax, " bytes"));
  }
  return WriteUser(HashPassword(std::string(username), password));
}

absl::StatusOr<sdk::NewUserResponse> UserDb::NewUser(const sdk::NewUserRequest& request) {
  RETURN_IF_ERROR(CheckOpen());
  if (request.credential_type != sdk::CredentialType::kPassword) {
    return absl::InvalidArgumentError(
        absl::StrCat("userdb supports only password credentials (credential_type 0), got ",
                     static_cast<int32_t>(request.credential_type)));
  }
  if (request.password.empty() || request.password.size() > kPasswordBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("the password must be 1..", kPasswordBytesMax, " bytes"));
  }
  for (int attempt = 0; attempt < kNewUserNameAttempts; ++attempt) {
    const std::string username = MakeUsername(request.username_config);
    absl::StatusOr<FileInfo> existing = fs_.Stat(UserPath(username));
    if (existing.ok()) continue;  // Taken: draw another suffix.
    if (!absl::IsNotFound(existing.status())) return existing.status();
    UserRecord record = HashPassword(username, request.password);
    record.expiration = request.expiration;
    RETURN_IF_ERROR(WriteUser(record));
    sdk::Log(log_, LogLevel::kInfo, "user created", {{"username", username}});
    return sdk::NewUserResponse{username};
  }
  return absl::AlreadyExistsError(
      absl::StrCat("no unused username after ", kNewUserNameAttempts, " attempts"));
}

absl::Status UserDb::UpdateUser(const sdk::UpdateUserRequest& request) {
  RETURN_IF_ERROR(CheckOpen());
  if (request.public_key.has_value()) {
    return absl::InvalidArgumentError("userdb supports only password credentials");
  }
  ASSIGN_OR_RETURN(UserRecord record, ReadUser(request.username));
  if (request.password.has_value()) {
    if (request.password->new_password.size() > kPasswordBytesMax) {
      return absl::InvalidArgumentError(
          absl::StrCat("the password must be 1..", kPasswordBytesMax, " bytes"));
    }
    const std::optional<absl::Time> expiration = record.expiration;
    record = HashPassword(record.username, request.password->new_password);
    record.expiration = expiration;
  }
  if (request.expiration.has_value()) record.expiration = request.expiration->new_expiration;
  RETURN_IF_ERROR(WriteUser(record));
  sdk::Log(log_, LogLevel::kInfo, "user updated",
           {{"username", record.username},
            {"password_changed", request.password.has_value() ? "true" : "false"}});
  return absl::OkStatus();
}

absl::Status UserDb::DeleteUser(const sdk::DeleteUserRequest& request) {
  RETURN_IF_ERROR(CheckOpen());
  if (!IsValidUsername(request.username)) return InvalidUsername(request.username);
  absl::Status removed = fs_.Remove(UserPath(request.username));
  if (absl::IsNotFound(removed)) return absl::OkStatus();  // Already gone: revocation retries.
  RETURN_IF_ERROR(removed);
  RETURN_IF_ERROR(fs_.SyncDir(dir_));
  sdk::Log(log_, LogLevel::kInfo, "user deleted", {{"username", request.username}});
  return absl::OkStatus();
}

absl::Status UserDb::Close() {
  closed_ = true;
  return absl::OkStatus();
}

sdk::DatabaseFactory UserDbFactory(FileSystem& fs, Random& random) {
  return
      [&fs, &random](
          const sdk::DatabaseContext& context) -> absl::StatusOr<std::unique_ptr<sdk::Database>> {
        return std::make_unique<UserDb>(fs, random, context.log);
      };
}

}  // namespace bulwark::examples::userdb
