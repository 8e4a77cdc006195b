// `bulwark server -dev -dev-plugin-dir=DIR` with the C++ kv plugin in DIR, beside files that
// cannot be plugins: the plugin is registered with its SHA-256 and mounted at its file name and
// answers through the CLI; every other file is reported and skipped, and the server still
// starts.
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/e2e/bulwark_server.h"

namespace bulwark::e2e {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kRootToken[] = "dev-plugin-dir-root";

TEST(DevPluginDirTest, RegistersAndMountsEveryExecutableAndReportsTheRest) {
  const std::string dir = TestTmpDir() + "/dev-plugins";
  const std::string sha256 = InstallPlugin("bulwark/examples/kv/kv_plugin", dir, "kvdev");
  // A second copy under the name of the dev kv mount: registered, but its mount is refused.
  const std::string secret_sha256 = InstallPlugin("bulwark/examples/kv/kv_plugin", dir, "secret");
  // An executable that is not a plugin: it exits before any handshake.
  {
    std::ofstream(dir + "/broken") << "#!/bin/sh\nexit 3\n";
    ASSERT_EQ(chmod((dir + "/broken").c_str(), 0755), 0);
  }
  std::ofstream(dir + "/README.txt") << "not a plugin\n";  // Not executable: skipped.
  ASSERT_EQ(mkdir((dir + "/old").c_str(), 0755), 0);       // A directory: skipped.

  RunningServer server = StartServer({"-dev", absl::StrCat("-dev-root-token-id=", kRootToken),
                                      "-dev-listen-address=127.0.0.1:0", "-dev-plugin-dir=" + dir});
  ASSERT_FALSE(server.address.empty()) << "the server did not start:\n" << server.process->output();
  const std::string banner = server.process->output();
  EXPECT_THAT(banner,
              HasSubstr(absl::StrCat("The following dev plugins are registered in the catalog:\n"
                                     "    - broken (sha256: ")));
  EXPECT_THAT(banner, HasSubstr(absl::StrCat("    - kvdev (sha256: ", sha256, ")\n")));
  EXPECT_THAT(banner, HasSubstr(absl::StrCat("    - secret (sha256: ", secret_sha256, ")\n")));
  EXPECT_THAT(banner, HasSubstr("The following dev plugins are mounted:\n"
                                "    - kvdev/ (secret plugin kvdev)\n\n"));
  EXPECT_THAT(banner, HasSubstr("The following dev plugins FAILED to be registered or mounted:\n"
                                "    - broken: not mounted: "));
  EXPECT_THAT(banner, HasSubstr("    - secret: not mounted: "));
  EXPECT_THAT(banner, HasSubstr("The following files of the dev plugin directory were skipped:\n"
                                "    - README.txt: not an executable file\n"
                                "    - old: a directory\n"));

  auto bulwark = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {BulwarkBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(
        argv, ChildEnv("dev-plugin-home",
                       {"VAULT_ADDR=" + server.address, absl::StrCat("VAULT_TOKEN=", kRootToken)}));
  };
  ProcessResult r = bulwark({"plugin", "info", "-format=json", "secret", "kvdev"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const json info = json::parse(r.out);
  EXPECT_EQ(info["sha256"], sha256);
  EXPECT_EQ(info["command"], "kvdev");
  EXPECT_EQ(info["builtin"], false);

  r = bulwark({"secrets", "list", "-format=json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const json mounts = json::parse(r.out);
  ASSERT_TRUE(mounts.contains("kvdev/")) << r.out;
  EXPECT_EQ(mounts["kvdev/"]["type"], "kvdev");
  EXPECT_FALSE(mounts.contains("broken/")) << r.out;
  EXPECT_EQ(mounts["secret/"]["type"], "kv");  // The built-in stayed where it was.

  // The mounted plugin answers: a write and a read through the external process.
  r = bulwark({"write", "kvdev/app", "user=alice"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  r = bulwark({"read", "-field=user", "kvdev/app"});
  EXPECT_EQ(r.out, "alice") << r.err;
  r = bulwark({"list", "kvdev/"});
  EXPECT_THAT(r.out, HasSubstr("app")) << r.err;

  EXPECT_EQ(server.process->Stop(SIGTERM), 0) << server.process->output();
  EXPECT_THAT(server.process->output(), Not(HasSubstr("alice")));  // Data never in the log.
}

TEST(DevPluginDirTest, WithoutTheFlagNothingIsRegistered) {
  RunningServer server =
      StartServer({"-dev", "-dev-root-token-id=x", "-dev-listen-address=127.0.0.1:0"});
  ASSERT_FALSE(server.address.empty()) << server.process->output();
  EXPECT_THAT(server.process->output(), Not(HasSubstr("dev plugins")));
  EXPECT_EQ(server.process->Stop(SIGTERM), 0) << server.process->output();
}

}  // namespace
}  // namespace bulwark::e2e
