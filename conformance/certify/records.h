// Where certify's records come from: a test label's directories under bazel-out (one per build
// configuration), a directory, a record file or an outputs.zip; which configuration's records a
// certificate is made of; and whether the plugin binary they name is still the one on disk.
#ifndef BULWARK_CONFORMANCE_CERTIFY_RECORDS_H_
#define BULWARK_CONFORMANCE_CERTIFY_RECORDS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace bulwark::conformance {

// Largest record (or outputs.zip member) read.
inline constexpr size_t kRecordBytesMax = size_t{64} << 20;

// The records found in one place.
struct RecordSet {
  std::string location;  // The directory or file read.
  // For a test label: the configuration directory under bazel-out ("k8-opt") whose testlogs
  // held them, and the workspace. Empty for a path given directly.
  std::string config_dir;
  std::string workspace;
  std::vector<nlohmann::json> records;
  std::vector<std::string> origins;  // origins[i]: the file (or zip:member) of records[i].
};

// Reads the records at `path`: a directory (searched recursively for conformance_record*.json
// and outputs.zip, in name order), a record .json, or an outputs.zip (listed and extracted with
// unzip). Errors: kNotFound when there is nothing to read or no record under a directory;
// kInvalidArgument for a file that is not JSON; kUnavailable when unzip fails.
absl::StatusOr<RecordSet> ReadRecordsAt(const std::string& path);

// The records of the test `label` ("//pkg:name" or "//:name") in `workspace`: one RecordSet per
// build configuration that ran it, from bazel-out/<config>/testlogs/<pkg>/<name> (in
// configuration-name order), so that the records of an optimised and of a debug run are never
// taken for each other. Falls back to bazel-testlogs/<pkg>/<name> (the configuration of the last
// command) when bazel-out has none. Errors: kInvalidArgument for a malformed label; kNotFound
// when no configuration has records of that test; those of ReadRecordsAt.
absl::StatusOr<std::vector<RecordSet>> ReadTestRecords(const std::string& workspace,
                                                       const std::string& label);

// The compilation mode a configuration directory names: "k8-opt" -> "opt",
// "k8-fastbuild-ST-1a2b" -> "fastbuild"; "" when the name has no '-'.
std::string CompilationModeOfConfigDir(absl::string_view config_dir);

// Chooses the record sets of one build. With `compilation_mode`, the sets from configuration
// directories of that mode (and every set not read from bazel-out); `skipped` gets one line per
// set left out. Without, every set, which must then be one configuration's. Errors:
// kFailedPrecondition when no set is of the mode asked for, or, without a mode, when the sets
// come from more than one configuration (the message names each and what to pass).
absl::StatusOr<std::vector<RecordSet>> SelectConfiguration(
    std::vector<RecordSet> sets, const std::optional<std::string>& compilation_mode,
    std::vector<std::string>* skipped);

// Where the binary a record names was built, for a set read from bazel-out:
// <workspace>/bazel-out/<config_dir>/bin/<the record's plugin.path>; nullopt when the set was
// read from a path given directly or the record names no path.
std::optional<std::string> BuiltBinaryPath(const RecordSet& set, const nlohmann::json& record);

// Whether the binary at `path` is still the one the records were made with. Errors:
// kFailedPrecondition when its SHA-256 is not the record's (it was rebuilt after the test ran);
// kNotFound when it cannot be read.
absl::Status CheckBinaryUnchanged(const std::string& path, absl::string_view recorded_sha256);

}  // namespace bulwark::conformance

#endif  // BULWARK_CONFORMANCE_CERTIFY_RECORDS_H_
