// The wrapped-token plugin bootstrap end to end: the real `bulwark` server runs the real C++ SDK
// kv plugin (examples/kv:kv_plugin) without AutoMTLS. The host wraps a fresh certificate and
// key, the plugin unwraps them at the server's API address (plain HTTP in -dev, HTTPS trusted
// through VAULT_CACERT with a configuration file) and serves TLS with them; data round-trips
// through it. The token the plugin was given (read from its /proc environ) is refused when
// replayed, and never appears in anything the server printed.
#include <dirent.h>
#include <sys/types.h>

#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/e2e/bulwark_server.h"

namespace bulwark::e2e {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kRootToken[] = "e2e-wrap-root-token";
constexpr char kUnwrapped[] = "unwrapped a response-wrapping token; it is now spent";
constexpr char kRefused[] = "refused to unwrap a response-wrapping token";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The VAULT_UNWRAP_TOKEN of each child process of `parent` that has one, by pid.
std::map<pid_t, std::string> UnwrapTokensOfChildren(pid_t parent) {
  std::map<pid_t, std::string> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = readdir(proc)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    // /proc/<pid>/stat: "pid (comm) state ppid ...", comm may hold spaces and parentheses.
    const std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
    pid_t ppid = 0;
    if (fields.size() < 2 || !absl::SimpleAtoi(fields[1], &ppid) || ppid != parent) continue;
    for (absl::string_view var :
         absl::StrSplit(ReadFile(absl::StrCat("/proc/", pid, "/environ")), '\0')) {
      if (absl::ConsumePrefix(&var, "VAULT_UNWRAP_TOKEN=")) out[pid] = std::string(var);
    }
  }
  closedir(proc);
  return out;
}

