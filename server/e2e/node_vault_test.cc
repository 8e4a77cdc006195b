// A real Vault client against the real server: node-vault (installed from npm by tools/setup,
// offline here) drives `bulwark server` with file storage through init, unseal, status, health,
// mounts, the built-in kv, an external C++ plugin from the catalog, step-down and seal; then the
// server is restarted on the same storage and node-vault unseals it and finds the data.
#include <sys/stat.h>

#include <fstream>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/e2e/bulwark_server.h"

namespace bulwark::e2e {
namespace {

ProcessResult RunNodeVault(const std::string& address, const std::string& phase,
                           const std::vector<std::string>& extra_env) {
  const std::string node = FindInPath("node");
  EXPECT_FALSE(node.empty()) << "node is not on PATH (tools/setup installs Node.js)";
  std::vector<std::string> env = {"VAULT_ADDR=" + address, "PHASE=" + phase,
                                  "NODE_PATH=" + Runfile("npm_node_modules"),
                                  "KEYS_FILE=" + TestTmpDir() + "/init.json"};
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  ProcessResult result = RunProcess({node, Runfile("bulwark/server/e2e/node_vault_test.js")},
                                    ChildEnv("node-home", env));
  std::cout << result.out;  // One "ok - <step>" line per step, for the test log.
  return result;
}

TEST(NodeVaultTest, InitUnsealMountsKvPluginStepDownSealAndRestart) {
  const std::string dir = TestTmpDir();
  const std::string plugin_dir = dir + "/plugins";
  const std::string sha256 =
      InstallPlugin("bulwark/examples/kv/kv_plugin", plugin_dir, "kv_plugin");
  const nlohmann::json config = {
      {"storage", {{"file", {{"path", dir + "/data"}}}}},
      {"listener", {{"tcp", {{"address", "127.0.0.1:0"}, {"tls_disable", true}}}}},
      {"plugin_directory", plugin_dir},
      {"disable_mlock", true},
  };
  const std::string config_path = dir + "/config.json";
  std::ofstream(config_path) << config.dump(2);

  {
    RunningServer server = StartServer({"-config=" + config_path});
    ASSERT_FALSE(server.address.empty()) << server.process->output();
    ProcessResult run = RunNodeVault(server.address, "first",
                                     {"PLUGIN_SHA256=" + sha256, "PLUGIN_COMMAND=kv_plugin"});
    EXPECT_EQ(run.exit_code, 0) << run.out << run.err << "\n--- server ---\n"
                                << server.process->output();
    EXPECT_EQ(server.process->Stop(SIGTERM), 0) << server.process->output();
    if (run.exit_code != 0) return;
  }
  RunningServer server = StartServer({"-config=" + config_path});
  ASSERT_FALSE(server.address.empty()) << server.process->output();
  ProcessResult run = RunNodeVault(server.address, "reopen", {});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err << "\n--- server ---\n"
                              << server.process->output();
  EXPECT_EQ(server.process->Stop(SIGTERM), 0) << server.process->output();
}

}  // namespace
}  // namespace bulwark::e2e
