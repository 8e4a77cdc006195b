// Reading conformance records from Bazel's output trees (see records.h).
#include "conformance/certify/records.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/crypto/sha256.h"
#include "conformance/certify/certificate.h"

namespace bulwark::conformance {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool IsRecordName(const std::string& name) {
  return absl::StartsWith(name, "conformance_record") && absl::EndsWith(name, ".json");
}

// Runs a command and returns its stdout (for unzip); false when it fails.
bool Capture(const std::string& command, std::string* out) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return false;
  char buffer[65536];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) {
    out->append(buffer, n);
    if (out->size() > kRecordBytesMax) break;
  }
  return pclose(pipe) == 0 && out->size() <= kRecordBytesMax;
}

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

absl::Status AddRecordText(const std::string& text, const std::string& origin, RecordSet* set) {
  json record = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (record.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, " is not valid JSON"));
  }
  set->records.push_back(std::move(record));
  set->origins.push_back(origin);
  return absl::OkStatus();
}

absl::Status ReadFileInto(const fs::path& file, RecordSet* set) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", file.string()));
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().size() > kRecordBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.string(), " is larger than ", kRecordBytesMax, " bytes"));
  }
  return AddRecordText(text.str(), file.string(), set);
}

absl::Status ReadZipInto(const std::string& zip, RecordSet* set) {
  std::string names;
  if (!Capture(absl::StrCat("unzip -Z1 ", Quote(zip), " 2>/dev/null"), &names)) {
    return absl::UnavailableError(absl::StrCat("cannot list ", zip, " (is unzip installed?)"));
  }
  for (absl::string_view name : absl::StrSplit(names, '\n', absl::SkipEmpty())) {
    const std::string n(name);
    if (!IsRecordName(fs::path(n).filename().string())) continue;
    std::string text;
    if (!Capture(absl::StrCat("unzip -p ", Quote(zip), " ", Quote(n)), &text)) {
      return absl::UnavailableError(absl::StrCat("cannot extract ", n, " from ", zip));
    }
    if (absl::Status s = AddRecordText(text, absl::StrCat(zip, ":", n), set); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// "//pkg/sub:name" -> "pkg/sub/name"; "//:name" -> "name".
absl::StatusOr<std::string> LabelPath(const std::string& label) {
  if (!absl::StartsWith(label, "//")) {
    return absl::InvalidArgumentError(absl::StrCat("\"", label, "\" is not a //pkg:name label"));
  }
  std::string path = label.substr(2);
  const size_t colon = path.find(':');
  if (colon == std::string::npos || colon + 1 == path.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", label, "\" names no target: write //pkg:name (or //:name)"));
  }
  path[colon] = '/';
  if (path[0] == '/') path.erase(0, 1);  // "//:target", the root package.
  return path;
}

}  // namespace

absl::StatusOr<RecordSet> ReadRecordsAt(const std::string& path) {
  RecordSet set;
  set.location = path;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(path, ec)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      const std::string name = f.filename().string();
      absl::Status s;
      if (IsRecordName(name)) {
        s = ReadFileInto(f, &set);
      } else if (name == "outputs.zip") {
        s = ReadZipInto(f.string(), &set);
      }
      if (!s.ok()) return s;
    }
    if (set.records.empty()) {
      return absl::NotFoundError(absl::StrCat("no conformance records under ", path));
    }
    return set;
  }
  absl::Status s =
      absl::EndsWith(path, ".zip") ? ReadZipInto(path, &set) : ReadFileInto(path, &set);
  if (!s.ok()) return s;
  if (set.records.empty()) {
    return absl::NotFoundError(absl::StrCat("no conformance records in ", path));
  }
  return set;
}

