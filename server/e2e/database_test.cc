// The database engine on a real `bulwark server -dev`, driven as a user drives it: the userdb
// plugin registered from the plugin directory as a database plugin, `bulwark secrets enable
// database`, a connection, a role, credentials under a lease (renewed, looked up, revoked),
// root rotation, and the raw HTTP shapes Vault's clients read (lease_id, lease_duration,
// renewable; 204s; 400 and 500 bodies).
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/e2e/bulwark_server.h"

namespace bulwark::e2e {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kRootToken[] = "e2e-database-root-token";
constexpr char kPlugin[] = "userdb-database-plugin";
constexpr char kRootPassword[] = "first-Root-Password-1";

class DatabaseE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    plugins_ = TestTmpDir() + "/plugins-" + test;
    db_dir_ = TestTmpDir() + "/userdb-" + test;
    ASSERT_EQ(mkdir(plugins_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(db_dir_.c_str(), 0700), 0);
    server_ = StartServer({"-dev", absl::StrCat("-dev-root-token-id=", kRootToken),
                           "-dev-listen-address=127.0.0.1:0", "-dev-plugin-dir=" + plugins_});
    ASSERT_FALSE(server_.address.empty()) << server_.process->output();
    // Installed after the start, so dev mode does not take it for a secrets engine.
    sha256_ = InstallPlugin("bulwark/examples/userdb/userdb_plugin", plugins_, kPlugin);
    // The database's root user, made with the database's own tool.
    ProcessResult r = RunProcess({plugins_ + "/" + kPlugin, "create-user", db_dir_, "vaultadmin"},
                                 ChildEnv("home", {}), std::string(kRootPassword) + "\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void TearDown() override {
    if (server_.process != nullptr) {
      EXPECT_EQ(server_.process->Stop(SIGTERM), 0) << server_.process->output();
    }
  }

  ProcessResult Bulwark(const std::vector<std::string>& args, const std::string& stdin_data = "") {
    std::vector<std::string> env = {absl::StrCat("VAULT_ADDR=", server_.address),
                                    absl::StrCat("VAULT_TOKEN=", kRootToken)};
    std::vector<std::string> argv = {BulwarkBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = RunProcess(argv, ChildEnv("home", env), stdin_data);
    last_ = absl::StrCat("$ bulwark ", absl::StrJoin(args, " "), "\n[exit ", r.exit_code, "]\n",
                         r.out, r.err);
    return r;
  }
  bool UserFileExists(const std::string& user) {
    struct stat st;
    return stat((db_dir_ + "/" + user + ".user").c_str(), &st) == 0;
  }
  // Configures "db1" and role "ro" through the CLI.
  void Configure() {
    ProcessResult r = Bulwark({"plugin", "register", "-sha256=" + sha256_,
                               std::string("-command=") + kPlugin, "database", kPlugin});
    ASSERT_EQ(r.exit_code, 0) << last_;
    r = Bulwark({"secrets", "enable", "database"});
    ASSERT_EQ(r.exit_code, 0) << last_;
    EXPECT_EQ(r.out, "Success! Enabled the database secrets engine at: database/\n");
    r = Bulwark({"write", "database/config/db1", std::string("plugin_name=") + kPlugin,
                 "connection_url=" + db_dir_, "username=vaultadmin",
                 std::string("password=") + kRootPassword, "allowed_roles=ro"});
    ASSERT_EQ(r.exit_code, 0) << last_;
    r = Bulwark({"write", "database/roles/ro", "db_name=db1", "default_ttl=1h", "max_ttl=24h"});
    ASSERT_EQ(r.exit_code, 0) << last_;
  }

  RunningServer server_;
  std::string plugins_, db_dir_, sha256_, last_;
};

TEST_F(DatabaseE2eTest, ConfigureIssueRenewRevokeRotateWithTheCli) {
  Configure();
  ProcessResult r = Bulwark({"read", "-format=json", "database/config/db1"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  json config = json::parse(r.out)["data"];
  EXPECT_EQ(config["plugin_name"], kPlugin);
  EXPECT_EQ(config["connection_details"]["username"], "vaultadmin");
  EXPECT_FALSE(config["connection_details"].contains("password"));
  EXPECT_THAT(r.out, Not(HasSubstr(kRootPassword)));

  r = Bulwark({"read", "-format=json", "database/creds/ro"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  json creds = json::parse(r.out);
  const std::string lease_id = creds["lease_id"].get<std::string>();
  const std::string user = creds["data"]["username"].get<std::string>();
  EXPECT_THAT(lease_id, ::testing::StartsWith("database/creds/ro/"));
  EXPECT_EQ(creds["lease_duration"], 3600);
  EXPECT_EQ(creds["renewable"], true);
  EXPECT_EQ(creds["data"]["password"].get<std::string>().size(), 20u);
  EXPECT_TRUE(UserFileExists(user));
  r = Bulwark({"read", "database/creds/ro"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_THAT(r.out, HasSubstr("lease_id "));
  EXPECT_THAT(r.out, HasSubstr("lease_duration     1h"));

  r = Bulwark({"lease", "renew", "-increment=30m", "-format=json", lease_id});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(json::parse(r.out)["lease_duration"], 1800);
  r = Bulwark({"lease", "lookup", "-format=json", lease_id});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(json::parse(r.out)["data"]["id"], lease_id);
  EXPECT_EQ(json::parse(r.out)["data"]["renewable"], true);

  r = Bulwark({"lease", "revoke", lease_id});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(r.out, "All revocation operations queued successfully!\n");
  EXPECT_FALSE(UserFileExists(user));
  r = Bulwark({"lease", "lookup", lease_id});
  EXPECT_EQ(r.exit_code, 2) << last_;
  EXPECT_THAT(r.err, HasSubstr("lease not found"));

  // Root rotation: the old password stops working, the engine keeps working.
  r = Bulwark({"write", "-f", "database/rotate-root/db1"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  r = Bulwark({"write", "database/config/db2", std::string("plugin_name=") + kPlugin,
               "connection_url=" + db_dir_, "username=vaultadmin",
               std::string("password=") + kRootPassword});
  EXPECT_EQ(r.exit_code, 2) << last_;
  EXPECT_THAT(r.err, HasSubstr("error creating database object"));
  EXPECT_THAT(r.err, HasSubstr("password authentication failed"));
  r = Bulwark({"write", "-f", "database/reset/db1"});
  EXPECT_EQ(r.exit_code, 0) << last_;
  r = Bulwark({"read", "-format=json", "database/creds/ro"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  const std::string second = json::parse(r.out)["data"]["username"].get<std::string>();
  EXPECT_TRUE(UserFileExists(second));

  // Unmounting revokes every lease first.
  r = Bulwark({"secrets", "disable", "database"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_FALSE(UserFileExists(second));
}

TEST_F(DatabaseE2eTest, ErrorsAndEmptyRepliesOverHttp) {
  Configure();
  // Vault's codes: an unknown role is a 400 error response, a role the config does not allow a
  // bare 500; a read of a missing config 404; writes 204.
  ProcessResult r = Bulwark({"read", "database/creds/nope"});
  EXPECT_EQ(r.exit_code, 2) << last_;
  EXPECT_THAT(r.err, HasSubstr("Code: 400"));
  EXPECT_THAT(r.err, HasSubstr("unknown role: nope"));
  ASSERT_EQ(Bulwark({"write", "database/roles/other", "db_name=db1"}).exit_code, 0) << last_;
  r = Bulwark({"read", "database/creds/other"});
  EXPECT_EQ(r.exit_code, 2) << last_;
  EXPECT_THAT(r.err, HasSubstr("Code: 500"));
  EXPECT_THAT(r.err, HasSubstr("\"other\" is not an allowed role"));
  r = Bulwark({"read", "database/config/missing"});
  EXPECT_EQ(r.exit_code, 2) << last_;
  r = Bulwark({"list", "-format=json", "database/config"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(json::parse(r.out), json({"db1"}));
  r = Bulwark({"lease", "revoke", "-prefix", "database/creds/"});
  EXPECT_EQ(r.exit_code, 0) << last_;
  r = Bulwark({"write", "database/config/bad", std::string("plugin_name=") + kPlugin,
               "connection_url=/nonexistent/dir"});
  EXPECT_EQ(r.exit_code, 2) << last_;
  EXPECT_THAT(r.err, HasSubstr("Code: 400"));
  EXPECT_THAT(r.err, HasSubstr("error creating database object"));
}

}  // namespace
}  // namespace bulwark::e2e
