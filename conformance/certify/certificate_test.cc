// Certification decisions over synthetic records: only a complete, finished, launch-mode run in
// which every required test passed certifies; every other case names its reason.
#include "conformance/certify/certificate.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::conformance {
namespace {

using nlohmann::json;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

json Record(int shard, int total, std::vector<json> tests) {
  return {
      {"format", "bulwark-conformance-record/1"},
      {"suite_version", "5.0.0"},
      {"mode", "launch"},
      {"plugin", {{"sha256", "ab"}}},
      {"build", {{"compilation_mode", "opt"}, {"target_cpu", "k8"}}},
      {"manifest", {{"name", "kv"}, {"type", "secret"}}},
      {"seed", 7},
      {"finished", true},
      {"expected_failures", json::array()},
      {"shard", {{"index", shard}, {"total", total}}},
      {"requirements",
       {{{"id", "Handshake.A"}, {"profile", "handshake"}, {"required", true}},
        {{"id", "Handshake.B"}, {"profile", "handshake"}, {"required", true}},
        {{"id", "Handshake.S"}, {"profile", "handshake"}, {"level", "SHOULD"}, {"required", true}},
        {{"id", "Multiplexing.C"}, {"profile", "multiplexing"}, {"required", false}}}},
      {"tests", json(std::move(tests))}};
}

json Result(const char* id, const char* result) { return {{"id", id}, {"result", result}}; }

std::vector<std::string> Reasons(const json& c) {
  return c.at("reasons").get<std::vector<std::string>>();
}

TEST(CertifyTest, AllRequiredPassedAcrossShardsCertifies) {
  absl::StatusOr<json> c = Certify({Record(0, 2, {Result("Handshake.A", "passed")}),
                                    Record(1, 2, {Result("Handshake.B", "passed")})},
                                   "5.0.0");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->at("certified").get<bool>()) << c->dump(2);
  EXPECT_EQ(c->at("required_passed"), 2);
  EXPECT_THAT(RenderMarkdown(*c), HasSubstr("CERTIFIED"));
  // A key/value probe: nothing adapted, nothing said.
  EXPECT_TRUE(c->at("probe_adaptations").empty());
  EXPECT_THAT(RenderMarkdown(*c), Not(HasSubstr("adapted")));
}

TEST(CertifyTest, ChecksAdaptedToTheProbeAreNamedInTheCertificate) {
  json record = Record(0, 1, {Result("Handshake.A", "passed"), Result("Handshake.B", "passed")});
  record["probe_adaptations"] = {"Backend.ConcurrentRequests: writes are not idempotent"};
  absl::StatusOr<json> c = Certify({record}, "5.0.0");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->at("certified").get<bool>()) << c->dump(2);
  EXPECT_EQ(c->at("probe_adaptations"), record["probe_adaptations"]);
  const std::string md = RenderMarkdown(*c);
  EXPECT_THAT(md, HasSubstr("## Checks adapted to the backend probe"));
  EXPECT_THAT(md, HasSubstr("- Backend.ConcurrentRequests: writes are not idempotent\n"));
}

TEST(CertifyTest, MissingSkippedFailedOrTimedOutRequiredTestsRefuse) {
  for (const char* result : {"failed", "skipped", "timeout"}) {
    absl::StatusOr<json> c = Certify(
        {Record(0, 1, {Result("Handshake.A", "passed"), Result("Handshake.B", result)})}, "5.0.0");
    ASSERT_TRUE(c.ok());
    EXPECT_FALSE(c->at("certified").get<bool>());
    EXPECT_THAT(Reasons(*c), Contains(std::string("required test Handshake.B ") + result));
    EXPECT_THAT(RenderMarkdown(*c), HasSubstr("NOT CERTIFIED"));
  }
  absl::StatusOr<json> missing =
      Certify({Record(0, 1, {Result("Handshake.A", "passed")})}, "5.0.0");
  ASSERT_TRUE(missing.ok());
  EXPECT_THAT(Reasons(*missing), Contains(std::string("required test Handshake.B did not run")));
}

TEST(CertifyTest, MissingShardUnfinishedAttachAndDevelopmentModeRefuse) {
  std::vector<json> all = {Result("Handshake.A", "passed"), Result("Handshake.B", "passed")};
  absl::StatusOr<json> c = Certify({Record(0, 2, all)}, "5.0.0");
  EXPECT_THAT(Reasons(*c), Contains(HasSubstr("shard 1 of 2 is missing")));
  json unfinished = Record(0, 1, all);
  unfinished["finished"] = false;
  EXPECT_THAT(Reasons(*Certify({unfinished}, "5.0.0")), Contains(HasSubstr("did not finish")));
  json attach = Record(0, 1, all);
  attach["mode"] = "attach";
  EXPECT_THAT(Reasons(*Certify({attach}, "5.0.0")), Contains(HasSubstr("attach mode")));
  json dev = Record(0, 1, all);
  dev["expected_failures"] = json::array({"Handshake.A"});
  EXPECT_THAT(Reasons(*Certify({dev}, "5.0.0")), Contains(HasSubstr("development mode")));
}

