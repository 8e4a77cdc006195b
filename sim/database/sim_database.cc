// The simulated database server and its plugin (see sim_database.h).
#include "sim/database/sim_database.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace bulwark::sim {
namespace {

constexpr size_t kNamePartBytesMax = 8;
constexpr size_t kSuffixChars = 12;
constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";

absl::Status Unreachable() {
  return absl::UnavailableError("dial tcp 10.0.0.5:5432: connect: connection refused");
}

std::string Detail(const nlohmann::json& config, const char* key) {
  auto it = config.find(key);
  return it != config.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// One plugin instance: a connection pool of one, logged in as the configured root user.
class SimDbConnection final : public sdk::Database {
 public:
  SimDbConnection(SimDatabase& db, Random& random) : db_(db), random_(random) {}
  ~SimDbConnection() override { Disconnect(); }

  absl::StatusOr<sdk::InitializeResponse> Initialize(
      const sdk::InitializeRequest& request) override {
    connection_ = Detail(request.config, "connection_url");
    user_ = Detail(request.config, "username");
    password_ = Detail(request.config, "password");
    if (connection_.empty()) return absl::InvalidArgumentError("connection_url cannot be empty");
    if (user_.empty() || password_.empty()) {
      return absl::InvalidArgumentError("username and password are required");
    }
    initialized_ = true;
    if (request.verify_connection) {
      absl::Status connected = Connect();
      if (!connected.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat("error verifying connection: ", connected.message()));
      }
    }
    sdk::InitializeResponse response;
    response.config = request.config;
    return response;
  }

  absl::StatusOr<sdk::NewUserResponse> NewUser(const sdk::NewUserRequest& request) override {
    if (request.credential_type != sdk::CredentialType::kPassword) {
      return absl::InvalidArgumentError("only password credentials are supported");
    }
    if (request.password.empty()) return absl::InvalidArgumentError("missing password");
    if (absl::Status s = Connect(); !s.ok()) return s;
    std::string name =
        absl::StrCat("v-", request.username_config.display_name.substr(0, kNamePartBytesMax), "-",
                     request.username_config.role_name.substr(0, kNamePartBytesMax), "-");
    for (size_t i = 0; i < kSuffixChars; ++i) {
      name.push_back(kAlphabet[random_.Uniform(sizeof(kAlphabet) - 1)]);
    }
    if (absl::Status s = db_.CreateUser(session_, name, request.password, request.expiration);
        !s.ok()) {
      return s;
    }
    sdk::NewUserResponse response;
    response.username = std::move(name);
    return response;
  }

  absl::Status UpdateUser(const sdk::UpdateUserRequest& request) override {
    if (request.username.empty()) return absl::InvalidArgumentError("missing username");
    if (!request.password.has_value() && !request.expiration.has_value()) {
      return absl::InvalidArgumentError("no changes requested");
    }
    if (absl::Status s = Connect(); !s.ok()) return s;
    if (request.password.has_value()) {
      if (request.password->new_password.empty()) {
        return absl::InvalidArgumentError("missing password");
      }
      absl::Status s = db_.SetPassword(session_, request.username, request.password->new_password);
      if (!s.ok()) return s;
    }
    if (request.expiration.has_value()) {
      absl::Status s =
          db_.SetExpiration(session_, request.username, request.expiration->new_expiration);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status DeleteUser(const sdk::DeleteUserRequest& request) override {
    if (request.username.empty()) return absl::InvalidArgumentError("missing username");
    if (absl::Status s = Connect(); !s.ok()) return s;
    return db_.DropUser(session_, request.username);
  }

  absl::StatusOr<std::string> Type() override { return std::string(kSimDbType); }

  absl::Status Close() override {
    Disconnect();
    return absl::OkStatus();
  }

 private:
  // Logs in once; the session lasts until Close (a pool's connections survive a password change
  // of the user they logged in as, as PostgreSQL's do).
  absl::Status Connect() {
    if (!initialized_) return absl::FailedPreconditionError("not initialized");
    if (session_ != 0) return db_.Use(session_);
    absl::StatusOr<uint64_t> session = db_.Open(connection_, user_, password_);
    if (!session.ok()) return session.status();
    session_ = *session;
    return absl::OkStatus();
  }
  void Disconnect() {
    if (session_ != 0) db_.Close(session_);
    session_ = 0;
  }

  SimDatabase& db_;
  Random& random_;
  bool initialized_ = false;
  std::string connection_;
  std::string user_;
  std::string password_;  // A secret.
  uint64_t session_ = 0;
};

}  // namespace

void SimDatabase::PutUser(const std::string& name, const std::string& password, bool dynamic) {
  User& user = users_[name];
  user.password = password;
  user.dynamic = dynamic;
  user.created = clock_.MonotonicNow();
}

bool SimDatabase::Accepts(absl::string_view name, absl::string_view password) const {
  auto it = users_.find(std::string(name));
  return it != users_.end() && it->second.password == password;
}

size_t SimDatabase::SessionsOf(absl::string_view connection) const {
  size_t n = 0;
  for (const auto& [id, name] : sessions_) n += name == connection ? 1 : 0;
  return n;
}

std::set<uint64_t> SimDatabase::SessionIdsOf(absl::string_view connection) const {
  std::set<uint64_t> ids;
  for (const auto& [id, name] : sessions_) {
    if (name == connection) ids.insert(id);
  }
  return ids;
}

void SimDatabase::CutFor(absl::Duration duration) {
  const absl::Duration until = clock_.MonotonicNow() + duration;
  if (until > cut_until_) cut_until_ = until;
}

absl::StatusOr<uint64_t> SimDatabase::Open(absl::string_view connection, absl::string_view user,
                                           absl::string_view password) {
  if (!reachable()) return Unreachable();
  if (!Accepts(user, password)) {
    return absl::PermissionDeniedError(
        absl::StrCat("password authentication failed for user \"", user, "\""));
  }
  if (sessions_.size() >= kSimDbSessionsMax) {
    return absl::ResourceExhaustedError("sorry, too many clients already");
  }
  const uint64_t id = next_session_++;
  sessions_[id] = std::string(connection);
  return id;
}

void SimDatabase::Close(uint64_t session) {
  sessions_.erase(session);
  root_changers_.erase(session);
}

std::vector<uint64_t> SimDatabase::OpenRootChangers() const {
  return std::vector<uint64_t>(root_changers_.begin(), root_changers_.end());
}

absl::Status SimDatabase::Use(uint64_t session) const {
  if (!reachable()) return Unreachable();
  if (sessions_.count(session) == 0) {
    return absl::UnavailableError("server closed the connection unexpectedly");
  }
  return absl::OkStatus();
}

absl::Status SimDatabase::CreateUser(uint64_t session, const std::string& name,
                                     const std::string& password,
                                     std::optional<absl::Time> valid_until) {
  if (absl::Status s = Use(session); !s.ok()) return s;
  if (users_.count(name) > 0) return absl::AlreadyExistsError("role already exists");
  if (users_.size() >= kSimDbUsersMax) return absl::ResourceExhaustedError("too many roles");
  PutUser(name, password, /*dynamic=*/true);
  users_[name].valid_until = valid_until;
  ++users_created_;
  return absl::OkStatus();
}

absl::Status SimDatabase::SetPassword(uint64_t session, const std::string& name,
                                      const std::string& password) {
  if (absl::Status s = Use(session); !s.ok()) return s;
  auto it = users_.find(name);
  if (it == users_.end()) return absl::NotFoundError("role does not exist");
  it->second.password = password;
  if (!it->second.dynamic) root_changers_.insert(session);
  if (lose_next_reply_) {
    lose_next_reply_ = false;
    ++lost_replies_;
    return absl::UnavailableError("read tcp 10.0.0.5:5432: connection reset by peer");
  }
  return absl::OkStatus();
}

absl::Status SimDatabase::SetExpiration(uint64_t session, const std::string& name,
                                        absl::Time valid_until) {
  if (absl::Status s = Use(session); !s.ok()) return s;
  auto it = users_.find(name);
  if (it == users_.end()) return absl::NotFoundError("role does not exist");
  it->second.valid_until = valid_until;
  return absl::OkStatus();
}

absl::Status SimDatabase::DropUser(uint64_t session, const std::string& name) {
  if (absl::Status s = Use(session); !s.ok()) return s;
  if (users_.erase(name) > 0) ++users_dropped_;
  return absl::OkStatus();
}

sdk::DatabaseFactory SimDbFactory(SimDatabase& db, Random& random) {
  return [&db,
          &random](const sdk::DatabaseContext&) -> absl::StatusOr<std::unique_ptr<sdk::Database>> {
    return std::unique_ptr<sdk::Database>(new SimDbConnection(db, random));
  };
}

}  // namespace bulwark::sim
