// Merging shard records into a certificate (see certificate.h).
#include "conformance/certify/certificate.h"

#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "conformance/suite/record.h"

namespace bulwark::conformance {
namespace {

using nlohmann::json;

std::string Str(const json& object, const char* key) {
  if (!object.is_object() || !object.contains(key)) return "";
  const json& v = object.at(key);
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// "5.1.0" -> {5, 1}; {-1, -1} when malformed.
std::pair<int, int> MajorMinor(const std::string& version) {
  std::vector<std::string> parts = absl::StrSplit(version, '.');
  int major = -1, minor = -1;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &major) ||
      !absl::SimpleAtoi(parts[1], &minor)) {
    return {-1, -1};
  }
  return {major, minor};
}

}  // namespace

std::string BuildConfig::Describe() const {
  return absl::StrCat(compilation_mode, " (", target_cpu, ")");
}

BuildConfig BuildOf(const json& record) {
  BuildConfig build;
  const json b = record.is_object() ? record.value("build", json::object()) : json::object();
  if (!b.is_object()) return build;
  for (auto [key, field] : {std::pair{"compilation_mode", &build.compilation_mode},
                            std::pair{"target_cpu", &build.target_cpu}}) {
    if (b.contains(key) && b.at(key).is_string() && !b.at(key).get<std::string>().empty()) {
      *field = b.at(key).get<std::string>();
    }
  }
  return build;
}

absl::Status CheckCompilationMode(const std::vector<json>& records,
                                  const std::vector<std::string>& origins,
                                  absl::string_view compilation_mode) {
  std::vector<std::string> wrong;
  for (size_t i = 0; i < records.size(); ++i) {
    const BuildConfig build = BuildOf(records[i]);
    if (build.compilation_mode == compilation_mode) continue;
    const std::string origin = i < origins.size() ? origins[i] : absl::StrCat("record ", i);
    wrong.push_back(
        absl::StrCat(origin, " is of compilation_mode=", build.compilation_mode,
                     build.compilation_mode == "unknown"
                         ? " (it names none: the suite ran by hand or is older than this certifier)"
                         : ""));
  }
  if (wrong.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "asked to certify a compilation_mode=", compilation_mode, " build, but ",
      absl::StrJoin(wrong, "; "), ". Run the test in that configuration (bazel test -c ",
      compilation_mode, " ...) and certify its records"));
}

