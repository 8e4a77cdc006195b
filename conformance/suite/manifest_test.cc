// Manifest validation: a good manifest parses; every kind of mistake is an error naming it.
#include "conformance/suite/manifest.h"

#include <stdlib.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::conformance {
namespace {

using ::testing::HasSubstr;

constexpr char kGood[] = R"({
  "manifest_version": 1, "name": "kv", "type": "secret", "protocol_versions": [5, 4],
  "profiles": ["multiplexing"], "env": ["A=b"],
  "backend": {"write_path": "p/q", "write_data": {"v": "x"}},
  "performance": {"max_startup_ms": 500, "max_idle_rss_kib": 65536}
})";

TEST(ManifestTest, ParsesAGoodManifest) {
  absl::StatusOr<Manifest> m = ParseManifest(kGood);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->name, "kv");
  EXPECT_EQ(m->type, PluginType::kSecret);
  EXPECT_EQ(m->protocol_versions, (std::vector<int>{4, 5}));
  EXPECT_TRUE(m->Claims("multiplexing"));
  EXPECT_EQ(m->env, std::vector<std::string>{"A=b"});
  EXPECT_EQ(m->backend_probe.write_path, "p/q");
  EXPECT_EQ(m->backend_probe.write_data_json, R"({"v":"x"})");
  EXPECT_EQ(m->performance.max_startup_ms, 500);
  EXPECT_EQ(m->performance.max_idle_rss_kib, 65536u);
  EXPECT_FALSE(m->performance.max_p50_us.has_value());
  EXPECT_EQ(m->cookie_key(), "VAULT_BACKEND_PLUGIN");
  // Without read_fields the probe is a key/value echo: idempotent, deletable, nothing adapted.
  EXPECT_EQ(m->backend_probe.read_fields_json, std::vector<std::string>{R"({"v":"x"})"});
  EXPECT_TRUE(m->backend_probe.idempotent_writes);
  EXPECT_TRUE(m->backend_probe.deletable);
  EXPECT_EQ(m->backend_probe.ReadFieldsAfter(1), R"({"v":"x"})");
  EXPECT_EQ(m->backend_probe.ReadFieldsAfter(100), R"({"v":"x"})");
  EXPECT_TRUE(m->backend_probe.Adaptations().empty());
}

TEST(ManifestTest, ACounterProbeSaysWhatReadsAnswerAfterEachWrite) {
  absl::StatusOr<Manifest> m = ParseManifest(R"({"manifest_version": 1, "name": "counter",
      "type": "secret", "protocol_versions": [5],
      "backend": {"write_path": "c/x", "write_data": {"by": 3},
                  "read_fields": [{"value": 3}, {"value": 6}],
                  "idempotent_writes": false, "delete": false}})");
  ASSERT_TRUE(m.ok()) << m.status();
  const BackendProbe& probe = m->backend_probe;
  EXPECT_FALSE(probe.idempotent_writes);
  EXPECT_FALSE(probe.deletable);
  EXPECT_EQ(probe.ReadFieldsAfter(0), std::nullopt);
  EXPECT_EQ(probe.ReadFieldsAfter(1), R"({"value":3})");
  EXPECT_EQ(probe.ReadFieldsAfter(2), R"({"value":6})");
  EXPECT_EQ(probe.ReadFieldsAfter(3), std::nullopt);  // Not idempotent: unknown.
  ASSERT_EQ(probe.Adaptations().size(), 2u);
  EXPECT_THAT(probe.Adaptations()[0], HasSubstr("Backend.ConcurrentRequests"));
  EXPECT_THAT(probe.Adaptations()[1], HasSubstr("Backend.ProbeDeleteThenReadNotFound"));
}

TEST(ManifestTest, IdempotentProbeKeepsItsLastReadFields) {
  absl::StatusOr<Manifest> m = ParseManifest(R"({"manifest_version": 1, "name": "kv",
      "type": "secret", "protocol_versions": [5],
      "backend": {"write_path": "p", "write_data": {"v": "x"}, "read_fields": {"v": "x", "n": 1}}})");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->backend_probe.ReadFieldsAfter(7), R"({"n":1,"v":"x"})");
}

