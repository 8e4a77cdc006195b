// The database profile: dbplugin.v5.Database as Vault's database secrets engine drives it
// (protocol-facts §4.3, §5, §6 and "Database plugin API"; Vault's grpc_server.go) — Initialize
// with and without connection verification, NewUser / UpdateUser / DeleteUser / Type / Close,
// and the exact codes and texts of Vault's request validation.
//
// The suite knows nothing of the database behind the plugin: it uses the manifest's
// database.config, where every "{{scratch_dir}}" becomes a fresh empty directory per test and
// every "{{env:NAME}}" the suite's environment variable (a wrapper that started the database
// sets them), and sends the manifest's database.creation_statements with every NewUser. The
// "unreachable" configuration is database.unreachable_config, or else the config with a
// directory that does not exist in place of {{scratch_dir}}, so a plugin that names neither
// cannot show that it verifies connections.
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "conformance/suite/conformance.h"
#include "conformance/suite/harness.h"
#include "conformance/suite/profile_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/vault/database.grpc.pb.h"

namespace bulwark::conformance {
namespace {

using DatabaseStub = dbplugin::v5::Database::Stub;

// Vault's texts (grpc_server.go, pluginutil.GetMultiplexIDFromContext).
constexpr char kNoInstance[] = "no database instance found";
// Vault sends multiplexed database plugins version 6 (ServeMultiplex).
constexpr int kMultiplexedVersion = 6;
// Parallel NewUser calls in the concurrency test.
constexpr int kConcurrentUsers = 8;

std::string Show(const grpc::Status& status) {
  if (status.ok()) return "OK";
  return absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                      " \"", Truncate(status.error_message()), "\"");
}

// A plausible username (lower-case letters, digits, '-') that no plugin created.
std::string NeverCreatedUser() {
  return absl::AsciiStrToLower(absl::StrCat("v-never-created-", MuxId(9)));
}

// One launched database plugin, a Database stub, a scratch directory and a connection id.
struct DbSession {
  std::unique_ptr<PluginUnderTest> plugin;
  std::unique_ptr<DatabaseStub> db;
  ScratchDir scratch;
  std::string mux = MuxId(0);

  bool multiplexed() const { return plugin->handshake().app_version == kMultiplexedVersion; }

  // The manifest's config (reachable) or its unreachable config, expanded.
  std::string ConfigJson(bool reachable) const {
    return reachable ? ExpandDatabaseConfig(Config().manifest, scratch.path())
                     : ExpandUnreachableDatabaseConfig(Config().manifest, scratch.path());
  }

  grpc::Status Initialize(bool verify, bool reachable = true,
                          dbplugin::v5::InitializeResponse* out = nullptr,
                          const std::string& id = "") {
    dbplugin::v5::InitializeRequest request;
    request.set_verify_connection(verify);
    if (!google::protobuf::util::JsonStringToMessage(ConfigJson(reachable),
                                                     request.mutable_config_data())
             .ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "the manifest's database.config is not a protobuf Struct");
    }
    dbplugin::v5::InitializeResponse reply;
    return db->Initialize(plugin->NewContext(id.empty() ? mux : id).get(), request,
                          out != nullptr ? out : &reply);
  }

  grpc::Status NewUser(std::string* username, const std::string& password,
                       const std::string& id = "") {
    dbplugin::v5::NewUserRequest request;
    request.mutable_username_config()->set_display_name("token-conformance");
    request.mutable_username_config()->set_role_name("conformance-role");
    request.set_password(password);
    request.mutable_expiration()->set_seconds(absl::ToUnixSeconds(absl::Now() + absl::Hours(1)));
    for (const std::string& statement : Config().manifest.database_creation_statements) {
      request.mutable_statements()->add_commands(statement);
    }
    dbplugin::v5::NewUserResponse reply;
    grpc::Status status =
        db->NewUser(plugin->NewContext(id.empty() ? mux : id).get(), request, &reply);
    if (username != nullptr) *username = reply.username();
    return status;
  }

  grpc::Status UpdatePassword(const std::string& username, const std::string& password) {
    dbplugin::v5::UpdateUserRequest request;
    request.set_username(username);
    request.mutable_password()->set_new_password(password);
    dbplugin::v5::UpdateUserResponse reply;
    return db->UpdateUser(plugin->NewContext(mux).get(), request, &reply);
  }

