// The handshake profile (protocol-facts §1.1-1.3): the magic cookie, app-protocol version
// negotiation, the exact handshake line, stdout discipline, where the socket goes, start-up time.
#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "conformance/suite/conformance.h"
#include "conformance/suite/harness.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/handshake.h"
#include "protocol/tls_certs.h"
#include "sdk/testing/plugin_process.h"

namespace bulwark::conformance {
namespace {

using ::testing::HasSubstr;

// go-plugin's refusal text (server.go Serve, v1.0.1 and HEAD); the suite matches its first line.
constexpr char kNotAPlugin[] = "This binary is a plugin";
// The magic cookies Vault uses per plugin type (sdk/plugin/serve.go, sdk/database/dbplugin/v5).
constexpr char kBackendCookie[] = "VAULT_BACKEND_PLUGIN=6669da05-b1c8-4f49-97d9-c8e5bed98e20";
constexpr char kDatabaseCookie[] = "VAULT_DATABASE_PLUGIN=926a0820-aea2-be28-51d6-83cdf00e8edb";

std::unique_ptr<PluginUnderTest> MustLaunch(LaunchOptions options = {}) {
  absl::StatusOr<std::unique_ptr<PluginUnderTest>> put = PluginUnderTest::Launch(options);
  EXPECT_TRUE(put.ok()) << "launching the plugin: " << put.status();
  return put.ok() ? *std::move(put) : nullptr;
}

// For a launch the plugin must refuse: no handshake line, then a non-zero exit. Returns false
// (after reporting) when it printed a line or could not be judged in time.
bool ExpectRefusedWithoutHandshake(PluginUnderTest& put) {
  absl::StatusOr<std::string> line = put.ReadHandshakeLine();
  if (line.ok()) {
    ADD_FAILURE() << "expected the plugin to exit without a handshake line, got the line "
                  << protocol::QuoteForError(*line, 200);
    return false;
  }
  if (absl::IsDeadlineExceeded(line.status())) {
    ReportTimeout(absl::StrCat("the plugin neither printed a handshake line nor exited within ",
                               absl::FormatDuration(Config().launch_timeout)));
    return false;
  }
  absl::StatusOr<sdk::testing::ProcessExitStatus> exit = put.WaitForExit();
  if (!CheckOk(exit.status(), "waiting for the refusing plugin to exit")) return false;
  EXPECT_FALSE(exit->signaled) << "expected a non-zero exit code, got signal " << exit->signal;
  EXPECT_NE(exit->code, 0) << "expected a non-zero exit code, got 0";
  EXPECT_EQ(put.stdout_text(), "") << "expected nothing on stdout";
  return !exit->signaled && exit->code != 0;
}

// Launches, reads and parses the handshake (reporting failures); nullptr when that failed.
std::unique_ptr<PluginUnderTest> LaunchAndHandshake(LaunchOptions options = {}) {
  std::unique_ptr<PluginUnderTest> put = MustLaunch(std::move(options));
  if (put == nullptr) return nullptr;
  absl::StatusOr<protocol::HandshakeLine> hs = put->ReadHandshake();
  if (!CheckOk(hs.status(), "reading the handshake line")) return nullptr;
  return put;
}

// Version lists for negotiation tests: the highest version the manifest claims, and versions
// the plugin does not claim.
int HighestClaimed() {
  const std::vector<int>& v = Config().manifest.protocol_versions;
  return *std::max_element(v.begin(), v.end());
}
std::vector<int> Unclaimed(int count) {
  const std::vector<int>& claimed = Config().manifest.protocol_versions;
  std::vector<int> out;
  for (int v = 1; v <= 99 && static_cast<int>(out.size()) < count; ++v) {
    if (std::find(claimed.begin(), claimed.end(), v) == claimed.end()) out.push_back(v);
  }
  return out;
}

CONFORMANCE_TEST(Handshake, RefusesMissingCookie, Must, "plugin-protocol.md §1 (launch)",
                 "Started without the magic cookie variable, a plugin MUST exit non-zero without "
                 "printing anything to stdout and print go-plugin's 'This binary is a plugin' "
                 "message to stderr.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  LaunchOptions options;
  options.omit_cookie = true;
  std::unique_ptr<PluginUnderTest> put = MustLaunch(options);
  ASSERT_NE(put, nullptr);
  if (!ExpectRefusedWithoutHandshake(*put)) return;
  EXPECT_THAT(put->stderr_text(), HasSubstr(kNotAPlugin));
}

CONFORMANCE_TEST(Handshake, RefusesWrongCookie, Must, "plugin-protocol.md §1 (launch)",
                 "Started with a wrong magic cookie value, a plugin MUST exit non-zero without "
                 "printing anything to stdout and print go-plugin's 'This binary is a plugin' "
                 "message to stderr.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  LaunchOptions options;
  // Same length and alphabet as a real cookie, so a prefix or length check cannot pass it.
  options.cookie_value = "00000000-0000-4000-8000-000000000000";
  std::unique_ptr<PluginUnderTest> put = MustLaunch(options);
  ASSERT_NE(put, nullptr);
  if (!ExpectRefusedWithoutHandshake(*put)) return;
  EXPECT_THAT(put->stderr_text(), HasSubstr(kNotAPlugin));
}

CONFORMANCE_TEST(Handshake, RefusesOtherPluginTypeCookie, Must, "plugin-protocol.md §1 (launch)",
                 "Started with only the magic cookie of the other Vault plugin type (backend vs "
                 "database), a plugin MUST exit non-zero with 'This binary is a plugin' on "
                 "stderr and nothing on stdout.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  LaunchOptions options;
  options.omit_cookie = true;
  options.extra_env = {Config().manifest.is_backend() ? kDatabaseCookie : kBackendCookie};
  std::unique_ptr<PluginUnderTest> put = MustLaunch(options);
  ASSERT_NE(put, nullptr);
  if (!ExpectRefusedWithoutHandshake(*put)) return;
  EXPECT_THAT(put->stderr_text(), HasSubstr(kNotAPlugin));
}

CONFORMANCE_TEST(Handshake, NegotiatesHighestCommonVersion, Must,
                 "plugin-protocol.md §2 (handshake line)",
                 "Offered several app-protocol versions (in ascending and in descending order), "
                 "a plugin MUST announce the highest version it shares with the host.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  std::vector<int> offered = Unclaimed(2);  // Usually 1 and 2: older than anything claimed.
  for (int v : Config().manifest.protocol_versions) offered.push_back(v);
  offered.push_back(99);  // Newer than anything: must not be chosen (not supported).
  if (std::find(Config().manifest.protocol_versions.begin(),
                Config().manifest.protocol_versions.end(),
                99) != Config().manifest.protocol_versions.end()) {
    offered.pop_back();
  }
  std::sort(offered.begin(), offered.end());
  for (bool descending : {false, true}) {
    std::vector<int> order = offered;
    if (descending) std::reverse(order.begin(), order.end());
    LaunchOptions options;
    options.protocol_versions = absl::StrJoin(order, ",");
    std::unique_ptr<PluginUnderTest> put = LaunchAndHandshake(options);
    if (put == nullptr) return;
    EXPECT_EQ(put->handshake().app_version, HighestClaimed())
        << "offered PLUGIN_PROTOCOL_VERSIONS=" << *options.protocol_versions << ", expected "
        << HighestClaimed() << ", got " << put->handshake().app_version;
  }
}

CONFORMANCE_TEST(Handshake, NeverAcceptsAnUnsupportedVersion, Must,
                 "plugin-protocol.md §2 (handshake line)",
                 "Offered only versions it does not support, a plugin MUST NOT announce one of "
                 "them: it either exits non-zero without a handshake line or announces a version "
                 "the host did not offer (go-plugin's fallback, which the host rejects).") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  const std::vector<int> offered = Unclaimed(2);
  LaunchOptions options;
  options.protocol_versions = absl::StrJoin(offered, ",");
  std::unique_ptr<PluginUnderTest> put = MustLaunch(options);
  ASSERT_NE(put, nullptr);
  absl::StatusOr<std::string> line = put->ReadHandshakeLine();
  if (absl::IsDeadlineExceeded(line.status())) {
    ReportTimeout("neither a handshake line nor an exit");
    return;
  }
  if (!line.ok()) {  // Exited without a line: it must say so with a non-zero code.
    absl::StatusOr<sdk::testing::ProcessExitStatus> exit = put->WaitForExit();
    if (!CheckOk(exit.status(), "waiting for the refusing plugin to exit")) return;
    EXPECT_TRUE(exit->signaled || exit->code != 0) << "expected a non-zero exit, got 0";
    return;
  }
  // A line: its version must be none of the offered ones. Parse it against the versions the
  // plugin claims plus the offered ones, so only the version is judged here.
  std::vector<int> any = Config().manifest.protocol_versions;
  any.insert(any.end(), offered.begin(), offered.end());
  absl::StatusOr<protocol::HandshakeLine> hs = protocol::ParseHandshakeLine(*line, any);
  ASSERT_TRUE(hs.ok()) << "expected a well-formed line announcing a claimed version, got: "
                       << hs.status();
  EXPECT_EQ(std::find(offered.begin(), offered.end(), hs->app_version), offered.end())
      << "offered only " << *options.protocol_versions << ", which the plugin does not claim; "
      << "expected no line or an unoffered version, got version " << hs->app_version;
}

CONFORMANCE_TEST(Handshake, ExitsWithoutCommonVersion, Should,
                 "plugin-protocol.md §2 (handshake line)",
                 "Offered only versions it does not support, a plugin SHOULD exit non-zero "
                 "without printing a handshake line (go-plugin instead announces its lowest "
                 "version and leaves the rejection to the host).") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  LaunchOptions options;
  options.protocol_versions = absl::StrJoin(Unclaimed(2), ",");
  std::unique_ptr<PluginUnderTest> put = MustLaunch(options);
  ASSERT_NE(put, nullptr);
  ExpectRefusedWithoutHandshake(*put);
}