TEST(ManifestTest, DatabaseManifestAndScratchExpansion) {
  absl::StatusOr<Manifest> m = ParseManifest(R"({"manifest_version": 1, "name": "db",
      "type": "database", "protocol_versions": [5],
      "database": {"config": {"connection_url": "{{scratch_dir}}/users"}}})");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE(m->is_backend());
  EXPECT_EQ(m->cookie_key(), "VAULT_DATABASE_PLUGIN");
  EXPECT_EQ(ExpandDatabaseConfig(*m, "/tmp/x"), R"({"connection_url":"/tmp/x/users"})");
}

TEST(ManifestTest, DatabaseEnvUnreachableAndStatements) {
  ::setenv("BW_MANIFEST_TEST_HOST", "/tmp/a \"b\"", 1);
  ::unsetenv("BW_MANIFEST_TEST_UNSET");
  absl::StatusOr<Manifest> m = ParseManifest(R"({"manifest_version": 1, "name": "pg",
      "type": "database", "protocol_versions": [5, 6],
      "database": {"config": {"url": "h={{env:BW_MANIFEST_TEST_HOST}}"},
                   "unreachable_config": {"url": "h={{scratch_dir}}/none {{env:BW_MANIFEST_TEST_UNSET}}"},
                   "creation_statements": ["CREATE ROLE \"{{name}}\""]}})");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(ExpandDatabaseConfig(*m, "/s"), R"({"url":"h=/tmp/a \"b\""})");
  EXPECT_EQ(ExpandUnreachableDatabaseConfig(*m, "/s"), R"({"url":"h=/s/none "})");
  EXPECT_THAT(MissingDatabaseEnv(*m), ::testing::ElementsAre("BW_MANIFEST_TEST_UNSET"));
  EXPECT_THAT(m->database_creation_statements, ::testing::ElementsAre("CREATE ROLE \"{{name}}\""));
  // Without unreachable_config: the config with a scratch directory that does not exist.
  absl::StatusOr<Manifest> plain = ParseManifest(R"({"manifest_version": 1, "name": "db",
      "type": "database", "protocol_versions": [5],
      "database": {"config": {"connection_url": "{{scratch_dir}}"}}})");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(ExpandUnreachableDatabaseConfig(*plain, "/s"),
            R"({"connection_url":"/s/missing/nowhere"})");
  EXPECT_TRUE(MissingDatabaseEnv(*plain).empty());
}

struct BadCase {
  const char* json;
  const char* message;
};

class ManifestErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ManifestErrorTest, IsRefusedWithAClearMessage) {
  absl::StatusOr<Manifest> m = ParseManifest(GetParam().json);
  ASSERT_FALSE(m.ok()) << GetParam().json;
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr(GetParam().message));
}

#define BASE R"("manifest_version": 1, "name": "kv", "protocol_versions": [5], )"
#define PROBE R"("backend": {"write_path": "p", "write_data": {"v": 1}})"

