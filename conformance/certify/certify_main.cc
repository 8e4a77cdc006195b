// `bazel run //conformance:certify -- [--out=DIR] INPUT...`: merges the suite's shard records
// into a certificate bundle (certificate.json + certificate.md) and exits 0 only if certified.
// INPUT is a test label (//pkg:target, read from bazel-testlogs), a directory (searched for
// records and outputs.zip), a record .json, or an outputs.zip.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "conformance/certify/certificate.h"
#include "conformance/suite/conformance.h"

namespace bulwark::conformance {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kRecordBytesMax = size_t{64} << 20;

std::string Resolve(const std::string& path, const char* base_env) {
  if (path.empty() || path[0] == '/') return path;
  const char* base = std::getenv(base_env);
  return base ? absl::StrCat(base, "/", path) : path;
}

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

bool AddRecordText(const std::string& text, const std::string& origin, std::vector<json>* out) {
  json record = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (record.is_discarded()) {
    std::cerr << "certify: " << origin << " is not valid JSON\n";
    return false;
  }
  out->push_back(std::move(record));
  std::cout << "certify: read " << origin << "\n";
  return true;
}

bool ReadZip(const std::string& zip, std::vector<json>* out) {
  std::string names;
  if (!Capture(absl::StrCat("unzip -Z1 ", Quote(zip), " 2>/dev/null"), &names)) {
    std::cerr << "certify: cannot list " << zip << " (is unzip installed?)\n";
    return false;
  }
  for (absl::string_view name : absl::StrSplit(names, '\n', absl::SkipEmpty())) {
    const std::string n(name);
    if (!IsRecordName(fs::path(n).filename().string())) continue;
    std::string text;
    if (!Capture(absl::StrCat("unzip -p ", Quote(zip), " ", Quote(n)), &text)) {
      std::cerr << "certify: cannot extract " << n << " from " << zip << "\n";
      return false;
    }
    if (!AddRecordText(text, absl::StrCat(zip, ":", n), out)) return false;
  }
  return true;
}

bool ReadInput(std::string input, std::vector<json>* out) {
  if (absl::StartsWith(input, "//")) {  // A test label: its bazel-testlogs directory.
    std::string path = input.substr(2);
    const size_t colon = path.find(':');
    if (colon != std::string::npos) path[colon] = '/';
    if (!path.empty() && path[0] == '/') path.erase(0, 1);  // "//:target", the root package.
    input = Resolve(absl::StrCat("bazel-testlogs/", path), "BUILD_WORKSPACE_DIRECTORY");
  } else {
    input = Resolve(input, "BUILD_WORKING_DIRECTORY");
  }
  std::error_code ec;
  if (fs::is_directory(input, ec)) {
    const size_t before = out->size();
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(input, ec)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      const std::string name = f.filename().string();
      if (IsRecordName(name)) {
        std::ifstream in(f);
        std::stringstream text;
        text << in.rdbuf();
        if (!AddRecordText(text.str(), f.string(), out)) return false;
      } else if (name == "outputs.zip") {
        if (!ReadZip(f.string(), out)) return false;
      }
    }
    if (out->size() == before) {
      std::cerr << "certify: no conformance records under " << input << "\n";
      return false;
    }
    return true;
  }
  if (absl::EndsWith(input, ".zip")) return ReadZip(input, out);
  std::ifstream in(input);
  if (!in) {
    std::cerr << "certify: cannot read " << input << "\n";
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  return AddRecordText(text.str(), input, out);
}

int Run(int argc, char** argv) {
  std::string out_dir = "conformance-certificate";
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (absl::StartsWith(arg, "--out=")) {
      out_dir = arg.substr(6);
    } else if (absl::StartsWith(arg, "--")) {
      std::cerr << "certify: unknown flag " << arg << "\nusage: certify [--out=DIR] INPUT...\n";
      return 2;
    } else {
      inputs.push_back(arg);
    }
  }
  if (inputs.empty()) {
    std::cerr << "usage: certify [--out=DIR] INPUT...  (INPUT: //pkg:test_target, a directory, "
                 "a conformance_record*.json or an outputs.zip)\n";
    return 2;
  }
  std::vector<json> records;
  for (const std::string& input : inputs) {
    if (!ReadInput(input, &records)) return 2;
  }
  absl::StatusOr<json> certificate = Certify(records, kSuiteVersion);
  if (!certificate.ok()) {
    std::cerr << "certify: " << certificate.status().message() << "\n";
    return 2;
  }
  out_dir = Resolve(out_dir, "BUILD_WORKING_DIRECTORY");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  const std::string markdown = RenderMarkdown(*certificate);
  std::ofstream(out_dir + "/certificate.json") << certificate->dump(2) << "\n";
  std::ofstream(out_dir + "/certificate.md") << markdown;
  std::cout << markdown << "\ncertify: wrote " << out_dir << "/certificate.json and "
            << "certificate.md\n";
  return certificate->value("certified", false) ? 0 : 1;
}

}  // namespace
}  // namespace bulwark::conformance

int main(int argc, char** argv) { return bulwark::conformance::Run(argc, argv); }