CONFORMANCE_TEST(Handshake, LineGrammar, Must, "plugin-protocol.md §2 (handshake line)",
                 "The handshake line MUST be exactly CORE|APP|NETWORK|ADDRESS|grpc|CERT with core "
                 "version 1, network unix or tcp, 6 fields when the host did not set "
                 "PLUGIN_MULTIPLEX_GRPC, and no surrounding whitespace.") {
  std::unique_ptr<PluginUnderTest> put;
  if (Config().attach) {
    absl::StatusOr<std::unique_ptr<PluginUnderTest>> started = PluginUnderTest::Start();
    ASSERT_TRUE(CheckOk(started.status(), "attaching"));
    put = *std::move(started);
  } else {
    put = MustLaunch();
    ASSERT_NE(put, nullptr);
  }
  absl::StatusOr<std::string> line = put->ReadHandshakeLine();
  if (!CheckOk(line.status(), "reading the handshake line")) return;
  const std::vector<std::string> fields = absl::StrSplit(*line, '|');
  EXPECT_EQ(fields.size(), 6u) << "expected 6 '|'-separated fields, got " << fields.size() << " in "
                               << protocol::QuoteForError(*line, 300);
  EXPECT_EQ(*line, std::string(absl::StripAsciiWhitespace(*line)))
      << "expected no leading or trailing whitespace (\\r included) in "
      << protocol::QuoteForError(*line, 300);
  absl::StatusOr<protocol::HandshakeLine> hs = put->ReadHandshake();
  EXPECT_TRUE(hs.ok()) << "expected a line go-plugin's host accepts, got: " << hs.status();
}

