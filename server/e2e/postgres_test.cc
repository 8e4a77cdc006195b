// The database engine and the PostgreSQL plugin end to end: a real `bulwark server`, the
// postgres plugin registered from its plugin directory, and a real PostgreSQL 15
// (//examples/postgres/testing). Credentials log in with libpq, revoking their lease drops the
// role, rotate-root leaves only a root password the test does not know, and a server killed
// between UpdateUser and the config write (failpoint database.rotate_root.store_config, then
// SIGKILL) rolls the root password back after its restart, so the stored root logs in again.
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/postgres/testing/postgres_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/e2e/bulwark_server.h"
#include "server/testing/process.h"

namespace bulwark::e2e {
namespace {

using examples::postgres::testing::PostgresServer;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kRootToken[] = "e2e-postgres-root-token";
constexpr char kPlugin[] = "postgresql-database-plugin";
constexpr char kCreation[] =
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';";

class PostgresE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<PostgresServer>> pg = PostgresServer::Start();
    ASSERT_TRUE(pg.ok()) << pg.status();
    pg_ = *std::move(pg);
    root_password_ = pg_->superuser_password();
    dir_ = TestTmpDir() + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_EQ(mkdir(dir_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((dir_ + "/plugins").c_str(), 0755), 0);
  }
  void TearDown() override {
    if (server_.process != nullptr) server_.process->Stop(SIGTERM);
  }