  grpc::Status Delete(const std::string& username) {
    dbplugin::v5::DeleteUserRequest request;
    request.set_username(username);
    dbplugin::v5::DeleteUserResponse reply;
    return db->DeleteUser(plugin->NewContext(mux).get(), request, &reply);
  }
};

// Starts the plugin; false (with the failure or timeout reported) when it cannot.
bool Open(DbSession* s) {
  if (s->scratch.path().empty()) {
    ADD_FAILURE() << "cannot create a scratch directory for {{scratch_dir}}";
    return false;
  }
  absl::StatusOr<std::unique_ptr<PluginUnderTest>> plugin = PluginUnderTest::Start();
  if (!CheckOk(plugin.status(), "start the plugin")) return false;
  s->plugin = *std::move(plugin);
  s->db = dbplugin::v5::Database::NewStub(s->plugin->channel());
  return true;
}

// OK, or the failure reported (a passed deadline as a timeout). `what` names the RPC.
bool RpcOk(const grpc::Status& status, absl::string_view what) {
  return CheckOk(PluginUnderTest::FromGrpc(status), what);
}

// Opens and initializes (without verification, so a failure is about the call under test).
bool OpenInitialized(DbSession* s) {
  return Open(s) && RpcOk(s->Initialize(/*verify=*/false), "dbplugin.v5.Database/Initialize");
}

// A failed call whose code and text must be exactly Vault's.
void ExpectVaultError(const grpc::Status& status, grpc::StatusCode code, absl::string_view message,
                      absl::string_view what) {
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ReportTimeout(what);
    return;
  }
  EXPECT_TRUE(status.error_code() == code && status.error_message() == message)
      << what << ": expected " << absl::StatusCodeToString(static_cast<absl::StatusCode>(code))
      << " \"" << message << "\", got " << Show(status);
}

CONFORMANCE_TEST(Database, TypeIsNonEmptyAndStable, Must,
                 "plugin-protocol.md §4 (database plugins)",
                 "Database.Type MUST return the same non-empty database type on every call.") {
  DbSession s;
  if (!Open(&s)) return;
  dbplugin::v5::TypeResponse first, second;
  if (!RpcOk(s.db->Type(s.plugin->NewContext(s.mux).get(), dbplugin::v5::Empty(), &first),
             "dbplugin.v5.Database/Type")) {
    return;
  }
  if (!RpcOk(s.db->Type(s.plugin->NewContext(s.mux).get(), dbplugin::v5::Empty(), &second),
             "dbplugin.v5.Database/Type (again)")) {
    return;
  }
  EXPECT_FALSE(first.type().empty()) << "expected a database type, got \"\"";
  EXPECT_EQ(first.type(), second.type()) << "expected the same type twice";
}

CONFORMANCE_TEST(Database, InitializeWithoutVerification, Must,
                 "plugin-protocol.md §4 (database plugins)",
                 "Initialize with verify_connection=false MUST succeed without reaching the "
                 "database, even when the configured database is unreachable.") {
  DbSession s;
  if (!Open(&s)) return;
  grpc::Status status = s.Initialize(/*verify=*/false, /*reachable=*/false);
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ReportTimeout("dbplugin.v5.Database/Initialize");
    return;
  }
  EXPECT_TRUE(status.ok()) << "expected OK for an unverified connection to " << s.ConfigJson(false)
                           << ", got " << Show(status);
}

CONFORMANCE_TEST(Database, InitializeWithVerification, Must,
                 "plugin-protocol.md §4 (database plugins)",
                 "Initialize with verify_connection=true MUST succeed for the manifest's "
                 "reachable configuration.") {
  DbSession s;
  if (!Open(&s)) return;
  grpc::Status status = s.Initialize(/*verify=*/true);
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ReportTimeout("dbplugin.v5.Database/Initialize");
    return;
  }
  EXPECT_TRUE(status.ok()) << "expected OK for " << s.ConfigJson(true) << ", got " << Show(status);
}

