// The conformance suite's framework: requirements (stable test IDs with a one-line RFC 2119
// requirement each), the run's configuration (plugin, manifest, seed, attach target), and the
// per-test hooks that make reports readable (plugin stderr tails, metrics, timeouts).
//
// A conformance test is written as
//
//   CONFORMANCE_TEST(Handshake, RefusesMissingCookie, Must, "plugin-protocol.md#handshake",
//                    "Started without the magic cookie, a plugin MUST exit non-zero and print "
//                    "go-plugin's 'This binary is a plugin' message to stderr.") {
//     ... gtest assertions ...
//   }
//
// which registers the requirement "Handshake.RefusesMissingCookie" (profile "handshake") and
// defines the gtest test of the same full name. The first argument is one of the profile
// fixtures declared below; its lower-cased name is the profile.
#ifndef BULWARK_CONFORMANCE_SUITE_CONFORMANCE_H_
#define BULWARK_CONFORMANCE_SUITE_CONFORMANCE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "conformance/suite/manifest.h"
#include "gtest/gtest.h"

namespace bulwark::conformance {

// The suite's semantic version. The major version is the Vault plugin app-protocol version it
// certifies (5); the minor grows when tests are added, the patch when tests are fixed.
inline constexpr char kSuiteVersion[] = "5.2.0";
inline constexpr int kCertifiedProtocolVersion = 5;

enum class Level { kMust, kShould };
absl::string_view LevelName(Level level);  // "MUST" / "SHOULD"

struct Requirement {
  std::string id;       // "Handshake.RefusesMissingCookie": the gtest full name, never renamed.
  std::string profile;  // "handshake": the fixture name, lower-cased.
  Level level = Level::kMust;
  std::string section;  // Where the rule is specified, e.g. "plugin-protocol.md#handshake".
  std::string text;     // One sentence with MUST / SHOULD.
};

// Every registered requirement, sorted by id. Complete once static initialization is done.
const std::vector<Requirement>& AllRequirements();
const Requirement* FindRequirement(absl::string_view id);

// The profiles, in report order. Required profiles apply to every plugin of the matching type;
// optional ones only when the manifest claims them.
//   handshake, mtls, services, lifecycle, security, performance  required for every plugin
//   backend                                                      required for secret/auth
//   database                                                     required for database
//   multiplexing                                                 optional (claimed)
const std::vector<std::string>& AllProfiles();
bool ProfileRequired(absl::string_view profile, const Manifest& manifest);

// Where the plugin under test is already running (attach mode): its handshake line and the
// client certificate and key the host gave it (PLUGIN_CLIENT_CERT), as PEM file contents. Tests
// that must launch the plugin themselves skip in attach mode, so an attach run never certifies.
struct AttachTarget {
  std::string handshake_line;
  std::string client_cert_pem;
  std::string client_key_pem;
};

struct SuiteConfig {
  std::string plugin_path;               // Launch mode: the binary under test. Empty in attach.
  std::vector<std::string> plugin_args;  // argv[1..] for every launch.
  std::string plugin_sha256;             // Hex SHA-256 of the binary ("" in attach mode).
  Manifest manifest;
  std::string manifest_text;  // As read, for the record.
  uint64_t seed = 0;          // Every random choice derives from it (printed at start).
  std::optional<AttachTarget> attach;
  // Deadline of every RPC the suite makes, and how long a launch may take to print its
  // handshake line before the suite gives up (a plugin slower than the manifest's start-up
  // limit but faster than this fails Performance/Handshake tests, not by timeout).
  absl::Duration rpc_timeout = absl::Seconds(10);
  absl::Duration launch_timeout = absl::Seconds(20);
  // go-plugin's grace period between GRPCController.Shutdown and a kill.
  absl::Duration shutdown_grace = absl::Seconds(2);
};

// The run's configuration, set by main() before any test runs.
const SuiteConfig& Config();
void SetConfig(SuiteConfig config);

// A secret value unique to this run (derived from the seed) that tests pass in requests and
// then look for in the plugin's stdout/stderr. Looks like a Vault token.
std::string CanarySecret(absl::string_view purpose);

// --- Per-test hooks (call from the test's thread while a CONFORMANCE_TEST runs) -------------

// Remembers the plugin's stderr so far; the newest note's last kStderrTailBytes are attached to
// the test's failure output and its record. Harness classes call this whenever they read
// stderr and when they are destroyed, so tests need not.
inline constexpr size_t kStderrTailBytes = 2048;
void NotePluginStderr(absl::string_view stderr_text);

// Records a measurement ("startup_ms", 12.5, "ms") in the test's record and its JUnit
// properties. Performance tests report with it; others may.
void RecordMetric(absl::string_view name, double value, absl::string_view unit);

// Reports that something the test waited for did not happen within its deadline: the test fails
// and its result is "timeout", not "failed" (a timeout says the suite could not decide).
// `what` names the operation: "pb.Backend/HandleRequest after 10s".
void ReportTimeout(absl::string_view what);

// Fails the test with Status `s` unless it is OK, turning kDeadlineExceeded into
// ReportTimeout. Returns s.ok(). `what` names the operation.
bool CheckOk(const absl::Status& s, absl::string_view what);

// --- Fixtures ------------------------------------------------------------------------------

// The base of every profile fixture: on failure, TearDown adds one message with the broken
// requirement and the plugin's stderr tail.
class ConformanceTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
};

class Handshake : public ConformanceTest {};
class Mtls : public ConformanceTest {};
class Services : public ConformanceTest {};
class Backend : public ConformanceTest {};
class Database : public ConformanceTest {};
class Multiplexing : public ConformanceTest {};
class Lifecycle : public ConformanceTest {};
class Security : public ConformanceTest {};
class Performance : public ConformanceTest {};

namespace internal {
bool RegisterRequirement(const char* id, const char* profile_fixture, Level level,
                         const char* section, const char* text);
}  // namespace internal

}  // namespace bulwark::conformance

#define CONFORMANCE_TEST(profile, name, level, section, text)                                    \
  [[maybe_unused]] static const bool bw_conformance_registered_##profile##_##name =              \
      ::bulwark::conformance::internal::RegisterRequirement(                                     \
          #profile "." #name, #profile, ::bulwark::conformance::Level::k##level, section, text); \
  TEST_F(profile, name)

#endif  // BULWARK_CONFORMANCE_SUITE_CONFORMANCE_H_
