// TLS verification of the CLI's client against a real TLS server (`openssl s_server -www`, whose
// HTML reply is not JSON): a reply that gets as far as "not JSON" proves the handshake passed, a
// certificate error proves it failed. The CA comes from VAULT_CACERT or -ca-cert.
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/cli/cli.h"
#include "server/testing/process.h"

namespace bulwark::cli {
namespace {

using server_testing::FindInPath;
using server_testing::RunProcess;
using server_testing::ServerProcess;
using server_testing::TestTmpDir;
using ::testing::HasSubstr;

// A self-signed certificate for 127.0.0.1 and localhost, made with the openssl command.
std::string MakeCert(const std::string& openssl, const std::string& name) {
  const std::string prefix = TestTmpDir() + "/" + name;
  auto r = RunProcess(
      {openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", prefix + "-key.pem", "-out", prefix + "-cert.pem", "-days", "2", "-subj",
       "/CN=" + name, "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"},
      {});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return prefix;
}

struct Result {
  int code;
  std::string out, err;
};

Result Cli(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
  std::istringstream in;
  std::ostringstream out, err;
  Io io;
  io.getenv = [&env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  io.in = &in;
  io.out = &out;
  io.err = &err;
  int code = Run(args, io);
  return {code, out.str(), err.str()};
}

TEST(TlsTest, VerifiesTheServerAgainstVaultCacert) {
  const std::string openssl = FindInPath("openssl");
  ASSERT_FALSE(openssl.empty()) << "tools/setup installs openssl";
  const std::string server_cert = MakeCert(openssl, "server");
  const std::string other_cert = MakeCert(openssl, "other");
  ServerProcess server({openssl, "s_server", "-accept", "127.0.0.1:0", "-cert",
                        server_cert + "-cert.pem", "-key", server_cert + "-key.pem", "-www"},
                       {});
  std::optional<std::string> accept = server.WaitForLine("ACCEPT ");
  ASSERT_TRUE(accept.has_value()) << server.output();
  const std::string port = accept->substr(accept->rfind(':') + 1);
  const std::string ip_address = "https://127.0.0.1:" + port;
  const std::string name_address = "https://localhost:" + port;

  // Trusted through VAULT_CACERT, by IP and by name: the handshake passes.
  for (const std::string& address : {ip_address, name_address}) {
    Result r = Cli({"read", "secret/x"},
                   {{"VAULT_ADDR", address}, {"VAULT_CACERT", server_cert + "-cert.pem"}});
    EXPECT_EQ(r.code, 2);
    EXPECT_THAT(r.err, HasSubstr("is not JSON")) << address;
  }
  // -ca-cert overrides VAULT_CACERT.
  Result r = Cli({"read", "-ca-cert=" + server_cert + "-cert.pem", "secret/x"},
                 {{"VAULT_ADDR", ip_address}, {"VAULT_CACERT", other_cert + "-cert.pem"}});
  EXPECT_THAT(r.err, HasSubstr("is not JSON"));

  // Another CA, or the system's store: the certificate is refused.
  for (const auto& env : std::vector<std::map<std::string, std::string>>{
           {{"VAULT_ADDR", ip_address}, {"VAULT_CACERT", other_cert + "-cert.pem"}},
           {{"VAULT_ADDR", ip_address}}}) {
    r = Cli({"read", "secret/x"}, env);
    EXPECT_EQ(r.code, 2);
    EXPECT_THAT(r.err, HasSubstr("certificate"));
    EXPECT_THAT(r.err, ::testing::Not(HasSubstr("is not JSON")));
  }
  // Skipping verification is possible, and explicit.
  r = Cli({"read", "-tls-skip-verify", "secret/x"}, {{"VAULT_ADDR", ip_address}});
  EXPECT_THAT(r.err, HasSubstr("is not JSON"));
  r = Cli({"read", "secret/x"}, {{"VAULT_ADDR", ip_address}, {"VAULT_SKIP_VERIFY", "true"}});
  EXPECT_THAT(r.err, HasSubstr("is not JSON"));
  server.Stop(SIGTERM);
}

}  // namespace
}  // namespace bulwark::cli