CONFORMANCE_TEST(Database, InitializeRejectsUnreachable, Must,
                 "Vault dbplugin/v5 grpc_server.go Initialize",
                 "Initialize with verify_connection=true MUST fail with INTERNAL \"failed to "
                 "initialize: ...\" when the configured database is unreachable.") {
  DbSession s;
  if (!Open(&s)) return;
  grpc::Status status = s.Initialize(/*verify=*/true, /*reachable=*/false);
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ReportTimeout("dbplugin.v5.Database/Initialize");
    return;
  }
  EXPECT_TRUE(status.error_code() == grpc::StatusCode::INTERNAL &&
              absl::StartsWith(status.error_message(), "failed to initialize: "))
      << "expected INTERNAL \"failed to initialize: ...\" for " << s.ConfigJson(false) << ", got "
      << Show(status);
}

// Every string in `config` (a JSON text) under a key that names a password, at any depth.
std::vector<std::string> PasswordValues(const std::string& config) {
  std::vector<std::string> out;
  std::vector<std::pair<std::string, nlohmann::json>> pending = {
      {"", nlohmann::json::parse(config, nullptr, /*allow_exceptions=*/false)}};
  while (!pending.empty()) {
    auto [key, node] = std::move(pending.back());
    pending.pop_back();
    if (node.is_string() && absl::StrContains(absl::AsciiStrToLower(key), "password") &&
        !node.get<std::string>().empty()) {
      out.push_back(node.get<std::string>());
    } else if (node.is_object()) {
      for (const auto& item : node.items()) pending.emplace_back(item.key(), item.value());
    } else if (node.is_array()) {
      for (const auto& item : node) pending.emplace_back(key, item);
    }
  }
  return out;
}

CONFORMANCE_TEST(Database, UnreachableErrorIsClearAndPluginStaysUp, Must,
                 "Vault database engine: config write with verify_connection (400 \"error "
                 "creating database object: <err>\")",
                 "Initialize with verify_connection=true for an unreachable database MUST fail "
                 "with an error that says why (text after \"failed to initialize: \") and holds "
                 "no configured password, and the plugin MUST keep running and accept the "
                 "reachable configuration on the same connection afterwards.") {
  DbSession s;
  if (!Open(&s)) return;
  grpc::Status status = s.Initialize(/*verify=*/true, /*reachable=*/false);
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ReportTimeout("dbplugin.v5.Database/Initialize (unreachable)");
    return;
  }
  constexpr absl::string_view kPrefix = "failed to initialize: ";
  const std::string& message = status.error_message();
  const absl::string_view detail =
      absl::StartsWith(message, kPrefix) ? absl::string_view(message).substr(kPrefix.size()) : "";
  EXPECT_FALSE(status.ok()) << "expected an error for " << s.ConfigJson(false) << ", got OK";
  EXPECT_FALSE(absl::StripAsciiWhitespace(detail).empty())
      << "expected \"failed to initialize: <why>\", got " << Show(status);
  for (const std::string& secret : PasswordValues(s.ConfigJson(false))) {
    EXPECT_FALSE(absl::StrContains(message, secret))
        << "expected no configured password in the error, found one in " << Show(status).size()
        << " characters";
  }
  if (!s.plugin->attached()) {
    EXPECT_TRUE(ProcessRunning(s.plugin->pid()))
        << "expected the plugin running after a failed verification, it has exited";
  }
  RpcOk(s.Initialize(/*verify=*/true), "dbplugin.v5.Database/Initialize (reachable, afterwards)");
}

CONFORMANCE_TEST(Database, InitializeReturnsConfig, Should,
                 "Vault dbplugin/v5 grpc_server.go Initialize",
                 "Initialize SHOULD return a configuration for Vault to store that keeps every "
                 "top-level key it was given.") {
  DbSession s;
  if (!Open(&s)) return;
  dbplugin::v5::InitializeResponse reply;
  if (!RpcOk(s.Initialize(/*verify=*/false, true, &reply), "dbplugin.v5.Database/Initialize")) {
    return;
  }
  const nlohmann::json given = nlohmann::json::parse(s.ConfigJson(true));
  std::set<std::string> returned;
  for (const auto& field : reply.config_data().fields()) returned.insert(field.first);
  for (const auto& item : given.items()) {
    EXPECT_TRUE(returned.count(item.key()) != 0)
        << "expected key \"" << item.key() << "\" in the returned config, got " << returned.size()
        << " keys";
  }
}

CONFORMANCE_TEST(Database, NewUserReturnsUsername, Must, "plugin-protocol.md §4 (database plugins)",
                 "NewUser after Initialize MUST create a user and return its non-empty name.") {
  DbSession s;
  if (!OpenInitialized(&s)) return;
  std::string username;
  if (!RpcOk(s.NewUser(&username, CanarySecret("db-password")), "dbplugin.v5.Database/NewUser")) {
    return;
  }
  EXPECT_FALSE(username.empty()) << "expected a username, got \"\"";
}

