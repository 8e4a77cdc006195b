// The PostgreSQL plugin against a real PostgreSQL 15 (testing/postgres_server.h), driven through
// the SDK's DatabaseDispatcher with Vault's protobuf requests, so every call meets Vault's
// request validation and error prefixes: credentials that log in, revocation that removes the
// role, root rotation after which only the new root password works, expirations in VALID
// UNTIL, and values that try to break out of the SQL.
#include "examples/postgres/postgres.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/env/posix/posix_clock.h"
#include "base/env/posix/posix_random.h"
#include "examples/postgres/testing/postgres_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/vault/database.pb.h"
#include "sdk/database_dispatcher.h"

namespace bulwark::examples::postgres {
namespace {

using ::bulwark::examples::postgres::testing::PostgresServer;
using ::testing::HasSubstr;
using ::testing::Not;

// Vault's documented creation statement for PostgreSQL.
constexpr char kVaultCreation[] =
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; "
    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";";

class PostgresTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<PostgresServer>> server = PostgresServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    sdk::DatabaseDispatcherOptions options;
    options.multiplexing = true;
    dispatcher_ =
        std::make_unique<sdk::DatabaseDispatcher>(PostgresFactory(clock_, random_), options);
  }

  PostgresServer& pg() { return *server_; }

  static dbplugin::v5::InitializeRequest InitRequest(const std::string& url,
                                                     const std::string& password,
                                                     bool verify = true) {
    dbplugin::v5::InitializeRequest init;
    init.set_verify_connection(verify);
    auto& fields = *init.mutable_config_data()->mutable_fields();
    fields["connection_url"].set_string_value(url);
    fields["username"].set_string_value(server_->superuser());
    fields["password"].set_string_value(password);
    return init;
  }

  absl::Status Call(absl::string_view method, const google::protobuf::Message& request,
                    const std::string& mux = "m1") {
    return dispatcher_->Dispatch(method, request.SerializeAsString(), mux).status();
  }

  absl::Status Initialize(const std::string& mux = "m1") {
    return Call(sdk::kDatabaseInitializeMethod,
                InitRequest(pg().TemplatedUrl(), pg().superuser_password()), mux);
  }

  absl::StatusOr<std::string> NewUser(const std::string& password,
                                      const std::vector<std::string>& statements = {kVaultCreation},
                                      absl::Time expiration = absl::Now() + absl::Hours(1),
                                      const std::string& display = "token-test",
                                      const std::string& role = "readonly") {
    dbplugin::v5::NewUserRequest request;
    request.mutable_username_config()->set_display_name(display);
    request.mutable_username_config()->set_role_name(role);
    request.set_password(password);
    request.mutable_expiration()->set_seconds(absl::ToUnixSeconds(expiration));
    for (const std::string& s : statements) request.mutable_statements()->add_commands(s);
    absl::StatusOr<std::string> reply =
        dispatcher_->Dispatch(sdk::kDatabaseNewUserMethod, request.SerializeAsString(), "m1");
    if (!reply.ok()) return reply.status();
    dbplugin::v5::NewUserResponse response;
    if (!response.ParseFromString(*reply)) return absl::InternalError("bad NewUserResponse");
    return response.username();
  }

  absl::Status ChangePassword(const std::string& username, const std::string& password,
                              const std::vector<std::string>& statements = {}) {
    dbplugin::v5::UpdateUserRequest request;
    request.set_username(username);
    request.mutable_password()->set_new_password(password);
    for (const std::string& s : statements) {
      request.mutable_password()->mutable_statements()->add_commands(s);
    }
    return Call(sdk::kDatabaseUpdateUserMethod, request);
  }

  absl::Status Delete(const std::string& username,
                      const std::vector<std::string>& statements = {}) {
    dbplugin::v5::DeleteUserRequest request;
    request.set_username(username);
    for (const std::string& s : statements) request.mutable_statements()->add_commands(s);
    return Call(sdk::kDatabaseDeleteUserMethod, request);
  }

  // The query's scalar as the superuser, or "error: ...".
  std::string Scalar(const std::string& sql) {
    absl::StatusOr<std::optional<std::string>> value = pg().QueryAsSuperuser(sql);
    if (!value.ok()) return "error: " + value.status().ToString();
    return value->value_or("NULL");
  }

