// Certification: merges the suite's JSON records (one per shard) into one certificate and
// decides whether the plugin is certified. Pure functions over JSON, so they are testable
// without running the suite.
#ifndef BULWARK_CONFORMANCE_CERTIFY_CERTIFICATE_H_
#define BULWARK_CONFORMANCE_CERTIFY_CERTIFICATE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace bulwark::conformance {

inline constexpr char kCertificateFormat[] = "bulwark-conformance-certificate/1";
// How many suite minor versions before this one a record may come from and still certify
// (like Kubernetes' "current release and the two before it").
inline constexpr int kAcceptedOlderMinorVersions = 2;

// The Bazel configuration a record's plugin was built in (the record's "build"):
// compilation_mode fastbuild, dbg or opt, and the target CPU. "unknown" where the record does
// not say (the suite was run by hand, or by a suite that predates the field).
struct BuildConfig {
  std::string compilation_mode = "unknown";
  std::string target_cpu = "unknown";

  // "opt (k8)".
  std::string Describe() const;
  friend bool operator==(const BuildConfig& a, const BuildConfig& b) {
    return a.compilation_mode == b.compilation_mode && a.target_cpu == b.target_cpu;
  }
  friend bool operator!=(const BuildConfig& a, const BuildConfig& b) { return !(a == b); }
};
BuildConfig BuildOf(const nlohmann::json& record);

// Checks that every record comes from a `compilation_mode` build: certify refuses to certify
// one build with another build's results. `origins[i]` names records[i] (where it was read).
// Errors: kFailedPrecondition naming every record of another (or an unknown) mode and its mode.
absl::Status CheckCompilationMode(const std::vector<nlohmann::json>& records,
                                  const std::vector<std::string>& origins,
                                  absl::string_view compilation_mode);

// Merges the records of one run (its shards). Errors (kInvalidArgument, naming the record by
// index): no records, a record that is not in the record format, records from different
// plugins (SHA-256), builds (BuildConfig), suite versions, manifests or modes, a test that two
// shards both report. The certificate names the build ("build") of the records it merged.
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
