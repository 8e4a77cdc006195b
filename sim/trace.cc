// The rolling trace hash and the event-by-event comparison (see trace.h).
#include "sim/trace.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/env/random.h"

namespace bulwark::sim {

std::string TraceEvent::ToString() const {
  return absl::StrFormat("t=%.6fs node=%d kind=%s digest=%016x %s", time_ns / 1e9, node, kind,
                         digest, detail);
}

void Trace::Add(absl::Duration time, int node, absl::string_view kind, absl::string_view payload) {
  const int64_t time_ns = absl::ToInt64Nanoseconds(time);
  const uint64_t digest = StableHash64(payload);
  uint64_t words[4] = {static_cast<uint64_t>(time_ns), static_cast<uint64_t>(node) + 1,
                       StableHash64(kind), digest};
  // Fixed-width words in the machine's byte order (little-endian wherever bulwark builds).
  char bytes[sizeof(words)];
  std::memcpy(bytes, words, sizeof(words));
  hash_ = StableHash64(absl::string_view(bytes, sizeof(bytes)), hash_);
  ++count_;
  if (record_ && events_.size() < kTraceRecordedEventsMax) {
    events_.push_back(TraceEvent{time_ns, node, std::string(kind), digest,
                                 std::string(payload.substr(0, kTraceDetailBytesMax))});
  }
}

std::optional<size_t> FirstDifference(const std::vector<TraceEvent>& a,
                                      const std::vector<TraceEvent>& b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i].time_ns != b[i].time_ns || a[i].node != b[i].node || a[i].kind != b[i].kind ||
        a[i].digest != b[i].digest) {
      return i;
    }
  }
  if (a.size() != b.size()) return n;
  return std::nullopt;
}

uint64_t CombineHashes(const std::vector<uint64_t>& hashes) {
  uint64_t h = 0;
  for (uint64_t x : hashes) {
    char bytes[sizeof(x)];
    std::memcpy(bytes, &x, sizeof(x));
    h = StableHash64(absl::string_view(bytes, sizeof(bytes)), h);
  }
  return h;
}

std::string HashHex(uint64_t hash) { return absl::StrFormat("%016x", hash); }

}  // namespace bulwark::sim
