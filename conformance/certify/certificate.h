// Certification: merges the suite's JSON records (one per shard) into one certificate and
// decides whether the plugin is certified. Pure functions over JSON, so they are testable
// without running the suite.
#ifndef BULWARK_CONFORMANCE_CERTIFY_CERTIFICATE_H_
#define BULWARK_CONFORMANCE_CERTIFY_CERTIFICATE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace bulwark::conformance {

inline constexpr char kCertificateFormat[] = "bulwark-conformance-certificate/1";
// How many suite minor versions before this one a record may come from and still certify
// (like Kubernetes' "current release and the two before it").
inline constexpr int kAcceptedOlderMinorVersions = 2;

// Merges the records of one run (its shards). Errors (kInvalidArgument, naming the record by
// index): no records, a record that is not in the record format, records from different
// plugins (SHA-256), suite versions, manifests or modes, a test that two shards both report.
// Everything else — missing, failed, skipped or timed-out MUST-level tests of a required or
// claimed profile, attach mode, development mode (expected failures), an unfinished shard, an
// unsupported suite version — makes the certificate say "certified": false with one reason per
// problem. SHOULD-level tests that did not pass are listed as "advisories" and do not block.
absl::StatusOr<nlohmann::json> Certify(const std::vector<nlohmann::json>& records,
                                       const std::string& certifier_suite_version);

// A readable summary of a certificate: the verdict and its reasons, per-profile counts, every
// test that did not pass with its requirement, expected vs actual and stderr tail, and metrics.
std::string RenderMarkdown(const nlohmann::json& certificate);

}  // namespace bulwark::conformance

#endif  // BULWARK_CONFORMANCE_CERTIFY_CERTIFICATE_H_
