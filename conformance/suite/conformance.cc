// The framework behind CONFORMANCE_TEST: the requirement registry, the run's configuration and
// the per-test notes (stderr tail, metrics, timeout) the record and failure output draw on.
#include "conformance/suite/conformance.h"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/crypto/sha256.h"
#include "conformance/suite/record.h"

namespace bulwark::conformance {
namespace {

std::vector<Requirement>& Registry() {
  static auto* registry = new std::vector<Requirement>();
  return *registry;
}

std::mutex& NotesMutex() {
  static auto* mu = new std::mutex();
  return *mu;
}

TestNotes& Notes() {
  static auto* notes = new TestNotes();
  return *notes;
}

SuiteConfig& MutableConfig() {
  static auto* config = new SuiteConfig();
  return *config;
}

std::string CurrentTestId() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  if (info == nullptr) return "";
  return absl::StrCat(info->test_suite_name(), ".", info->name());
}

}  // namespace

absl::string_view LevelName(Level level) { return level == Level::kMust ? "MUST" : "SHOULD"; }

const std::vector<Requirement>& AllRequirements() {
  static const std::vector<Requirement>* sorted = [] {
    auto* all = new std::vector<Requirement>(Registry());
    std::sort(all->begin(), all->end(),
              [](const Requirement& a, const Requirement& b) { return a.id < b.id; });
    return all;
  }();
  return *sorted;
}

const Requirement* FindRequirement(absl::string_view id) {
  const std::vector<Requirement>& all = AllRequirements();
  auto it = std::lower_bound(all.begin(), all.end(), id,
                             [](const Requirement& r, absl::string_view v) { return r.id < v; });
  if (it == all.end() || it->id != id) return nullptr;
  return &*it;
}

const std::vector<std::string>& AllProfiles() {
  static const auto* profiles = new std::vector<std::string>{
      "handshake",    "mtls",      "services", "backend",    "database",
      "multiplexing", "lifecycle", "security", "performance"};
  return *profiles;
}

bool ProfileRequired(absl::string_view profile, const Manifest& manifest) {
  if (profile == "backend") return manifest.is_backend();
  if (profile == "database") return !manifest.is_backend();
  if (profile == "multiplexing") return false;
  return std::find(AllProfiles().begin(), AllProfiles().end(), profile) != AllProfiles().end();
}

const SuiteConfig& Config() { return MutableConfig(); }
void SetConfig(SuiteConfig config) { MutableConfig() = std::move(config); }

std::string CanarySecret(absl::string_view purpose) {
  // Vault service tokens look like "hvs." + 24 base62 characters; hex is a subset that keeps
  // the canary recognisable and free of characters any encoding would escape.
  const std::string digest = crypto::HexEncode(crypto::Sha256::Hash(
      absl::StrCat("bulwark-conformance-canary/", Config().seed, "/", purpose)));
  return absl::StrCat("hvs.", digest.substr(0, 24));
}

void NotePluginStderr(absl::string_view stderr_text) {
  std::lock_guard<std::mutex> lock(NotesMutex());
  if (stderr_text.size() > kStderrTailBytes) {
    stderr_text.remove_prefix(stderr_text.size() - kStderrTailBytes);
  }
  Notes().stderr_tail = std::string(stderr_text);
}

void RecordMetric(absl::string_view name, double value, absl::string_view unit) {
  {
    std::lock_guard<std::mutex> lock(NotesMutex());
    Notes().metrics.push_back({std::string(name), value, std::string(unit)});
  }
  ::testing::Test::RecordProperty(std::string(name), absl::StrCat(value, " ", unit));
}

void ReportTimeout(absl::string_view what) {
  {
    std::lock_guard<std::mutex> lock(NotesMutex());
    Notes().timed_out = true;
  }
  ADD_FAILURE() << "TIMEOUT (the suite could not decide, this is not a verdict on the "
                   "requirement): "
                << what;
}

bool CheckOk(const absl::Status& s, absl::string_view what) {
  if (s.ok()) return true;
  if (s.code() == absl::StatusCode::kDeadlineExceeded) {
    ReportTimeout(absl::StrCat(what, ": ", s.ToString()));
  } else {
    ADD_FAILURE() << what << ": expected OK, got " << s;
  }
  return false;
}

TestNotes TakeTestNotes() {
  std::lock_guard<std::mutex> lock(NotesMutex());
  TestNotes notes = std::move(Notes());
  Notes() = TestNotes();
  return notes;
}

void ConformanceTest::SetUp() {
  TakeTestNotes();  // Nothing from an earlier test leaks into this one's record.
  const Requirement* requirement = FindRequirement(CurrentTestId());
  if (requirement == nullptr) return;
  RecordProperty("requirement", requirement->text);
  RecordProperty("level", std::string(LevelName(requirement->level)));
  RecordProperty("section", requirement->section);
}

void ConformanceTest::TearDown() {
  if (!HasFailure()) return;
  const Requirement* requirement = FindRequirement(CurrentTestId());
  std::string tail;
  {
    std::lock_guard<std::mutex> lock(NotesMutex());
    tail = Notes().stderr_tail;
  }
  ADD_FAILURE() << "This breaks requirement " << CurrentTestId() << " ["
                << (requirement ? LevelName(requirement->level) : "?") << ", "
                << (requirement ? requirement->section : "?")
                << "]: " << (requirement ? requirement->text : "(unregistered)") << "\n"
                << (tail.empty() ? "The plugin wrote nothing to stderr."
                                 : absl::StrCat("Tail of the plugin's stderr:\n", tail));
}

namespace internal {

bool RegisterRequirement(const char* id, const char* profile_fixture, Level level,
                         const char* section, const char* text) {
  std::string profile(profile_fixture);
  for (char& c : profile) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  Registry().push_back({id, std::move(profile), level, section, text});
  return true;
}

}  // namespace internal
}  // namespace bulwark::conformance
