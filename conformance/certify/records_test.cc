// Reading records from fake Bazel output trees: one set per configuration that ran the test,
// the choice of one configuration, and the check that the binary is still the one tested.
#include "conformance/certify/records.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/crypto/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::conformance {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

json Record(const std::string& mode, int shard = 0, int total = 1) {
  return {{"format", "bulwark-conformance-record/1"},
          {"plugin", {{"path", "pkg/plugin"}, {"sha256", "ab"}}},
          {"build", {{"compilation_mode", mode}, {"target_cpu", "k8"}}},
          {"shard", {{"index", shard}, {"total", total}}}};
}

class RecordsTest : public ::testing::Test {
 protected:
  RecordsTest() {
    const char* tmp = std::getenv("TEST_TMPDIR");
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    ws_ = (fs::path(tmp ? tmp : "/tmp") / info->name()).string();
    fs::remove_all(ws_);
    fs::create_directories(ws_);
  }

  void Write(const std::string& relative, const std::string& text) {
    const fs::path path = fs::path(ws_) / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
  }

  // A record where Bazel puts a test's undeclared outputs (unzipped).
  void WriteRecord(const std::string& config, const std::string& test, const json& record,
                   const std::string& name = "conformance_record.json") {
    Write("bazel-out/" + config + "/testlogs/" + test + "/test.outputs/" + name, record.dump());
  }

  std::string ws_;
};

TEST_F(RecordsTest, EachConfigurationThatRanTheTestIsItsOwnSet) {
  WriteRecord("k8-opt", "pkg/t", Record("opt", 0, 2), "conformance_record.shard-0-of-2.json");
  WriteRecord("k8-opt", "pkg/t", Record("opt", 1, 2), "conformance_record.shard-1-of-2.json");
  WriteRecord("k8-fastbuild", "pkg/t", Record("fastbuild"));
  WriteRecord("k8-dbg", "pkg/other", Record("dbg"));  // Another test: not read.
  Write("bazel-out/k8-fastbuild/testlogs/pkg/t/test.log", "not a record");

  absl::StatusOr<std::vector<RecordSet>> sets = ReadTestRecords(ws_, "//pkg:t");
  ASSERT_TRUE(sets.ok()) << sets.status();
  ASSERT_EQ(sets->size(), 2u);
  EXPECT_EQ((*sets)[0].config_dir, "k8-fastbuild");
  EXPECT_EQ((*sets)[0].records.size(), 1u);
  EXPECT_EQ((*sets)[1].config_dir, "k8-opt");
  ASSERT_EQ((*sets)[1].records.size(), 2u);
  EXPECT_EQ((*sets)[1].records[1]["shard"]["index"], 1);
  EXPECT_THAT((*sets)[1].origins[0], HasSubstr("k8-opt/testlogs/pkg/t/test.outputs/"
                                               "conformance_record.shard-0-of-2.json"));
  EXPECT_EQ((*sets)[1].workspace, ws_);
}

