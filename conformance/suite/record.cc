// The JSON certification record and the expected-failures list (see record.h).
#include "conformance/suite/record.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "conformance/suite/conformance.h"

namespace bulwark::conformance {
namespace {

std::string TestId(const ::testing::TestInfo& info) {
  return absl::StrCat(info.test_suite_name(), ".", info.name());
}

nlohmann::json TestEntry(const std::string& id) {
  nlohmann::json entry = nlohmann::json::object();
  entry["id"] = id;
  if (const Requirement* requirement = FindRequirement(id)) {
    entry["profile"] = requirement->profile;
    entry["level"] = std::string(LevelName(requirement->level));
    entry["section"] = requirement->section;
    entry["requirement"] = requirement->text;
  }
  return entry;
}

}  // namespace

absl::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPassed:
      return "passed";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kTimeout:
      return "timeout";
    case Outcome::kSkipped:
      return "skipped";
  }
  return "?";
}

absl::StatusOr<std::set<std::string>> ParseExpectedFailures(absl::string_view text) {
  std::set<std::string> ids;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    const size_t hash = line.find('#');
    if (hash != absl::string_view::npos) line = line.substr(0, hash);
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    if (FindRequirement(line) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected failures line ", line_number, ": '", line.substr(0, 120),
                       "' is not a test of this suite (version ", kSuiteVersion,
                       "); run the suite with --list_requirements to see the ids"));
    }
    if (!ids.insert(std::string(line)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected failures line ", line_number, ": '", line, "' is listed twice"));
    }
  }
  return ids;
}

RecordListener::RecordListener(nlohmann::json header, std::string path,
                               std::set<std::string> expected_failures)
    : header_(std::move(header)),
      path_(std::move(path)),
      expected_failures_(std::move(expected_failures)) {
  Write(nullptr);
}

void RecordListener::OnTestStart(const ::testing::TestInfo& info) {
  messages_.clear();
  TakeTestNotes();
  // If the process dies inside this test (Bazel's timeout sends SIGTERM, then SIGKILL), the
  // record already says where: this test, as a timeout.
  nlohmann::json running = TestEntry(TestId(info));
  running["result"] = std::string(OutcomeName(Outcome::kTimeout));
  running["message"] = "the suite was stopped while this test ran (test timeout or crash)";
  Write(&running);
}

void RecordListener::OnTestPartResult(const ::testing::TestPartResult& result) {
  if (!result.failed() || messages_.size() >= kFailureMessageBytesMax) return;
  absl::StrAppend(&messages_, messages_.empty() ? "" : "\n---\n",
                  result.file_name() ? result.file_name() : "?", ":", result.line_number(), ": ",
                  result.message());
  if (messages_.size() > kFailureMessageBytesMax) messages_.resize(kFailureMessageBytesMax);
}

void RecordListener::OnTestEnd(const ::testing::TestInfo& info) {
  const std::string id = TestId(info);
  TestNotes notes = TakeTestNotes();
  const ::testing::TestResult& result = *info.result();
  Outcome outcome = Outcome::kPassed;
  if (result.Skipped()) {
    outcome = Outcome::kSkipped;
  } else if (result.Failed()) {
    outcome = notes.timed_out ? Outcome::kTimeout : Outcome::kFailed;
  }
  nlohmann::json entry = TestEntry(id);
  entry["result"] = std::string(OutcomeName(outcome));
  entry["time_ms"] = result.elapsed_time();
  if (expected_failures_.count(id) > 0) entry["expected_failure"] = true;
  if (!messages_.empty()) entry["message"] = messages_;
  if (outcome != Outcome::kPassed && !notes.stderr_tail.empty()) {
    entry["stderr_tail"] = notes.stderr_tail;
  }
  if (outcome == Outcome::kSkipped) {
    for (int i = 0; i < result.total_part_count(); ++i) {
      const ::testing::TestPartResult& part = result.GetTestPartResult(i);
      if (part.skipped() && part.message() != nullptr) entry["message"] = part.message();
    }
  }
  if (!notes.metrics.empty()) {
    nlohmann::json metrics = nlohmann::json::array();
    for (const Metric& m : notes.metrics) {
      metrics.push_back({{"name", m.name}, {"value", m.value}, {"unit", m.unit}});
    }
    entry["metrics"] = std::move(metrics);
  }
  tests_[id] = std::move(entry);
  outcomes_[id] = outcome;
  Write(nullptr);
}

void RecordListener::OnTestProgramEnd(const ::testing::UnitTest&) {
  header_["finished"] = true;
  Write(nullptr);
}

void RecordListener::Write(const nlohmann::json* running) const {
  if (path_.empty()) return;
  nlohmann::json record = header_;
  record["format"] = kRecordFormat;
  if (!record.contains("finished")) record["finished"] = false;
  nlohmann::json tests = nlohmann::json::array();
  for (const auto& [id, entry] : tests_) tests.push_back(entry);
  if (running != nullptr) tests.push_back(*running);
  record["tests"] = std::move(tests);
  // Write-then-rename, so a kill mid-write leaves the previous complete record.
  const std::string tmp = path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << record.dump(2) << "\n";
    out.flush();
    if (!out) {
      std::cerr << "conformance: cannot write the record to " << tmp << "\n";
      return;
    }
  }
  if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
    std::cerr << "conformance: cannot rename the record to " << path_ << "\n";
  }
}

int RecordListener::Verdict() const {
  int passed = 0, failed = 0, timeouts = 0, skipped = 0, expected = 0;
  std::vector<std::string> problems, advisories;
  for (const auto& [id, outcome] : outcomes_) {
    const bool listed = expected_failures_.count(id) > 0;
    switch (outcome) {
      case Outcome::kPassed:
        ++passed;
        if (listed) {
          problems.push_back(absl::StrCat(id,
                                          " passed but is listed as an expected failure: "
                                          "remove it from the expected-failures file"));
        }
        break;
      case Outcome::kSkipped:
        ++skipped;
        if (listed) {
          problems.push_back(absl::StrCat(
              id, " was skipped but is listed as an expected failure: it did not fail"));
        }
        break;
      case Outcome::kFailed:
      case Outcome::kTimeout:
        (outcome == Outcome::kFailed ? failed : timeouts) += 1;
        if (listed) {
          ++expected;
        } else if (const Requirement* r = FindRequirement(id);
                   r != nullptr && r->level == Level::kShould) {
          // A SHOULD is a recommendation: reported, never a failed run or a refused
          // certificate (RFC 2119: there may be valid reasons to ignore it).
          advisories.push_back(absl::StrCat(id, " ", OutcomeName(outcome), " (SHOULD)"));
        } else {
          problems.push_back(absl::StrCat(id, " ", OutcomeName(outcome)));
        }
        break;
    }
  }
  std::cout << "conformance: " << passed << " passed, " << failed << " failed, " << timeouts
            << " timed out, " << skipped << " skipped";
  if (!expected_failures_.empty()) std::cout << " (" << expected << " failures expected)";
  std::cout << "\n";
  for (const std::string& a : advisories) {
    std::cout << "conformance: advisory: " << a << "\n";
  }
  for (const std::string& p : problems) std::cout << "conformance: " << p << "\n";
  if (!path_.empty()) std::cout << "conformance: record written to " << path_ << "\n";
  return problems.empty() ? 0 : 1;
}

}  // namespace bulwark::conformance
