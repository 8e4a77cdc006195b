// The CLI as a user types it, against a real `bulwark server -dev`: the same binary run as
// `bulwark status`, `bulwark write ...`, with VAULT_ADDR and VAULT_TOKEN (or ~/.vault-token) in
// its environment, checked by stdout, stderr and exit code; error paths included.
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

constexpr char kRootToken[] = "e2e-cli-root-token";

class CliE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    plugin_sha256_ = new std::string(
        InstallPlugin("bulwark/examples/kv/kv_plugin", TestTmpDir() + "/plugins", "kv_plugin"));
    server_ = new RunningServer(StartServer(
        {"-dev", absl::StrCat("-dev-root-token-id=", kRootToken), "-dev-listen-address=127.0.0.1:0",
         "-dev-plugin-dir=" + TestTmpDir() + "/plugins"}));
  }
  static void TearDownTestSuite() {
    if (server_->process != nullptr) {
      EXPECT_EQ(server_->process->Stop(SIGTERM), 0) << server_->process->output();
    }
    delete server_;
    delete plugin_sha256_;
  }

  void SetUp() override {
    ASSERT_FALSE(server_->address.empty()) << "the server did not start:\n"
                                           << server_->process->output();
  }

  // `bulwark <args>` with VAULT_ADDR, the root token in VAULT_TOKEN, and an empty home.
  ProcessResult Bulwark(const std::vector<std::string>& args, std::vector<std::string> env = {},
                        const std::string& stdin_data = "") {
    // getenv takes a name's first entry, so the test's own settings come before the defaults.
    env.push_back(absl::StrCat("VAULT_ADDR=", server_->address));
    if (use_root_token_) env.push_back(absl::StrCat("VAULT_TOKEN=", kRootToken));
    std::vector<std::string> argv = {BulwarkBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = RunProcess(argv, ChildEnv(home_, env), stdin_data);
    last_ = absl::StrCat("$ bulwark ", absl::StrJoin(args, " "), "\n[exit ", r.exit_code, "]\n",
                         r.out, r.err);
    return r;
  }

  static RunningServer* server_;
  static std::string* plugin_sha256_;
  bool use_root_token_ = true;
  std::string home_ = "cli-home";
  std::string last_;
};

RunningServer* CliE2eTest::server_ = nullptr;
std::string* CliE2eTest::plugin_sha256_ = nullptr;

