// What the workload expects of a key/value space: for every key, the versions written to it and
// when each write was sent and acknowledged. A read may return a value only if some write of it
// had been sent before the read completed and either no later write had been acknowledged
// before the read was sent, or the write's outcome is unknown: an operation that failed without
// saying whether it happened may take effect at any later time (a plugin still working on a
// request its host gave up on), as linearizability allows. Writes to one key are sequential (the
// workload gives each key one writer); reads may overlap anything. Times are the simulator's
// event sequence numbers.
#ifndef BULWARK_SIM_MODEL_H_
#define BULWARK_SIM_MODEL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace bulwark::sim {

// Versions kept per key at most; pruning keeps far fewer (only those a running read may see).
inline constexpr size_t kModelVersionsPerKeyMax = 1 << 16;

struct Verdict {
  bool ok = true;
  std::string invariant;  // "durability" or "phantom_read" when not ok.
  std::string detail;     // Names the key and the versions; never a value.
};

class KvModel {
 public:
  using Value = std::optional<std::string>;  // nullopt: the key is absent (deleted).

  enum class Outcome {
    kAcked,    // The write is durable and visible.
    kFailed,   // The write definitely did not happen (e.g. refused while sealed).
    kUnknown,  // Timed out, failed mid-way, or the node died: it may or may not have happened.
  };

  // A write of `value` to `key` was sent at `seq`. Returns its version number for EndWrite.
  uint64_t BeginWrite(const std::string& key, Value value, uint64_t seq);
  // The write's outcome became known at `seq`.
  void EndWrite(const std::string& key, uint64_t version, Outcome outcome, uint64_t seq);

  // A read of `key`, sent at `sent` and answered at `answered`, returned `value`.
  Verdict CheckRead(const std::string& key, const Value& value, uint64_t sent,
                    uint64_t answered) const;
  // A listing sent at `sent` and answered at `answered` did (`present`) or did not show `key`.
  Verdict CheckPresence(const std::string& key, bool present, uint64_t sent,
                        uint64_t answered) const;
  // A listing of `prefix` returned `keys`: every key the model knows under the prefix is checked
  // with CheckPresence, and a listed key the model never saw written is a phantom.
  Verdict CheckList(absl::string_view prefix, const std::vector<std::string>& keys, uint64_t sent,
                    uint64_t answered) const;

  // True when `key`'s value is certain: its last write was acknowledged and none is pending.
  // Sets `value` to it.
  bool Settled(const std::string& key, Value* value) const;

  // Forgets versions no read sent at or after `oldest_running_read` could return.
  void Prune(uint64_t oldest_running_read);

  std::vector<std::string> Keys() const;
  size_t version_count() const;

 private:
  struct Version {
    uint64_t number = 0;
    Value value;
    uint64_t sent = 0;
    std::optional<uint64_t> acked;
    bool failed = false;
  };
  struct KeyState {
    std::vector<Version> versions;  // By number; versions[0] may be the pruned-to base.
    uint64_t next_number = 1;
  };

  // Whether `value` (or absence) may be observed by an operation spanning [sent, answered].
  bool Allowed(const KeyState* state, bool match_presence_only, const Value& value, uint64_t sent,
               uint64_t answered) const;
  Verdict Explain(const std::string& key, const KeyState* state, const Value& value,
                  bool presence_only, uint64_t sent, uint64_t answered) const;

  std::map<std::string, KeyState> keys_;
  // StableHash64 of every value ever sent, to tell a stale value from an invented one.
  std::set<uint64_t> ever_written_;
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_MODEL_H_