  ProcessResult Bulwark(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {BulwarkBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = RunProcess(argv, ChildEnv("home", ClientEnv()));
    last_ = absl::StrCat("$ bulwark ", absl::StrJoin(args, " "), "\n[exit ", r.exit_code, "]\n",
                         r.out, r.err);
    return r;
  }
  std::vector<std::string> ClientEnv() const {
    return {absl::StrCat("VAULT_ADDR=", server_.address), absl::StrCat("VAULT_TOKEN=", token_)};
  }
  // Registers the plugin, mounts database/, writes config "pg" and role "role".
  void Configure(const std::string& sha256) {
    ProcessResult r = Bulwark({"plugin", "register", "-sha256=" + sha256,
                               std::string("-command=") + kPlugin, "database", kPlugin});
    ASSERT_EQ(r.exit_code, 0) << last_;
    ASSERT_EQ(Bulwark({"secrets", "enable", "database"}).exit_code, 0) << last_;
    r = Bulwark({"write", "database/config/pg", std::string("plugin_name=") + kPlugin,
                 "connection_url=" + pg_->TemplatedUrl(), "username=" + pg_->superuser(),
                 "password=" + root_password_, "allowed_roles=role"});
    ASSERT_EQ(r.exit_code, 0) << last_;
    r = Bulwark({"write", "database/roles/role", "db_name=pg",
                 std::string("creation_statements=") + kCreation, "default_ttl=1h", "max_ttl=24h"});
    ASSERT_EQ(r.exit_code, 0) << last_;
  }
  // database/creds/role as JSON.
  json Creds() {
    ProcessResult r = Bulwark({"read", "-format=json", "database/creds/role"});
    EXPECT_EQ(r.exit_code, 0) << last_;
    return r.exit_code == 0 ? json::parse(r.out) : json();
  }
  std::string RoleCount(const std::string& user) {
    absl::StatusOr<std::optional<std::string>> n =
        pg_->QueryAsSuperuser("SELECT count(*) FROM pg_roles WHERE rolname = '" + user + "'");
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() && n->has_value() ? **n : "?";
  }

  std::unique_ptr<PostgresServer> pg_;
  std::string root_password_, dir_, last_, token_ = kRootToken;
  RunningServer server_;
};

TEST_F(PostgresE2eTest, CredsLogInRevokeDropsTheRoleRotateRootLeavesOnlyTheNewRoot) {
  server_ =
      StartServer({"-dev", absl::StrCat("-dev-root-token-id=", kRootToken),
                   "-dev-listen-address=127.0.0.1:0", "-dev-plugin-dir=" + dir_ + "/plugins"});
  ASSERT_FALSE(server_.address.empty()) << server_.process->output();
  // Installed after the start, so dev mode does not take it for a secrets engine.
  const std::string sha256 =
      InstallPlugin("bulwark/examples/postgres/postgres_plugin", dir_ + "/plugins", kPlugin);
  Configure(sha256);
  ProcessResult r = Bulwark({"read", "-format=json", "database/config/pg"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_THAT(r.out, Not(HasSubstr(root_password_)));

  json creds = Creds();
  const std::string lease_id = creds["lease_id"].get<std::string>();
  const std::string user = creds["data"]["username"].get<std::string>();
  const std::string password = creds["data"]["password"].get<std::string>();
  EXPECT_EQ(creds["lease_duration"], 3600);
  EXPECT_THAT(user, ::testing::StartsWith("v-token-role-"));
  EXPECT_TRUE(pg_->TryLogin(user, password).ok());
  EXPECT_EQ(pg_->TryLogin(user, password + "x").code(), absl::StatusCode::kPermissionDenied);
  // VALID UNTIL is the lease's end (plus Vault's 5 s), within the hour.
  absl::StatusOr<std::optional<std::string>> until = pg_->QueryAsSuperuser(
      "SELECT extract(epoch FROM rolvaliduntil - now())::int FROM pg_roles WHERE rolname = '" +
      user + "'");
  ASSERT_TRUE(until.ok() && until->has_value()) << until.status();
  EXPECT_GT(std::stoi(**until), 3000);
  EXPECT_LE(std::stoi(**until), 3605);

  r = Bulwark({"lease", "revoke", lease_id});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(RoleCount(user), "0");
  EXPECT_EQ(pg_->TryLogin(user, password).code(), absl::StatusCode::kPermissionDenied);

  // rotate-root: the password the test gave no longer logs in; the engine still issues creds.
  r = Bulwark({"write", "-f", "database/rotate-root/pg"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(pg_->TryLogin(pg_->superuser(), root_password_).code(),
            absl::StatusCode::kPermissionDenied);
  r = Bulwark({"read", "database/config/pg"});
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(root_password_)));
  json second = Creds();
  EXPECT_TRUE(pg_->TryLogin(second["data"]["username"].get<std::string>(),
                            second["data"]["password"].get<std::string>())
                  .ok());
  // Revocation goes through the new root too (the superuser queries above no longer can).
  r = Bulwark({"lease", "revoke", second["lease_id"].get<std::string>()});
  EXPECT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(pg_->TryLogin(second["data"]["username"].get<std::string>(),
                          second["data"]["password"].get<std::string>())
                .code(),
            absl::StatusCode::kPermissionDenied);
}

// The crash case. A file-storage server runs with BULWARK_FAILPOINTS making the engine
// stop after UpdateUser, before the config write; once PostgreSQL has the new root password (the
// old one is refused) the test SIGKILLs the server: storage holds the old password and the WAL.
// Restarted (no failpoints) and unsealed, the rollback manager's first pass (1 min: the WAL is
// older than a minute by then) sets the old password back, and the stored root logs in again.
TEST_F(PostgresE2eTest, CrashBetweenUpdateUserAndTheConfigWriteIsRolledBack) {
  const std::string sha256 =
      InstallPlugin("bulwark/examples/postgres/postgres_plugin", dir_ + "/plugins", kPlugin);
  const json config = {{"storage", {{"file", {{"path", dir_ + "/data"}}}}},
                       {"listener", {{"tcp", {{"address", "127.0.0.1:0"}, {"tls_disable", true}}}}},
                       {"plugin_directory", dir_ + "/plugins"}};
  std::ofstream(dir_ + "/config.json") << config.dump(2);
  server_ = StartServer({"-config=" + dir_ + "/config.json"},
                        {"BULWARK_FAILPOINTS=database.rotate_root.store_config=1*crash"});
  ASSERT_FALSE(server_.address.empty()) << server_.process->output();
  ProcessResult r =
      Bulwark({"operator", "init", "-key-shares=1", "-key-threshold=1", "-format=json"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  const json init = json::parse(r.out);
  const std::string unseal_key = init["unseal_keys_b64"][0].get<std::string>();
  token_ = init["root_token"].get<std::string>();
  ASSERT_EQ(Bulwark({"operator", "unseal", unseal_key}).exit_code, 0) << last_;
  Configure(sha256);

  // The rotation stops at the failpoint, so its request never returns: run it in the background.
  auto rotate = std::make_unique<ServerProcess>(
      std::vector<std::string>{BulwarkBinary(), "write", "-f", "database/rotate-root/pg"},
      ChildEnv("home", ClientEnv()));
  // Wait for the event: PostgreSQL refuses the old root password (UpdateUser is done). The
  // deadline is only a hang guard.
  const absl::Time guard = absl::Now() + absl::Minutes(5);
  while (pg_->TryLogin(pg_->superuser(), root_password_).ok() && absl::Now() < guard) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(pg_->TryLogin(pg_->superuser(), root_password_).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(server_.process->Stop(SIGKILL), 128 + SIGKILL);
  rotate.reset();

  server_ = StartServer({"-config=" + dir_ + "/config.json"});
  ASSERT_FALSE(server_.address.empty()) << server_.process->output();
  ASSERT_EQ(Bulwark({"operator", "unseal", unseal_key}).exit_code, 0) << last_;
  // The stored root (the old password) is refused until the rollback manager's pass.
  const absl::Time guard2 = absl::Now() + absl::Minutes(8);
  while (!pg_->TryLogin(pg_->superuser(), root_password_).ok() && absl::Now() < guard2) {
    absl::SleepFor(absl::Seconds(1));
  }
  ASSERT_TRUE(pg_->TryLogin(pg_->superuser(), root_password_).ok()) << server_.process->output();
  EXPECT_THAT(server_.process->output(), HasSubstr("WAL rolled back"));
  // The engine works with the stored root again.
  json creds = Creds();
  ASSERT_TRUE(creds.contains("data")) << last_;
  EXPECT_TRUE(pg_->TryLogin(creds["data"]["username"].get<std::string>(),
                            creds["data"]["password"].get<std::string>())
                  .ok());
  EXPECT_EQ(RoleCount(creds["data"]["username"].get<std::string>()), "1");
}

}  // namespace
}  // namespace bulwark::e2e