CONFORMANCE_TEST(Database, NewUserNamesAreUnique, Must, "plugin-protocol.md §4 (database plugins)",
                 "Repeated NewUser calls with the same username config MUST return distinct "
                 "usernames (each lease gets its own user).") {
  DbSession s;
  if (!OpenInitialized(&s)) return;
  std::set<std::string> names;
  for (int i = 0; i < 3; ++i) {
    std::string username;
    grpc::Status status = s.NewUser(&username, CanarySecret(absl::StrCat("db-unique-", i)));
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      ReportTimeout("dbplugin.v5.Database/NewUser");
      return;
    }
    EXPECT_TRUE(status.ok()) << "NewUser #" << i << ": expected OK, got " << Show(status);
    if (!status.ok()) return;
    EXPECT_TRUE(names.insert(username).second)
        << "expected a new username, got \"" << Truncate(username) << "\" again";
  }
}

CONFORMANCE_TEST(Database, NewUserBeforeInitializeFails, Must,
                 "plugin-protocol.md §4 (multiplexing)",
                 "NewUser on a connection that was never initialized MUST fail (under protocol "
                 "6 with UNKNOWN \"no database instance found\", as Vault's server).") {
  DbSession s;
  if (!Open(&s)) return;
  grpc::Status status = s.NewUser(nullptr, CanarySecret("db-early"));
  if (s.multiplexed()) {
    ExpectVaultError(status, grpc::StatusCode::UNKNOWN, kNoInstance,
                     "dbplugin.v5.Database/NewUser before Initialize");
    return;
  }
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ReportTimeout("dbplugin.v5.Database/NewUser before Initialize");
    return;
  }
  EXPECT_FALSE(status.ok()) << "expected an error before Initialize, got OK";
}

CONFORMANCE_TEST(Database, NewUserRequiresUsernameConfig, Must,
                 "Vault dbplugin/v5 grpc_server.go NewUser",
                 "NewUser without username_config MUST fail with INVALID_ARGUMENT \"missing "
                 "username config\".") {
  DbSession s;
  if (!OpenInitialized(&s)) return;
  dbplugin::v5::NewUserRequest request;
  request.set_password(CanarySecret("db-noconfig"));
  dbplugin::v5::NewUserResponse reply;
  ExpectVaultError(s.db->NewUser(s.plugin->NewContext(s.mux).get(), request, &reply),
                   grpc::StatusCode::INVALID_ARGUMENT, "missing username config",
                   "dbplugin.v5.Database/NewUser");
}

CONFORMANCE_TEST(Database, UpdateUserRequiresUsername, Must,
                 "Vault dbplugin/v5 grpc_server.go UpdateUser",
                 "UpdateUser without a username MUST fail with INVALID_ARGUMENT \"no username "
                 "provided\".") {
  DbSession s;
  if (!OpenInitialized(&s)) return;
  ExpectVaultError(s.UpdatePassword("", CanarySecret("db-noname")),
                   grpc::StatusCode::INVALID_ARGUMENT, "no username provided",
                   "dbplugin.v5.Database/UpdateUser");
}

CONFORMANCE_TEST(Database, UpdateUserRequiresAChange, Must,
                 "Vault dbplugin/v5 grpc_server.go UpdateUser",
                 "UpdateUser with no password, public key or expiration MUST fail with "
                 "INVALID_ARGUMENT \"update user request has no changes\".") {
  DbSession s;
  if (!OpenInitialized(&s)) return;
  std::string username;
  if (!RpcOk(s.NewUser(&username, CanarySecret("db-nochange")), "dbplugin.v5.Database/NewUser")) {
    return;
  }
  dbplugin::v5::UpdateUserRequest request;
  request.set_username(username);
  request.mutable_password();  // Present but empty: no change, as in Vault.
  dbplugin::v5::UpdateUserResponse reply;
  ExpectVaultError(s.db->UpdateUser(s.plugin->NewContext(s.mux).get(), request, &reply),
                   grpc::StatusCode::INVALID_ARGUMENT, "update user request has no changes",
                   "dbplugin.v5.Database/UpdateUser");
}

