// The certification record: a gtest listener that keeps a JSON record of the run (suite
// version, plugin SHA-256, manifest, seed, shard, every requirement and every test's result
// with time, failure message, stderr tail and metrics) and rewrites it after every test. The
// test that is running is written as "timeout", so a run killed by Bazel's deadline still leaves
// a record that says which test it was in. Also: the expected-failures list (development mode).
#ifndef BULWARK_CONFORMANCE_SUITE_RECORD_H_
#define BULWARK_CONFORMANCE_SUITE_RECORD_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace bulwark::conformance {

// The record's format name; certify refuses other formats.
inline constexpr char kRecordFormat[] = "bulwark-conformance-record/1";
// Longest failure message kept per test.
inline constexpr size_t kFailureMessageBytesMax = 8 * 1024;

struct Metric {
  std::string name;
  double value = 0;
  std::string unit;
};

// What the framework hooks collected during the current test.
struct TestNotes {
  std::string stderr_tail;
  std::vector<Metric> metrics;
  bool timed_out = false;
};
// Returns the current test's notes and clears them.
TestNotes TakeTestNotes();

// Parses an expected-failures file: one test id per line; blank lines and text after '#' are
// ignored. Errors: kInvalidArgument naming the line of an id that is not a registered
// requirement, or a repeated id.
absl::StatusOr<std::set<std::string>> ParseExpectedFailures(absl::string_view text);

// Per-test outcome as the record writes it.
enum class Outcome { kPassed, kFailed, kTimeout, kSkipped };
absl::string_view OutcomeName(Outcome outcome);  // "passed", "failed", "timeout", "skipped"

class RecordListener : public ::testing::EmptyTestEventListener {
 public:
  // `header` holds the run's fields (suite_version, plugin, manifest, seed, mode, shard,
  // profiles_run, requirements); `path` is where the record is (re)written; empty = nowhere.
  RecordListener(nlohmann::json header, std::string path, std::set<std::string> expected_failures);

  void OnTestStart(const ::testing::TestInfo& info) override;
  void OnTestPartResult(const ::testing::TestPartResult& result) override;
  void OnTestEnd(const ::testing::TestInfo& info) override;
  void OnTestProgramEnd(const ::testing::UnitTest& unit_test) override;

  // After the run: the exit code of the suite. 0 when every test that ran passed, or, in
  // development mode, when exactly the listed tests among those that ran failed. Prints why
  // not to stdout.
  int Verdict() const;

 private:
  void Write(const nlohmann::json* running) const;

  nlohmann::json header_;
  std::string path_;
  std::set<std::string> expected_failures_;
  std::string messages_;                         // The running test's failure messages.
  std::map<std::string, nlohmann::json> tests_;  // By id, finished tests only.
  std::map<std::string, Outcome> outcomes_;
};

}  // namespace bulwark::conformance

#endif  // BULWARK_CONFORMANCE_SUITE_RECORD_H_