CONFORMANCE_TEST(Handshake, CertFieldIffAutoMtls, Must,
                 "plugin-protocol.md §2-3 (certificate field, AutoMTLS)",
                 "The handshake's certificate field MUST be the plugin's certificate as unpadded "
                 "standard base64 of DER when the host sent PLUGIN_CLIENT_CERT, and MUST be empty "
                 "when it did not.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  for (bool automtls : {true, false}) {
    LaunchOptions options;
    options.automtls = automtls;
    std::unique_ptr<PluginUnderTest> put = MustLaunch(options);
    ASSERT_NE(put, nullptr);
    absl::StatusOr<std::string> line = put->ReadHandshakeLine();
    if (!CheckOk(line.status(), "reading the handshake line")) return;
    const std::vector<std::string> fields = absl::StrSplit(*line, '|');
    ASSERT_GE(fields.size(), 6u) << "no certificate field in "
                                 << protocol::QuoteForError(*line, 300);
    const std::string& cert = fields[5];
    if (!automtls) {
      EXPECT_EQ(cert, "") << "AutoMTLS off: expected an empty certificate field, got "
                          << protocol::QuoteForError(cert, 80);
      continue;
    }
    ASSERT_GT(cert.size(), protocol::kCertFieldBytesIgnoredMax)
        << "AutoMTLS on: expected a certificate (go-plugin's host ignores fields of 50 bytes or "
           "less), got "
        << protocol::QuoteForError(cert, 80);
    EXPECT_EQ(cert.find('='), std::string::npos)
        << "expected base64.RawStdEncoding (no '=' padding), got "
        << protocol::QuoteForError(cert, 80);
    EXPECT_EQ(
        cert.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
        std::string::npos)
        << "expected the standard base64 alphabet only, got " << protocol::QuoteForError(cert, 80);
    absl::StatusOr<protocol::HandshakeLine> hs = put->ReadHandshake();
    ASSERT_TRUE(hs.ok()) << hs.status();
    absl::StatusOr<protocol::CertInfo> info = protocol::ParseCertDer(hs->server_cert_der);
    EXPECT_TRUE(info.ok()) << "expected the field to decode to one DER X.509 certificate: "
                           << info.status();
  }
}