CONFORMANCE_TEST(Database, DeleteUserRequiresUsername, Must,
                 "Vault dbplugin/v5 grpc_server.go DeleteUser",
                 "DeleteUser without a username MUST fail with INVALID_ARGUMENT \"no username "
                 "provided\".") {
  DbSession s;
  if (!OpenInitialized(&s)) return;
  ExpectVaultError(s.Delete(""), grpc::StatusCode::INVALID_ARGUMENT, "no username provided",
                   "dbplugin.v5.Database/DeleteUser");
}

CONFORMANCE_TEST(Database, UpdateUserChangesPassword, Must,
                 "plugin-protocol.md §4 (database plugins: rotation)",
                 "UpdateUser with a new password for a user NewUser created MUST succeed.") {
  DbSession s;
  if (!OpenInitialized(&s)) return;
  std::string username;
  if (!RpcOk(s.NewUser(&username, CanarySecret("db-pw-1")), "dbplugin.v5.Database/NewUser")) {
    return;
  }
  grpc::Status status = s.UpdatePassword(username, CanarySecret("db-pw-2"));
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ReportTimeout("dbplugin.v5.Database/UpdateUser");
    return;
  }
  EXPECT_TRUE(status.ok()) << "expected OK, got " << Show(status);
}

CONFORMANCE_TEST(Database, UpdateUserChangesExpiration, Must,
                 "plugin-protocol.md §4 (database plugins)",
                 "UpdateUser with a new expiration for a user NewUser created MUST succeed "
                 "(Vault renews leases this way).") {
  DbSession s;
  if (!OpenInitialized(&s)) return;
  std::string username;
  if (!RpcOk(s.NewUser(&username, CanarySecret("db-exp")), "dbplugin.v5.Database/NewUser")) {
    return;
  }
  dbplugin::v5::UpdateUserRequest request;
  request.set_username(username);
  request.mutable_expiration()->mutable_new_expiration()->set_seconds(
      absl::ToUnixSeconds(absl::Now() + absl::Hours(2)));
  dbplugin::v5::UpdateUserResponse reply;
  grpc::Status status = s.db->UpdateUser(s.plugin->NewContext(s.mux).get(), request, &reply);
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ReportTimeout("dbplugin.v5.Database/UpdateUser");
    return;
  }
  EXPECT_TRUE(status.ok()) << "expected OK, got " << Show(status);
}

CONFORMANCE_TEST(Database, UpdateUnknownUserFails, Should,
                 "Vault dbplugin/v5 grpc_server.go UpdateUser",
                 "UpdateUser for a username the plugin never created SHOULD fail with INTERNAL "
                 "\"unable to update user: ...\".") {
  DbSession s;
  if (!OpenInitialized(&s)) return;
  grpc::Status status = s.UpdatePassword(NeverCreatedUser(), CanarySecret("db-ghost"));
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ReportTimeout("dbplugin.v5.Database/UpdateUser");
    return;
  }
  EXPECT_TRUE(status.error_code() == grpc::StatusCode::INTERNAL &&
              absl::StartsWith(status.error_message(), "unable to update user: "))
      << "expected INTERNAL \"unable to update user: ...\", got " << Show(status);
}

CONFORMANCE_TEST(Database, DeleteUserIsIdempotent, Should,
                 "plugin-protocol.md §4 (database plugins)",
                 "DeleteUser SHOULD succeed again for a user it already deleted (Vault retries "
                 "revocations).") {
  DbSession s;
  if (!OpenInitialized(&s)) return;
  std::string username;
  if (!RpcOk(s.NewUser(&username, CanarySecret("db-del")), "dbplugin.v5.Database/NewUser")) return;
  if (!RpcOk(s.Delete(username), "dbplugin.v5.Database/DeleteUser")) return;
  grpc::Status again = s.Delete(username);
  if (again.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ReportTimeout("dbplugin.v5.Database/DeleteUser (again)");
    return;
  }
  EXPECT_TRUE(again.ok()) << "expected OK for the second DeleteUser, got " << Show(again);
}

