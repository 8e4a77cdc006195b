// What the parts of one simulation run share: the simulated clock and event loop, the trace, the
// seed's root stream, the failpoint registry, the history the invariants judge answers against,
// the run's phase, its result, and the parts themselves (cluster, network, actors, faults,
// invariants). The composition root (simulation.cc) builds one World per run and wires the parts
// to it; every part reaches the others only through it.
#ifndef BULWARK_SIM_WORLD_H_
#define BULWARK_SIM_WORLD_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/env/random.h"
#include "base/env/sim/sim_event_loop.h"
#include "faultinject/registry.h"
#include "sim/database/sim_database.h"
#include "sim/model.h"
#include "sim/node.h"
#include "sim/plugin_under_test.h"
#include "sim/scenario.h"
#include "sim/secrets.h"
#include "sim/simulation.h"
#include "sim/trace.h"

namespace bulwark::sim {

class Actor;
class Auditor;
class Cluster;
class DbOperator;
class Faults;
class HaCluster;
class Invariants;
class Network;
class Operator;

// The artifacts in every node's plugin directory (swappable), and what mount i runs.
inline constexpr absl::string_view kArtifacts[] = {kPluginMultiplexed, kPluginSolo};
inline constexpr int kArtifactCount = 2;
inline constexpr absl::string_view kMountPlugins[] = {kPluginMultiplexed, kPluginSolo,
                                                      kBuiltinPlugin};

// A deliberate seal, in history sequence numbers: from its acknowledgement to the operator's
// decision to unseal (open until then).
struct SealWindow {
  uint64_t start = 0;
  uint64_t end = UINT64_MAX;
};

class World {
 public:
  explicit World(const RunConfig& config);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  absl::Duration Now() { return clock.MonotonicNow(); }

  // Records a violation of the registered invariant `invariant` (kept up to kViolationsMax).
  void Violate(absl::string_view invariant, std::string detail);
  // Counts one check of `invariant`.
  void Count(absl::string_view invariant) { ++result.checks[std::string(invariant)]; }
  // Hands a text that leaves the core (error, log line, trace payload, view) to the invariants.
  void ScanText(absl::string_view where, absl::string_view text);
  // A fresh secret value from `random`, remembered so no text may leak it.
  std::string NewSecret(Random& random);

  // History sequence numbers order sends, answers, seals and unseals for the checkers.
  uint64_t NextSeq() { return ++seq; }
  // The number the next NextSeq() returns (a request's send number, before Send takes it).
  uint64_t PeekSeq() const { return seq + 1; }

  // Phase changes, announced to every actor (and the faults) in registration order.
  void BeginWorkload();  // The operator's setup is done: faults and workload start.
  void BeginQuiet();     // Faults stop.
  void NodeRestarted(int node);
  void WorkloadOpFinished();  // A data client's or the administrator's request ended.

  const RunConfig config;
  const Scenario scenario;
  SimClock clock;
  // The database server of the database workload: a machine of its own, built before the loop
  // so that it outlives every task and plugin process that reaches it.
  SimDatabase database{clock};
  SimEventLoop loop{clock};
  Trace trace;
  SeededRandom root_random;
  SeededRandom failpoint_random;
  faultinject::Registry registry{failpoint_random};
  std::vector<std::string> artifact_sha;  // SHA-256 (hex) of kArtifacts[i].
  std::set<std::string> genuine_sha;
  std::string crashing_sha;       // SHA-256 (hex) of kCrashingPlugin (genuine too).
  std::string bad_handshake_sha;  // SHA-256 (hex) of kBadHandshakePlugin (genuine too).
  // Signed plugins (scenario.signatures_required): the release key's signature of each genuine
  // artifact by its SHA-256 (hex), the allowed-signers file every node starts with, and per node
  // how many tamper faults hold the signer's line removed from it right now.
  std::map<std::string, std::string> signature_by_sha;
  std::string allowed_signers_text;
  std::map<int, int> signer_removed;

  // History: what the workload did, for the invariants to judge answers against.
  KvModel data_history;     // Mount and raw data: m<i>/c<client>/k<j>, raw/c<client>/k<j>.
  KvModel catalog_history;  // Catalog entries: <name>@<version> -> sha256.
  // With RunConfig::plugin: the writes and deletes of each mount's probe path (mount data is then
  // judged by the probe contract, not data_history, which keeps only raw data).
  ProbeHistory probe_history;
  std::multiset<uint64_t> reads_in_flight;  // Send numbers of data reads not answered yet.
  std::vector<std::vector<SealWindow>> seal_windows;  // Per node.
  SecretScanner scanner;
  uint64_t seq = 0;
  uint64_t completions = 0;

  // Phase.
  bool initialized = false;  // The barrier was initialized: unseal_shares holds the shares.
  // The unseal shares the operator got at initialization (secrets; remembered by the scanner).
  // Other actors may use them, e.g. to try an unseal below the threshold.
  std::vector<std::string> unseal_shares;
  bool ready = false;  // Setup done: the workload runs.
  bool quiet = false;  // Faults stopped.
  bool done = false;   // The run is over.
  // Actors whose after-quiet checks are still running: the auditor's final checks wait for them.
  int end_holds = 0;

  RunResult result;

  // The parts, in the order they are built. The cluster is last, so its nodes (whose hooks reach
  // every part above) are destroyed first.
  std::unique_ptr<Invariants> invariants;
  std::unique_ptr<Network> network;
  std::unique_ptr<Faults> faults;
  std::vector<std::unique_ptr<Actor>> actors;
  Operator* operator_actor = nullptr;  // Among `actors`: faults ask it to seal.
  Auditor* auditor = nullptr;          // Among `actors`: the end-of-run checks.
  // An HA cluster (scenario.nodes > 1): the simulated etcd and each node's HA parts (sim/ha).
  std::unique_ptr<HaCluster> ha;
  DbOperator* db_operator = nullptr;  // Among `actors` when the database workload is on.
  std::unique_ptr<Cluster> cluster;
};

// Helpers every part draws with (see simulation.cc for why each is shaped as it is).
int64_t Ms(absl::Duration d);
// Uniform in [lo, hi] milliseconds.
absl::Duration DrawMillis(Random& random, absl::Duration lo, absl::Duration hi);
// The gap to the next event of a process with mean rate `per_min` per minute: uniform in
// [1, 2/rate] ms, so the mean is right and no floating-point transcendental (whose last bits may
// differ between C libraries) decides the schedule.
absl::Duration NextGap(Random& random, double per_min);
// 24 random hex digits after an "s": long enough that any leaked fragment is unmistakable.
std::string DrawSecret(Random& random);
// Refusals the node gives before touching anything: the write certainly did not happen.
bool RefusedBeforeAnyEffect(const absl::Status& status);
// A write's outcome from its answer: acked, failed (refused before any effect) or unknown.
KvModel::Outcome WriteOutcome(bool answered, const absl::Status& status);
// Data requests: through a mount or raw through the barrier.
bool IsDataOp(OpKind kind);

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_WORLD_H_