INSTANTIATE_TEST_SUITE_P(
    Cases, ManifestErrorTest,
    ::testing::Values(
        BadCase{"[1]", "not a JSON object"}, BadCase{"{", "not valid JSON"},
        BadCase{"{" BASE R"("type": "secret", "profile": ["x"], )" PROBE "}",
                "unknown key \"profile\""},
        BadCase{"{" BASE R"("type": "plugin", )" PROBE "}", "\"type\" must be"},
        BadCase{R"({"manifest_version": 2, "name": "kv", "type": "secret",
                    "protocol_versions": [5], )" PROBE "}",
                "must be 1"},
        BadCase{"{" BASE R"("type": "secret", "profiles": ["security"], )" PROBE "}",
                "not an optional profile"},
        BadCase{"{" BASE R"("type": "secret", "profiles": ["multiplexing", "multiplexing"], )" PROBE
                "}",
                "twice"},
        BadCase{"{" BASE R"("type": "secret", "env": ["NOEQUALS"], )" PROBE "}", "KEY=VALUE"},
        BadCase{"{" BASE R"("type": "secret"})", "\"backend\" with"},
        BadCase{
            "{" BASE
            R"("type": "secret", "backend": {"write_path": "p", "write_data": {"v": 1}, "x": 1}})",
            "unknown key \"x\" in \"backend\""},
        BadCase{"{" BASE R"("type": "secret", "performance": {"max_p50_us": -1}, )" PROBE "}",
                "finite number >= 0"},
        BadCase{"{" BASE R"("type": "secret", "performance": {"p50": 1}, )" PROBE "}",
                "unknown key \"p50\""},
        BadCase{"{" BASE R"("type": "database"})", "\"database\" with"},
        BadCase{"{" BASE
                R"("type": "secret", "backend": {"write_path": "p", "write_data": {"v": 1},
                    "read_fields": []}})",
                "\"backend.read_fields\" must be a non-empty JSON object"},
        BadCase{"{" BASE
                R"("type": "secret", "backend": {"write_path": "p", "write_data": {"v": 1},
                    "read_fields": [{"v": 1}, 2]}})",
                "\"backend.read_fields\" must be"},
        BadCase{"{" BASE
                R"("type": "secret", "backend": {"write_path": "p", "write_data": {"v": 1},
                    "idempotent_writes": "no"}})",
                "\"backend.idempotent_writes\" must be true or false"},
        BadCase{"{" BASE
                R"("type": "secret", "backend": {"write_path": "p", "write_data": {"v": 1},
                    "delete": 0}})",
                "\"backend.delete\" must be true or false"},
        BadCase{"{" BASE
                R"("type": "secret", "backend": {"write_path": "p", "write_data": {"by": 1},
                    "read_fields": {"value": 1}, "idempotent_writes": false}})",
                "the fields after the 1st and the 2nd write"},
        BadCase{R"({"manifest_version": 1, "name": "kv", "type": "secret",
                    "protocol_versions": [0], )" PROBE "}",
                "1 to 99"},
        BadCase{R"({"manifest_version": 1, "type": "secret", "protocol_versions": [5]})",
                "\"name\" is required"},
        BadCase{"{" BASE
                R"("type": "database", "database": {"config": {}, "unreachable_config": 1}})",
                "\"database.unreachable_config\" must be a JSON object"},
        BadCase{"{" BASE
                R"("type": "database", "database": {"config": {}, "creation_statements": [1]}})",
                "\"creation_statements\" must be an array of strings"},
        BadCase{"{" BASE R"("type": "database", "database": {"config": {"u": "{{env:A-B}}"}}})",
                "{{env:A-B}}, which is not an environment variable name"}));

TEST(ManifestTest, ReportsShowNoEnvValuesOrDatabaseConfigStrings) {
  const std::string redacted = RedactedManifestJson(R"({"manifest_version": 1, "name": "db",
      "type": "database", "protocol_versions": [5], "env": ["PGPASSWORD=hunter2"],
      "database": {"config": {"connection_url": "postgres://u:s3cret@h/db",
                              "nested": {"list": ["tok-abc", 5]}},
                   "unreachable_config": {"password": "unr3achable"}}})");
  EXPECT_THAT(redacted, ::testing::Not(HasSubstr("unr3achable")));
  EXPECT_THAT(redacted, ::testing::Not(HasSubstr("hunter2")));
  EXPECT_THAT(redacted, ::testing::Not(HasSubstr("s3cret")));
  EXPECT_THAT(redacted, ::testing::Not(HasSubstr("tok-abc")));
  EXPECT_THAT(redacted, HasSubstr("PGPASSWORD=(redacted)"));
  EXPECT_THAT(redacted, HasSubstr(R"x("connection_url":"(redacted)")x"));
  EXPECT_THAT(redacted, HasSubstr(R"("name":"db")"));
}

TEST(ManifestTest, RefusesOversizedInput) {
  const std::string big(kManifestBytesMax + 1, ' ');
  EXPECT_FALSE(ParseManifest(big).ok());
}

}  // namespace
}  // namespace bulwark::conformance