CONFORMANCE_TEST(Handshake, NothingOnStdoutBeforeTheLine, Must,
                 "plugin-protocol.md §2 (handshake line)",
                 "The handshake line MUST be the first bytes a plugin writes to stdout.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  std::unique_ptr<PluginUnderTest> put = MustLaunch();
  ASSERT_NE(put, nullptr);
  absl::StatusOr<std::string> line = put->ReadHandshakeLine();
  if (!CheckOk(line.status(), "reading the first stdout line")) return;
  EXPECT_TRUE(absl::StartsWith(*line, "1|"))
      << "expected stdout to start with the handshake line \"1|...\", got "
      << protocol::QuoteForError(put->stdout_text(), 200);
  EXPECT_TRUE(put->ReadHandshake().ok())
      << "expected the first stdout line to be the handshake line, got "
      << protocol::QuoteForError(*line, 200);
}

CONFORMANCE_TEST(Handshake, StdoutQuietAfterTheLine, Must,
                 "plugin-protocol.md §1-2 (socket directory)",
                 "After the handshake line a plugin MUST NOT write to its real stdout (the host "
                 "reads only the first line), through serving and shutdown.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  absl::StatusOr<std::unique_ptr<PluginUnderTest>> started = PluginUnderTest::Start();
  ASSERT_TRUE(CheckOk(started.status(), "starting the plugin"));
  PluginUnderTest& put = **started;
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> health = put.HealthCheck();
  if (!CheckOk(health.status(), "grpc.health.v1.Health/Check")) return;
  if (Config().manifest.is_backend()) {
    absl::StatusOr<uint32_t> setup = put.SetupBackend("conformance-stdout", {});
    if (!CheckOk(setup.status(), "pb.Backend/Setup")) return;
  }
  (void)put.Shutdown();  // go-plugin's host ignores the reply, and so does this test.
  absl::StatusOr<sdk::testing::ProcessExitStatus> exit = put.WaitForExit();
  if (!CheckOk(exit.status(), "waiting for exit after GRPCController/Shutdown")) return;
  EXPECT_EQ(put.stdout_text(), *put.ReadHandshakeLine() + "\n")
      << "expected stdout to hold exactly the handshake line and '\\n'";
}

CONFORMANCE_TEST(Handshake, SocketInSocketDir, Should,
                 "plugin-protocol.md §2 (version negotiation)",
                 "A plugin SHOULD listen on a unix socket inside PLUGIN_UNIX_SOCKET_DIR when the "
                 "host sets it, even when TMPDIR points elsewhere (go-plugin >= v1.5.0).") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  sdk::testing::ShortTempDir other_tmp;
  ASSERT_FALSE(other_tmp.path().empty());
  LaunchOptions options;
  options.extra_env = {absl::StrCat("TMPDIR=", other_tmp.path())};
  std::unique_ptr<PluginUnderTest> put = LaunchAndHandshake(options);
  if (put == nullptr) return;
  const protocol::HandshakeLine& hs = put->handshake();
  EXPECT_EQ(hs.network, "unix") << "expected a unix socket, got " << hs.network << " "
                                << hs.address;
  EXPECT_TRUE(absl::StartsWith(hs.address, put->socket_dir() + "/"))
      << "PLUGIN_UNIX_SOCKET_DIR=" << put->socket_dir() << " (TMPDIR=" << other_tmp.path()
      << "): expected the socket inside it, got " << hs.address;
  struct stat st {};
  EXPECT_TRUE(::stat(hs.address.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
      << "expected a socket file at " << hs.address;
}

CONFORMANCE_TEST(Handshake, PrintsLineWithinStartupLimit, Must,
                 "plugin-protocol.md §2 (handshake line)",
                 "A plugin MUST print its handshake line within the manifest's max_startup_ms "
                 "(when set) and always within the suite's launch timeout.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  std::unique_ptr<PluginUnderTest> put = MustLaunch();
  ASSERT_NE(put, nullptr);
  absl::StatusOr<std::string> line = put->ReadHandshakeLine();
  if (absl::IsDeadlineExceeded(line.status())) {
    // Here the deadline *is* the requirement: slower than the launch limit is a failure.
    ADD_FAILURE() << "expected a handshake line within "
                  << absl::FormatDuration(Config().launch_timeout) << ", got none";
    return;
  }
  ASSERT_TRUE(line.ok()) << line.status();
  const double ms = absl::ToDoubleMilliseconds(put->time_to_handshake());
  RecordMetric("time_to_handshake_ms", ms, "ms");
  if (const std::optional<double>& limit = Config().manifest.performance.max_startup_ms) {
    EXPECT_LE(ms, *limit) << "expected the handshake within max_startup_ms " << *limit
                          << " ms, got " << ms << " ms";
  }
}

}  // namespace
}  // namespace bulwark::conformance