TEST(CertifyTest, OptionalUnclaimedFailuresDoNotMatterButOldSuitesDo) {
  absl::StatusOr<json> c =
      Certify({Record(0, 1,
                      {Result("Handshake.A", "passed"), Result("Handshake.B", "passed"),
                       Result("Multiplexing.C", "failed")})},
              "5.0.0");
  EXPECT_TRUE(c->at("certified").get<bool>());
  EXPECT_THAT(Reasons(*Certify({Record(0, 1, {})}, "5.3.0")),
              Contains(HasSubstr("not accepted by this certifier")));
  EXPECT_THAT(Reasons(*Certify({Record(0, 1, {})}, "6.0.0")),
              Contains(HasSubstr("not accepted by this certifier")));
}

TEST(CertifyTest, ShouldLevelFailuresAreAdvisoriesNotRefusals) {
  absl::StatusOr<json> c =
      Certify({Record(0, 1,
                      {Result("Handshake.A", "passed"), Result("Handshake.B", "passed"),
                       Result("Handshake.S", "failed")})},
              "5.0.0");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->at("certified").get<bool>());
  EXPECT_EQ(c->at("advisories"), json::array({"Handshake.S failed"}));
  EXPECT_THAT(RenderMarkdown(*c), HasSubstr("Advisories"));
}

TEST(CertifyTest, RecordsOfDifferentRunsAreAnError) {
  json other = Record(1, 2, {});
  other["plugin"]["sha256"] = "cd";
  EXPECT_FALSE(Certify({Record(0, 2, {}), other}, "5.0.0").ok());
  json seed = Record(1, 2, {});
  seed["seed"] = 8;  // Shards draw their own seeds: that is the same run.
  absl::StatusOr<json> both = Certify({Record(0, 2, {}), seed}, "5.0.0");
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->at("seeds"), (json{{"0", 7}, {"1", 8}}));
  json mode = Record(1, 2, {});
  mode["mode"] = "attach";
  EXPECT_FALSE(Certify({Record(0, 2, {}), mode}, "5.0.0").ok());
  EXPECT_FALSE(Certify({Record(0, 1, {Result("Handshake.A", "passed")}),
                        Record(0, 1, {Result("Handshake.A", "passed")})},
                       "5.0.0")
                   .ok());
  EXPECT_FALSE(Certify({json{{"format", "other"}}}, "5.0.0").ok());
  EXPECT_FALSE(Certify({}, "5.0.0").ok());
}

TEST(CertifyTest, RecordsOfDifferentBuildsAreNotMerged) {
  json debug = Record(1, 2, {Result("Handshake.B", "passed")});
  debug["build"]["compilation_mode"] = "fastbuild";
  absl::StatusOr<json> c =
      Certify({Record(0, 2, {Result("Handshake.A", "passed")}), debug}, "5.0.0");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(),
              HasSubstr("record 1 is of build fastbuild (k8) and record 0 of build opt (k8)"));
  json older = Record(1, 2, {Result("Handshake.B", "passed")});
  older.erase("build");  // A record of a suite that predates the field.
  EXPECT_FALSE(Certify({Record(0, 2, {Result("Handshake.A", "passed")}), older}, "5.0.0").ok());
}

TEST(CertifyTest, TheCertificateNamesTheBuild) {
  absl::StatusOr<json> c = Certify(
      {Record(0, 1, {Result("Handshake.A", "passed"), Result("Handshake.B", "passed")})}, "5.0.0");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->at("build"), (json{{"compilation_mode", "opt"}, {"target_cpu", "k8"}}));
  EXPECT_THAT(RenderMarkdown(*c), HasSubstr("- build: opt (k8)\n"));
}

TEST(BuildTest, ARecordWithoutABuildIsUnknown) {
  EXPECT_EQ(BuildOf(json::object()).Describe(), "unknown (unknown)");
  EXPECT_EQ(BuildOf(json{{"build", "opt"}}).compilation_mode, "unknown");
  EXPECT_EQ(BuildOf(json{{"build", {{"compilation_mode", "dbg"}}}}).Describe(), "dbg (unknown)");
  EXPECT_EQ(BuildOf(Record(0, 1, {})).Describe(), "opt (k8)");
}

TEST(BuildTest, CheckCompilationModeNamesEveryRecordOfAnotherBuild) {
  json debug = Record(1, 3, {});
  debug["build"]["compilation_mode"] = "fastbuild";
  json older = Record(2, 3, {});
  older.erase("build");
  EXPECT_TRUE(CheckCompilationMode({Record(0, 1, {})}, {"a.json"}, "opt").ok());
  absl::Status s =
      CheckCompilationMode({Record(0, 3, {}), debug, older}, {"a.json", "b.json", "c.json"}, "opt");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(),
              HasSubstr("asked to certify a compilation_mode=opt build, but b.json is of "
                        "compilation_mode=fastbuild; c.json is of compilation_mode=unknown"));
  EXPECT_THAT(s.message(), Not(HasSubstr("a.json")));
  EXPECT_THAT(s.message(), HasSubstr("bazel test -c opt"));
  EXPECT_FALSE(CheckCompilationMode({Record(0, 1, {})}, {"a.json"}, "fastbuild").ok());
}

}  // namespace
}  // namespace bulwark::conformance
