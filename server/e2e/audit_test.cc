// The audit device end to end, and the secret scan: the real `bulwark` server (-dev, external
// plugins without AutoMTLS so the wrapped bootstrap runs) with a file audit device enabled
// through the CLI, then a full workload — seal and unseal with the key share, built-in kv
// write/read, register and mount the C++ kv plugin (whose process unwraps a response-wrapping
// token through the audited API), write/read through it, create a child token and use it,
// sys/audit-hash — and then a scan of the audit file for every secret the workload knew: kv
// values, the root token, the unseal key (as printed, hex and base64), the child token and its
// accessor, the plugin's wrapping token, and any private key. None may appear; the entries that
// must be there are found through their HMACs.
#include <fstream>
#include <map>
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

constexpr char kRootToken[] = "e2e-audit-root-token-Zq81";
constexpr char kKvSecret[] = "kv-secret-Vm3xQ";
constexpr char kPluginSecret[] = "plugin-secret-Hw7Rk";

class AuditE2eTest : public ::testing::Test {
 protected:
  ProcessResult Bulwark(const std::vector<std::string>& args, const std::string& token) {
    std::vector<std::string> env = {absl::StrCat("VAULT_ADDR=", server_.address)};
    if (!token.empty()) env.push_back(absl::StrCat("VAULT_TOKEN=", token));
    std::vector<std::string> argv = {BulwarkBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = RunProcess(argv, ChildEnv("cli-home", env));
    last_ = absl::StrCat("$ bulwark ", absl::StrJoin(args, " "), "\n[exit ", r.exit_code, "]\n",
                         r.out, r.err);
    return r;
  }
  ProcessResult Root(const std::vector<std::string>& args) { return Bulwark(args, kRootToken); }

  RunningServer server_;
  std::string last_;
};

TEST_F(AuditE2eTest, AFullWorkloadLeavesNoSecretInTheAuditFile) {
  const std::string dir = TestTmpDir() + "/audit";
  const std::string plugins = dir + "/plugins";
  ProcessResult made = RunProcess({"/bin/mkdir", "-p", plugins}, {});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string sha = InstallPlugin("bulwark/examples/kv/kv_plugin", plugins, "kv_plugin");
  server_ = StartServer({"-dev", absl::StrCat("-dev-root-token-id=", kRootToken),
                         "-dev-listen-address=127.0.0.1:0", "-dev-plugin-dir=" + plugins,
                         "-dev-disable-plugin-automtls"});
  ASSERT_FALSE(server_.address.empty()) << server_.process->output();
  ASSERT_FALSE(server_.unseal_key.empty());

  // Enable the device (Vault's body, from a file: options is an object).
  const std::string log = dir + "/audit.log";
  std::ofstream(dir + "/enable.json")
      << json{{"type", "file"}, {"options", {{"file_path", log}}}}.dump();
  ASSERT_EQ(Root({"write", "sys/audit/file", "@" + dir + "/enable.json"}).exit_code, 0) << last_;
  ProcessResult listed = Root({"read", "-format=json", "sys/audit"});
  ASSERT_EQ(listed.exit_code, 0) << last_;
  EXPECT_EQ(json::parse(listed.out)["data"]["file/"]["options"]["file_path"], log);

  // Seal and unseal with the key share: the device comes back from behind the barrier.
  ASSERT_EQ(Root({"operator", "seal"}).exit_code, 0) << last_;
  ASSERT_EQ(Root({"operator", "unseal", server_.unseal_key}).exit_code, 0) << last_;

  // The built-in kv engine.
  ASSERT_EQ(Root({"secrets", "enable", "-path=kv", "kv"}).exit_code, 0) << last_;
  ASSERT_EQ(Root({"write", "kv/app", absl::StrCat("password=", kKvSecret)}).exit_code, 0) << last_;
  ProcessResult read = Root({"read", "-field=password", "kv/app"});
  ASSERT_EQ(read.exit_code, 0) << last_;
  EXPECT_EQ(read.out, kKvSecret);

  // An external plugin: registered, mounted (its process unwraps a wrapping token through the
  // API), and used.
  ASSERT_EQ(
      Root({"plugin", "register", "-sha256=" + sha, "-command=kv_plugin", "secret", "audited-kv"})
          .exit_code,
      0)
      << last_;
  const std::vector<std::string> before =
      ChildEnvValues(server_.process->pid(), "VAULT_UNWRAP_TOKEN");
  ASSERT_EQ(Root({"secrets", "enable", "-path=ext", "audited-kv"}).exit_code, 0)
      << last_ << server_.process->output();
  std::vector<std::string> wrapping_tokens;
  for (const std::string& t : ChildEnvValues(server_.process->pid(), "VAULT_UNWRAP_TOKEN")) {
    if (std::find(before.begin(), before.end(), t) == before.end()) wrapping_tokens.push_back(t);
  }
  ASSERT_EQ(wrapping_tokens.size(), 1u);
  ASSERT_TRUE(server_.process->WaitForLine("unwrapped a response-wrapping token; it is now spent")
                  .has_value());
  ASSERT_EQ(Root({"write", "ext/db", absl::StrCat("v=", kPluginSecret)}).exit_code, 0) << last_;
  EXPECT_EQ(Root({"read", "-field=v", "ext/db"}).out, kPluginSecret) << last_;

  // A child token, used for a read.
  ProcessResult created = Root({"token", "create", "-format=json"});
  ASSERT_EQ(created.exit_code, 0) << last_;
  const json auth = json::parse(created.out)["auth"];
  const std::string child = auth["client_token"].get<std::string>();
  const std::string accessor = auth["accessor"].get<std::string>();
  ASSERT_FALSE(child.empty());
  EXPECT_EQ(Bulwark({"read", "-field=password", "kv/app"}, child).out, kKvSecret) << last_;

  // sys/audit-hash: the way to find an entry without the secret in the file.
  ProcessResult hashed =
      Root({"write", "-format=json", "sys/audit-hash/file", absl::StrCat("input=", kKvSecret)});
  ASSERT_EQ(hashed.exit_code, 0) << last_;
  const std::string kv_hash = json::parse(hashed.out)["data"]["hash"].get<std::string>();
  ASSERT_TRUE(absl::StartsWith(kv_hash, "hmac-sha256:")) << kv_hash;
  const std::string root_hash = json::parse(Root({"write", "-format=json", "sys/audit-hash/file",
                                                  absl::StrCat("input=", kRootToken)})
                                                .out)["data"]["hash"]
                                    .get<std::string>();
  EXPECT_EQ(server_.process->Stop(SIGTERM), 0);

  const std::string text = ReadWholeFile(log);
  ASSERT_FALSE(text.empty());
  // Every line is a JSON entry of Vault's shape.
  size_t requests = 0, responses = 0, kv_entries = 0, unwraps = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const json e = json::parse(line, nullptr, false);
    ASSERT_FALSE(e.is_discarded()) << line;
    ASSERT_TRUE(e.contains("time") && e.contains("auth") && e.contains("request")) << line;
    if (e["type"] == "request") ++requests;
    if (e["type"] == "response") ++responses;
    if (e["request"]["path"] == "sys/wrapping/unwrap") ++unwraps;
    if (absl::StrContains(line, kv_hash)) ++kv_entries;
  }
  EXPECT_EQ(requests, responses);
  EXPECT_GE(requests, 10u);
  EXPECT_EQ(unwraps, 2u) << "the plugin's unwrap, request and response";
  // The write's request, both reads' responses and the audit-hash request carry the kv value.
  EXPECT_GE(kv_entries, 4u);
  EXPECT_THAT(text, HasSubstr(root_hash));

  // The scan.
  std::string unseal_bytes;
  std::vector<std::string> secrets = {kKvSecret, kPluginSecret,      kRootToken,   child,
                                      accessor,  server_.unseal_key, "PRIVATE KEY"};
  if (absl::Base64Unescape(server_.unseal_key, &unseal_bytes)) {
    secrets.push_back(absl::BytesToHexString(unseal_bytes));
    secrets.push_back(absl::WebSafeBase64Escape(unseal_bytes));
  }
  for (const std::string& t : wrapping_tokens) {
    secrets.push_back(t);
    secrets.push_back(t.substr(t.rfind('.') + 1));  // Its signature alone.
  }
  for (const std::string& secret : secrets) {
    ASSERT_GE(secret.size(), 8u) << secret;
    EXPECT_THAT(text, Not(HasSubstr(secret))) << "the audit file holds a secret";
  }
  EXPECT_THAT(server_.process->output(), Not(HasSubstr(kKvSecret)));
}

}  // namespace
}  // namespace bulwark::e2e