CONFORMANCE_TEST(Database, DeletedUserIsGone, Must, "plugin-protocol.md §4 (database plugins)",
                 "After DeleteUser succeeds, UpdateUser for that user MUST fail.") {
  DbSession s;
  if (!OpenInitialized(&s)) return;
  std::string username;
  if (!RpcOk(s.NewUser(&username, CanarySecret("db-gone")), "dbplugin.v5.Database/NewUser")) {
    return;
  }
  if (!RpcOk(s.Delete(username), "dbplugin.v5.Database/DeleteUser")) return;
  grpc::Status status = s.UpdatePassword(username, CanarySecret("db-gone-2"));
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ReportTimeout("dbplugin.v5.Database/UpdateUser");
    return;
  }
  EXPECT_FALSE(status.ok()) << "expected an error updating deleted user \"" << Truncate(username)
                            << "\", got OK";
}

CONFORMANCE_TEST(Database, CloseEndsConnection, Must, "plugin-protocol.md §4 (multiplexing)",
                 "Close MUST succeed, and NewUser on the closed connection MUST then fail.") {
  DbSession s;
  if (!OpenInitialized(&s)) return;
  dbplugin::v5::Empty reply;
  if (!RpcOk(s.db->Close(s.plugin->NewContext(s.mux).get(), dbplugin::v5::Empty(), &reply),
             "dbplugin.v5.Database/Close")) {
    return;
  }
  grpc::Status status = s.NewUser(nullptr, CanarySecret("db-closed"));
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ReportTimeout("dbplugin.v5.Database/NewUser after Close");
    return;
  }
  EXPECT_FALSE(status.ok()) << "expected NewUser on a closed connection to fail, got OK";
}

CONFORMANCE_TEST(Database, PasswordsNeverLogged, Must, "conformance.md \"The security profile\"",
                 "Passwords passed to NewUser and UpdateUser MUST NOT appear on the plugin's "
                 "stdout or stderr.") {
  DbSession s;
  if (!OpenInitialized(&s)) return;
  const std::string first = CanarySecret("db-logged-1");
  const std::string second = CanarySecret("db-logged-2");
  std::string username;
  if (!RpcOk(s.NewUser(&username, first), "dbplugin.v5.Database/NewUser")) return;
  if (!RpcOk(s.UpdatePassword(username, second), "dbplugin.v5.Database/UpdateUser")) return;
  // A failing call too: error paths are where secrets leak.
  (void)s.UpdatePassword(NeverCreatedUser(), second);
  // Whatever the plugin wrote so far is in the pipes once it answered; a round trip more
  // (Type) flushes any log line written just before the last reply.
  dbplugin::v5::TypeResponse type;
  (void)s.db->Type(s.plugin->NewContext(s.mux).get(), dbplugin::v5::Empty(), &type);
  const std::string out = s.plugin->stdout_text();
  const std::string err = s.plugin->stderr_text();
  for (const std::string& secret : {first, second}) {
    EXPECT_FALSE(absl::StrContains(out, secret)) << "expected no password on stdout, found one";
    EXPECT_FALSE(absl::StrContains(err, secret)) << "expected no password on stderr, found one";
  }
}

CONFORMANCE_TEST(Database, ConcurrentNewUsers, Should, "plugin-protocol.md §4 (database plugins)",
                 "Concurrent NewUser calls on one connection SHOULD all succeed with distinct "
                 "usernames.") {
  DbSession s;
  if (!OpenInitialized(&s)) return;
  std::vector<grpc::Status> statuses(kConcurrentUsers);
  std::vector<std::string> names(kConcurrentUsers);
  std::vector<std::thread> callers;
  for (int i = 0; i < kConcurrentUsers; ++i) {
    callers.emplace_back(
        [&, i] { statuses[i] = s.NewUser(&names[i], CanarySecret(absl::StrCat("db-par-", i))); });
  }
  for (std::thread& caller : callers) caller.join();
  std::set<std::string> distinct;
  for (int i = 0; i < kConcurrentUsers; ++i) {
    if (statuses[i].error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      ReportTimeout("dbplugin.v5.Database/NewUser (concurrent)");
      return;
    }
    EXPECT_TRUE(statuses[i].ok()) << "caller " << i << ": expected OK, got " << Show(statuses[i]);
    if (statuses[i].ok()) distinct.insert(names[i]);
  }
  const size_t ok = static_cast<size_t>(std::count_if(
      statuses.begin(), statuses.end(), [](const grpc::Status& st) { return st.ok(); }));
  EXPECT_EQ(distinct.size(), ok) << "expected " << ok << " distinct usernames, got "
                                 << distinct.size();
}

}  // namespace
}  // namespace bulwark::conformance
