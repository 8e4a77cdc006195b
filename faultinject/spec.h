// The failpoint configuration grammar, shared with FreeBSD fail(9), tikv/fail-rs, pingcap/failpoint
// and etcd gofail, so that operators already know it:
//
//   config   := entry (';' entry)*              e.g. "a.b=25%3*return(unavailable);c=delay(10)"
//   entry    := name '=' actions
//   actions  := term ('->' term)*               e.g. "2*off->1*crash"
//   term     := [percent '%'] [count '*'] task ['(' argument ')']
//   task     := off | return | delay | sleep | hang | pause | crash | panic
//
// percent is a decimal in [0, 100] (kept in millionths), count an integer >= 1. Arguments:
// return(code) takes a canonical status code name ("unavailable", "data_loss", ...; any case) or
// its number, and defaults to unavailable; delay(ms) and its alias sleep(ms) take whole
// milliseconds; off, hang (alias pause) and crash (alias panic) take none. Whitespace around
// tokens is ignored; empty entries (";;") are skipped.
//
// Evaluation (fail-rs semantics): on each hit the terms are tried in order; a term whose count is
// used up is skipped; a term whose percentage draw fails is skipped; the first term left is
// chosen, its count (if any) goes down by one, and its task is the answer ("off": nothing fires).
// When every term is skipped nothing fires. So "6*off->1*return(internal)" fires on the 7th hit
// only, and "20%crash->delay(5)" crashes one hit in five and delays the others.
#ifndef BULWARK_FAULTINJECT_SPEC_H_
#define BULWARK_FAULTINJECT_SPEC_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "faultinject/failpoint.h"

namespace bulwark::faultinject {

// Named limits. A failpoint name is [a-z0-9._/-]+.
inline constexpr size_t kFailpointNameBytesMax = 128;
inline constexpr size_t kTermsPerFailpointMax = 256;
inline constexpr size_t kConfigBytesMax = 64 * 1024;
inline constexpr size_t kConfigEntriesMax = 1024;
inline constexpr int64_t kDelayMillisMax = int64_t{24} * 3600 * 1000;
inline constexpr uint64_t kTermCountMax = uint64_t{1} << 40;
inline constexpr uint32_t kProbabilityScale = 1000000;  // Percentages are kept in millionths.

struct Term {
  uint32_t probability_millionths = kProbabilityScale;  // 100%
  std::optional<uint64_t> count;                        // nullopt: no limit.
  Action action;                                        // kind kNone is "off".

  // The term in the grammar, e.g. "25%3*return(unavailable)".
  std::string ToString() const;
  friend bool operator==(const Term& a, const Term& b) {
    return a.probability_millionths == b.probability_millionths && a.count == b.count &&
           a.action == b.action;
  }
};

struct FailpointConfig {
  std::string name;
  std::vector<Term> terms;
};

// InvalidArgument unless `name` is 1..kFailpointNameBytesMax bytes of [a-z0-9._/-].
absl::Status ValidateFailpointName(absl::string_view name);

// Parses the actions of one failpoint. InvalidArgument naming the offending term and what is
// wrong with it.
absl::StatusOr<std::vector<Term>> ParseActions(absl::string_view text);

// Parses a whole configuration. InvalidArgument naming the offending entry or term; a name given
// twice is an error too. At most kConfigBytesMax bytes and kConfigEntriesMax entries.
absl::StatusOr<std::vector<FailpointConfig>> ParseConfig(absl::string_view text);

// The grammar form of `terms` ("a->b"); parsing it gives `terms` back.
std::string FormatActions(const std::vector<Term>& terms);

// "unavailable" for kUnavailable, and so on: the lower-case canonical name.
std::string StatusCodeName(absl::StatusCode code);

// Parses a canonical code name (any case, "k" prefix and CamelCase accepted: "DATA_LOSS",
// "kDataLoss", "data_loss") or its number 1..16. kOk is refused: a failpoint that returns must
// fail. InvalidArgument otherwise.
absl::StatusOr<absl::StatusCode> ParseStatusCodeName(absl::string_view text);

}  // namespace bulwark::faultinject

#endif  // BULWARK_FAULTINJECT_SPEC_H_
