// Per-plugin monitoring through the real server: the C++ kv plugin registered and mounted, a
// request, its process killed out of band (a crash), a request that starts it again, and then
// sys/metrics (the JSON form, through the CLI) shows the starts, the crash, the requests, a
// running process and its CPU and resident memory sampled from /proc.
#include <dirent.h>
#include <signal.h>
#include <sys/types.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/e2e/bulwark_server.h"

namespace bulwark::e2e {
namespace {

using nlohmann::json;

// The value of the series `name` whose labels include every one of `labels`; -1 when absent.
double Series(const json& metrics, const std::string& kind, const std::string& name,
              const json& labels) {
  for (const json& s : metrics[kind]) {
    if (s["Name"] != name) continue;
    bool match = true;
    for (auto it = labels.begin(); it != labels.end(); ++it) {
      if (!s["Labels"].contains(it.key()) || s["Labels"][it.key()] != *it) match = false;
    }
    if (match)
      return kind == "Samples" ? s["Count"].get<double>()
                               : s[kind == "Counters" ? "Sum" : "Value"].get<double>();
  }
  return -1;
}

TEST(PluginMetricsE2eTest, CountersMoveOnStartCrashAndRequests) {
  const std::string dir = TestTmpDir() + "/metrics";
  ASSERT_EQ(RunProcess({"/bin/mkdir", "-p", dir + "/plugins"}, {}).exit_code, 0);
  const std::string sha =
      InstallPlugin("bulwark/examples/kv/kv_plugin", dir + "/plugins", "kv_plugin");
  const json config = {{"storage", {{"inmem", json::object()}}},
                       {"listener", {{"tcp", {{"address", "127.0.0.1:0"}, {"tls_disable", true}}}}},
                       {"plugin_directory", dir + "/plugins"}};
  std::ofstream(dir + "/config.json") << config.dump(2);
  RunningServer server = StartServer({"-config=" + dir + "/config.json"});
  ASSERT_FALSE(server.address.empty()) << server.process->output();
  std::string last;
  std::string token;
  auto cli = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {BulwarkBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env = {absl::StrCat("VAULT_ADDR=", server.address)};
    if (!token.empty()) env.push_back(absl::StrCat("VAULT_TOKEN=", token));
    ProcessResult r = RunProcess(argv, ChildEnv("cli-home", env));
    last = absl::StrCat("$ bulwark ", absl::StrJoin(args, " "), "\n[exit ", r.exit_code, "]\n",
                        r.out, r.err);
    return r;
  };
  ProcessResult init =
      cli({"operator", "init", "-key-shares=1", "-key-threshold=1", "-format=json"});
  ASSERT_EQ(init.exit_code, 0) << last;
  const json keys = json::parse(init.out);
  ASSERT_EQ(cli({"operator", "unseal", keys["unseal_keys_b64"][0].get<std::string>()}).exit_code, 0)
      << last;
  token = keys["root_token"].get<std::string>();
  ASSERT_EQ(cli({"plugin", "register", "-sha256=" + sha, "-command=kv_plugin", "-version=v1.2.3",
                 "secret", "watched"})
                .exit_code,
            0)
      << last;
  ASSERT_EQ(cli({"secrets", "enable", "-path=ext", "-plugin-version=v1.2.3", "watched"}).exit_code,
            0)
      << last << server.process->output();
  ASSERT_EQ(cli({"write", "ext/k", "v=1"}).exit_code, 0) << last;

  // A crash: the plugin's process is killed out of band.
  const std::vector<int> before = ChildPids(server.process->pid());
  ASSERT_FALSE(before.empty());
  for (int p : before) kill(p, SIGKILL);
  ASSERT_TRUE(server.process->WaitForLine("plugin process lost").has_value())
      << server.process->output();
  // The next request starts it again (after the crash, the first restart is immediate).
  ASSERT_EQ(cli({"read", "-field=v", "ext/k"}).exit_code, 0) << last;

  ProcessResult m = cli({"read", "-format=json", "sys/metrics"});
  ASSERT_EQ(m.exit_code, 0) << last;
  const json metrics = json::parse(m.out);
  const json mount = {{"plugin", "watched"}, {"version", "v1.2.3"}, {"mount", "ext/"}};
  const json entry = {{"plugin", "watched"}, {"version", "v1.2.3"}};
  EXPECT_EQ(Series(metrics, "Counters", "bulwark_plugin_starts_total", mount), 2) << m.out;
  json crash = mount;
  crash["reason"] = "crash";
  EXPECT_EQ(Series(metrics, "Counters", "bulwark_plugin_exits_total", crash), 1) << m.out;
  json ok = mount;
  ok["code"] = "OK";
  EXPECT_EQ(Series(metrics, "Counters", "bulwark_plugin_requests_total", ok), 2) << m.out;
  EXPECT_EQ(Series(metrics, "Samples", "bulwark_plugin_request_duration_seconds", mount), 2);
  EXPECT_EQ(Series(metrics, "Samples", "bulwark_plugin_ready_seconds", mount), 2);
  EXPECT_EQ(Series(metrics, "Gauges", "bulwark_plugin_requests_in_flight", mount), 0);
  EXPECT_EQ(Series(metrics, "Gauges", "bulwark_plugin_processes_running", entry), 1);
  EXPECT_GT(Series(metrics, "Gauges", "bulwark_plugin_resident_memory_bytes", entry), 100000);
  EXPECT_GE(Series(metrics, "Gauges", "bulwark_plugin_cpu_seconds", entry), 0);
  EXPECT_EQ(server.process->Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace bulwark::e2e