// The jti inside a JWT (read without verification, as anyone holding the token could).
std::string JtiOf(const std::string& jwt) {
  std::vector<std::string> parts = absl::StrSplit(jwt, '.');
  std::string claims;
  if (parts.size() != 3 || !absl::WebSafeBase64Unescape(parts[1], &claims)) return "";
  const json j = json::parse(claims, nullptr, false);
  return j.is_object() && j.contains("jti") ? j["jti"].get<std::string>() : "";
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

class WrappedBootstrapTest : public ::testing::Test {
 protected:
  // `bulwark <args>` against the running server, with the root token unless told otherwise.
  ProcessResult Bulwark(const std::vector<std::string>& args, std::vector<std::string> env = {}) {
    env.push_back(absl::StrCat("VAULT_ADDR=", server_.address));
    env.insert(env.end(), client_env_.begin(), client_env_.end());
    if (!root_token_.empty()) env.push_back(absl::StrCat("VAULT_TOKEN=", root_token_));
    std::vector<std::string> argv = {BulwarkBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = RunProcess(argv, ChildEnv("cli-home", env));
    last_ = absl::StrCat("$ bulwark ", absl::StrJoin(args, " "), "\n[exit ", r.exit_code, "]\n",
                         r.out, r.err);
    return r;
  }

  // Registers the SDK kv plugin as `name`, mounts it at `path`, and returns the unwrap token
  // the plugin process was launched with.
  std::string MountPlugin(const std::string& sha256, const std::string& name,
                          const std::string& path) {
    ProcessResult r =
        Bulwark({"plugin", "register", "-sha256=" + sha256, "-command=kv_plugin", "secret", name});
    EXPECT_EQ(r.exit_code, 0) << last_;
    r = Bulwark({"secrets", "enable", "-path=" + path, name});
    EXPECT_EQ(r.exit_code, 0) << last_ << server_.process->output();
    std::map<pid_t, std::string> tokens = UnwrapTokensOfChildren(server_.process->pid());
    EXPECT_EQ(tokens.size(), 1u) << "one plugin process, launched with VAULT_UNWRAP_TOKEN";
    return tokens.empty() ? "" : tokens.begin()->second;
  }

  // The plugin serves: a write and a read through it.
  void ExpectRoundTrip(const std::string& path, const std::string& value) {
    ASSERT_EQ(Bulwark({"write", path, "v=" + value}).exit_code, 0) << last_;
    ProcessResult r = Bulwark({"read", "-format=json", path});
    ASSERT_EQ(r.exit_code, 0) << last_;
    EXPECT_EQ(json::parse(r.out)["data"], json({{"v", value}}));
  }

  // A replayed token: Vault's 400 whether it comes as the client token or in the body.
  void ExpectReplayRefused(const std::string& token) {
    const std::string saved = root_token_;
    root_token_ = token;
    ProcessResult r = Bulwark({"write", "-force", "sys/wrapping/unwrap"});
    root_token_ = saved;
    EXPECT_EQ(r.exit_code, 2) << last_;
    EXPECT_THAT(r.err, HasSubstr("Code: 400"));
    EXPECT_THAT(r.err, HasSubstr("wrapping token is not valid or does not exist"));
    EXPECT_THAT(r.out + r.err, Not(HasSubstr(token)));
    r = Bulwark({"write", "sys/wrapping/unwrap", "token=" + token});
    EXPECT_EQ(r.exit_code, 2) << last_;
    EXPECT_THAT(r.err, HasSubstr("wrapping token is not valid or does not exist"));
  }

  // After the server stopped: nothing it printed holds a token, its id, or key material.
  void ExpectOutputFreeOf(const std::vector<std::string>& tokens) {
    const std::string output = server_.process->output();
    for (const std::string& token : tokens) {
      ASSERT_FALSE(token.empty());
      EXPECT_THAT(output, Not(HasSubstr(token)));
      EXPECT_THAT(output, Not(HasSubstr(token.substr(token.rfind('.') + 1))));  // Signature.
      const std::string jti = JtiOf(token);
      ASSERT_FALSE(jti.empty());
      EXPECT_THAT(output, Not(HasSubstr(jti)));
    }
    EXPECT_THAT(output, Not(HasSubstr("PRIVATE KEY")));
    EXPECT_THAT(output, Not(HasSubstr("ServerKey")));
  }

  // A server with a TLS listener (a certificate for 127.0.0.1 made with the openssl command), in
  // memory, external plugins without AutoMTLS, initialised and unsealed through the CLI, which
  // trusts the certificate. With `pass_cacert` the server's environment has VAULT_CACERT too,
  // which it passes on to its plugins.
  void StartHttpsServer(const std::string& name, bool pass_cacert, std::string* sha256) {
    const std::string openssl = FindInPath("openssl");
    ASSERT_FALSE(openssl.empty()) << "tools/setup installs openssl";
    const std::string dir = absl::StrCat(TestTmpDir(), "/", name);
    ProcessResult made = RunProcess({"/bin/mkdir", "-p", dir + "/plugins"}, {});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    made = RunProcess(
        {openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem", "-days", "2", "-subj",
         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"},
        {});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    *sha256 = InstallPlugin("bulwark/examples/kv/kv_plugin", dir + "/plugins", "kv_plugin");
    const json config = {{"storage", {{"inmem", json::object()}}},
                         {"listener",
                          {{"tcp",
                            {{"address", "127.0.0.1:0"},
                             {"tls_cert_file", dir + "/cert.pem"},
                             {"tls_key_file", dir + "/key.pem"}}}}},
                         {"plugin_directory", dir + "/plugins"},
                         {"disable_plugin_automtls", true}};
    std::ofstream(dir + "/config.json") << config.dump(2);
    const std::string cacert = absl::StrCat("VAULT_CACERT=", dir, "/cert.pem");
    server_ =
        StartServer({"-config=" + dir + "/config.json"},
                    pass_cacert ? std::vector<std::string>{cacert} : std::vector<std::string>{});
    ASSERT_FALSE(server_.address.empty()) << server_.process->output();
    ASSERT_TRUE(absl::StartsWith(server_.address, "https://127.0.0.1:")) << server_.address;
    client_env_ = {cacert};

    root_token_.clear();
    ProcessResult r =
        Bulwark({"operator", "init", "-key-shares=1", "-key-threshold=1", "-format=json"});
    ASSERT_EQ(r.exit_code, 0) << last_;
    const json init = json::parse(r.out);
    r = Bulwark({"operator", "unseal", init["unseal_keys_b64"][0].get<std::string>()});
    ASSERT_EQ(r.exit_code, 0) << last_;
    root_token_ = init["root_token"].get<std::string>();
  }

  RunningServer server_;
  std::string root_token_ = kRootToken;
  std::vector<std::string> client_env_;
  std::string last_;
};

TEST_F(WrappedBootstrapTest, DevServerOverHttp) {
  const std::string plugins = TestTmpDir() + "/dev-plugins";
  const std::string sha = InstallPlugin("bulwark/examples/kv/kv_plugin", plugins, "kv_plugin");
  server_ = StartServer({"-dev", absl::StrCat("-dev-root-token-id=", kRootToken),
                         "-dev-listen-address=127.0.0.1:0", "-dev-plugin-dir=" + plugins,
                         "-dev-disable-plugin-automtls"});
  ASSERT_FALSE(server_.address.empty()) << server_.process->output();

  const std::string first = MountPlugin(sha, "wrapped-kv", "ext");
  ASSERT_FALSE(first.empty());
  ASSERT_TRUE(server_.process->WaitForLine(kUnwrapped).has_value()) << server_.process->output();
  ASSERT_TRUE(server_.process->WaitForLine("configuring server TLS with the unwrapped certificate")
                  .has_value());
  ExpectRoundTrip("ext/db", "secret-value-1");
  ExpectReplayRefused(first);

  // A reload launches a new process with a new token, which is unwrapped in turn.
  ASSERT_EQ(Bulwark({"plugin", "reload", "-plugin=wrapped-kv"}).exit_code, 0) << last_;
  std::map<pid_t, std::string> now = UnwrapTokensOfChildren(server_.process->pid());
  ASSERT_EQ(now.size(), 1u);
  const std::string second = now.begin()->second;
  EXPECT_NE(second, first);
  EXPECT_EQ(Bulwark({"read", "-field=v", "ext/db"}).out, "secret-value-1") << last_;
  ExpectReplayRefused(second);

  EXPECT_EQ(server_.process->Stop(SIGTERM), 0);
  const std::string output = server_.process->output();
  EXPECT_EQ(Count(output, kUnwrapped), 2u) << output;
  EXPECT_EQ(Count(output, kRefused), 4u) << output;
  ExpectOutputFreeOf({first, second});
}

TEST_F(WrappedBootstrapTest, ConfiguredServerOverHttpsTrustedThroughVaultCacert) {
  std::string sha;
  ASSERT_NO_FATAL_FAILURE(StartHttpsServer("https", /*pass_cacert=*/true, &sha));
  const std::string token = MountPlugin(sha, "wrapped-kv", "ext");
  ASSERT_FALSE(token.empty());
  ASSERT_TRUE(server_.process->WaitForLine(kUnwrapped).has_value()) << server_.process->output();
  ExpectRoundTrip("ext/app", "over-https");
  ExpectReplayRefused(token);

  EXPECT_EQ(server_.process->Stop(SIGTERM), 0);
  ExpectOutputFreeOf({token});
  EXPECT_THAT(server_.process->output(), HasSubstr("addr=https://127.0.0.1:"));
}

// Without VAULT_CACERT the plugin cannot verify api_addr's certificate: it refuses to unwrap,
// exits, and the mount is refused with the plugin's reason (and no token).
TEST_F(WrappedBootstrapTest, APluginThatCannotTrustApiAddrDoesNotStart) {
  std::string sha;
  ASSERT_NO_FATAL_FAILURE(StartHttpsServer("untrusted", /*pass_cacert=*/false, &sha));
  ASSERT_EQ(Bulwark({"plugin", "register", "-sha256=" + sha, "-command=kv_plugin", "secret",
                     "wrapped-kv"})
                .exit_code,
            0)
      << last_;
  ProcessResult r = Bulwark({"secrets", "enable", "-path=ext", "wrapped-kv"});
  EXPECT_EQ(r.exit_code, 2) << last_;
  EXPECT_THAT(r.err, HasSubstr("exited with code 1 before its handshake line"));
  EXPECT_THAT(r.err, HasSubstr("plugin init error"));
  EXPECT_EQ(server_.process->Stop(SIGTERM), 0);
  // The whole reason is in the server's log (the plugin's stderr, relayed).
  const std::string output = server_.process->output();
  EXPECT_THAT(output, HasSubstr("step=unwrap"));
  EXPECT_THAT(output, HasSubstr("unwrap at https://127.0.0.1:"));
  EXPECT_THAT(output, HasSubstr("api_addr reachable"));
  EXPECT_EQ(Count(output, kUnwrapped), 0u);
  EXPECT_THAT(output, Not(HasSubstr("PRIVATE KEY")));
}

}  // namespace
}  // namespace bulwark::e2e
