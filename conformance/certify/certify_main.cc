// `bazel run //conformance:certify -- [--compilation_mode=M] [--out=DIR] INPUT...`: merges the
// suite's shard records into a certificate bundle (certificate.json + certificate.md) and exits
// 0 only if certified. INPUT is a test label (//pkg:target: its records under
// bazel-out/<config>/testlogs, one set per build configuration), a directory (searched for
// records and outputs.zip), a record .json, or an outputs.zip.
//
// A certificate is of one build. With --compilation_mode=M only records of an M build are read
// and any other record is refused; without it, records of more than one configuration are
// refused with the list of what was found. certify prints the configuration and the plugin
// binary it certifies, and refuses records of a binary rebuilt since the test ran.
//
// --benchmark=RECORD.json adds a plugin_benchmark record of the same binary (SHA-256) to the
// certificate ("performance"); a record of another binary is refused (exit 2).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "conformance/certify/certificate.h"
#include "conformance/certify/performance.h"
#include "conformance/certify/records.h"
#include "conformance/suite/conformance.h"

namespace bulwark::conformance {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kUsage[] =
    "usage: certify [--compilation_mode=fastbuild|dbg|opt] [--out=DIR] "
    "[--benchmark=RECORD.json] INPUT...\n"
    "  INPUT: //pkg:test_target, a directory, a conformance_record*.json or an outputs.zip\n"
    "       certify --version   (the suite version whose records it certifies)\n";

std::string Resolve(const std::string& path, const char* base_env) {
  if (path.empty() || path[0] == '/') return path;
  const char* base = std::getenv(base_env);
  return base ? absl::StrCat(base, "/", path) : path;
}

// A path inside the workspace as the user would type it.
std::string Shown(const std::string& path, const std::string& workspace) {
  if (!workspace.empty() && absl::StartsWith(path, workspace + "/")) {
    return path.substr(workspace.size() + 1);
  }
  return path;
}

int Run(int argc, char** argv) {
  std::string out_dir = "conformance-certificate";
  std::optional<std::string> compilation_mode;
  std::optional<std::string> benchmark;  // A plugin_benchmark record of the certified binary.
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--version") {
      std::cout << kSuiteVersion << "\n";
      return 0;
    }
    if (absl::StartsWith(arg, "--out=")) {
      out_dir = arg.substr(6);
    } else if (absl::StartsWith(arg, "--benchmark=")) {
      benchmark = arg.substr(12);
    } else if (absl::StartsWith(arg, "--compilation_mode=")) {
      compilation_mode = arg.substr(19);
      if (*compilation_mode != "fastbuild" && *compilation_mode != "dbg" &&
          *compilation_mode != "opt") {
        std::cerr << "certify: --compilation_mode is fastbuild, dbg or opt, not '"
                  << *compilation_mode << "'\n"
                  << kUsage;
        return 2;
      }
    } else if (absl::StartsWith(arg, "--")) {
      std::cerr << "certify: unknown flag " << arg << "\n" << kUsage;
      return 2;
    } else {
      inputs.push_back(arg);
    }
  }
  if (inputs.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  const char* workspace_env = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  const std::string workspace = workspace_env ? workspace_env : fs::current_path().string();

  std::vector<RecordSet> sets;
  for (const std::string& input : inputs) {
    if (absl::StartsWith(input, "//")) {
      absl::StatusOr<std::vector<RecordSet>> found = ReadTestRecords(workspace, input);
      if (!found.ok()) {
        std::cerr << "certify: " << found.status().message() << "\n";
        return 2;
      }
      for (RecordSet& set : *found) sets.push_back(std::move(set));
    } else {
      absl::StatusOr<RecordSet> set = ReadRecordsAt(Resolve(input, "BUILD_WORKING_DIRECTORY"));
      if (!set.ok()) {
        std::cerr << "certify: " << set.status().message() << "\n";
        return 2;
      }
      sets.push_back(*std::move(set));
    }
  }
  std::vector<std::string> skipped;
  absl::StatusOr<std::vector<RecordSet>> chosen =
      SelectConfiguration(std::move(sets), compilation_mode, &skipped);
  // Paths in the workspace as the user types them.
  const auto shown = [&workspace](absl::string_view text) {
    return absl::StrReplaceAll(text, {{workspace + "/", ""}});
  };
  for (const std::string& line : skipped) std::cout << "certify: " << shown(line) << "\n";
  if (!chosen.ok()) {
    std::cerr << "certify: " << shown(chosen.status().message()) << "\n";
    return 2;
  }

  std::vector<json> records;
  std::vector<std::string> origins;
  for (const RecordSet& set : *chosen) {
    for (size_t i = 0; i < set.records.size(); ++i) {
      std::cout << "certify: read " << Shown(set.origins[i], workspace) << "\n";
      records.push_back(set.records[i]);
      origins.push_back(Shown(set.origins[i], workspace));
    }
  }
  if (compilation_mode.has_value()) {
    if (absl::Status s = CheckCompilationMode(records, origins, *compilation_mode); !s.ok()) {
      std::cerr << "certify: " << s.message() << "\n";
      return 2;
    }
  }
  absl::StatusOr<json> certificate = Certify(records, kSuiteVersion);
  if (!certificate.ok()) {
    std::cerr << "certify: " << certificate.status().message() << "\n";
    return 2;
  }

  // What is being certified: the build and the binary, checked against the one on disk when
  // the records came from bazel-out.
  const json plugin = records.front().value("plugin", json::object());
  const std::string sha256 = plugin.value("sha256", "");
  std::cout << "certify: build configuration: " << BuildOf(records.front()).Describe() << ", "
            << records.size() << " record" << (records.size() == 1 ? "" : "s") << "\n";
  std::optional<std::string> binary = BuiltBinaryPath(chosen->front(), records.front());
  if (binary.has_value()) {
    absl::Status unchanged = CheckBinaryUnchanged(*binary, sha256);
    if (absl::IsFailedPrecondition(unchanged)) {
      std::cerr << "certify: " << unchanged.message() << "\n";
      return 2;
    }
    std::cout << "certify: plugin binary: " << Shown(*binary, workspace) << ", SHA-256 " << sha256
              << (unchanged.ok() ? " (the file on disk still has it)"
                                 : " (not on disk any more: not re-checked)")
              << "\n";
  } else {
    std::cout << "certify: plugin binary: " << plugin.value("path", "(attached)") << ", SHA-256 "
              << sha256 << " (as recorded)\n";
  }

  if (benchmark.has_value()) {
    const std::string path = Resolve(*benchmark, "BUILD_WORKING_DIRECTORY");
    std::ifstream in(path);
    json record = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!in.is_open() || record.is_discarded()) {
      std::cerr << "certify: --benchmark=" << *benchmark << ": "
                << (in.is_open() ? "not JSON" : "cannot read it") << "\n";
      return 2;
    }
    if (absl::Status s = AddPerformance(record, *benchmark, &*certificate); !s.ok()) {
      std::cerr << "certify: --benchmark: " << s.message() << "\n";
      return 2;
    }
    std::cout << "certify: performance from " << *benchmark << " (same binary; build "
              << certificate->at("performance").at("build").value("compilation_mode", "unknown")
              << ")\n";
  }

  out_dir = Resolve(out_dir, "BUILD_WORKING_DIRECTORY");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  const std::string markdown =
      RenderMarkdown(*certificate) + RenderPerformanceMarkdown(*certificate);
  std::ofstream(out_dir + "/certificate.json") << certificate->dump(2) << "\n";
  std::ofstream(out_dir + "/certificate.md") << markdown;
  std::cout << markdown << "\ncertify: wrote " << out_dir << "/certificate.json and "
            << "certificate.md\n";
  return certificate->value("certified", false) ? 0 : 1;
}

}  // namespace
}  // namespace bulwark::conformance

int main(int argc, char** argv) { return bulwark::conformance::Run(argc, argv); }