absl::StatusOr<std::vector<RecordSet>> ReadTestRecords(const std::string& workspace,
                                                       const std::string& label) {
  absl::StatusOr<std::string> test_path = LabelPath(label);
  if (!test_path.ok()) return test_path.status();
  std::vector<RecordSet> sets;
  std::error_code ec;
  const fs::path out = fs::path(workspace) / "bazel-out";
  std::vector<std::string> configs;
  if (fs::is_directory(out, ec)) {
    for (const auto& entry : fs::directory_iterator(out, ec)) {
      if (fs::is_directory(entry.path() / "testlogs" / *test_path, ec)) {
        configs.push_back(entry.path().filename().string());
      }
    }
  }
  std::sort(configs.begin(), configs.end());
  for (const std::string& config : configs) {
    absl::StatusOr<RecordSet> set =
        ReadRecordsAt((out / config / "testlogs" / *test_path).string());
    if (set.status().code() == absl::StatusCode::kNotFound) continue;  // Ran, wrote no record.
    if (!set.ok()) return set.status();
    set->config_dir = config;
    set->workspace = workspace;
    sets.push_back(*std::move(set));
  }
  if (sets.empty()) {
    const std::string fallback = (fs::path(workspace) / "bazel-testlogs" / *test_path).string();
    absl::StatusOr<RecordSet> set = ReadRecordsAt(fallback);
    if (!set.ok()) {
      return absl::NotFoundError(absl::StrCat("no conformance records of ", label, " under ",
                                              out.string(), "/*/testlogs or ", fallback,
                                              ": run bazel test ", label, " first"));
    }
    sets.push_back(*std::move(set));
  }
  return sets;
}

std::string CompilationModeOfConfigDir(absl::string_view config_dir) {
  std::vector<absl::string_view> parts = absl::StrSplit(config_dir, '-');
  return parts.size() < 2 ? "" : std::string(parts[1]);
}

absl::StatusOr<std::vector<RecordSet>> SelectConfiguration(
    std::vector<RecordSet> sets, const std::optional<std::string>& compilation_mode,
    std::vector<std::string>* skipped) {
  // What each set holds, for messages: its directory and the builds its records name.
  auto describe = [](const RecordSet& set) {
    std::set<std::string> builds;
    for (const json& r : set.records) builds.insert(BuildOf(r).Describe());
    return absl::StrCat(set.location, " (", absl::StrJoin(builds, ", "), ")");
  };
  std::vector<RecordSet> chosen;
  if (compilation_mode.has_value()) {
    std::vector<std::string> others;
    for (RecordSet& set : sets) {
      if (set.config_dir.empty() ||
          CompilationModeOfConfigDir(set.config_dir) == *compilation_mode) {
        chosen.push_back(std::move(set));
      } else {
        others.push_back(describe(set));
        skipped->push_back(absl::StrCat("not reading ", others.back(),
                                        ": not compilation_mode=", *compilation_mode));
      }
    }
    if (chosen.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no records of a compilation_mode=", *compilation_mode, " build; found only ",
          absl::StrJoin(others, " and "), ". Run bazel test -c ", *compilation_mode, " first"));
    }
    return chosen;
  }
  std::set<std::string> configs;
  for (const RecordSet& set : sets) configs.insert(set.config_dir);
  if (configs.size() > 1) {
    std::vector<std::string> found, flags;
    for (const RecordSet& set : sets) {
      found.push_back(describe(set));
      const std::string mode = CompilationModeOfConfigDir(set.config_dir);
      if (!mode.empty()) flags.push_back(absl::StrCat("--compilation_mode=", mode));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "records of more than one build configuration: ", absl::StrJoin(found, " and "),
        ". A certificate is for one build: say which with ", absl::StrJoin(flags, " or ")));
  }
  return sets;
}

std::optional<std::string> BuiltBinaryPath(const RecordSet& set, const json& record) {
  if (set.config_dir.empty() || set.workspace.empty()) return std::nullopt;
  const json plugin = record.value("plugin", json::object());
  if (!plugin.is_object() || !plugin.contains("path") || !plugin["path"].is_string()) {
    return std::nullopt;
  }
  std::string path = plugin["path"].get<std::string>();
  if (path.empty() || path[0] == '/') return std::nullopt;
  // A runfiles path of another repository ("../bulwark/x") is built under bin/external/.
  if (absl::StartsWith(path, "../")) path = absl::StrCat("external/", path.substr(3));
  // lexically_normal: the root package's runfiles paths start with "./".
  return (fs::path(set.workspace) / "bazel-out" / set.config_dir / "bin" / path)
      .lexically_normal()
      .string();
}

absl::Status CheckBinaryUnchanged(const std::string& path, absl::string_view recorded_sha256) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  crypto::Sha256 hasher;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    hasher.Update(absl::string_view(buffer, static_cast<size_t>(in.gcount())));
  }
  const std::string now = crypto::HexEncode(hasher.Finish());
  if (now == recorded_sha256) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("the plugin binary ", path, " was rebuilt after the test ran: its SHA-256 is ",
                   now, ", the records are of ", recorded_sha256,
                   ". Run the test again so that the certificate is of the binary you ship"));
}

}  // namespace bulwark::conformance
