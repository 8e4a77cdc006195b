// The real `bulwark` binary as a process, spoken to over HTTP with a small socket client:
// -dev serves Vault's API and exits 0 on SIGTERM; configuration errors name the key and exit 1;
// and with file storage, SIGKILL in the middle of a stream of writes loses none that was
// acknowledged. Every wait is for an event (a line of output, EOF, an exit); the timeouts are
// hang guards only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/testing/etcd.h"
#include "server/testing/process.h"

namespace bulwark {
namespace {

using nlohmann::json;
using server_testing::ProcessResult;
using server_testing::Runfile;
using server_testing::RunProcess;
using server_testing::ServerProcess;
using server_testing::TestTmpDir;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAddressLine[] = "Api Address: http://";
constexpr char kReadyLine[] = "server started";

struct HttpReply {
  int status = 0;       // 0: no answer (refused, reset, closed early).
  std::string headers;  // The header lines, as received.
  std::string body;
  json Json() const { return json::parse(body, nullptr, false); }
  // The value of header `name` (case-insensitive), "" when absent.
  std::string Header(absl::string_view name) const {
    for (absl::string_view line : absl::StrSplit(headers, "\r\n")) {
      const size_t colon = line.find(':');
      if (colon != absl::string_view::npos && absl::EqualsIgnoreCase(line.substr(0, colon), name)) {
        return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
      }
    }
    return "";
  }
};

// Connects and sends one request ("Connection: close"); the socket, or -1 when that failed. A
// 60 s receive timeout is the hang guard for Receive.
int SendRequest(int port, const std::string& method, const std::string& path,
                const std::string& token = "", const std::string& body = "") {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval guard{60, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  std::string request =
      absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n", "Connection: close\r\n");
  if (!token.empty()) absl::StrAppend(&request, "X-Vault-Token: ", token, "\r\n");
  absl::StrAppend(&request, "Content-Length: ", body.size(), "\r\n\r\n", body);
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      close(fd);
      return -1;
    }
    sent += static_cast<size_t>(n);
  }
  return fd;
}

// Reads the answer on a socket from SendRequest to EOF and closes it.
HttpReply Receive(int fd) {
  HttpReply reply;
  if (fd < 0) return reply;
  std::string raw;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) raw.append(buf, static_cast<size_t>(n));
  close(fd);
  const size_t header_end = raw.find("\r\n\r\n");
  if (!absl::StartsWith(raw, "HTTP/1.1 ") || header_end == std::string::npos) return reply;
  if (!absl::SimpleAtoi(raw.substr(9, 3), &reply.status)) reply.status = 0;
  reply.headers = raw.substr(0, header_end);
  reply.body = raw.substr(header_end + 4);
  return reply;
}

// One request on its own connection, read to EOF.
HttpReply Send(int port, const std::string& method, const std::string& path,
               const std::string& token = "", const std::string& body = "") {
  return Receive(SendRequest(port, method, path, token, body));
}

struct Running {
  std::unique_ptr<ServerProcess> process;
  int port = 0;
};

// A short directory of this test's for the servers' runtime directories ($TMPDIR), so that a
// server killed with SIGKILL leaves nothing behind in /tmp: removed when the test ends.
class ShortTmpDir : public ::testing::Environment {
 public:
  void SetUp() override {
    char dir[] = "/tmp/bwtest-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    path = dir;
  }
  void TearDown() override { (void)!system(absl::StrCat("rm -rf ", path).c_str()); }
  static inline std::string path;
};
::testing::Environment* const kShortTmpDir = ::testing::AddGlobalTestEnvironment(new ShortTmpDir);

std::vector<std::string> ChildEnv() {
  return {"PATH=/usr/bin:/bin", "TMPDIR=" + ShortTmpDir::path};
}

// Starts `bulwark server <args>` and waits for its address and its ready line.
Running Start(const std::vector<std::string>& args,
              const std::vector<std::string>& env_extra = {}) {
  std::vector<std::string> argv = {Runfile("bulwark/server/bulwark"), "server"};
  argv.insert(argv.end(), args.begin(), args.end());
  Running r;
  std::vector<std::string> env = ChildEnv();
  env.insert(env.end(), env_extra.begin(), env_extra.end());
  r.process = std::make_unique<ServerProcess>(argv, env);
  std::optional<std::string> line = r.process->WaitForLine(kAddressLine);
  if (!line.has_value() || !r.process->WaitForLine(kReadyLine).has_value()) return r;
  absl::string_view address = absl::StripAsciiWhitespace(
      absl::string_view(*line).substr(line->find(kAddressLine) + sizeof(kAddressLine) - 1));
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(address.substr(colon + 1), &r.port)) {
    r.port = 0;
  }
  return r;
}

TEST(ServerProcessTest, DevServerServesTheApiAndExitsZeroOnSigterm) {
  const std::string token = "dev-root-token-5d1c";
  Running s = Start({"-dev", "-dev-listen-address=127.0.0.1:0", "-dev-root-token-id=" + token});
  ASSERT_NE(s.port, 0) << s.process->output();
  EXPECT_THAT(s.process->output(), HasSubstr("Root Token: " + token));

  HttpReply health = Send(s.port, "GET", "/v1/sys/health");
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_EQ(health.Json()["sealed"], false);
  EXPECT_EQ(Send(s.port, "GET", "/v1/sys/mounts").status, 403);
  EXPECT_EQ(Send(s.port, "PUT", "/v1/secret/app", token, R"({"password":"p-7781"})").status, 204);
  HttpReply read = Send(s.port, "GET", "/v1/secret/app", token);
  EXPECT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(read.Json()["data"]["password"], "p-7781");
  EXPECT_EQ(Send(s.port, "LIST", "/v1/secret", token).Json()["data"]["keys"], json({"app"}));
  EXPECT_EQ(Send(s.port, "GET", "/v1/secret/../sys/health").status, 400);

  EXPECT_EQ(s.process->Stop(SIGTERM), 0) << s.process->output();
  const std::string out = s.process->output();
  EXPECT_THAT(out, HasSubstr("every plugin stopped"));
  // The token is printed once, in the dev banner (as Vault does); the log after it never holds
  // the token or a secret value.
  const std::string log = out.substr(out.find(kReadyLine));
  EXPECT_THAT(log, Not(HasSubstr(token)));
  EXPECT_THAT(log, Not(HasSubstr("p-7781")));
  // Nothing listens any more.
  EXPECT_EQ(Send(s.port, "GET", "/v1/sys/health").status, 0);
}