absl::StatusOr<json> Certify(const std::vector<json>& records,
                             const std::string& certifier_suite_version) {
  if (records.empty()) return absl::InvalidArgumentError("no conformance records given");
  const json& first = records.front();
  for (size_t i = 0; i < records.size(); ++i) {
    const json& r = records[i];
    if (!r.is_object() || Str(r, "format") != kRecordFormat) {
      return absl::InvalidArgumentError(
          absl::StrCat("record ", i, " is not a conformance record (format ", kRecordFormat, ")"));
    }
    for (const char* key : {"suite_version", "manifest", "manifest_sha256", "mode"}) {
      if (Str(r, key) != Str(first, key)) {
        return absl::InvalidArgumentError(
            absl::StrCat("record ", i, " has a different ", key, " than record 0 (", Str(r, key),
                         " vs ", Str(first, key), "): records of different runs cannot be merged"));
      }
    }
    if (Str(r.value("plugin", json::object()), "sha256") !=
        Str(first.value("plugin", json::object()), "sha256")) {
      return absl::InvalidArgumentError(
          absl::StrCat("record ", i, " is for a different plugin binary (SHA-256) than record 0"));
    }
    if (BuildOf(r) != BuildOf(first)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "record ", i, " is of build ", BuildOf(r).Describe(), " and record 0 of build ",
          BuildOf(first).Describe(), ": records of different builds cannot be merged"));
    }
  }

  std::vector<std::string> reasons;
  const std::string suite_version = Str(first, "suite_version");
  const auto [major, minor] = MajorMinor(suite_version);
  const auto [our_major, our_minor] = MajorMinor(certifier_suite_version);
  if (major != our_major || minor > our_minor || minor < our_minor - kAcceptedOlderMinorVersions) {
    reasons.push_back(absl::StrCat(
        "suite version ", suite_version, " is not accepted by this certifier (",
        certifier_suite_version, "; accepted: ", our_major, ".",
        our_minor - kAcceptedOlderMinorVersions, " to ", our_major, ".", our_minor, ")"));
  }
  if (Str(first, "mode") != "launch") {
    reasons.push_back("the suite ran in attach mode: only launch mode certifies");
  }

  std::map<std::string, json> tests;
  std::map<std::string, json> requirements;  // id -> {profile, level, required}
  std::set<int> shards;
  int total_shards = 1;
  json seeds = json::object();  // Shard index -> seed: each shard draws its own.
  for (size_t i = 0; i < records.size(); ++i) {
    const json& r = records[i];
    if (!r.value("finished", false)) {
      reasons.push_back(absl::StrCat("record ", i, " (shard ",
                                     r.value("shard", json::object()).value("index", 0),
                                     ") did not finish: the suite was stopped"));
    }
    if (!r.value("expected_failures", json::array()).empty()) {
      reasons.push_back(
          absl::StrCat("record ", i, " ran in development mode (an expected-failures list)"));
    }
    const json shard = r.value("shard", json::object());
    shards.insert(shard.value("index", 0));
    seeds[std::to_string(shard.value("index", 0))] = r.value("seed", json());
    total_shards = shard.value("total", 1);
    for (const json& req : r.value("requirements", json::array())) {
      requirements[Str(req, "id")] = req;
    }
    for (const json& t : r.value("tests", json::array())) {
      const std::string id = Str(t, "id");
      if (!tests.emplace(id, t).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("test ", id, " appears in more than one record: give each shard once"));
      }
    }
  }
  for (int s = 0; s < total_shards; ++s) {
    if (shards.count(s) == 0) {
      reasons.push_back(
          absl::StrCat("the record of shard ", s, " of ", total_shards, " is missing"));
    }
  }

  json profiles = json::object();
  std::vector<std::string> advisories;  // SHOULD-level tests that did not pass.
  int required_count = 0, passed_count = 0;
  for (const auto& [id, req] : requirements) {
    const bool required = req.value("required", false);
    const std::string profile = Str(req, "profile");
    json& p = profiles[profile];
    if (!p.contains("required")) {
      p = {{"required", required}, {"passed", 0},  {"failed", 0},
           {"timeout", 0},         {"skipped", 0}, {"missing", 0}};
    }
    auto it = tests.find(id);
    const std::string result = it == tests.end() ? "missing" : Str(it->second, "result");
    if (p.contains(result)) p[result] = p[result].get<int>() + 1;
    if (!required) continue;
    if (Str(req, "level") == "SHOULD") {
      // Recommendations are reported, never required (RFC 2119).
      if (result != "passed") advisories.push_back(absl::StrCat(id, " ", result));
      continue;
    }
    ++required_count;
    if (result == "passed") {
      ++passed_count;
    } else if (result == "missing") {
      reasons.push_back(absl::StrCat("required test ", id, " did not run"));
    } else {
      reasons.push_back(absl::StrCat("required test ", id, " ", result));
    }
  }
  if (required_count == 0) reasons.push_back("the records list no required tests");

  json merged_tests = json::array();
  for (const auto& [id, t] : tests) merged_tests.push_back(t);
  json certificate = {
      {"format", kCertificateFormat},
      {"certified", reasons.empty()},
      {"reasons", reasons},
      {"advisories", advisories},
      {"suite_version", suite_version},
      {"certifier_suite_version", certifier_suite_version},
      {"plugin", first.value("plugin", json::object())},
      {"build",
       {{"compilation_mode", BuildOf(first).compilation_mode},
        {"target_cpu", BuildOf(first).target_cpu}}},
      {"manifest", first.value("manifest", json::object())},
      // Checks adapted to the manifest's backend probe (records of one manifest agree).
      {"probe_adaptations", first.value("probe_adaptations", json::array())},
      {"seeds", seeds},
      {"records", records.size()},
      {"required_tests", required_count},
      {"required_passed", passed_count},
      {"profiles", profiles},
      {"tests", merged_tests},
  };
  return certificate;
}