TEST_F(CliE2eTest, StatusOfADevServerIsUnsealed) {
  ProcessResult r = Bulwark({"status"});
  EXPECT_EQ(r.exit_code, 0) << last_;
  EXPECT_THAT(r.out, HasSubstr("Initialized"));
  EXPECT_THAT(r.out, HasSubstr("Sealed          false"));
  r = Bulwark({"status", "-format=json"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  json status = json::parse(r.out);
  EXPECT_EQ(status["initialized"], true);
  EXPECT_EQ(status["sealed"], false);
}

TEST_F(CliE2eTest, WriteReadListDeleteOnTheBuiltInKv) {
  ProcessResult r = Bulwark({"write", "secret/app/db", "user=alice", "password=pw"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(r.out, "Success! Data written to: secret/app/db\n");
  r = Bulwark({"write", "secret/app/cache", "-"}, {}, R"({"url": "redis://cache"})");
  ASSERT_EQ(r.exit_code, 0) << last_;

  r = Bulwark({"read", "secret/app/db"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_THAT(r.out, HasSubstr("password    pw\n"));
  EXPECT_THAT(r.out, HasSubstr("user        alice\n"));
  r = Bulwark({"read", "-format=json", "secret/app/db"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(json::parse(r.out)["data"], json({{"user", "alice"}, {"password", "pw"}}));
  r = Bulwark({"read", "-field=url", "secret/app/cache"});
  EXPECT_EQ(r.out, "redis://cache") << last_;

  r = Bulwark({"list", "secret/app"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(r.out, "Keys\n----\ncache\ndb\n");
  r = Bulwark({"list", "secret"});
  EXPECT_THAT(r.out, HasSubstr("app/")) << last_;

  r = Bulwark({"delete", "secret/app/db"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(r.out, "Success! Data deleted (if it existed) at: secret/app/db\n");
  r = Bulwark({"read", "secret/app/db"});
  EXPECT_EQ(r.exit_code, 2) << last_;
  EXPECT_EQ(r.err, "No value found at secret/app/db\n");
}

TEST_F(CliE2eTest, SecretsEnableTuneListDisable) {
  ProcessResult r = Bulwark({"secrets", "enable", "-path=team", "-description=Team kv", "kv"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(r.out, "Success! Enabled the kv secrets engine at: team/\n");
  r = Bulwark({"secrets", "enable", "-path=team", "kv"});
  EXPECT_EQ(r.exit_code, 2) << last_;
  EXPECT_THAT(r.err, HasSubstr("Error enabling: Error making API request."));

  r = Bulwark({"secrets", "tune", "-max-lease-ttl=1h", "team"});
  EXPECT_EQ(r.exit_code, 0) << last_;
  r = Bulwark({"secrets", "list", "-format=json"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  json mounts = json::parse(r.out);
  ASSERT_TRUE(mounts.contains("team/")) << r.out;
  EXPECT_EQ(mounts["team/"]["type"], "kv");
  EXPECT_EQ(mounts["team/"]["description"], "Team kv");
  EXPECT_TRUE(mounts.contains("secret/"));
  r = Bulwark({"secrets", "list"});
  EXPECT_THAT(r.out, HasSubstr("Path ")) << last_;
  EXPECT_THAT(r.out, HasSubstr("team/ "));

  ASSERT_EQ(Bulwark({"write", "team/x", "a=b"}).exit_code, 0) << last_;
  r = Bulwark({"secrets", "disable", "team"});
  EXPECT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(r.out, "Success! Disabled the secrets engine (if it existed) at: team/\n");
  r = Bulwark({"read", "team/x"});
  EXPECT_EQ(r.exit_code, 2) << last_;
}

TEST_F(CliE2eTest, AnExternalPluginThroughTheCatalog) {
  ProcessResult r = Bulwark({"plugin", "register", "-sha256=" + *plugin_sha256_,
                             "-command=kv_plugin", "secret", "ext-kv"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(r.out, "Success! Registered plugin: ext-kv\n");
  r = Bulwark({"plugin", "info", "-format=json", "secret", "ext-kv"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(json::parse(r.out)["sha256"], *plugin_sha256_);
  r = Bulwark({"plugin", "list", "secret"});
  EXPECT_THAT(r.out, HasSubstr("ext-kv")) << last_;

  ASSERT_EQ(Bulwark({"secrets", "enable", "-path=ext", "ext-kv"}).exit_code, 0) << last_;
  ASSERT_EQ(Bulwark({"write", "ext/k", "v=1"}).exit_code, 0) << last_;
  EXPECT_EQ(Bulwark({"read", "-field=v", "ext/k"}).out, "1") << last_;
  r = Bulwark({"plugin", "reload", "-plugin=ext-kv"});
  EXPECT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(Bulwark({"read", "-field=v", "ext/k"}).out, "1") << last_;
  EXPECT_EQ(Bulwark({"secrets", "disable", "ext"}).exit_code, 0) << last_;
  r = Bulwark({"plugin", "deregister", "secret", "ext-kv"});
  EXPECT_EQ(r.exit_code, 0) << last_;
  r = Bulwark({"plugin", "info", "secret", "ext-kv"});
  EXPECT_EQ(r.exit_code, 2) << last_;
}

TEST_F(CliE2eTest, TokensFromVaultTokenOrTheTokenFile) {
  ProcessResult r = Bulwark({"token", "lookup", "-format=json"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_EQ(json::parse(r.out)["data"]["policies"], json::array({"root"}));

  r = Bulwark({"token", "create", "-field=token"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  const std::string child = r.out;
  ASSERT_FALSE(child.empty());

  // The child token from ~/.vault-token, with VAULT_TOKEN unset.
  use_root_token_ = false;
  home_ = "token-file-home";
  Bulwark({"status"});  // Makes the home directory.
  std::ofstream(TestTmpDir() + "/token-file-home/.vault-token") << child << "\n";
  r = Bulwark({"token", "lookup", "-format=json"});
  ASSERT_EQ(r.exit_code, 0) << last_;
  EXPECT_NE(json::parse(r.out)["data"]["accessor"], "");
  EXPECT_EQ(Bulwark({"write", "secret/from-file", "a=b"}).exit_code, 0) << last_;
}

TEST_F(CliE2eTest, ErrorPaths) {
  // No token anywhere: Vault's permission denied, exit 2.
  use_root_token_ = false;
  ProcessResult r = Bulwark({"read", "secret/app/cache"});
  EXPECT_EQ(r.exit_code, 2) << last_;
  EXPECT_THAT(r.err, HasSubstr("Code: 403"));
  EXPECT_THAT(r.err, HasSubstr("permission denied"));

  // A wrong token: refused, and never echoed.
  r = Bulwark({"read", "secret/app/cache"}, {"VAULT_TOKEN=wrong-token-e2e-0123"});
  EXPECT_EQ(r.exit_code, 2) << last_;
  EXPECT_THAT(r.err, HasSubstr("permission denied"));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr("wrong-token-e2e-0123")));
  use_root_token_ = true;

  // Bad flag, bad arguments, unknown command: local errors.
  r = Bulwark({"read", "-bogus", "secret/x"});
  EXPECT_EQ(r.exit_code, 1) << last_;
  EXPECT_THAT(r.err, HasSubstr("flag provided but not defined: -bogus"));
  EXPECT_EQ(Bulwark({"write", "secret/x"}).exit_code, 1) << last_;
  EXPECT_EQ(Bulwark({"frobnicate"}).exit_code, 127) << last_;

  // Unknown paths: nothing to read; a write there is the API's 404.
  r = Bulwark({"read", "nosuch/path"});
  EXPECT_EQ(r.exit_code, 2) << last_;
  EXPECT_EQ(r.err, "No value found at nosuch/path\n");
  r = Bulwark({"write", "nosuch/path", "a=b"});
  EXPECT_EQ(r.exit_code, 2) << last_;
  EXPECT_THAT(r.err, HasSubstr("Code: 404"));

  // Nothing listening.
  r = Bulwark({"status"}, {"VAULT_ADDR=http://127.0.0.1:1"});
  EXPECT_EQ(r.exit_code, 1) << last_;
  r = Bulwark({"read", "secret/x"}, {"VAULT_ADDR=http://127.0.0.1:1"});
  EXPECT_EQ(r.exit_code, 2) << last_;
}

// Sealing changes the server for every other test, so it has a dev server of its own.
TEST(CliE2eSealTest, SealedServerAnswersStatusTwoAndRefusesRequests) {
  RunningServer server =
      StartServer({"-dev", "-dev-root-token-id=seal-root", "-dev-listen-address=127.0.0.1:0"});
  ASSERT_FALSE(server.address.empty()) << server.process->output();
  auto bulwark = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {BulwarkBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(
        argv, ChildEnv("seal-home", {"VAULT_ADDR=" + server.address, "VAULT_TOKEN=seal-root"}));
  };
  ASSERT_EQ(bulwark({"write", "secret/kept", "a=b"}).exit_code, 0);
  ProcessResult r = bulwark({"operator", "seal"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Success! Vault is sealed.\n");

  r = bulwark({"status"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("Sealed             true"));
  r = bulwark({"read", "secret/kept"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("Vault is sealed"));
  r = bulwark({"operator", "step-down"});
  EXPECT_EQ(r.exit_code, 2);

  if (!server.unseal_key.empty()) {
    r = bulwark({"operator", "unseal", server.unseal_key});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(bulwark({"status"}).exit_code, 0);
    EXPECT_EQ(bulwark({"read", "-field=a", "secret/kept"}).out, "b");
  }
  EXPECT_EQ(server.process->Stop(SIGTERM), 0) << server.process->output();
}

}  // namespace
}  // namespace bulwark::e2e