TEST(ServerProcessTest, AnIdleKeepAliveConnectionDoesNotHoldUpShutdown) {
  Running s = Start({"-dev", "-dev-listen-address=127.0.0.1:0"});
  ASSERT_NE(s.port, 0) << s.process->output();
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(s.port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(s.process->Stop(SIGTERM), 0) << s.process->output();
  timeval guard{60, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
  char c;
  EXPECT_LE(recv(fd, &c, 1, 0), 0);  // Closed by the server (EOF), not left hanging.
  close(fd);
}

// Copies the runfile to dir/name, executable; returns its SHA-256 in hex (via sha256sum).
std::string InstallPlugin(const std::string& runfile, const std::string& dir,
                          const std::string& name) {
  const std::string path = dir + "/" + name;
  EXPECT_EQ(system(absl::StrCat("mkdir -p ", dir, " && cp ", Runfile(runfile), " ", path,
                                " && chmod 755 ", path)
                       .c_str()),
            0);
  ProcessResult sum = RunProcess({"/usr/bin/sha256sum", path}, {"PATH=/usr/bin:/bin"});
  return sum.out.substr(0, 64);
}

// A request the plugin never answers keeps the first signal's shutdown waiting (for the drain
// grace); a second signal ends the process at once, with exit code 1.
TEST(ServerProcessTest, ASecondSignalExitsAtOnce) {
  const std::string token = "second-signal-root";
  const std::string plugins = TestTmpDir() + "/second-signal-plugins";
  const std::string sha =
      InstallPlugin("bulwark/integration/testdata/misbehaving_plugin", plugins, "misbehaving");
  Running s = Start({"-dev", "-dev-listen-address=127.0.0.1:0", "-dev-root-token-id=" + token,
                     "-dev-plugin-dir=" + plugins});
  ASSERT_NE(s.port, 0) << s.process->output();
  ASSERT_EQ(Send(s.port, "PUT", "/v1/sys/plugins/catalog/secret/misbehaving", token,
                 absl::StrCat(R"({"sha256":")", sha, R"(","command":"misbehaving"})"))
                .status,
            204);
  ASSERT_EQ(Send(s.port, "POST", "/v1/sys/mounts/m", token, R"({"type":"misbehaving"})").status,
            204)
      << s.process->output();
  HttpReply blocked_reply;
  std::thread blocked([&] { blocked_reply = Send(s.port, "GET", "/v1/m/block", token); });
  // Wait until the blocked request is in the core (the metrics request itself is the other one
  // in flight), asking again after each answer; the deadline is a hang guard.
  bool in_core = false;
  for (const absl::Time guard = absl::Now() + absl::Seconds(60); !in_core && absl::Now() < guard;) {
    in_core =
        absl::StrContains(Send(s.port, "GET", "/v1/sys/metrics?format=prometheus", token).body,
                          "bulwark_api_requests_in_flight 2\n");
  }
  ASSERT_TRUE(in_core) << s.process->output();
  ASSERT_EQ(kill(s.process->pid(), SIGTERM), 0);
  ASSERT_TRUE(s.process->WaitForLine("shutdown requested").has_value()) << s.process->output();
  EXPECT_EQ(s.process->Stop(SIGTERM), 1) << s.process->output();
  EXPECT_THAT(s.process->output(), HasSubstr("second signal: exiting at once"));
  blocked.join();
  EXPECT_EQ(blocked_reply.status, 0);  // The connection ended without an answer.
}

TEST(ServerProcessTest, ConfigurationErrorsNameTheKeyAndExitOne) {
  const std::string path = TestTmpDir() + "/bad.json";
  std::ofstream(path) << R"({"storage": {"inmem": {}},
                              "listener": {"tcp": {"adress": "127.0.0.1:0", "tls_disable": true}}})";
  ProcessResult r =
      RunProcess({Runfile("bulwark/server/bulwark"), "server", "-config=" + path}, ChildEnv());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("listener.tcp.adress: unknown key"));
  r = RunProcess({Runfile("bulwark/server/bulwark"), "server"}, ChildEnv());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("-config"));
  r = RunProcess({Runfile("bulwark/server/bulwark"), "server", "-dev", "-nope"}, ChildEnv());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("flag provided but not defined: -nope"));
}

// SIGKILL lands while a client is writing as fast as the server acknowledges; after a restart on
// the same data directory every acknowledged write is there.
TEST(ServerProcessTest, SigkillMidWriteLosesNoAcknowledgedWrite) {
  const std::string dir = TestTmpDir() + "/durability";
  ASSERT_EQ(system(absl::StrCat("rm -rf ", dir, " && mkdir -p ", dir).c_str()), 0);
  const std::string config = dir + "/config.json";
  std::ofstream(config) << json{
      {"storage", {{"file", {{"path", dir + "/data"}}}}},
      {"listener", {{"tcp", {{"address", "127.0.0.1:0"}, {"tls_disable", true}}}}},
  }.dump();

  Running s = Start({"-config=" + config});
  ASSERT_NE(s.port, 0) << s.process->output();
  HttpReply init =
      Send(s.port, "PUT", "/v1/sys/init", "", R"({"secret_shares":1,"secret_threshold":1})");
  ASSERT_EQ(init.status, 200) << init.body;
  const std::string key = init.Json()["keys"][0].get<std::string>();
  const std::string root = init.Json()["root_token"].get<std::string>();
  const std::string unseal = absl::StrCat(R"({"key":")", key, R"("})");
  ASSERT_EQ(Send(s.port, "PUT", "/v1/sys/unseal", "", unseal).Json()["sealed"], false);
  ASSERT_EQ(Send(s.port, "POST", "/v1/sys/mounts/d", root, R"({"type":"kv"})").status, 204);

  constexpr size_t kAckedBeforeKill = 40;
  std::mutex mu;
  std::condition_variable changed;
  std::vector<int> acked;
  bool writer_done = false;
  std::thread writer([&] {
    for (int i = 0;; ++i) {
      HttpReply r = Send(s.port, "PUT", absl::StrCat("/v1/d/k", i), root,
                         absl::StrCat(R"({"v":"value-)", i, R"("})"));
      std::lock_guard<std::mutex> lock(mu);
      if (r.status != 204) {
        writer_done = true;
        changed.notify_all();
        return;
      }
      acked.push_back(i);
      changed.notify_all();
    }
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(120),
                                 [&] { return acked.size() >= kAckedBeforeKill || writer_done; }));
    ASSERT_FALSE(writer_done) << s.process->output();
  }
  // The writer keeps going: the kill lands before, during or after some write.
  EXPECT_EQ(s.process->Stop(SIGKILL), 128 + SIGKILL);
  writer.join();
  std::vector<int> written;
  {
    std::lock_guard<std::mutex> lock(mu);
    written = acked;
  }
  ASSERT_GE(written.size(), kAckedBeforeKill);

  Running again = Start({"-config=" + config});
  ASSERT_NE(again.port, 0) << again.process->output();
  EXPECT_EQ(Send(again.port, "GET", "/v1/sys/seal-status").Json()["sealed"], true);
  ASSERT_EQ(Send(again.port, "PUT", "/v1/sys/unseal", "", unseal).Json()["sealed"], false);
  for (int i : written) {
    HttpReply r = Send(again.port, "GET", absl::StrCat("/v1/d/k", i), root);
    ASSERT_EQ(r.status, 200) << "acknowledged write k" << i << " lost: " << r.body;
    EXPECT_EQ(r.Json()["data"]["v"], absl::StrCat("value-", i));
  }
  EXPECT_EQ(again.process->Stop(SIGTERM), 0) << again.process->output();
}

// Two servers can never share a data directory: the second refuses to start, naming it.
TEST(ServerProcessTest, ASecondServerOnTheSameFileStorageRefusesToStart) {
  const std::string dir = TestTmpDir() + "/shared-dir";
  ASSERT_EQ(system(absl::StrCat("rm -rf ", dir, " && mkdir -p ", dir).c_str()), 0);
  const std::string config = dir + "/config.json";
  std::ofstream(config) << json{
      {"storage", {{"file", {{"path", dir + "/data"}}}}},
      {"listener", {{"tcp", {{"address", "127.0.0.1:0"}, {"tls_disable", true}}}}},
  }.dump();
  Running first = Start({"-config=" + config});
  ASSERT_NE(first.port, 0) << first.process->output();
  ProcessResult second =
      RunProcess({Runfile("bulwark/server/bulwark"), "server", "-config=" + config}, ChildEnv());
  EXPECT_NE(second.exit_code, 0);
  EXPECT_THAT(second.out + second.err, HasSubstr("is in use by another bulwark server"));
  EXPECT_EQ(first.process->Stop(SIGTERM), 0) << first.process->output();
}

