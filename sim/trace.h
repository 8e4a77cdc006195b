// The simulation trace: a rolling hash over every event of a run (simulated time, node, kind and
// a digest of the payload) that fingerprints the run, plus, when asked, the events themselves so
// that two runs of one seed can be compared event by event to find where they first differ.
#ifndef BULWARK_SIM_TRACE_H_
#define BULWARK_SIM_TRACE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace bulwark::sim {

// Events recorded per run at most; past it the hash still covers every event but no more are
// kept (a run that long is reported as capped by its step limit anyway).
inline constexpr size_t kTraceRecordedEventsMax = size_t{1} << 22;
// Bytes of payload kept per recorded event, for people reading a divergence.
inline constexpr size_t kTraceDetailBytesMax = 160;

struct TraceEvent {
  int64_t time_ns = 0;
  int node = -1;  // -1: the simulator itself (workload, faults), not a node.
  std::string kind;
  uint64_t digest = 0;  // StableHash64 of the whole payload.
  std::string detail;   // The payload, cut to kTraceDetailBytesMax.

  // "t=12.345678s node=0 kind=put digest=... detail".
  std::string ToString() const;
};

class Trace {
 public:
  explicit Trace(bool record) : record_(record) {}

  // Adds one event. Payloads must not hold secrets (they may be printed); the simulator scans
  // them for the workload's secret values.
  void Add(absl::Duration time, int node, absl::string_view kind, absl::string_view payload);

  uint64_t hash() const { return hash_; }
  uint64_t count() const { return count_; }
  const std::vector<TraceEvent>& events() const { return events_; }

 private:
  bool record_;
  uint64_t hash_ = 0x62756c7761726bULL;  // "bulwark"
  uint64_t count_ = 0;
  std::vector<TraceEvent> events_;
};

// The index of the first event where `a` and `b` differ (by time, node, kind or digest), the
// shorter length if one is a prefix of the other, or nullopt if they are identical.
std::optional<size_t> FirstDifference(const std::vector<TraceEvent>& a,
                                      const std::vector<TraceEvent>& b);

// Combines per-seed trace hashes (in seed order) into one hash for a sweep.
uint64_t CombineHashes(const std::vector<uint64_t>& hashes);

// 16 lower-case hex digits.
std::string HashHex(uint64_t hash);

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_TRACE_H_