TEST_F(RecordsTest, LabelsOfTheRootPackageAndMalformedLabels) {
  WriteRecord("k8-opt", "notes_conformance", Record("opt"));
  absl::StatusOr<std::vector<RecordSet>> sets = ReadTestRecords(ws_, "//:notes_conformance");
  ASSERT_TRUE(sets.ok()) << sets.status();
  EXPECT_EQ(sets->size(), 1u);
  EXPECT_EQ(ReadTestRecords(ws_, "//pkg").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadTestRecords(ws_, "pkg:t").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RecordsTest, WithoutBazelOutTheLastCommandsTestlogsAreRead) {
  Write("bazel-testlogs/pkg/t/test.outputs/conformance_record.json", Record("opt").dump());
  absl::StatusOr<std::vector<RecordSet>> sets = ReadTestRecords(ws_, "//pkg:t");
  ASSERT_TRUE(sets.ok()) << sets.status();
  ASSERT_EQ(sets->size(), 1u);
  EXPECT_EQ((*sets)[0].config_dir, "");
}

TEST_F(RecordsTest, NoRecordsNamesTheTestAndWhatToRun) {
  absl::StatusOr<std::vector<RecordSet>> sets = ReadTestRecords(ws_, "//pkg:t");
  EXPECT_EQ(sets.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(sets.status().message(), HasSubstr("no conformance records of //pkg:t"));
  EXPECT_THAT(sets.status().message(), HasSubstr("run bazel test //pkg:t first"));
}

TEST_F(RecordsTest, ARecordThatIsNotJsonIsAnError) {
  Write("bazel-out/k8-opt/testlogs/pkg/t/test.outputs/conformance_record.json", "{not json");
  absl::StatusOr<std::vector<RecordSet>> sets = ReadTestRecords(ws_, "//pkg:t");
  EXPECT_EQ(sets.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(sets.status().message(), HasSubstr("is not valid JSON"));
}

TEST(ConfigDirTest, CompilationModeIsTheSecondPartOfTheName) {
  EXPECT_EQ(CompilationModeOfConfigDir("k8-opt"), "opt");
  EXPECT_EQ(CompilationModeOfConfigDir("k8-fastbuild"), "fastbuild");
  EXPECT_EQ(CompilationModeOfConfigDir("k8-dbg-ST-1a2b3c"), "dbg");
  EXPECT_EQ(CompilationModeOfConfigDir("host"), "");
}

RecordSet Set(const std::string& config_dir, const std::string& mode) {
  RecordSet set;
  set.config_dir = config_dir;
  set.location = "bazel-out/" + config_dir + "/testlogs/pkg/t";
  set.workspace = "/ws";
  set.records = {Record(mode)};
  set.origins = {set.location + "/conformance_record.json"};
  return set;
}

TEST(SelectConfigurationTest, WithoutAModeMixedConfigurationsAreRefused) {
  std::vector<std::string> skipped;
  absl::StatusOr<std::vector<RecordSet>> chosen = SelectConfiguration(
      {Set("k8-fastbuild", "fastbuild"), Set("k8-opt", "opt")}, std::nullopt, &skipped);
  EXPECT_EQ(chosen.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(chosen.status().message(),
              HasSubstr("records of more than one build configuration: "
                        "bazel-out/k8-fastbuild/testlogs/pkg/t (fastbuild (k8)) and "
                        "bazel-out/k8-opt/testlogs/pkg/t (opt (k8))"));
  EXPECT_THAT(chosen.status().message(),
              HasSubstr("say which with --compilation_mode=fastbuild or --compilation_mode=opt"));

  chosen = SelectConfiguration({Set("k8-opt", "opt")}, std::nullopt, &skipped);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(chosen->size(), 1u);
  EXPECT_TRUE(skipped.empty());
}

TEST(SelectConfigurationTest, AModeChoosesItsConfigurationAndSaysWhatItLeftOut) {
  std::vector<std::string> skipped;
  absl::StatusOr<std::vector<RecordSet>> chosen = SelectConfiguration(
      {Set("k8-fastbuild", "fastbuild"), Set("k8-opt", "opt")}, "opt", &skipped);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  ASSERT_EQ(chosen->size(), 1u);
  EXPECT_EQ((*chosen)[0].config_dir, "k8-opt");
  EXPECT_THAT(skipped, ElementsAre("not reading bazel-out/k8-fastbuild/testlogs/pkg/t (fastbuild "
                                   "(k8)): not compilation_mode=opt"));

  skipped.clear();
  chosen = SelectConfiguration({Set("k8-fastbuild", "fastbuild"), Set("k8-opt", "opt")}, "dbg",
                               &skipped);
  EXPECT_EQ(chosen.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(chosen.status().message(), HasSubstr("no records of a compilation_mode=dbg build"));
  EXPECT_THAT(chosen.status().message(), HasSubstr("Run bazel test -c dbg first"));
}

TEST(SelectConfigurationTest, SetsGivenAsPathsAreAlwaysTaken) {
  RecordSet direct = Set("", "fastbuild");
  direct.location = "/tmp/records";
  std::vector<std::string> skipped;
  absl::StatusOr<std::vector<RecordSet>> chosen = SelectConfiguration({direct}, "opt", &skipped);
  ASSERT_TRUE(chosen.ok());  // Kept here; CheckCompilationMode then refuses its records.
  EXPECT_EQ(chosen->size(), 1u);
}

TEST(BinaryTest, TheBuiltBinaryIsUnderTheConfigurationsBin) {
  RecordSet set = Set("k8-opt", "opt");
  EXPECT_EQ(BuiltBinaryPath(set, Record("opt")), "/ws/bazel-out/k8-opt/bin/pkg/plugin");
  json external = Record("opt");
  external["plugin"]["path"] = "../bulwark/examples/kv/kv_plugin";
  EXPECT_EQ(BuiltBinaryPath(set, external),
            "/ws/bazel-out/k8-opt/bin/external/bulwark/examples/kv/kv_plugin");
  json root_package = Record("opt");
  root_package["plugin"]["path"] = "./notes";  // $(rootpath :notes) in the root package.
  EXPECT_EQ(BuiltBinaryPath(set, root_package), "/ws/bazel-out/k8-opt/bin/notes");
  json attached = Record("opt");
  attached["plugin"]["path"] = "";
  EXPECT_EQ(BuiltBinaryPath(set, attached), std::nullopt);
  EXPECT_EQ(BuiltBinaryPath(Set("", "opt"), Record("opt")), std::nullopt);
}

TEST_F(RecordsTest, ARebuiltBinaryIsRefused) {
  Write("bin/plugin", "the binary that was tested");
  const std::string tested = crypto::HexEncode(crypto::Sha256::Hash("the binary that was tested"));
  const std::string path = ws_ + "/bin/plugin";
  EXPECT_TRUE(CheckBinaryUnchanged(path, tested).ok());

  Write("bin/plugin", "a binary built after the test");
  absl::Status stale = CheckBinaryUnchanged(path, tested);
  EXPECT_EQ(stale.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(stale.message(), HasSubstr("was rebuilt after the test ran"));
  EXPECT_THAT(stale.message(), HasSubstr(tested));
  EXPECT_EQ(CheckBinaryUnchanged(ws_ + "/bin/gone", tested).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace bulwark::conformance