// Polls sys/leader until it reports this node active; the deadline is a hang guard.
bool WaitUntilActive(int port) {
  for (int i = 0; i < 1200; ++i) {
    HttpReply leader = Send(port, "GET", "/v1/sys/leader");
    if (leader.status == 200 && leader.Json()["is_self"] == true) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// With `cluster_port`, each server's cluster port listens on a free loopback port (the listener's
// cluster_address 127.0.0.1:0) and the server logs at trace level.
std::string EtcdConfig(const std::string& dir, const server_testing::EtcdProcess& etcd,
                       bool ha_enabled, const std::string& lock_ttl = "5s",
                       bool cluster_port = false, bool perf_standby = false,
                       bool disable_clustering = false) {
  const std::string config = dir + "/config.json";
  EXPECT_EQ(system(absl::StrCat("mkdir -p ", dir, "/plugins").c_str()), 0);
  json listener = {{"address", "127.0.0.1:0"}, {"tls_disable", true}};
  if (cluster_port) listener["cluster_address"] = "127.0.0.1:0";
  json c = json{
      {"plugin_directory", dir + "/plugins"},
      {"storage",
       {{"etcd",
         {{"address", etcd.client_url()},
          {"path", "/bw/"},
          {"ha_enabled", ha_enabled ? "true" : "false"},
          {"lock_ttl", lock_ttl}}}}},
      {"listener", {{"tcp", listener}}},
  };
  if (cluster_port) c["log_level"] = "trace";
  if (perf_standby) c["performance_standby"] = true;
  if (disable_clustering) c["disable_clustering"] = true;
  std::ofstream(config) << c.dump();
  return config;
}

struct Initialized {
  std::string root;    // "" when init or unseal failed.
  std::string unseal;  // The sys/unseal body.
};

// sys/init with one share, then sys/unseal.
Initialized InitAndUnseal(int port) {
  HttpReply init =
      Send(port, "PUT", "/v1/sys/init", "", R"({"secret_shares":1,"secret_threshold":1})");
  EXPECT_EQ(init.status, 200) << init.body;
  if (init.status != 200) return {};
  Initialized out;
  out.unseal = json{{"key", init.Json()["keys"][0]}}.dump();
  HttpReply unsealed = Send(port, "PUT", "/v1/sys/unseal", "", out.unseal);
  EXPECT_EQ(unsealed.Json()["sealed"], false) << unsealed.body;
  if (unsealed.Json()["sealed"] != false) return {};
  out.root = init.Json()["root_token"].get<std::string>();
  return out;
}

// Keys under `prefix` in etcd.
std::string EtcdKeys(const server_testing::EtcdProcess& etcd, const std::string& prefix) {
  ProcessResult r = etcd.Etcdctl({"get", "--prefix", "--keys-only", prefix});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

// One server on a real etcd with ha_enabled: it takes the lock at unseal, reports itself the
// active node, keeps its data in etcd across a restart, and releases the lock when it stops.
TEST(ServerProcessTest, AServerOnEtcdWithHaTakesTheLockAndKeepsItsDataAcrossRestarts) {
  server_testing::EtcdProcess etcd("etcd-ha");
  const std::string dir = TestTmpDir() + "/etcd-ha";
  ASSERT_EQ(system(absl::StrCat("rm -rf ", dir, " && mkdir -p ", dir).c_str()), 0);
  const std::string config = EtcdConfig(dir, etcd, /*ha_enabled=*/true);

  Running s = Start({"-config=" + config});
  ASSERT_NE(s.port, 0) << s.process->output();
  EXPECT_EQ(Send(s.port, "GET", "/v1/sys/leader").status, 503);  // HA and sealed.
  const Initialized init = InitAndUnseal(s.port);
  ASSERT_FALSE(init.root.empty());
  const std::string& root = init.root;
  const std::string& unseal = init.unseal;
  EXPECT_EQ(Send(s.port, "GET", "/v1/sys/seal-status").Json()["storage_type"], "etcd");
  ASSERT_TRUE(WaitUntilActive(s.port)) << s.process->output();
  json leader = Send(s.port, "GET", "/v1/sys/leader").Json();
  EXPECT_EQ(leader["ha_enabled"], true);
  EXPECT_EQ(leader["is_self"], true);
  EXPECT_EQ(leader["leader_address"], absl::StrCat("http://127.0.0.1:", s.port));
  EXPECT_NE(leader["active_time"], "0001-01-01T00:00:00Z");
  EXPECT_EQ(Send(s.port, "GET", "/v1/sys/health").status, 200);
  // The lock entry and the (encrypted) advertisement are in etcd.
  EXPECT_THAT(EtcdKeys(etcd, "/bw/core/lock/"), HasSubstr("/bw/core/lock/"));
  EXPECT_THAT(EtcdKeys(etcd, "/bw/logical/core/leader/"), HasSubstr("/bw/logical/core/leader/"));

  ASSERT_EQ(Send(s.port, "POST", "/v1/sys/mounts/d", root, R"({"type":"kv"})").status, 204);
  ASSERT_EQ(Send(s.port, "PUT", "/v1/d/app", root, R"({"v":"kept in etcd"})").status, 204);
  EXPECT_EQ(Send(s.port, "GET", "/v1/d/app", root).Json()["data"]["v"], "kept in etcd");
  EXPECT_EQ(s.process->Stop(SIGTERM), 0) << s.process->output();
  // Stopping released the lock at once (the lease was revoked, not left to expire).
  EXPECT_EQ(EtcdKeys(etcd, "/bw/core/lock/"), "");

  Running again = Start({"-config=" + config});
  ASSERT_NE(again.port, 0) << again.process->output();
  EXPECT_EQ(Send(again.port, "GET", "/v1/sys/seal-status").Json()["sealed"], true);
  ASSERT_EQ(Send(again.port, "PUT", "/v1/sys/unseal", "", unseal).Json()["sealed"], false);
  ASSERT_TRUE(WaitUntilActive(again.port)) << again.process->output();
  HttpReply read = Send(again.port, "GET", "/v1/d/app", root);
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(read.Json()["data"]["v"], "kept in etcd");
  EXPECT_EQ(again.process->Stop(SIGTERM), 0) << again.process->output();
}

// The server's lease is revoked behind its back (as if it expired): the server notices, steps
// down to standby (is_self false, every plugin stopped), contends again after its 10 s pause, wins,
// and serves the data it had.
TEST(ServerProcessTest, AServerOnEtcdThatLosesItsLeaseStepsDownAndTakesTheLockAgain) {
  server_testing::EtcdProcess etcd("etcd-loss");
  const std::string dir = TestTmpDir() + "/etcd-loss";
  ASSERT_EQ(system(absl::StrCat("rm -rf ", dir, " && mkdir -p ", dir).c_str()), 0);
  Running s = Start({"-config=" + EtcdConfig(dir, etcd, /*ha_enabled=*/true)});
  ASSERT_NE(s.port, 0) << s.process->output();
  const Initialized init = InitAndUnseal(s.port);
  ASSERT_FALSE(init.root.empty());
  const std::string& root = init.root;
  ASSERT_TRUE(WaitUntilActive(s.port)) << s.process->output();
  ASSERT_EQ(Send(s.port, "POST", "/v1/sys/mounts/d", root, R"({"type":"kv"})").status, 204);
  ASSERT_EQ(Send(s.port, "PUT", "/v1/d/x", root, R"({"v":"before"})").status, 204);

  // The lock entry's name is its lease id in hex.
  const std::string keys = EtcdKeys(etcd, "/bw/core/lock/");
  const size_t at = keys.find("/bw/core/lock/");
  ASSERT_NE(at, std::string::npos) << keys;
  const std::string lease(absl::StripAsciiWhitespace(keys.substr(at + 14)));
  ProcessResult revoke = etcd.Etcdctl({"lease", "revoke", lease});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.out << revoke.err;

  ASSERT_TRUE(s.process->WaitForLine("lost the HA lock: stepping down").has_value())
      << s.process->output();
  ASSERT_TRUE(s.process->WaitForLine("stepping down: stopping every plugin").has_value());
  // is_self went false with the "lost" line (same loop task); it is true again once the server
  // won a second time.
  ASSERT_TRUE(WaitUntilActive(s.port)) << s.process->output();
  const std::string output = s.process->output();
  size_t won = 0;
  for (size_t at = 0; (at = output.find("acquired the HA lock", at)) != std::string::npos; ++at) {
    ++won;
  }
  EXPECT_EQ(won, 2u) << output;
  HttpReply read = Send(s.port, "GET", "/v1/d/x", root);
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(read.Json()["data"]["v"], "before");
  EXPECT_EQ(s.process->Stop(SIGTERM), 0) << s.process->output();
}

// Without ha_enabled the server on etcd is simply active: no lock, sys/leader without HA.
TEST(ServerProcessTest, AServerOnEtcdWithoutHaTakesNoLock) {
  server_testing::EtcdProcess etcd("etcd-noha");
  const std::string dir = TestTmpDir() + "/etcd-noha";
  ASSERT_EQ(system(absl::StrCat("rm -rf ", dir, " && mkdir -p ", dir).c_str()), 0);
  Running s = Start({"-config=" + EtcdConfig(dir, etcd, /*ha_enabled=*/false)});
  ASSERT_NE(s.port, 0) << s.process->output();
  const Initialized init = InitAndUnseal(s.port);
  ASSERT_FALSE(init.root.empty());
  const std::string& root = init.root;
  json leader = Send(s.port, "GET", "/v1/sys/leader").Json();
  EXPECT_EQ(leader["ha_enabled"], false);
  EXPECT_EQ(leader["is_self"], false);
  ASSERT_EQ(Send(s.port, "POST", "/v1/sys/mounts/d", root, R"({"type":"kv"})").status, 204);
  ASSERT_EQ(Send(s.port, "PUT", "/v1/d/x", root, R"({"v":"1"})").status, 204);
  EXPECT_EQ(EtcdKeys(etcd, "/bw/core/lock/"), "");
  EXPECT_THAT(EtcdKeys(etcd, "/bw/"), HasSubstr("/bw/barrier/keyring"));
  EXPECT_EQ(s.process->Stop(SIGTERM), 0) << s.process->output();
}

// Polls `check` every 50 ms until it holds; the 120 s bound is a hang guard, never a measure.
template <typename F>
bool WaitFor(F check) {
  for (int i = 0; i < 2400; ++i) {
    if (check()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string Address(int port) { return absl::StrCat("http://127.0.0.1:", port); }

// The index of the server among `servers` (skipping `dead`) that reports itself the active
// node, once exactly one does and every other live server names it in sys/leader; -1 when that
// never happened (hang guard).
int WaitForOneActive(const std::vector<Running>& servers, const std::vector<bool>& dead) {
  int found = -1;
  const bool ok = WaitFor([&] {
    found = -1;
    std::vector<json> leaders(servers.size());
    for (size_t i = 0; i < servers.size(); ++i) {
      if (dead[i]) continue;
      HttpReply r = Send(servers[i].port, "GET", "/v1/sys/leader");
      if (r.status != 200) return false;
      leaders[i] = r.Json();
      if (leaders[i]["is_self"] == true) {
        if (found != -1) return false;
        found = static_cast<int>(i);
      }
    }
    if (found == -1) return false;
    for (size_t i = 0; i < servers.size(); ++i) {
      if (dead[i] || static_cast<int>(i) == found) continue;
      if (leaders[i]["leader_address"] != Address(servers[found].port)) return false;
    }
    return true;
  });
  return ok ? found : -1;
}

// The port in a Location "http://127.0.0.1:<port>/...", 0 when it is not one.
int LocationPort(const std::string& location) {
  absl::string_view rest = location;
  if (!absl::ConsumePrefix(&rest, "http://127.0.0.1:")) return 0;
  int port = 0;
  return absl::SimpleAtoi(rest.substr(0, rest.find('/')), &port) ? port : 0;
}

// The child processes of `pid` (its plugins), from /proc; "" when it has none.
std::string Children(pid_t pid) {
  ProcessResult r = RunProcess(
      {"/bin/sh", "-c", absl::StrCat("cat /proc/", pid, "/task/*/children")}, ChildEnv());
  return std::string(absl::StripAsciiWhitespace(r.out));
}

// Starts `n` servers on `etcd` (lock TTL 3 s) under a fresh directory `name`, initialises
// through the first and unseals every one with its key, waits until the first is the active node
// and the others name it, and mounts kv at d/. Use with ASSERT_NO_FATAL_FAILURE.
void StartHaServers(const server_testing::EtcdProcess& etcd, const std::string& name, int n,
                    std::vector<Running>* servers, Initialized* init, bool cluster_port = false,
                    bool perf_standby = false, const std::vector<std::string>& first_env = {}) {
  const std::string dir = TestTmpDir() + "/" + name;
  ASSERT_EQ(system(absl::StrCat("rm -rf ", dir, " && mkdir -p ", dir).c_str()), 0);
  const std::string config =
      EtcdConfig(dir, etcd, /*ha_enabled=*/true, "3s", cluster_port, perf_standby);
  for (int i = 0; i < n; ++i) {
    servers->push_back(
        Start({"-config=" + config}, i == 0 ? first_env : std::vector<std::string>{}));
    ASSERT_NE((*servers)[i].port, 0) << (*servers)[i].process->output();
    if (i == 0) {
      *init = InitAndUnseal((*servers)[0].port);
      ASSERT_FALSE(init->root.empty());
      ASSERT_TRUE(WaitUntilActive((*servers)[0].port)) << (*servers)[0].process->output();
    } else {
      ASSERT_EQ(
          Send((*servers)[i].port, "PUT", "/v1/sys/unseal", "", init->unseal).Json()["sealed"],
          false);
    }
  }
  ASSERT_EQ(WaitForOneActive(*servers, std::vector<bool>(n, false)), 0);
  ASSERT_EQ(
      Send((*servers)[0].port, "POST", "/v1/sys/mounts/d", init->root, R"({"type":"kv"})").status,
      204);
}

// Three servers on one etcd (lock TTL 3 s), initialised through the first and unsealed with the
// same key: one is active, the others are standbys (429) that redirect a write to it (307); the
// write lands when the redirect is followed. SIGKILL of the active: another takes over and serves
// the data and new writes. sys/step-down on the new active: it gives the lock up, its plugins
// stop, and the third server becomes active.
TEST(ServerProcessTest, ThreeServersOnEtcdFailOverAndStepDown) {
  server_testing::EtcdProcess etcd("etcd-three");
  std::vector<Running> servers;
  Initialized init;
  ASSERT_NO_FATAL_FAILURE(StartHaServers(etcd, "etcd-three", 3, &servers, &init));
  const std::string& root = init.root;
  std::vector<bool> dead(3, false);

  for (int i = 1; i < 3; ++i) {
    HttpReply health = Send(servers[i].port, "GET", "/v1/sys/health");
    EXPECT_EQ(health.status, 429) << health.body;
    EXPECT_EQ(health.Json()["standby"], true);
    EXPECT_EQ(Send(servers[i].port, "GET", "/v1/sys/leader").Json()["is_self"], false);
    EXPECT_EQ(Send(servers[i].port, "GET", "/v1/sys/seal-status").status, 200);
    // A write on a standby: 307 to the active node, same path; nothing served here.
    const std::string path = absl::StrCat("/v1/d/via-", i);
    HttpReply redirect = Send(servers[i].port, "PUT", path, root, R"({"v":"redirected"})");
    ASSERT_EQ(redirect.status, 307) << redirect.headers << redirect.body;
    EXPECT_EQ(redirect.Header("Location"), Address(servers[0].port) + path);
    const int to = LocationPort(redirect.Header("Location"));
    ASSERT_EQ(to, servers[0].port);
    ASSERT_EQ(Send(to, "PUT", path, root, R"({"v":"redirected"})").status, 204);
    EXPECT_EQ(Send(servers[0].port, "GET", path, root).Json()["data"]["v"], "redirected");
  }

  // SIGKILL the active: one of the two standbys takes over once the 3 s lease is gone.
  // The time to the first write through the new active is printed (docs/performance.md), never
  // asserted on.
  const absl::Time killed = absl::Now();
  EXPECT_EQ(servers[0].process->Stop(SIGKILL), 128 + SIGKILL);
  dead[0] = true;
  const int second = WaitForOneActive(servers, dead);
  ASSERT_NE(second, -1) << servers[1].process->output() << servers[2].process->output();
  ASSERT_EQ(Send(servers[second].port, "PUT", "/v1/d/after", root, R"({"v":"failover"})").status,
            204);
  std::printf(
      "failover: SIGKILL of the active -> first write through the new active: %s "
      "(lock TTL 3s)\n",
      absl::FormatDuration(absl::Now() - killed).c_str());
  HttpReply kept = Send(servers[second].port, "GET", "/v1/d/via-1", root);
  ASSERT_EQ(kept.status, 200) << kept.body;
  EXPECT_EQ(kept.Json()["data"]["v"], "redirected");
  const int third = 3 - second;  // The other live server (1 or 2).
  EXPECT_EQ(Send(servers[third].port, "GET", "/v1/sys/health").status, 429);

  // An external plugin mounted on the active node runs there only, never on a standby.
  const std::string sha = InstallPlugin("bulwark/integration/testdata/misbehaving_plugin",
                                        TestTmpDir() + "/etcd-three/plugins", "misbehaving");
  ASSERT_EQ(Send(servers[second].port, "PUT", "/v1/sys/plugins/catalog/secret/misbehaving", root,
                 absl::StrCat(R"({"sha256":")", sha, R"(","command":"misbehaving"})"))
                .status,
            204);
  ASSERT_EQ(
      Send(servers[second].port, "POST", "/v1/sys/mounts/m", root, R"({"type":"misbehaving"})")
          .status,
      204)
      << servers[second].process->output();
  EXPECT_NE(Children(servers[second].process->pid()), "");
  EXPECT_EQ(Children(servers[third].process->pid()), "");

  // Step-down through the API: the active gives the lock up, its plugins stop, the third takes
  // over at once (the lease was revoked; the stepped-down node waits 10 s before contending).
  ASSERT_EQ(Send(servers[second].port, "PUT", "/v1/sys/step-down", root).status, 204);
  ASSERT_TRUE(
      servers[second].process->WaitForLine("stepping down by request: releasing").has_value())
      << servers[second].process->output();
  ASSERT_TRUE(servers[second].process->WaitForLine("stepping down: stopping every plugin"));
  ASSERT_TRUE(servers[second].process->WaitForLine("stepped down by request; contending again in"));
  ASSERT_EQ(WaitForOneActive(servers, dead), third)
      << servers[second].process->output() << servers[third].process->output();
  EXPECT_EQ(Send(servers[second].port, "GET", "/v1/sys/health").status, 429);
  // The old active's plugin stopped with the step-down; the new active runs its own.
  EXPECT_TRUE(WaitFor([&] { return Children(servers[second].process->pid()).empty(); }));
  EXPECT_TRUE(WaitFor([&] { return !Children(servers[third].process->pid()).empty(); }));
  HttpReply after = Send(servers[third].port, "GET", "/v1/d/after", root);
  ASSERT_EQ(after.status, 200) << after.body;
  EXPECT_EQ(after.Json()["data"]["v"], "failover");
  HttpReply back = Send(servers[second].port, "PUT", "/v1/d/x", root, R"({"v":"1"})");
  EXPECT_EQ(back.status, 307);
  EXPECT_EQ(back.Header("Location"), Address(servers[third].port) + "/v1/d/x");
  for (int i : {second, third}) {
    EXPECT_EQ(servers[i].process->Stop(SIGTERM), 0) << servers[i].process->output();
  }
}

// Three servers with cluster ports: a standby forwards what it does not answer itself to the
// active node over the cluster port (mutual TLS from the cluster CA) and returns its answer, so
// a write through a standby lands on the active node with no redirect; after a SIGKILL of the
// active, the remaining standby forwards to the new one. Neither node ever logs the client's
// token, at trace level.
TEST(ServerProcessTest, StandbysForwardToTheActiveOverTheClusterPort) {
  server_testing::EtcdProcess etcd("etcd-fwd");
  std::vector<Running> servers;
  Initialized init;
  ASSERT_NO_FATAL_FAILURE(StartHaServers(etcd, "etcd-fwd", 3, &servers, &init,
                                         /*cluster_port=*/true));
  const std::string& root = init.root;
  std::vector<bool> dead(3, false);
  ASSERT_TRUE(servers[0].process->WaitForLine("cluster port listening on").has_value())
      << servers[0].process->output();
  // The active node advertises its cluster port.
  HttpReply leader = Send(servers[1].port, "GET", "/v1/sys/leader");
  EXPECT_THAT(leader.Json()["leader_cluster_address"].get<std::string>(),
              ::testing::StartsWith("https://127.0.0.1:"));

  for (int i = 1; i < 3; ++i) {
    EXPECT_EQ(Send(servers[i].port, "GET", "/v1/sys/health").status, 429);  // Answered here.
    const std::string path = absl::StrCat("/v1/d/fwd-", i);
    HttpReply write = Send(servers[i].port, "PUT", path, root, R"({"v":"forwarded"})");
    ASSERT_EQ(write.status, 204) << write.headers << write.body << servers[i].process->output();
    EXPECT_EQ(write.Header("Location"), "");
    // It landed on the active node, and a read through the standby is forwarded too.
    EXPECT_EQ(Send(servers[0].port, "GET", path, root).Json()["data"]["v"], "forwarded");
    EXPECT_EQ(Send(servers[i].port, "GET", path, root).Json()["data"]["v"], "forwarded");
    // The active node's errors come back as they are.
    HttpReply denied = Send(servers[i].port, "GET", path, "not-a-token");
    EXPECT_EQ(denied.status, 403) << denied.body;
  }

  // Failover: the standby left learns the new active node and forwards to it.
  EXPECT_EQ(servers[0].process->Stop(SIGKILL), 128 + SIGKILL);
  dead[0] = true;
  const int second = WaitForOneActive(servers, dead);
  ASSERT_NE(second, -1) << servers[1].process->output() << servers[2].process->output();
  const int third = 3 - second;
  ASSERT_TRUE(servers[second].process->WaitForLine("cluster port listening on").has_value());
  HttpReply after = Send(servers[third].port, "PUT", "/v1/d/after", root, R"({"v":"new"})");
  ASSERT_EQ(after.status, 204) << after.headers << after.body << servers[third].process->output();
  EXPECT_EQ(Send(servers[second].port, "GET", "/v1/d/after", root).Json()["data"]["v"], "new");
  EXPECT_EQ(Send(servers[second].port, "GET", "/v1/d/fwd-1", root).Json()["data"]["v"],
            "forwarded");

  for (int i : {second, third}) {
    EXPECT_EQ(servers[i].process->Stop(SIGTERM), 0) << servers[i].process->output();
  }
  for (const Running& s : servers) {
    EXPECT_THAT(s.process->output(), Not(HasSubstr(root)));
  }
}

// A forwarded write whose answer is lost after the active node applied it (the active runs with
// the failpoint cluster.forward.lose_answer, which fails the cluster-port call after its handler
// answered: a stream that breaks late): the standby answers 504 "outcome unknown", never a 307
// that would make the client send the write again, and the write did land on the active node.
// Deterministic: the failpoint fires on the event itself, no clock is raced.
TEST(ServerProcessTest, AForwardWhoseAnswerIsLostIsOutcomeUnknownNotARedirect) {
  server_testing::EtcdProcess etcd("etcd-lost");
  std::vector<Running> servers;
  Initialized init;
  ASSERT_NO_FATAL_FAILURE(StartHaServers(
      etcd, "etcd-lost", 2, &servers, &init, /*cluster_port=*/true, /*perf_standby=*/false,
      {"BULWARK_FAILPOINTS=cluster.forward.lose_answer=return(unavailable)"}));
  const std::string& root = init.root;
  ASSERT_TRUE(servers[0].process->WaitForLine("cluster port listening on").has_value())
      << servers[0].process->output();
  HttpReply write = Send(servers[1].port, "PUT", "/v1/d/once", root, R"({"v":"applied"})");
  EXPECT_EQ(write.status, 504) << write.headers << write.body << servers[1].process->output();
  EXPECT_THAT(write.body, HasSubstr("forwarded request outcome unknown; the active node may have "
                                    "applied it"));
  EXPECT_EQ(write.Header("Location"), "");
  // It was applied: a client that had been redirected would have written it twice.
  EXPECT_EQ(Send(servers[0].port, "GET", "/v1/d/once", root).Json()["data"]["v"], "applied");
  EXPECT_THAT(servers[1].process->output(), HasSubstr("forwarded request outcome unknown"));
  for (Running& s : servers) {
    EXPECT_EQ(s.process->Stop(SIGTERM), 0) << s.process->output();
    EXPECT_THAT(s.process->output(), Not(HasSubstr(root)));
  }
}

// The value of the series `series` (e.g. `bulwark_ha_requests_total{served="local"}`) in a
// Prometheus text body; 0 when absent.
double MetricValue(const std::string& body, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (!absl::ConsumePrefix(&line, series) || !absl::ConsumePrefix(&line, " ")) continue;
    double v = 0;
    return absl::SimpleAtod(line, &v) ? v : 0;
  }
  return 0;
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Three servers with performance_standby: the two that are not active report 473 and
// performance_standby in sys/leader; a read on one is served there (its own
// bulwark_ha_requests_total{served="local"} grows, "forwarded" does not); a write through it gets
// the read-only error locally and is re-sent whole to the active node, which lands it (the
// client sees 204, "forwarded" grows). A mount enabled on the active node reaches the perf
// standbys through their etcd watch (the test waits for the invalidation's log line) and is then
// served there locally.
TEST(ServerProcessTest, PerformanceStandbysServeReadsAndResendWrites) {
  server_testing::EtcdProcess etcd("etcd-perf");
  std::vector<Running> servers;
  Initialized init;
  ASSERT_NO_FATAL_FAILURE(StartHaServers(etcd, "etcd-perf", 3, &servers, &init,
                                         /*cluster_port=*/true, /*perf_standby=*/true));
  const std::string& root = init.root;
  ASSERT_EQ(Send(servers[0].port, "PUT", "/v1/d/r", root, R"({"v":"on-active"})").status, 204);
  for (int i = 1; i < 3; ++i) {
    ASSERT_TRUE(WaitFor([&] {
      return Send(servers[i].port, "GET", "/v1/sys/health").status == 473;
    })) << servers[i].process->output();
    HttpReply health = Send(servers[i].port, "GET", "/v1/sys/health");
    EXPECT_EQ(health.Json()["performance_standby"], true);
    EXPECT_EQ(health.Json()["standby"], true);
    EXPECT_EQ(Send(servers[i].port, "GET", "/v1/sys/health?perfstandbyok=true").status, 200);
    HttpReply leader = Send(servers[i].port, "GET", "/v1/sys/leader");
    EXPECT_EQ(leader.Json()["is_self"], false);
    EXPECT_EQ(leader.Json()["performance_standby"], true);
    EXPECT_EQ(leader.Json()["leader_address"], Address(servers[0].port));
  }
  const std::string kLocal = R"(bulwark_ha_requests_total{served="local"})";
  const std::string kForwarded = R"(bulwark_ha_requests_total{served="forwarded"})";
  auto metrics = [&](int i) {
    return Send(servers[i].port, "GET", "/v1/sys/metrics?format=prometheus", root).body;
  };

  // A read on the perf standby: served there.
  const std::string before = metrics(1);
  HttpReply read = Send(servers[1].port, "GET", "/v1/d/r", root);
  ASSERT_EQ(read.status, 200) << read.body << servers[1].process->output();
  EXPECT_EQ(read.Json()["data"]["v"], "on-active");
  const std::string after_read = metrics(1);
  // The read and the metrics request itself.
  EXPECT_EQ(MetricValue(after_read, kLocal), MetricValue(before, kLocal) + 2) << after_read;
  EXPECT_EQ(MetricValue(after_read, kForwarded), 0) << after_read;

  // A write through it: re-sent to the active node, transparently.
  HttpReply write = Send(servers[1].port, "PUT", "/v1/d/w", root, R"({"v":"via-perf"})");
  ASSERT_EQ(write.status, 204) << write.body << servers[1].process->output();
  EXPECT_EQ(Send(servers[0].port, "GET", "/v1/d/w", root).Json()["data"]["v"], "via-perf");
  EXPECT_EQ(Send(servers[2].port, "GET", "/v1/d/w", root).Json()["data"]["v"], "via-perf");
  const std::string after_write = metrics(1);
  EXPECT_EQ(MetricValue(after_write, kForwarded), 1) << after_write;
  const std::string kResends = "bulwark_ha_readonly_resends_total";
  EXPECT_EQ(MetricValue(after_write, kResends), 1) << after_write;
  // The next write of that kind (an update on mount d/) skips the doomed local attempt: it is
  // forwarded at once, exactly once, and lands; reads are still served here.
  HttpReply again = Send(servers[1].port, "PUT", "/v1/d/w2", root, R"({"v":"direct"})");
  ASSERT_EQ(again.status, 204) << again.body << servers[1].process->output();
  EXPECT_EQ(Send(servers[0].port, "GET", "/v1/d/w2", root).Json()["data"]["v"], "direct");
  const std::string after_direct = metrics(1);
  EXPECT_EQ(MetricValue(after_direct, kForwarded), 2) << after_direct;
  EXPECT_EQ(MetricValue(after_direct, kResends), 1) << after_direct;
  const double local_before_read = MetricValue(after_direct, kLocal);
  ASSERT_EQ(Send(servers[1].port, "GET", "/v1/d/r", root).status, 200);
  EXPECT_EQ(MetricValue(metrics(1), kLocal), local_before_read + 2);

  // Invalidation: a mount enabled on the active node, then served on the perf standbys.
  constexpr char kReloaded[] = "invalidation: reloaded the mount table";
  std::vector<size_t> reloads;
  for (int i = 1; i < 3; ++i) reloads.push_back(Count(servers[i].process->output(), kReloaded));
  ASSERT_EQ(Send(servers[0].port, "POST", "/v1/sys/mounts/e", root, R"({"type":"kv"})").status,
            204);
  ASSERT_EQ(Send(servers[0].port, "PUT", "/v1/e/k", root, R"({"v":"new-mount"})").status, 204);
  for (int i = 1; i < 3; ++i) {
    ASSERT_TRUE(WaitFor([&] {
      return Count(servers[i].process->output(), kReloaded) > reloads[i - 1];
    })) << servers[i].process->output();
    const double local = MetricValue(metrics(i), kLocal);
    HttpReply fresh = Send(servers[i].port, "GET", "/v1/e/k", root);
    ASSERT_EQ(fresh.status, 200) << fresh.body;
    EXPECT_EQ(fresh.Json()["data"]["v"], "new-mount");
    EXPECT_EQ(MetricValue(metrics(i), kLocal), local + 2);  // Served locally.
  }
  // A mount enabled through a perf standby is re-sent as well.
  ASSERT_EQ(Send(servers[2].port, "POST", "/v1/sys/mounts/f", root, R"({"type":"kv"})").status, 204)
      << servers[2].process->output();
  EXPECT_EQ(Send(servers[0].port, "PUT", "/v1/f/k", root, R"({"v":"1"})").status, 204);

  for (Running& s : servers) {
    EXPECT_EQ(s.process->Stop(SIGTERM), 0) << s.process->output();
    EXPECT_THAT(s.process->output(), Not(HasSubstr(root)));
  }
}

// Invalidation on performance standbys: a barrier key rotated on the active node (sys/rotate)
// reaches both perf standbys through their etcd watch (the keyring is read again, logged), so an
// entry sealed under the new term reads there; a rotation through a perf standby is re-sent.
// A kv value read on a perf standby (then answered from its watched read cache) and changed on
// the active node: the perf standby sends InvalidateKey to the kv plugin that owns it (debug
// log) and its next read shows the new value.
TEST(ServerProcessTest, PerformanceStandbysReloadTheKeyringAndInvalidateTheirPlugins) {
  server_testing::EtcdProcess etcd("etcd-inval");
  std::vector<Running> servers;
  Initialized init;
  ASSERT_NO_FATAL_FAILURE(StartHaServers(etcd, "etcd-inval", 3, &servers, &init,
                                         /*cluster_port=*/true, /*perf_standby=*/true));
  const std::string& root = init.root;
  for (int i = 1; i < 3; ++i) {
    ASSERT_TRUE(WaitFor([&] {
      return Send(servers[i].port, "GET", "/v1/sys/health").status == 473;
    })) << servers[i].process->output();
  }
  ASSERT_EQ(Send(servers[0].port, "PUT", "/v1/d/x", root, R"({"v":"1"})").status, 204);
  // Seen by the perf standby (from etcd or memory) before it changes.
  for (int i = 1; i < 3; ++i) {
    ASSERT_TRUE(WaitFor([&] {
      return Send(servers[i].port, "GET", "/v1/d/x", root).status == 200;
    })) << servers[i].process->output();
    EXPECT_EQ(Send(servers[i].port, "GET", "/v1/d/x", root).Json()["data"]["v"], "1");
  }

  // The keyring.
  constexpr char kKeyring[] = "invalidation: reloaded the keyring";
  ASSERT_EQ(Send(servers[0].port, "PUT", "/v1/sys/rotate", root).status, 204)
      << servers[0].process->output();
  ASSERT_EQ(Send(servers[0].port, "PUT", "/v1/d/after-rotate", root, R"({"v":"term 2"})").status,
            204);
  for (int i = 1; i < 3; ++i) {
    ASSERT_TRUE(WaitFor([&] { return Count(servers[i].process->output(), kKeyring) >= 1; }))
        << servers[i].process->output();
    HttpReply read = Send(servers[i].port, "GET", "/v1/d/after-rotate", root);
    ASSERT_EQ(read.status, 200) << read.body << servers[i].process->output();
    EXPECT_EQ(read.Json()["data"]["v"], "term 2");
  }
  // Through a perf standby: the keyring write fails read-only there and is re-sent.
  ASSERT_EQ(Send(servers[1].port, "PUT", "/v1/sys/rotate", root).status, 204)
      << servers[1].process->output();
  ASSERT_TRUE(servers[0].process->WaitForLine("rotated the barrier key").has_value());
  for (int i = 1; i < 3; ++i) {
    ASSERT_TRUE(WaitFor([&] { return Count(servers[i].process->output(), kKeyring) >= 2; }))
        << servers[i].process->output();
  }

  // InvalidateKey to the plugin that owns the key, and a fresh read after it.
  constexpr char kInvalidated[] = "InvalidateKey sent to the plugin";
  std::vector<size_t> sent;
  for (int i = 1; i < 3; ++i) sent.push_back(Count(servers[i].process->output(), kInvalidated));
  ASSERT_EQ(Send(servers[0].port, "PUT", "/v1/d/x", root, R"({"v":"2"})").status, 204);
  for (int i = 1; i < 3; ++i) {
    ASSERT_TRUE(WaitFor([&] {
      return Count(servers[i].process->output(), kInvalidated) > sent[i - 1];
    })) << servers[i].process->output();
    EXPECT_EQ(Send(servers[i].port, "GET", "/v1/d/x", root).Json()["data"]["v"], "2");
  }

  for (Running& s : servers) {
    EXPECT_THAT(s.process->output(), Not(HasSubstr("plugin InvalidateKey failed")));
    EXPECT_THAT(s.process->output(), Not(HasSubstr("could not reload the keyring")));
    EXPECT_EQ(s.process->Stop(SIGTERM), 0) << s.process->output();
    EXPECT_THAT(s.process->output(), Not(HasSubstr(root)));
  }
}

// disable_clustering (Vault's key) on servers that have a cluster address: no cluster port is
// opened, the active node advertises none, and a standby answers 307 with the active node's
// api_addr and the request's path and query instead of forwarding; the write lands when the
// redirect is followed.
TEST(ServerProcessTest, WithDisableClusteringAStandbyRedirectsToTheActiveNode) {
  server_testing::EtcdProcess etcd("etcd-noclu");
  const std::string dir = TestTmpDir() + "/etcd-noclu";
  ASSERT_EQ(system(absl::StrCat("rm -rf ", dir, " && mkdir -p ", dir).c_str()), 0);
  const std::string config = EtcdConfig(dir, etcd, /*ha_enabled=*/true, "3s", /*cluster_port=*/true,
                                        /*perf_standby=*/false, /*disable_clustering=*/true);
  std::vector<Running> servers;
  servers.push_back(Start({"-config=" + config}));
  ASSERT_NE(servers[0].port, 0) << servers[0].process->output();
  const Initialized init = InitAndUnseal(servers[0].port);
  ASSERT_FALSE(init.root.empty());
  ASSERT_TRUE(WaitUntilActive(servers[0].port)) << servers[0].process->output();
  servers.push_back(Start({"-config=" + config}));
  ASSERT_NE(servers[1].port, 0) << servers[1].process->output();
  ASSERT_EQ(Send(servers[1].port, "PUT", "/v1/sys/unseal", "", init.unseal).Json()["sealed"],
            false);
  ASSERT_EQ(WaitForOneActive(servers, {false, false}), 0);
  ASSERT_EQ(Send(servers[0].port, "POST", "/v1/sys/mounts/d", init.root, R"({"type":"kv"})").status,
            204);

  HttpReply leader = Send(servers[1].port, "GET", "/v1/sys/leader");
  EXPECT_EQ(leader.Json()["leader_address"], Address(servers[0].port));
  EXPECT_EQ(leader.Json()["leader_cluster_address"], "");
  EXPECT_EQ(Send(servers[1].port, "GET", "/v1/sys/health").status, 429);
  HttpReply write = Send(servers[1].port, "PUT", "/v1/d/x?a=b", init.root, R"({"v":"1"})");
  ASSERT_EQ(write.status, 307) << write.headers << write.body;
  EXPECT_EQ(write.Header("Location"), Address(servers[0].port) + "/v1/d/x?a=b");
  ASSERT_EQ(
      Send(LocationPort(write.Header("Location")), "PUT", "/v1/d/x", init.root, R"({"v":"1"})")
          .status,
      204);
  EXPECT_EQ(Send(servers[0].port, "GET", "/v1/d/x", init.root).Json()["data"]["v"], "1");
  HttpReply read = Send(servers[1].port, "GET", "/v1/d/x", init.root);
  EXPECT_EQ(read.status, 307);

  for (Running& s : servers) {
    EXPECT_EQ(s.process->Stop(SIGTERM), 0) << s.process->output();
    EXPECT_THAT(s.process->output(), Not(HasSubstr("cluster port listening on")));
    EXPECT_THAT(s.process->output(), Not(HasSubstr("forwarding failed")));
    EXPECT_THAT(s.process->output(), Not(HasSubstr(init.root)));
  }
}

// SIGSTOP the active node past its lease: the standby takes over and writes. A write sent to the
// paused node while it is stopped is read by it once it resumes (SIGCONT); it does not land
// (refused by the fence or by the read-only storage, or redirected once the node has noticed its
// loss), the node steps down to standby, and the value in etcd stays the new active's.
TEST(ServerProcessTest, APausedActiveThatResumesLandsNoWrite) {
  server_testing::EtcdProcess etcd("etcd-pause");
  std::vector<Running> servers;
  Initialized init;
  ASSERT_NO_FATAL_FAILURE(StartHaServers(etcd, "etcd-pause", 2, &servers, &init));
  const std::string& root = init.root;
  std::vector<bool> dead(2, false);
  ASSERT_EQ(Send(servers[0].port, "PUT", "/v1/d/x", root, R"({"v":"before"})").status, 204);

  const pid_t paused = servers[0].process->pid();
  ASSERT_EQ(kill(paused, SIGSTOP), 0);
  dead[0] = true;  // Does not answer while stopped.
  ASSERT_EQ(WaitForOneActive(servers, dead), 1) << servers[1].process->output();
  ASSERT_EQ(Send(servers[1].port, "PUT", "/v1/d/x", root, R"({"v":"from the new active"})").status,
            204);
  // The kernel accepts the connection and buffers the request while the node is stopped.
  const int fd = SendRequest(servers[0].port, "PUT", "/v1/d/x", root, R"({"v":"from the paused"})");
  ASSERT_GE(fd, 0);
  ASSERT_EQ(kill(paused, SIGCONT), 0);
  HttpReply stale = Receive(fd);
  EXPECT_NE(stale.status, 204) << stale.body;
  EXPECT_NE(stale.status, 0);
  ASSERT_TRUE(servers[0].process->WaitForLine("lost the HA lock: stepping down").has_value())
      << servers[0].process->output();
  dead[0] = false;
  ASSERT_EQ(WaitForOneActive(servers, dead), 1);
  EXPECT_EQ(Send(servers[0].port, "GET", "/v1/sys/health").status, 429);
  HttpReply read = Send(servers[1].port, "GET", "/v1/d/x", root);
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(read.Json()["data"]["v"], "from the new active");
  EXPECT_EQ(Send(servers[0].port, "GET", "/v1/d/x", root).status, 307);
  std::printf("the paused node's write was answered %d %s\n", stale.status, stale.body.c_str());
  for (Running& s : servers) EXPECT_EQ(s.process->Stop(SIGTERM), 0) << s.process->output();
}

// sys/step-down on a lone HA server: 204, it releases the lock and stops its plugins, waits its
// 10 s (ha::kStepDownWait) before contending, then, no other node having taken the lock, wins it
// again with a new lease and serves its data.
TEST(ServerProcessTest, ALoneServerThatStepsDownContendsAgainAfterItsWait) {
  server_testing::EtcdProcess etcd("etcd-stepdown");
  std::vector<Running> servers;
  Initialized init;
  ASSERT_NO_FATAL_FAILURE(StartHaServers(etcd, "etcd-stepdown", 1, &servers, &init));
  ServerProcess& s = *servers[0].process;
  ASSERT_EQ(Send(servers[0].port, "PUT", "/v1/d/x", init.root, R"({"v":"kept"})").status, 204);
  const std::string lock_before = EtcdKeys(etcd, "/bw/core/lock/");
  ASSERT_THAT(lock_before, HasSubstr("/bw/core/lock/"));

  ASSERT_EQ(Send(servers[0].port, "PUT", "/v1/sys/step-down", init.root).status, 204);
  ASSERT_TRUE(s.WaitForLine("stepping down: stopping every plugin").has_value()) << s.output();
  ASSERT_TRUE(s.WaitForLine("stepped down by request; contending again in 10s").has_value())
      << s.output();
  ASSERT_TRUE(WaitFor([&] {
    return absl::StrContains(s.output(), "acquired the HA lock") &&
           s.output().find("acquired the HA lock") != s.output().rfind("acquired the HA lock");
  })) << s.output();
  ASSERT_TRUE(WaitUntilActive(servers[0].port)) << s.output();
  const std::string lock_after = EtcdKeys(etcd, "/bw/core/lock/");
  EXPECT_THAT(lock_after, HasSubstr("/bw/core/lock/"));
  EXPECT_NE(lock_after, lock_before);  // A new lease: the old one was released.
  HttpReply read = Send(servers[0].port, "GET", "/v1/d/x", init.root);
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(read.Json()["data"]["v"], "kept");
  EXPECT_EQ(s.Stop(SIGTERM), 0) << s.output();
}

}  // namespace
}  // namespace bulwark