  std::string RoleCount(const std::string& username) {
    return Scalar(absl::StrCat("SELECT count(*) FROM pg_roles WHERE rolname = ",
                               *StandardQuote(username, QuoteAs::kLiteral)));
  }

  static PostgresServer* server_;
  PosixClock clock_;
  PosixRandom random_;
  std::unique_ptr<sdk::DatabaseDispatcher> dispatcher_;
};

PostgresServer* PostgresTest::server_ = nullptr;

TEST_F(PostgresTest, TypeIsPgx) {
  absl::StatusOr<std::string> reply = dispatcher_->Dispatch(
      sdk::kDatabaseTypeMethod, dbplugin::v5::Empty().SerializeAsString(), "m1");
  ASSERT_TRUE(reply.ok()) << reply.status();
  dbplugin::v5::TypeResponse type;
  ASSERT_TRUE(type.ParseFromString(*reply));
  EXPECT_EQ(type.type(), "pgx");
}

TEST_F(PostgresTest, CredentialsLogInUntilRevoked) {
  ASSERT_TRUE(Initialize().ok());
  absl::StatusOr<std::string> user = NewUser("first-Password-1");
  ASSERT_TRUE(user.ok()) << user.status();
  // Vault's default template: v-<display 8>-<role 8>-<20 base62>-<unix seconds>.
  EXPECT_TRUE(absl::StartsWith(*user, "v-token-te-readonly-")) << *user;
  EXPECT_LE(user->size(), kIdentifierBytesMax);
  EXPECT_TRUE(pg().TryLogin(*user, "first-Password-1").ok());
  EXPECT_EQ(pg().TryLogin(*user, "wrong").code(), absl::StatusCode::kPermissionDenied);

  ASSERT_TRUE(ChangePassword(*user, "second-Password-2").ok());
  EXPECT_TRUE(pg().TryLogin(*user, "second-Password-2").ok());
  EXPECT_EQ(pg().TryLogin(*user, "first-Password-1").code(), absl::StatusCode::kPermissionDenied);

  // The default revocation (no statements): the role is gone and cannot log in.
  ASSERT_TRUE(pg().QueryAsSuperuser("CREATE SCHEMA IF NOT EXISTS app").ok());
  ASSERT_TRUE(pg().QueryAsSuperuser("CREATE TABLE IF NOT EXISTS app.t (x int)").ok());
  ASSERT_TRUE(pg().QueryAsSuperuser(absl::StrCat("GRANT USAGE ON SCHEMA app TO \"", *user,
                                                 "\"; GRANT SELECT ON app.t TO \"", *user, "\""))
                  .ok());
  EXPECT_EQ(RoleCount(*user), "1");
  absl::Status deleted = Delete(*user);
  ASSERT_TRUE(deleted.ok()) << deleted;
  EXPECT_EQ(RoleCount(*user), "0");
  EXPECT_EQ(pg().TryLogin(*user, "second-Password-2").code(), absl::StatusCode::kPermissionDenied);
  // Vault retries revocations: deleting again succeeds.
  EXPECT_TRUE(Delete(*user).ok());
  // And an update of the deleted user fails.
  absl::Status gone = ChangePassword(*user, "third-Password-3");
  EXPECT_EQ(gone.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(gone.message(), HasSubstr("does not exist"));
}

TEST_F(PostgresTest, RevocationStatementsAreUsed) {
  ASSERT_TRUE(Initialize().ok());
  absl::StatusOr<std::string> user = NewUser("pw-Revoke-1");
  ASSERT_TRUE(user.ok()) << user.status();
  ASSERT_TRUE(Delete(*user, {"REVOKE ALL ON SCHEMA public FROM \"{{name}}\"; DROP ROLE "
                             "\"{{username}}\";"})
                  .ok());
  EXPECT_EQ(RoleCount(*user), "0");
}

TEST_F(PostgresTest, ExpirationLandsInValidUntil) {
  ASSERT_TRUE(Initialize().ok());
  const absl::Time expiration = absl::FromUnixSeconds(1893456000);  // 2030-01-01 00:00:00 UTC.
  absl::StatusOr<std::string> user = NewUser("pw-Expire-1", {kVaultCreation}, expiration);
  ASSERT_TRUE(user.ok()) << user.status();
  const std::string query = absl::StrCat(
      "SELECT extract(epoch FROM rolvaliduntil)::bigint FROM pg_roles WHERE rolname = ",
      *StandardQuote(*user, QuoteAs::kLiteral));
  EXPECT_EQ(Scalar(query), "1893456000");

  // A renewal (UpdateUser with an expiration, Vault's default renew statement).
  dbplugin::v5::UpdateUserRequest renew;
  renew.set_username(*user);
  renew.mutable_expiration()->mutable_new_expiration()->set_seconds(1893459600);
  ASSERT_TRUE(Call(sdk::kDatabaseUpdateUserMethod, renew).ok());
  EXPECT_EQ(Scalar(query), "1893459600");

  // An expired role cannot log in.
  absl::StatusOr<std::string> expired =
      NewUser("pw-Expired-1", {kVaultCreation}, absl::FromUnixSeconds(946684800));  // 2000.
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(pg().TryLogin(*expired, "pw-Expired-1").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Delete(*user).ok());
  EXPECT_TRUE(Delete(*expired).ok());
}

TEST_F(PostgresTest, RotateRootLeavesOnlyTheNewPasswordWorking) {
  ASSERT_TRUE(Initialize().ok());
  const std::string old_password = pg().superuser_password();
  const std::string new_password = "rotated-Root-Password-42";
  absl::Status rotated = ChangePassword(pg().superuser(), new_password);
  ASSERT_TRUE(rotated.ok()) << rotated;
  pg().set_superuser_password(new_password);
  EXPECT_TRUE(pg().TryLogin(pg().superuser(), new_password).ok());
  EXPECT_EQ(pg().TryLogin(pg().superuser(), old_password).code(),
            absl::StatusCode::kPermissionDenied);
  // The plugin's own connection keeps working, and a new connection config with the new root
  // password (what the engine stores) verifies; the old one no longer does.
  EXPECT_TRUE(NewUser("pw-After-Rotate").ok());
  EXPECT_TRUE(Initialize("m2").ok());
  absl::Status old_init =
      Call(sdk::kDatabaseInitializeMethod, InitRequest(pg().TemplatedUrl(), old_password), "m3");
  EXPECT_EQ(old_init.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(old_init.message(), HasSubstr("failed to initialize: error verifying connection"));
  EXPECT_THAT(old_init.message(), HasSubstr("password authentication failed"));
  EXPECT_THAT(old_init.message(), Not(HasSubstr(old_password)));
  // Custom root rotation statements (root_rotation_statements) are used when given.
  const std::string third = "third-Root-Password-7";
  ASSERT_TRUE(ChangePassword(
                  pg().superuser(), third,
                  {"ALTER ROLE \"{{username}}\" WITH PASSWORD '{{password}}' CONNECTION LIMIT 50"})
                  .ok());
  pg().set_superuser_password(third);
  EXPECT_TRUE(pg().TryLogin(pg().superuser(), third).ok());
  EXPECT_EQ(pg().TryLogin(pg().superuser(), new_password).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Scalar("SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user"), "50");
}

TEST_F(PostgresTest, ValuesCannotBreakOutOfTheSql) {
  ASSERT_TRUE(Initialize().ok());
  ASSERT_TRUE(pg().QueryAsSuperuser("CREATE ROLE canary").ok());
  // A display name and role name with quotes and ';', and a password that tries both quoting
  // styles, a comment and a backslash.
  const std::string password = "p'; DROP ROLE canary; --\"\\x";
  absl::StatusOr<std::string> user =
      NewUser(password, {kVaultCreation}, absl::Now() + absl::Hours(1), "a\";DROP", "b';DROP");
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_THAT(*user, HasSubstr("a\";DROP-b';DROP-"));
  EXPECT_EQ(RoleCount(*user), "1");
  EXPECT_TRUE(pg().TryLogin(*user, password).ok());
  EXPECT_EQ(RoleCount("canary"), "1");
  // A username from the caller, as UpdateUser and DeleteUser get it.
  const std::string evil = "x\"; DROP ROLE canary; --";
  EXPECT_FALSE(ChangePassword(evil, "pw-Evil-1").ok());
  EXPECT_TRUE(Delete(evil).ok());  // No such role: nothing to revoke.
  EXPECT_EQ(RoleCount("canary"), "1");
  // A password that would end a dollar-quoted body is refused, not run.
  absl::Status dollar = ChangePassword(
      *user, "a$$b", {"DO $$ BEGIN ALTER ROLE \"{{name}}\" PASSWORD '{{password}}'; END $$"});
  EXPECT_THAT(dollar.message(), HasSubstr("would end the dollar-quoted body"));
  EXPECT_TRUE(Delete(*user).ok());
  EXPECT_EQ(RoleCount(*user), "0");
  ASSERT_TRUE(pg().QueryAsSuperuser("DROP ROLE canary").ok());
}

TEST_F(PostgresTest, FailedStatementRollsBackTheWholeCall) {
  ASSERT_TRUE(Initialize().ok());
  const std::string count =
      "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-rollback-readonly-%'";
  EXPECT_EQ(Scalar(count), "0");
  absl::StatusOr<std::string> user =
      NewUser("pw-Rollback-1",
              {"CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'",
               "GRANT SELECT ON no_such_table TO \"{{name}}\""},
              absl::Now() + absl::Hours(1), "rollback");
  ASSERT_FALSE(user.ok());
  EXPECT_THAT(user.status().message(),
              HasSubstr("unable to create new user: query 2 of 2 failed: relation "
                        "\"no_such_table\" does not exist (SQLSTATE 42P01)"));
  EXPECT_THAT(user.status().message(), Not(HasSubstr("pw-Rollback-1")));
  // The first query's role was rolled back with the second's failure.
  EXPECT_EQ(Scalar(count), "0");
  // And the connection is usable again (no transaction left open).
  absl::StatusOr<std::string> next =
      NewUser("pw-Rollback-2", {kVaultCreation}, absl::Now() + absl::Hours(1), "rollback");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(Scalar(count), "1");
  EXPECT_THAT(NewUser("pw-Empty-1", {}).status().message(), HasSubstr("empty creation statements"));
  EXPECT_THAT(NewUser("pw-Unknown-1", {"CREATE ROLE {{nmae}}"}).status().message(),
              HasSubstr("{{nmae}}, which this call does not provide"));
}

TEST_F(PostgresTest, InitializeErrorsNameTheProblem) {
  // Not reachable: no server at that socket directory.
  absl::Status unreachable =
      Call(sdk::kDatabaseInitializeMethod,
           InitRequest("postgresql://{{username}}:{{password}}@/postgres?host=/nonexistent-bw-dir",
                       pg().superuser_password()));
  EXPECT_EQ(unreachable.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(unreachable.message(), HasSubstr("failed to initialize: error verifying connection"));
  EXPECT_THAT(unreachable.message(), HasSubstr("/nonexistent-bw-dir"));
  EXPECT_THAT(unreachable.message(), Not(HasSubstr(pg().superuser_password())));
  // Without verification nothing is contacted.
  EXPECT_TRUE(Call(sdk::kDatabaseInitializeMethod,
                   InitRequest("postgresql://{{username}}:{{password}}@/x?host=/nonexistent-bw-dir",
                               "pw", /*verify=*/false))
                  .ok());
  // Config problems.
  dbplugin::v5::InitializeRequest empty = InitRequest("", "pw");
  EXPECT_THAT(Call(sdk::kDatabaseInitializeMethod, empty).message(),
              HasSubstr("connection_url cannot be empty"));
  dbplugin::v5::InitializeRequest templated = InitRequest(pg().TemplatedUrl(), "{{password}}");
  EXPECT_THAT(Call(sdk::kDatabaseInitializeMethod, templated).message(),
              HasSubstr("cannot contain the template variables"));
  // After all that the same connection id still works.
  EXPECT_TRUE(Initialize().ok());
  EXPECT_TRUE(NewUser("pw-Still-Up-1").ok());
}

TEST_F(PostgresTest, PasswordsWithUrlCharactersConnect) {
  // A root password with URL-significant characters reaches libpq percent-encoded.
  const std::string odd = "p@ss:w/rd?#&%'\\ x";
  ASSERT_TRUE(pg().QueryAsSuperuser(absl::StrCat("CREATE ROLE odd_root SUPERUSER LOGIN PASSWORD ",
                                                 *StandardQuote(odd, QuoteAs::kLiteral)))
                  .ok());
  dbplugin::v5::InitializeRequest init = InitRequest(pg().TemplatedUrl(), odd);
  (*init.mutable_config_data()->mutable_fields())["username"].set_string_value("odd_root");
  absl::Status status = Call(sdk::kDatabaseInitializeMethod, init, "odd");
  EXPECT_TRUE(status.ok()) << status;
  // The keyword=value form quotes instead.
  init = InitRequest(absl::StrCat("host=", pg().socket_dir(), " port=", pg().port(),
                                  " dbname=postgres user={{username}} password={{password}}"),
                     odd);
  (*init.mutable_config_data()->mutable_fields())["username"].set_string_value("odd_root");
  status = Call(sdk::kDatabaseInitializeMethod, init, "odd2");
  EXPECT_TRUE(status.ok()) << status;
}

TEST_F(PostgresTest, ScramHashedInThePlugin) {
  dbplugin::v5::InitializeRequest init =
      InitRequest(pg().TemplatedUrl(), pg().superuser_password());
  (*init.mutable_config_data()->mutable_fields())["password_authentication"].set_string_value(
      "scram-sha-256");
  ASSERT_TRUE(Call(sdk::kDatabaseInitializeMethod, init).ok());
  absl::StatusOr<std::string> user = NewUser("pw-Scram-1");
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_TRUE(pg().TryLogin(*user, "pw-Scram-1").ok());
  EXPECT_TRUE(
      absl::StartsWith(Scalar(absl::StrCat("SELECT rolpassword FROM pg_authid WHERE rolname = ",
                                           *StandardQuote(*user, QuoteAs::kLiteral))),
                       "SCRAM-SHA-256$"));
  EXPECT_TRUE(Delete(*user).ok());
}

TEST_F(PostgresTest, ReconnectsAfterTheServerEndedTheSession) {
  ASSERT_TRUE(Initialize().ok());
  ASSERT_TRUE(NewUser("pw-Before-1").ok());
  // The server ends the plugin's session while it is idle, and the test waits until the
  // backend is gone (the 60 s timeout is only a hang guard; sessions of earlier tests that are
  // still closing may be counted too).
  EXPECT_NE(Scalar("SELECT count(pg_terminate_backend(pid, 60000)) FROM pg_stat_activity WHERE "
                   "application_name = 'bulwark-postgres-plugin'"),
            "0");
  absl::StatusOr<std::string> after = NewUser("pw-After-1");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(pg().TryLogin(*after, "pw-After-1").ok());
}

TEST_F(PostgresTest, UsernameTemplateIsUsed) {
  dbplugin::v5::InitializeRequest init =
      InitRequest(pg().TemplatedUrl(), pg().superuser_password());
  (*init.mutable_config_data()->mutable_fields())["username_template"].set_string_value(
      "{{.RoleName | uppercase}}_{{random 6}}");
  ASSERT_TRUE(Call(sdk::kDatabaseInitializeMethod, init).ok());
  absl::StatusOr<std::string> user = NewUser("pw-Template-1");
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_THAT(*user, ::testing::MatchesRegex("READONLY_[0-9A-Za-z]{6}"));
  EXPECT_TRUE(pg().TryLogin(*user, "pw-Template-1").ok());
  EXPECT_TRUE(Delete(*user).ok());
  // A template outside the supported subset fails Initialize, naming the problem.
  (*init.mutable_config_data()->mutable_fields())["username_template"].set_string_value(
      "{{if .RoleName}}x{{end}}");
  EXPECT_THAT(Call(sdk::kDatabaseInitializeMethod, init, "m2").message(),
              HasSubstr("failed to initialize: invalid username template: unknown name \"if\""));
}

TEST_F(PostgresTest, CloseEndsTheConnection) {
  ASSERT_TRUE(Initialize().ok());
  ASSERT_TRUE(Call(sdk::kDatabaseCloseMethod, dbplugin::v5::Empty()).ok());
  EXPECT_FALSE(NewUser("pw-Closed-1").ok());
}

}  // namespace
}  // namespace bulwark::examples::postgres
