// Performance in the certificate: a plugin_benchmark record (conformance/benchmark, format
// bulwark-benchmark-record/1) of the certified binary, summarised into certificate.json and
// certificate.md. The record must name the same plugin binary (SHA-256) as the certificate; a
// record of a build that is not optimised is marked as such, never passed off as one.
#ifndef BULWARK_CONFORMANCE_CERTIFY_PERFORMANCE_H_
#define BULWARK_CONFORMANCE_CERTIFY_PERFORMANCE_H_

#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace bulwark::conformance {

inline constexpr char kBenchmarkRecordFormat[] = "bulwark-benchmark-record/1";

// Sets certificate["performance"] from `record`: the benchmark's build (and whether it is
// optimised), machine, run mode, rounds, notes and every metric's summary. `origin` names the
// record in errors. Errors: kInvalidArgument when `record` is not a benchmark record or has no
// summaries (a runner's raw output rather than the record.json plugin_benchmark writes);
// kFailedPrecondition when it measured another binary than the certificate's (SHA-256 differ).
absl::Status AddPerformance(const nlohmann::json& record, const std::string& origin,
                            nlohmann::json* certificate);

// The certificate.md section for certificate["performance"]; "" when there is none.
std::string RenderPerformanceMarkdown(const nlohmann::json& certificate);

}  // namespace bulwark::conformance

#endif  // BULWARK_CONFORMANCE_CERTIFY_PERFORMANCE_H_