std::string RenderMarkdown(const json& c) {
  std::string out;
  const bool certified = c.value("certified", false);
  const json manifest = c.value("manifest", json::object());
  absl::StrAppend(&out, "# Conformance certificate: ", Str(manifest, "name"), " — ",
                  certified ? "CERTIFIED" : "NOT CERTIFIED", "\n\n");
  absl::StrAppend(&out, "- plugin SHA-256: `", Str(c.value("plugin", json::object()), "sha256"),
                  "`\n- build: ", BuildOf(c).Describe(), "\n- plugin type: ", Str(manifest, "type"),
                  "\n- suite version: ", Str(c, "suite_version"),
                  "\n- seed of each shard (replay a shard with `--seed=N`): ", Str(c, "seeds"),
                  "\n- required tests passed: ", Str(c, "required_passed"), " of ",
                  Str(c, "required_tests"), "\n");
  if (!certified) {
    absl::StrAppend(&out, "\n## Why not certified\n\n");
    for (const json& r : c.value("reasons", json::array())) {
      absl::StrAppend(&out, "- ", r.get<std::string>(), "\n");
    }
  }
  const json advisories = c.value("advisories", json::array());
  if (!advisories.empty()) {
    absl::StrAppend(&out,
                    "\n## Advisories\n\nSHOULD-level tests that did not pass. They do not "
                    "block certification.\n\n");
    for (const json& a : advisories) absl::StrAppend(&out, "- ", a.get<std::string>(), "\n");
  }
  const json adaptations = c.value("probe_adaptations", json::array());
  if (!adaptations.empty()) {
    absl::StrAppend(&out,
                    "\n## Checks adapted to the backend probe\n\nThe manifest describes a "
                    "probe that is not a key/value echo (docs/conformance.md, \"The backend "
                    "probe\"). These checks ran in their adapted form:\n\n");
    for (const json& a : adaptations) absl::StrAppend(&out, "- ", a.get<std::string>(), "\n");
  }
  absl::StrAppend(&out,
                  "\n## Profiles\n\n| profile | required | passed | failed | timeout | "
                  "skipped | missing |\n| --- | --- | --- | --- | --- | --- | --- |\n");
  const json profiles = c.value("profiles", json::object());
  for (const auto& [name, p] : profiles.items()) {
    const bool required = p.value("required", false);
    if (!required && p.value("missing", 0) > 0 && p.value("passed", 0) == 0 &&
        p.value("failed", 0) == 0) {
      continue;  // Neither required for this plugin type nor claimed: not run, not listed.
    }
    absl::StrAppend(&out, "| ", name, " | ", required ? "yes" : "no", " | ", p.value("passed", 0),
                    " | ", p.value("failed", 0), " | ", p.value("timeout", 0), " | ",
                    p.value("skipped", 0), " | ", p.value("missing", 0), " |\n");
  }

  bool any_problem = false;
  for (const json& t : c.value("tests", json::array())) {
    if (Str(t, "result") == "passed") continue;
    if (!any_problem) absl::StrAppend(&out, "\n## Tests that did not pass\n");
    any_problem = true;
    absl::StrAppend(&out, "\n### `", Str(t, "id"), "` — ", Str(t, "result"), "\n\n",
                    Str(t, "level"), " (", Str(t, "section"), "): ", Str(t, "requirement"), "\n\n");
    if (t.contains("message")) absl::StrAppend(&out, "```\n", Str(t, "message"), "\n```\n");
    if (t.contains("stderr_tail")) {
      absl::StrAppend(&out, "\nPlugin stderr (tail):\n\n```\n", Str(t, "stderr_tail"), "\n```\n");
    }
  }
  bool any_metric = false;
  for (const json& t : c.value("tests", json::array())) {
    for (const json& m : t.value("metrics", json::array())) {
      if (!any_metric) {
        absl::StrAppend(&out,
                        "\n## Measurements\n\n| test | metric | value |\n| --- | --- | --- |\n");
      }
      any_metric = true;
      absl::StrAppend(&out, "| `", Str(t, "id"), "` | ", Str(m, "name"), " | ", Str(m, "value"),
                      " ", Str(m, "unit"), " |\n");
    }
  }
  return out;
}

}  // namespace bulwark::conformance
