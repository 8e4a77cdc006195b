// One simulation run (see simulation.h): the world, the actors, the faults and the checks.
#include "sim/simulation.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/crypto/sha256.h"
#include "base/env/random.h"
#include "base/env/sim/sim_event_loop.h"
#include "base/env/sim/sim_process_launcher.h"
#include "base/status/check.h"
#include "core/catalog/catalog_error.h"
#include "faultinject/spec.h"
#include "sim/model.h"
#include "sim/node.h"
#include "sim/secrets.h"

namespace bulwark::sim {
namespace {

using faultinject::Action;
using faultinject::ActionKind;

constexpr int kShares = 5;
constexpr int kThreshold = 3;
// The artifacts in the plugin directory (swappable), and what mount i runs.
constexpr absl::string_view kArtifacts[] = {kPluginMultiplexed, kPluginSolo};
constexpr int kArtifactCount = 2;
constexpr absl::string_view kMountPlugins[] = {kPluginMultiplexed, kPluginSolo, kBuiltinPlugin};
constexpr int kCatalogNames = 3;
constexpr absl::string_view kVersions[] = {"", "v1.0.0", "v1.1.0"};
constexpr absl::Duration kProbeInterval = absl::Seconds(1);
constexpr absl::Duration kSetupRetry = absl::Seconds(1);
constexpr absl::Duration kWatchdogRestart = absl::Milliseconds(100);
// Final checks retry a refused request (a plugin in crash-loop backoff) for this long.
constexpr int kFinalAttemptsMax = 12;
constexpr absl::Duration kFinalRetry = absl::Seconds(10);
constexpr uint64_t kPruneEvery = 256;
constexpr size_t kSecretBytes = 12;  // 24 hex digits.

std::string Sha256Hex(absl::string_view bytes) {
  return crypto::HexEncode(crypto::Sha256::Hash(bytes));
}

int64_t Ms(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

// A fresh secret value: 24 random hex digits after an "s", long enough that any leaked fragment
// of kSecretWindowBytes is unmistakable.
std::string DrawSecret(Random& random) {
  return absl::StrCat("s", absl::BytesToHexString(random.Bytes(kSecretBytes)));
}

// Uniform in [lo, hi] milliseconds.
absl::Duration DrawMillis(Random& random, absl::Duration lo, absl::Duration hi) {
  const int64_t a = std::max<int64_t>(0, Ms(lo));
  const int64_t b = std::max(a, Ms(hi));
  return absl::Milliseconds(static_cast<int64_t>(
      random.UniformInRange(static_cast<uint64_t>(a), static_cast<uint64_t>(b))));
}

// The gap to the next event of a process with mean rate `per_min` events per minute: uniform in
// [0, 2/rate], so the mean is right and no floating-point transcendental (whose last bits may
// differ between C libraries) decides the schedule.
absl::Duration NextGap(Random& random, double per_min) {
  const double mean_ms = 60000.0 / per_min;
  const uint64_t hi = static_cast<uint64_t>(2 * mean_ms);
  return absl::Milliseconds(
      static_cast<int64_t>(random.UniformInRange(1, std::max<uint64_t>(1, hi))));
}

bool IsDataOp(OpKind kind) {
  switch (kind) {
    case OpKind::kPut:
    case OpKind::kGet:
    case OpKind::kList:
    case OpKind::kDelete:
    case OpKind::kRawPut:
    case OpKind::kRawGet:
    case OpKind::kRawList:
    case OpKind::kRawDelete:
      return true;
    default:
      return false;
  }
}

// Refusals the node gives before touching anything: the write certainly did not happen.
bool RefusedBeforeAnyEffect(const absl::Status& status) {
  const absl::string_view m = status.message();
  return absl::StartsWith(m, "barrier is sealed") || absl::StartsWith(m, "Vault is sealed") ||
         absl::StartsWith(m, "node is a standby") || absl::StartsWith(m, "node is still loading") ||
         absl::StartsWith(m, "node is shut down") || absl::StartsWith(m, "no handler for route");
}

class Simulation final : public faultinject::Effects {
 public:
  explicit Simulation(const RunConfig& config);
  ~Simulation() override = default;

  RunResult Run();

  // faultinject::Effects: delay, hang and crash at synchronous failpoint sites in node code.
  absl::Status Apply(absl::string_view name, const Action& action) override;

 private:
  // `answered` is false when the connection broke (the node died) before an answer came.
  using Callback = std::function<void(const Response& response, bool answered)>;

  struct PendingOp {
    Callback done;
    TimerId lost_timer = kNoTimer;
    OpKind kind = OpKind::kStatus;
    int node = 0;
    bool client = false;  // A workload client's operation (the run waits for these to end).
  };
  struct SendOptions {
    bool client = false;
    // Crash every plugin process of the node right after the request reached it (the final
    // lazy-reload check).
    bool crash_plugins_after_delivery = false;
  };
  struct SealWindow {
    uint64_t start = 0;         // The seal's acknowledgement.
    uint64_t end = UINT64_MAX;  // When the operator decided to unseal; open until then.
  };
  struct OperatorCall {
    Request request;
    Callback done;
  };
  struct NodeState {
    std::unique_ptr<Node> node;
    uint64_t epoch = 0;  // Bumped whenever the process dies or hangs; connections break.
    bool wedged = false;
    absl::Duration wedged_since;
    std::optional<CrashMode> power_lost;  // Set inside node code, acted on after it unwound.
    bool hang_requested = false;
    absl::Duration restart_delay = absl::Seconds(1);
    absl::Duration delay_debt = absl::ZeroDuration();  // Failpoint delays owed to the next reply.
    int seal_depth = 0;  // Deliberate seal windows open: the operator does not unseal.
    uint64_t seal_generation = 0;
    std::vector<SealWindow> windows;
    int standby_depth = 0;
    uint64_t standby_generation = 0;
    bool stepping_down = false;      // StepDown called, its completion not seen yet.
    bool become_active_due = false;  // The step-down's time is up; activate once it completes.
    std::deque<OperatorCall> operator_queue;
    bool operator_busy = false;
    bool unseal_check_busy = false;
  };
  struct FinalCheck {
    Request request;
    std::string model_key;  // "" for checks that only need success.
    bool catalog = false;
    bool crash_under_request = false;
    int attempts = 0;
  };

  // --- plumbing
  absl::Duration Now() { return clock_.MonotonicNow(); }
  void Violate(absl::string_view invariant, std::string detail);
  void Count(absl::string_view invariant) { ++result_.checks[std::string(invariant)]; }
  void ScanText(absl::string_view where, absl::string_view text);
  std::string NewSecret(Random& random);
  absl::Duration Latency() {
    return DrawMillis(net_random_, scenario_.latency_min, scenario_.latency_max);
  }

  // --- world
  void SetUpNode(int id);
  void WriteWorld(SimFileSystem& disk);
  void OnFire(const faultinject::FireEvent& event);
  void OnSpawn(int node, absl::string_view path, absl::string_view sha256);
  void CompileSchedule(const std::vector<FaultEvent>& schedule);
  std::vector<FaultEvent> DrawTimedFaults();

  // --- network
  uint64_t Send(int node, Request request, Callback done, SendOptions options);
  void Deliver(uint64_t op, int node, uint64_t epoch, const Request& request, SendOptions options);
  void OnNodeDone(uint64_t op, int node, uint64_t epoch, const Request& request, Response response);
  void Complete(uint64_t op, Response response);
  void Abort(uint64_t op, absl::string_view why);
  void LostRequest(uint64_t op);
  void ConnectionsBroke(int node);

  // --- node lifecycle
  bool AfterNodeCode(int node);  // False if the node died or hung in that code.
  void PowerLoss(int node, CrashMode mode, absl::Duration restart);
  void ProcessKill(int node, absl::Duration restart);
  void Wedge(int node);
  void Restart(int node);
  // Processes follow the runner-config rule: never two running multiplexed processes for one
  // runner config, never a non-multiplexed process serving two mounts.
  void CheckProcessSharing(int node);
  void CheckNoPluginsRun(int node, absl::string_view after);

  // --- faults
  void ApplyFault(const FaultEvent& event);
  void OpenSealWindow(int node, absl::Duration duration);
  void CloseSealWindow(int node, uint64_t generation);
  void CloseAllSealWindows(int node);
  void StepDown(int node, absl::Duration duration);
  void BecomeActive(int node, uint64_t generation);
  void SwapArtifact(int node, int artifact, absl::Duration duration);
  void RestoreArtifact(int node, int artifact);
  void SlowPlugin(int node, int plugin, absl::Duration delay, absl::Duration duration);

  // --- operator
  void OperatorSend(int node, Request request, Callback done);
  void OperatorPump(int node);
  void OperatorInit();
  void OperatorTick();
  void MaybeUnseal(int node);
  void SetUpMounts(size_t next);
  void OnReady();
  void OperatorRotateLoop();
  void OperatorSealLoop();
  std::vector<std::string> PickShares();

  // --- clients
  std::string DataKey(int client, int index, bool raw) const;
  std::string Folder(int client, bool raw) const;
  void ClientLoop(int client);
  void ClientOp(int client);
  void AdminLoop();
  void AdminOp();
  void CheckServedWhileSealed(int node, OpKind kind, uint64_t sent, uint64_t answered);
  void CheckWhiteBox(int node, const Request& request, const Response& response);
  void FinishClientOp();
  void MaybePrune();

  // --- end of run
  void StartQuiet();
  void ProbeTick();
  void MaybeFinish();
  void BuildFinalChecks();
  void RunFinalCheck(size_t index);

  RunConfig config_;
  Scenario scenario_;
  SimClock clock_;
  SimEventLoop loop_{clock_};
  sim::Trace trace_;
  SeededRandom root_random_;
  SeededRandom net_random_;
  SeededRandom operator_random_;
  SeededRandom admin_random_;
  SeededRandom probe_random_;
  SeededRandom failpoint_random_;
  std::vector<SeededRandom> client_random_;
  faultinject::Registry registry_{failpoint_random_};
  std::vector<std::string> artifact_sha_;
  std::set<std::string> genuine_sha_;

  KvModel model_;          // Mount and raw data: m<i>/c<client>/k<j>, raw/c<client>/k<j>.
  KvModel catalog_model_;  // Catalog entries: <name>@<version> -> sha256.
  SecretScanner scanner_;
  std::multiset<uint64_t> running_reads_;  // Send sequence numbers of reads in flight.

  std::map<uint64_t, PendingOp> pending_;
  uint64_t next_op_ = 1;
  uint64_t seq_ = 0;
  uint64_t client_ops_in_flight_ = 0;
  uint64_t completions_ = 0;

  int active_node_ = -1;  // The node whose code is on the stack, for Apply.

  std::vector<std::string> shares_;
  bool initialized_ = false;
  bool mounts_ready_ = false;
  bool setting_up_ = false;
  bool ready_ = false;
  bool quiet_ = false;
  bool live_ = false;
  bool probe_busy_ = false;
  bool finishing_ = false;
  bool done_ = false;
  uint64_t probes_ = 0;
  std::string last_probe_error_;
  absl::Duration live_deadline_;
  std::vector<int> swap_depth_;
  uint64_t swap_generation_ = 0;
  std::map<int, uint64_t> slow_generation_;
  std::vector<FinalCheck> final_checks_;

  std::vector<FaultEvent> timed_faults_;
  std::vector<FaultEvent> fires_;
  RunResult result_;
  // Last, so the nodes (whose hooks reach every member above) are destroyed first.
  std::vector<NodeState> nodes_;
};

Simulation::Simulation(const RunConfig& config)
    : config_(config),
      scenario_(config.scenario),
      trace_(config.record_trace),
      root_random_(config.seed),
      net_random_(root_random_.Derive("net")),
      operator_random_(root_random_.Derive("operator")),
      admin_random_(root_random_.Derive("admin")),
      probe_random_(root_random_.Derive("probe")),
      failpoint_random_(root_random_.Derive("failpoints")),
      swap_depth_(kArtifactCount, 0) {
  for (int c = 0; c <= scenario_.clients; ++c) {
    client_random_.push_back(root_random_.Derive(absl::StrCat("client/", c)));
  }
  for (absl::string_view artifact : kArtifacts) {
    artifact_sha_.push_back(Sha256Hex(SimProcessLauncher::ExecutableContents(artifact)));
    genuine_sha_.insert(artifact_sha_.back());
  }
}

void Simulation::Violate(absl::string_view invariant, std::string detail) {
  if (result_.violations.size() < kViolationsMax) {
    result_.violations.push_back(Violation{std::string(invariant), std::move(detail), Ms(Now())});
  }
  trace_.Add(Now(), -1, "violation", invariant);
}

void Simulation::ScanText(absl::string_view where, absl::string_view text) {
  Count("secret_leak");
  if (scanner_.Leaks(text)) {
    Violate("secret_leak", absl::StrCat(where, ": a text of ", text.size(),
                                        " bytes contains a fragment of a secret the workload "
                                        "handed to the core (text withheld)"));
  }
}

std::string Simulation::NewSecret(Random& random) {
  std::string secret = DrawSecret(random);
  scanner_.Add(secret);
  return secret;
}

// ---------------------------------------------------------------------------------------------
// The world.

void Simulation::WriteWorld(SimFileSystem& disk) {
  CHECK_OK(disk.CreateDir("/bulwark", 0755));
  CHECK_OK(disk.CreateDir("/bulwark/plugins", 0755));
  CHECK_OK(disk.CreateDir("/bulwark/run", 0700));
  CHECK_OK(disk.SyncDir("/"));
  CHECK_OK(disk.SyncDir("/bulwark"));
  for (absl::string_view artifact : kArtifacts) {
    CHECK_OK(disk.WriteFileDurably(absl::StrCat("/bulwark/plugins/", artifact),
                                   SimProcessLauncher::ExecutableContents(artifact), 0755));
  }
}

void Simulation::SetUpNode(int id) {
  NodeOptions options;
  options.id = id;
  options.seed = StableHash64(absl::StrCat("node/", id), config_.seed);
  NodeHooks hooks;
  hooks.trace = [this](int node, absl::string_view kind, absl::string_view payload) {
    ScanText(kind, payload);
    trace_.Add(Now(), node, kind, payload);
  };
  hooks.log = [this](int node, absl::string_view line) {
    ScanText("log line", line);
    trace_.Add(Now(), node, "log", line);
  };
  hooks.before_task = [this](int node) {
    trace_.Add(Now(), node, "task", "");
    active_node_ = node;
  };
  hooks.after_task = [this](int node) {
    active_node_ = -1;
    AfterNodeCode(node);
  };
  hooks.power_lost = [this](int node, CrashMode mode) { nodes_[node].power_lost = mode; };
  hooks.spawning = [this](int node, absl::string_view path, absl::string_view sha256) {
    OnSpawn(node, path, sha256);
  };
  NodeState state;
  state.node = std::make_unique<Node>(options, loop_, clock_, std::move(hooks));
  WriteWorld(state.node->disk());
  nodes_.push_back(std::move(state));
  const absl::Status started = nodes_.back().node->Start();
  CHECK_OK(started) << "a fresh node must start";
}

void Simulation::OnFire(const faultinject::FireEvent& event) {
  if (absl::StartsWith(event.name, "bug.")) return;  // Configuration, not a fault.
  ++result_.faults["fp"];
  FaultEvent fire;
  fire.kind = FaultKind::kFailpointFire;
  fire.site = std::string(event.name);
  fire.hit = event.hit;
  fire.action = event.action;
  trace_.Add(Now(), active_node_, "fp-fire", fire.ToString());
  if (!config_.schedule.has_value() && event.buggify) fires_.push_back(std::move(fire));
}

void Simulation::OnSpawn(int node, absl::string_view path, absl::string_view sha256) {
  Count("launch_hash");
  trace_.Add(Now(), node, "spawn", absl::StrCat(path, " ", sha256));
  if (genuine_sha_.count(std::string(sha256)) == 0) {
    Violate("launch_hash",
            absl::StrCat("a plugin process was started from ", path, ", whose SHA-256 is ", sha256,
                         ": no catalog entry was ever registered with that hash"));
  }
}

// Each failpoint's fires become one configuration in the shared grammar: "6*off->1*crash" fires
// on the 7th hit only.
void Simulation::CompileSchedule(const std::vector<FaultEvent>& schedule) {
  std::map<std::string, std::vector<const FaultEvent*>> by_site;
  for (const FaultEvent& event : schedule) {
    if (event.kind == FaultKind::kFailpointFire) {
      by_site[event.site].push_back(&event);
    } else {
      timed_faults_.push_back(event);
    }
  }
  for (auto& [site, fires] : by_site) {
    std::sort(fires.begin(), fires.end(),
              [](const FaultEvent* a, const FaultEvent* b) { return a->hit < b->hit; });
    std::vector<faultinject::Term> terms;
    uint64_t next_hit = 1;
    for (const FaultEvent* fire : fires) {
      if (fire->hit < next_hit) continue;  // The same hit twice: the first one wins.
      if (terms.size() + 2 > faultinject::kTermsPerFailpointMax) break;
      if (fire->hit > next_hit) {
        faultinject::Term skip;
        skip.count = fire->hit - next_hit;
        terms.push_back(skip);
      }
      faultinject::Term term;
      term.count = 1;
      term.action = fire->action;
      terms.push_back(term);
      next_hit = fire->hit + 1;
    }
    CHECK_OK(registry_.Set(site, faultinject::FormatActions(terms)));
  }
}

std::vector<FaultEvent> Simulation::DrawTimedFaults() {
  std::vector<FaultEvent> events;
  const FaultMix& mix = scenario_.faults;
  const absl::Duration begin = mix.start;
  const absl::Duration end = scenario_.workload - mix.end_margin;
  auto draw = [&](FaultKind kind, double per_min, auto&& fill) {
    if (per_min <= 0 || end <= begin) return;
    // One stream per kind: a change in one kind's rate leaves the others' faults where they were.
    SeededRandom random = root_random_.Derive(absl::StrCat("faults/", FaultKindName(kind)));
    absl::Duration t = begin + NextGap(random, per_min);
    while (t < end && events.size() < kScheduleEventsMax / 2) {
      FaultEvent event;
      event.kind = kind;
      event.at_ms = Ms(t);
      event.node = static_cast<int>(random.Uniform(static_cast<uint64_t>(scenario_.nodes)));
      fill(event, random);
      events.push_back(event);
      t += NextGap(random, per_min);
    }
  };
  auto mode = [&](Random& random) {
    return random.Bernoulli(mix.tear_probability) ? CrashMode::kTearUnsynced
                                                  : CrashMode::kDropUnsynced;
  };
  draw(FaultKind::kCrash, mix.crash_per_min, [&](FaultEvent& e, Random& r) {
    e.mode = mode(r);
    e.a = Ms(DrawMillis(r, mix.restart_min, mix.restart_max));
  });
  draw(FaultKind::kCrashMidOp, mix.midcrash_per_min, [&](FaultEvent& e, Random& r) {
    e.mode = mode(r);
    e.a = static_cast<int64_t>(r.UniformInRange(1, std::max(1, mix.midcrash_mutations_max)));
    e.b = Ms(DrawMillis(r, mix.restart_min, mix.restart_max));
  });
  draw(FaultKind::kKill, mix.kill_per_min, [&](FaultEvent& e, Random& r) {
    e.a = Ms(DrawMillis(r, mix.restart_min, mix.restart_max));
  });
  draw(FaultKind::kSeal, mix.seal_per_min,
       [&](FaultEvent& e, Random& r) { e.a = Ms(DrawMillis(r, mix.seal_min, mix.seal_max)); });
  draw(FaultKind::kClockJump, mix.jump_per_min, [&](FaultEvent& e, Random& r) {
    const int64_t magnitude = Ms(DrawMillis(r, absl::Seconds(1), mix.jump_max));
    e.a = r.Bernoulli(0.5) ? magnitude : -magnitude;
  });
  draw(FaultKind::kArtifactSwap, mix.swap_per_min, [&](FaultEvent& e, Random& r) {
    e.a = static_cast<int64_t>(r.Uniform(kArtifactCount));
    e.b = Ms(DrawMillis(r, mix.swap_min, mix.swap_max));
  });
  draw(FaultKind::kPluginCrash, mix.plugin_crash_per_min,
       [&](FaultEvent& e, Random& r) { e.a = static_cast<int64_t>(r.Uniform(16)); });
  draw(FaultKind::kPluginHang, mix.plugin_hang_per_min,
       [&](FaultEvent& e, Random& r) { e.a = static_cast<int64_t>(r.Uniform(16)); });
  draw(FaultKind::kPluginSlow, mix.plugin_slow_per_min, [&](FaultEvent& e, Random& r) {
    e.a = static_cast<int64_t>(r.Uniform(kArtifactCount));
    e.b = Ms(DrawMillis(r, absl::Milliseconds(10), mix.slow_delay_max));
    e.c = Ms(DrawMillis(r, absl::Seconds(1), mix.slow_duration_max));
  });
  draw(FaultKind::kStepDown, mix.step_down_per_min, [&](FaultEvent& e, Random& r) {
    e.a = Ms(DrawMillis(r, absl::Milliseconds(500), mix.step_down_max));
  });
  SortSchedule(events);
  return events;
}

// ---------------------------------------------------------------------------------------------
// The network. Requests and answers travel with a random latency. A client waits as long as its
// connection lives: when the node dies or hangs, every connection to it breaks and the client
// learns that its request's outcome is unknown; a request sent to a node that is down is
// refused. The node's own deadlines answer everything else, so a request still unanswered after
// lost_request_timeout on a live node is a liveness failure.

uint64_t Simulation::Send(int node, Request request, Callback done, SendOptions options) {
  const uint64_t op = next_op_++;
  PendingOp& pending = pending_[op];
  pending.done = std::move(done);
  pending.kind = request.kind;
  pending.node = node;
  pending.client = options.client;
  if (options.client) ++client_ops_in_flight_;
  const uint64_t sent = ++seq_;
  trace_.Add(Now(), node, "send",
             absl::StrCat(OpKindName(request.kind), " ", request.key, request.name,
                          request.mount_path, " #", op));
  const uint64_t epoch = nodes_[node].epoch;
  loop_.PostAfter(Latency(), [this, op, node, epoch, request = std::move(request), options] {
    Deliver(op, node, epoch, request, options);
  });
  pending.lost_timer =
      loop_.PostAfter(scenario_.lost_request_timeout, [this, op] { LostRequest(op); });
  return sent;
}

void Simulation::Deliver(uint64_t op, int node, uint64_t epoch, const Request& request,
                         SendOptions options) {
  if (pending_.find(op) == pending_.end()) return;  // Its connection already broke.
  NodeState& state = nodes_[node];
  if (state.epoch != epoch) return;  // Aborted when the node died.
  if (!state.node->running() || state.wedged) {
    Abort(op, "connection refused: the node is down");
    return;
  }
  trace_.Add(Now(), node, "deliver", absl::StrCat("#", op));
  active_node_ = node;
  state.node->Execute(request, [this, op, node, epoch, request](Response response) {
    OnNodeDone(op, node, epoch, request, std::move(response));
  });
  active_node_ = -1;
  if (!AfterNodeCode(node)) return;
  if (options.crash_plugins_after_delivery) {
    for (int64_t pid : state.node->launcher().LivePids()) {
      state.node->launcher().Crash(pid).IgnoreError();
      trace_.Add(Now(), node, "plugin-crashed-under-request", absl::StrCat(pid));
    }
  }
}

void Simulation::OnNodeDone(uint64_t op, int node, uint64_t epoch, const Request& request,
                            Response response) {
  NodeState& state = nodes_[node];
  if (state.epoch != epoch) return;
  // White-box checks see the node as it is when it answers.
  CheckWhiteBox(node, request, response);
  if (request.kind == OpKind::kSeal && response.status.ok()) CheckNoPluginsRun(node, "a seal");
  // The answer leaves after the node's code has unwound: a crash found then drops it.
  loop_.Post(
      [this, op, node, epoch, kind = request.kind, response = std::move(response)]() mutable {
        NodeState& s = nodes_[node];
        if (s.epoch != epoch) return;
        if (!response.status.ok()) {
          ScanText(absl::StrCat(OpKindName(kind), " error"), response.status.message());
        }
        if (response.view.has_value()) ScanText("catalog view", response.view->DebugString());
        const absl::Duration delay = Latency() + s.delay_debt;
        s.delay_debt = absl::ZeroDuration();
        loop_.PostAfter(delay, [this, op, response = std::move(response)]() mutable {
          Complete(op, std::move(response));
        });
      });
}

void Simulation::Complete(uint64_t op, Response response) {
  auto it = pending_.find(op);
  if (it == pending_.end()) return;  // The connection broke first.
  PendingOp pending = std::move(it->second);
  pending_.erase(it);
  loop_.Cancel(pending.lost_timer);
  if (pending.client) --client_ops_in_flight_;
  trace_.Add(Now(), -1, "reply",
             absl::StrCat("#", op, " ", absl::StatusCodeToString(response.status.code())));
  ++(response.status.ok() ? result_.ops_ok
                          : result_.ops_failed)[std::string(OpKindName(pending.kind))];
  pending.done(response, true);
}

void Simulation::Abort(uint64_t op, absl::string_view why) {
  auto it = pending_.find(op);
  if (it == pending_.end()) return;
  PendingOp pending = std::move(it->second);
  pending_.erase(it);
  loop_.Cancel(pending.lost_timer);
  if (pending.client) --client_ops_in_flight_;
  trace_.Add(Now(), -1, "aborted", absl::StrCat("#", op, " ", why));
  ++result_.ops_failed[std::string(OpKindName(pending.kind))];
  Response response;
  response.status = absl::UnavailableError(why);
  pending.done(response, false);
}

void Simulation::LostRequest(uint64_t op) {
  auto it = pending_.find(op);
  if (it == pending_.end()) return;
  Violate("liveness", absl::StrCat(OpKindName(it->second.kind), " request #", op,
                                   " to a live node had no answer after ",
                                   absl::FormatDuration(scenario_.lost_request_timeout)));
  Abort(op, "no answer");
}

void Simulation::ConnectionsBroke(int node) {
  ++nodes_[node].epoch;
  std::vector<uint64_t> broken;
  for (const auto& [op, pending] : pending_) {
    if (pending.node == node) broken.push_back(op);
  }
  // Each client learns of it in its own task, after the node's teardown is over.
  for (uint64_t op : broken) {
    loop_.Post([this, op] { Abort(op, "connection reset: the node went away"); });
  }
}

// ---------------------------------------------------------------------------------------------
// Node lifecycle.

absl::Status Simulation::Apply(absl::string_view name, const Action& action) {
  if (active_node_ < 0) return absl::OkStatus();
  NodeState& state = nodes_[active_node_];
  switch (action.kind) {
    case ActionKind::kDelay:
      // A slow step: the node answers its next request that much later.
      state.delay_debt += action.delay;
      return absl::OkStatus();
    case ActionKind::kHang:
      // The process stops right here: nothing after this point reaches the disk or a client.
      state.node->fs().Kill();
      state.hang_requested = true;
      return absl::UnavailableError(absl::StrCat("failpoint ", name, ": the process hangs"));
    case ActionKind::kCrash: {
      state.node->fs().Kill();
      SeededRandom random(StableHash64(
          absl::StrCat("fp-crash/", name, "@", absl::ToInt64Nanoseconds(Now())), config_.seed));
      state.power_lost = random.Bernoulli(scenario_.faults.tear_probability)
                             ? CrashMode::kTearUnsynced
                             : CrashMode::kDropUnsynced;
      state.restart_delay =
          DrawMillis(random, scenario_.faults.restart_min, scenario_.faults.restart_max);
      return absl::UnavailableError(absl::StrCat("failpoint ", name, ": the machine crashes"));
    }
    default:
      return absl::OkStatus();
  }
}

bool Simulation::AfterNodeCode(int node) {
  NodeState& state = nodes_[node];
  if (state.power_lost.has_value()) {
    const CrashMode mode = *state.power_lost;
    state.power_lost.reset();
    state.hang_requested = false;
    PowerLoss(node, mode, state.restart_delay);
    return false;
  }
  if (state.hang_requested) {
    state.hang_requested = false;
    Wedge(node);
    return false;
  }
  return true;
}

void Simulation::PowerLoss(int node, CrashMode mode, absl::Duration restart) {
  NodeState& state = nodes_[node];
  ConnectionsBroke(node);
  state.node->Stop();
  state.wedged = false;
  // Each power loss tears the disk from its own stream: removing another fault does not change
  // what this one keeps.
  state.node->disk_random().Reseed(StableHash64(
      absl::StrCat("tear/", node, "@", absl::ToInt64Nanoseconds(Now())), config_.seed));
  state.node->disk().Crash(mode);
  trace_.Add(Now(), node, "power-loss", mode == CrashMode::kDropUnsynced ? "drop" : "tear");
  loop_.PostAfter(restart, [this, node] { Restart(node); });
}

void Simulation::ProcessKill(int node, absl::Duration restart) {
  NodeState& state = nodes_[node];
  ConnectionsBroke(node);
  state.node->Stop();
  state.wedged = false;
  trace_.Add(Now(), node, "kill", "");
  loop_.PostAfter(restart, [this, node] { Restart(node); });
}

void Simulation::Wedge(int node) {
  NodeState& state = nodes_[node];
  ConnectionsBroke(node);
  state.node->executor().Kill();  // Nothing of the process (or its plugins) runs any more.
  state.wedged = true;
  state.wedged_since = Now();
  trace_.Add(Now(), node, "hang", "");
}

void Simulation::Restart(int node) {
  NodeState& state = nodes_[node];
  if (state.node->running()) return;
  active_node_ = node;
  const absl::Status started = state.node->Start();
  active_node_ = -1;
  Count("recovery");
  // An armed crash may strike during recovery itself: that is another power loss, not a failure.
  if (!AfterNodeCode(node)) return;
  if (!started.ok()) {
    ScanText("restart error", started.message());
    Violate("recovery", absl::StrCat("node ", node, " failed to restart after a crash: ",
                                     scanner_.Leaks(started.message()) ? "(message withheld)"
                                                                       : started.ToString()));
    return;
  }
  trace_.Add(Now(), node, "restarted", "");
  state.standby_depth = 0;  // A fresh process starts active.
  state.stepping_down = false;
  state.become_active_due = false;
  ++state.standby_generation;
  MaybeUnseal(node);
}

void Simulation::CheckProcessSharing(int node) {
  NodeState& state = nodes_[node];
  if (state.node == nullptr || !state.node->running() || state.node->core() == nullptr ||
      state.node->core()->lifecycle() == nullptr) {
    return;
  }
  Count("process_sharing");
  std::set<std::string> multiplexed_keys;
  for (const lifecycle::ProcessInfo& p : state.node->core()->lifecycle()->Processes()) {
    if (!p.running) continue;
    if (p.multiplexed && !multiplexed_keys.insert(p.runner_key).second) {
      Violate("process_sharing",
              absl::StrCat("two running multiplexed processes of plugin \"", p.plugin_name,
                           "\" share runner config ", p.runner_key));
    } else if (!p.multiplexed && p.mounts.size() > 1) {
      Violate("process_sharing",
              absl::StrCat("non-multiplexed process ", p.pid, " of plugin \"", p.plugin_name,
                           "\" serves ", p.mounts.size(), " mounts"));
    }
  }
}

void Simulation::CheckNoPluginsRun(int node, absl::string_view after) {
  Count("stopped_plugins");
  const std::vector<int64_t> pids = nodes_[node].node->launcher().LivePids();
  if (!pids.empty()) {
    Violate("stopped_plugins",
            absl::StrCat(pids.size(), " plugin process", pids.size() == 1 ? "" : "es",
                         " still running after ", after, " completed (pid ", pids[0], ")"));
  }
}

// ---------------------------------------------------------------------------------------------
// Faults.

void Simulation::ApplyFault(const FaultEvent& event) {
  if (quiet_ || event.node >= static_cast<int>(nodes_.size())) return;
  NodeState& state = nodes_[event.node];
  Node& node = *state.node;
  const bool up = node.running() && !state.wedged;
  bool applied = true;
  switch (event.kind) {
    case FaultKind::kCrash:
      if (node.running()) {
        PowerLoss(event.node, event.mode, absl::Milliseconds(event.a));
      } else {
        applied = false;
      }
      break;
    case FaultKind::kCrashMidOp:
      if (up) {
        node.fs().ArmCrash(static_cast<uint64_t>(event.a), event.mode);
        state.restart_delay = absl::Milliseconds(event.b);
      } else {
        applied = false;
      }
      break;
    case FaultKind::kKill:
      if (node.running()) {
        ProcessKill(event.node, absl::Milliseconds(event.a));
      } else {
        applied = false;
      }
      break;
    case FaultKind::kSeal:
      if (ready_) {
        OpenSealWindow(event.node, absl::Milliseconds(event.a));
      } else {
        applied = false;
      }
      break;
    case FaultKind::kClockJump:
      node.clock().JumpWall(absl::Milliseconds(event.a));
      break;
    case FaultKind::kArtifactSwap:
      SwapArtifact(event.node, static_cast<int>(event.a % kArtifactCount),
                   absl::Milliseconds(event.b));
      break;
    case FaultKind::kPluginCrash:
    case FaultKind::kPluginHang: {
      const std::vector<int64_t> pids = up ? node.launcher().LivePids() : std::vector<int64_t>();
      if (pids.empty()) {
        applied = false;
        break;
      }
      const int64_t pid = pids[static_cast<size_t>(event.a) % pids.size()];
      absl::Status done = event.kind == FaultKind::kPluginCrash ? node.launcher().Crash(pid)
                                                                : node.launcher().Hang(pid);
      applied = done.ok();
      break;
    }
    case FaultKind::kPluginSlow:
      SlowPlugin(event.node, static_cast<int>(event.a % kArtifactCount),
                 absl::Milliseconds(event.b), absl::Milliseconds(event.c));
      break;
    case FaultKind::kStepDown:
      if (up && ready_ && state.standby_depth == 0) {
        StepDown(event.node, absl::Milliseconds(event.a));
      } else {
        applied = false;
      }
      break;
    case FaultKind::kFailpointFire:
      applied = false;  // Never timed.
      break;
    default: {
      // Hooks for pieces not built yet: applied only if a component handles the kind.
      const std::vector<NodeComponent*> handlers =
          up ? node.ComponentsHandling(event.kind) : std::vector<NodeComponent*>();
      applied = !handlers.empty();
      for (NodeComponent* handler : handlers) {
        absl::Status status = handler->ApplyFault(node, event);
        if (!status.ok()) trace_.Add(Now(), event.node, "fault-error", status.message());
      }
      break;
    }
  }
  const std::string kind(FaultKindName(event.kind));
  ++(applied ? result_.faults : result_.faults_skipped)[kind];
  trace_.Add(Now(), event.node, applied ? "fault" : "fault-skipped", event.ToString());
}

void Simulation::OpenSealWindow(int node, absl::Duration duration) {
  NodeState& state = nodes_[node];
  ++state.seal_depth;
  const uint64_t generation = state.seal_generation;
  Request request;
  request.kind = OpKind::kSeal;
  OperatorSend(node, request, [this, node, generation](const Response& response, bool answered) {
    NodeState& s = nodes_[node];
    if (answered && response.status.ok() && s.seal_depth > 0 && s.seal_generation == generation) {
      s.windows.push_back(SealWindow{++seq_, UINT64_MAX});
    }
  });
  loop_.PostAfter(duration, [this, node, generation] { CloseSealWindow(node, generation); });
}

void Simulation::CloseSealWindow(int node, uint64_t generation) {
  NodeState& state = nodes_[node];
  if (state.seal_generation != generation || state.seal_depth == 0) return;
  if (--state.seal_depth > 0) return;
  CloseAllSealWindows(node);
  MaybeUnseal(node);
}

void Simulation::CloseAllSealWindows(int node) {
  NodeState& state = nodes_[node];
  state.seal_depth = 0;
  ++state.seal_generation;
  const uint64_t end = ++seq_;
  for (SealWindow& window : state.windows) {
    if (window.end == UINT64_MAX) window.end = end;
  }
}

// A step-down lasts `duration`, and at least until the node has finished stepping down: a node
// that is still stopping its plugins does not campaign for the active role again.
void Simulation::StepDown(int node, absl::Duration duration) {
  NodeState& state = nodes_[node];
  state.standby_depth = 1;
  state.stepping_down = true;
  const uint64_t generation = state.standby_generation;
  const uint64_t epoch = state.epoch;
  active_node_ = node;
  state.node->core()->StepDown([this, node, epoch, generation] {
    NodeState& s = nodes_[node];
    if (s.epoch != epoch) return;
    s.stepping_down = false;
    CheckNoPluginsRun(node, "a step-down");
    if (s.become_active_due) BecomeActive(node, generation);
  });
  active_node_ = -1;
  if (!AfterNodeCode(node)) return;
  loop_.PostAfter(duration, [this, node, generation] { BecomeActive(node, generation); });
}

void Simulation::BecomeActive(int node, uint64_t generation) {
  NodeState& state = nodes_[node];
  if (state.standby_generation != generation || state.standby_depth == 0) return;
  // Nor does a sealed (or sealing) node: an HA layer campaigns only once unsealed. The operator's
  // tick retries until the node is unsealed again.
  if (state.stepping_down ||
      (state.node->running() && !state.wedged && state.node->core()->sealed())) {
    state.become_active_due = true;
    return;
  }
  state.become_active_due = false;
  state.standby_depth = 0;
  ++state.standby_generation;
  if (!state.node->running() || state.wedged) return;  // A restart comes back active anyway.
  active_node_ = node;
  state.node->core()->BecomeActive([this, node](absl::Status status) {
    trace_.Add(Now(), node, "active", absl::StatusCodeToString(status.code()));
  });
  active_node_ = -1;
  AfterNodeCode(node);
}

void Simulation::SwapArtifact(int node, int artifact, absl::Duration duration) {
  if (swap_depth_[artifact]++ == 0) {
    CHECK_OK(nodes_[node].node->disk().WriteFileDurably(
        absl::StrCat("/bulwark/plugins/", kArtifacts[artifact]),
        SimProcessLauncher::ExecutableContents(kSwappedPlugin), 0755));
  }
  const uint64_t generation = swap_generation_;
  loop_.PostAfter(duration, [this, node, artifact, generation] {
    if (generation != swap_generation_ || swap_depth_[artifact] == 0) return;
    if (--swap_depth_[artifact] == 0) RestoreArtifact(node, artifact);
  });
}

void Simulation::RestoreArtifact(int node, int artifact) {
  CHECK_OK(nodes_[node].node->disk().WriteFileDurably(
      absl::StrCat("/bulwark/plugins/", kArtifacts[artifact]),
      SimProcessLauncher::ExecutableContents(kArtifacts[artifact]), 0755));
  trace_.Add(Now(), node, "artifact-restored", kArtifacts[artifact]);
}

void Simulation::SlowPlugin(int node, int plugin, absl::Duration delay, absl::Duration duration) {
  const std::string name(kArtifacts[plugin]);
  nodes_[node].node->plugin_network().SetSlowdown(name, delay);
  const uint64_t generation = ++slow_generation_[plugin];
  loop_.PostAfter(duration, [this, node, plugin, name, generation] {
    if (slow_generation_[plugin] != generation) return;
    nodes_[node].node->plugin_network().SetSlowdown(name, absl::ZeroDuration());
  });
}

// ---------------------------------------------------------------------------------------------
// The operator: initializes, registers the kv plugins and mounts them, unseals whenever the node
// is sealed and no deliberate seal is in force, restarts a hung node (its supervisor's watchdog),
// rotates keys and seals now and then. Its requests to a node go one at a time, in order, so a
// seal and an unseal never overtake each other on the way.

void Simulation::OperatorSend(int node, Request request, Callback done) {
  nodes_[node].operator_queue.push_back(OperatorCall{std::move(request), std::move(done)});
  OperatorPump(node);
}

void Simulation::OperatorPump(int node) {
  NodeState& state = nodes_[node];
  if (state.operator_busy || state.operator_queue.empty()) return;
  OperatorCall call = std::move(state.operator_queue.front());
  state.operator_queue.pop_front();
  state.operator_busy = true;
  Send(
      node, std::move(call.request),
      [this, node, done = std::move(call.done)](const Response& response, bool answered) {
        nodes_[node].operator_busy = false;
        done(response, answered);
        OperatorPump(node);
      },
      SendOptions());
}

std::vector<std::string> Simulation::PickShares() {
  std::vector<std::string> shares = shares_;
  operator_random_.Shuffle(shares);
  shares.resize(std::min<size_t>(shares.size(), kThreshold));
  return shares;
}

void Simulation::OperatorInit() {
  Request request;
  request.kind = OpKind::kInit;
  request.shares = kShares;
  request.threshold = kThreshold;
  OperatorSend(0, request, [this](const Response& response, bool answered) {
    if (!answered || !response.status.ok()) {
      trace_.Add(Now(), 0, "init-retry", absl::StatusCodeToString(response.status.code()));
      loop_.PostAfter(kSetupRetry, [this] { OperatorInit(); });
      return;
    }
    shares_ = response.shares;
    for (const std::string& share : shares_) {
      scanner_.Add(share);
      scanner_.Add(absl::BytesToHexString(share));
      scanner_.Add(absl::Base64Escape(share));
    }
    initialized_ = true;
    MaybeUnseal(0);
  });
}

void Simulation::MaybeUnseal(int node) {
  NodeState& state = nodes_[node];
  if (!initialized_ || state.seal_depth > 0 || state.unseal_check_busy || state.wedged ||
      !state.node->running() || done_) {
    return;
  }
  state.unseal_check_busy = true;
  Request status;
  status.kind = OpKind::kStatus;
  OperatorSend(node, status, [this, node](const Response& response, bool answered) {
    NodeState& s = nodes_[node];
    if (!answered || !response.status.ok() || !response.sealed || s.seal_depth > 0) {
      s.unseal_check_busy = false;
      if (answered && response.status.ok() && !response.sealed && !mounts_ready_) {
        SetUpMounts(0);
      }
      return;
    }
    Request unseal;
    unseal.kind = OpKind::kUnseal;
    unseal.unseal_shares = PickShares();
    OperatorSend(node, unseal, [this, node](const Response& r, bool ok) {
      nodes_[node].unseal_check_busy = false;
      if (!ok || !r.status.ok() || r.sealed) return;
      trace_.Add(Now(), node, "unsealed", "");
      if (!mounts_ready_) SetUpMounts(0);
    });
  });
}

// The operator's one-time setup once unsealed: the kv plugins in the catalog, the data mounts.
// Steps are idempotent, so an interrupted setup starts again from the top.
void Simulation::SetUpMounts(size_t next) {
  if (next == 0) {
    if (setting_up_) return;
    setting_up_ = true;
  }
  const size_t registrations = kArtifactCount;
  const size_t total = registrations + static_cast<size_t>(scenario_.mounts);
  if (next >= total) {
    setting_up_ = false;
    mounts_ready_ = true;
    if (!ready_) OnReady();
    return;
  }
  Request request;
  if (next < registrations) {
    request.kind = OpKind::kRegister;
    catalog::RegisterRequest& r = request.registration;
    r.type = catalog::PluginType::kSecret;
    r.name = std::string(kArtifacts[next]);
    r.command = std::string(kArtifacts[next]);
    r.sha256 = artifact_sha_[next];
    r.env = {absl::StrCat("KV_TOKEN=", NewSecret(operator_random_))};
  } else {
    const int mount = static_cast<int>(next - registrations);
    request.kind = OpKind::kEnableMount;
    request.mount_path = absl::StrCat("m", mount);
    request.name = std::string(kMountPlugins[mount % 3]);
  }
  OperatorSend(0, request, [this, next](const Response& response, bool answered) {
    if (answered && (response.status.ok() || absl::IsAlreadyExists(response.status))) {
      SetUpMounts(next + 1);
      return;
    }
    trace_.Add(Now(), 0, "setup-retry", absl::StatusCodeToString(response.status.code()));
    setting_up_ = false;
    loop_.PostAfter(kSetupRetry, [this] {
      if (!mounts_ready_) SetUpMounts(0);
    });
  });
}

void Simulation::OperatorTick() {
  if (done_) return;
  for (size_t n = 0; n < nodes_.size(); ++n) {
    NodeState& state = nodes_[n];
    if (state.wedged && Now() - state.wedged_since >= scenario_.watchdog) {
      ProcessKill(static_cast<int>(n), kWatchdogRestart);
      continue;
    }
    if (state.become_active_due) BecomeActive(static_cast<int>(n), state.standby_generation);
    MaybeUnseal(static_cast<int>(n));
  }
  loop_.PostAfter(scenario_.operator_tick, [this] { OperatorTick(); });
}

void Simulation::OnReady() {
  ready_ = true;
  trace_.Add(Now(), -1, "ready", "");
  if (!config_.schedule.has_value() && scenario_.faults.buggify) {
    faultinject::BuggifyOptions options;
    options.seed = StableHash64("buggify", config_.seed);
    options.activation_probability = scenario_.faults.buggify_activation;
    options.fire_probability = scenario_.faults.buggify_fire;
    options.rules = scenario_.faults.buggify_rules;
    registry_.EnableBuggify(std::move(options));
  }
  for (int c = 1; c <= scenario_.clients; ++c) ClientLoop(c);
  if (scenario_.catalog_ops_per_min > 0) AdminLoop();
  if (scenario_.rotate_per_min > 0) {
    loop_.PostAfter(NextGap(operator_random_, scenario_.rotate_per_min),
                    [this] { OperatorRotateLoop(); });
  }
  if (scenario_.operator_seal_per_min > 0) {
    loop_.PostAfter(NextGap(operator_random_, scenario_.operator_seal_per_min),
                    [this] { OperatorSealLoop(); });
  }
}

void Simulation::OperatorRotateLoop() {
  if (quiet_) return;
  Request request;
  request.kind = OpKind::kRotate;
  OperatorSend(0, request, [](const Response&, bool) {});
  loop_.PostAfter(NextGap(operator_random_, scenario_.rotate_per_min),
                  [this] { OperatorRotateLoop(); });
}

void Simulation::OperatorSealLoop() {
  if (quiet_) return;
  OpenSealWindow(0, DrawMillis(operator_random_, absl::Seconds(1), absl::Seconds(5)));
  loop_.PostAfter(NextGap(operator_random_, scenario_.operator_seal_per_min),
                  [this] { OperatorSealLoop(); });
}

// ---------------------------------------------------------------------------------------------
// Clients. Data client c (1..clients) writes only its own keys — under its mount, or raw through
// the barrier — and reads and lists anyone's, one operation at a time, each drawn from its own
// random stream, so a fault that changes timing does not change what any client does next. The
// administrator registers and deletes catalog entries, mounts and unmounts them, reloads them.

std::string Simulation::DataKey(int client, int index, bool raw) const {
  if (raw) return absl::StrCat("raw/c", client, "/k", index);
  return absl::StrCat("m", client % scenario_.mounts, "/c", client, "/k", index);
}

std::string Simulation::Folder(int client, bool raw) const {
  if (raw) return absl::StrCat("raw/c", client, "/");
  return absl::StrCat("m", client % scenario_.mounts, "/c", client, "/");
}

void Simulation::ClientLoop(int client) {
  if (quiet_) return;
  Random& random = client_random_[static_cast<size_t>(client)];
  const absl::Duration think = DrawMillis(random, absl::ZeroDuration(), 2 * scenario_.think_mean);
  loop_.PostAfter(think, [this, client] { ClientOp(client); });
}

void Simulation::FinishClientOp() {
  if (++completions_ % kPruneEvery == 0) MaybePrune();
  if (quiet_) MaybeFinish();
}

void Simulation::MaybePrune() {
  const uint64_t oldest = running_reads_.empty() ? seq_ + 1 : *running_reads_.begin();
  model_.Prune(oldest);
}

void Simulation::ClientOp(int client) {
  if (quiet_) return;
  Random& random = client_random_[static_cast<size_t>(client)];
  if (config_.plant_nondeterminism_for_test && client == 1) {
    static std::atomic<uint64_t> planted{0};
    trace_.Add(Now(), -1, "planted", absl::StrCat(planted.fetch_add(1)));
  }
  const Scenario& s = scenario_;
  const uint64_t total =
      static_cast<uint64_t>(s.put_weight + s.get_weight + s.list_weight + s.delete_weight);
  // Everything the operation might need is drawn up front, whatever it turns out to be, so the
  // stream advances the same way on every path.
  const uint64_t pick = random.Uniform(std::max<uint64_t>(total, 1));
  const bool raw = random.Uniform(100) < static_cast<uint64_t>(s.raw_percent);
  const int own_key = static_cast<int>(random.Uniform(static_cast<uint64_t>(s.keys_per_client)));
  const int other_client = static_cast<int>(random.UniformInRange(1, s.clients));
  const int other_key = static_cast<int>(random.Uniform(static_cast<uint64_t>(s.keys_per_client)));
  const std::string secret = DrawSecret(random);  // Remembered as a secret only if written.

  OpKind kind;
  if (pick < static_cast<uint64_t>(s.put_weight)) {
    kind = raw ? OpKind::kRawPut : OpKind::kPut;
  } else if (pick < static_cast<uint64_t>(s.put_weight + s.get_weight)) {
    kind = raw ? OpKind::kRawGet : OpKind::kGet;
  } else if (pick < static_cast<uint64_t>(s.put_weight + s.get_weight + s.list_weight)) {
    kind = raw ? OpKind::kRawList : OpKind::kList;
  } else {
    kind = raw ? OpKind::kRawDelete : OpKind::kDelete;
  }
  Request request;
  request.kind = kind;
  if (kind == OpKind::kPut || kind == OpKind::kDelete || kind == OpKind::kRawPut ||
      kind == OpKind::kRawDelete) {
    const std::string key = DataKey(client, own_key, raw);
    request.key = key;
    KvModel::Value value;
    if (kind == OpKind::kPut || kind == OpKind::kRawPut) {
      scanner_.Add(secret);
      request.value = secret;
      value = secret;
    }
    // The send is sequence number seq_ + 1; the model learns of the write first.
    const uint64_t sent = seq_ + 1;
    const uint64_t version = model_.BeginWrite(key, value, sent);
    SendOptions options;
    options.client = true;
    Send(
        0, std::move(request),
        [this, client, key, version, kind, sent](const Response& response, bool answered) {
          const uint64_t at = ++seq_;
          KvModel::Outcome outcome = KvModel::Outcome::kUnknown;
          if (answered && response.status.ok()) {
            outcome = KvModel::Outcome::kAcked;
          } else if (answered && RefusedBeforeAnyEffect(response.status)) {
            outcome = KvModel::Outcome::kFailed;
          }
          model_.EndWrite(key, version, outcome, at);
          if (outcome == KvModel::Outcome::kAcked) CheckServedWhileSealed(0, kind, sent, at);
          FinishClientOp();
          ClientLoop(client);
        },
        options);
    return;
  }
  const uint64_t sent = seq_ + 1;
  running_reads_.insert(sent);
  if (kind == OpKind::kGet || kind == OpKind::kRawGet) {
    request.key = DataKey(other_client, other_key, raw);
  } else {
    request.key = Folder(other_client, raw);
  }
  const std::string key = request.key;
  SendOptions options;
  options.client = true;
  Send(
      0, std::move(request),
      [this, client, key, kind, sent](const Response& response, bool answered) {
        const uint64_t at = ++seq_;
        running_reads_.erase(running_reads_.find(sent));
        if (answered && response.status.ok()) {
          Count("durability");
          const bool get = kind == OpKind::kGet || kind == OpKind::kRawGet;
          const Verdict verdict = get ? model_.CheckRead(key, response.value, sent, at)
                                      : model_.CheckList(key, response.keys, sent, at);
          if (!verdict.ok) Violate(verdict.invariant, verdict.detail);
          CheckServedWhileSealed(0, kind, sent, at);
          CheckProcessSharing(0);
        }
        FinishClientOp();
        ClientLoop(client);
      },
      options);
}

void Simulation::CheckServedWhileSealed(int node, OpKind kind, uint64_t sent, uint64_t answered) {
  Count("sealed_read");
  for (const SealWindow& window : nodes_[node].windows) {
    if (window.start < sent && answered < window.end) {
      Violate("sealed_read",
              absl::StrCat(OpKindName(kind), " sent@", sent, " answered@", answered,
                           " succeeded inside the seal acknowledged@", window.start,
                           window.end == UINT64_MAX ? " (still sealed)"
                                                    : absl::StrCat(" unsealed@", window.end)));
      return;
    }
  }
}

void Simulation::CheckWhiteBox(int node, const Request& request, const Response& response) {
  if (!response.status.ok()) return;
  const bool catalog_op = request.kind == OpKind::kRegister ||
                          request.kind == OpKind::kUnregister ||
                          request.kind == OpKind::kCatalogGet;
  if (!IsDataOp(request.kind) && !catalog_op) return;
  Node& n = *nodes_[node].node;
  if (n.core() == nullptr) return;
  Count("sealed_read");
  // A request admitted before a seal began may finish while the node is still sealing (its
  // plugins are being stopped; the barrier is open): Vault, too, lets in-flight requests finish
  // before it seals. Once the barrier itself is sealed, nothing may succeed.
  if (n.core()->barrier().sealed()) {
    Violate("sealed_read",
            absl::StrCat(OpKindName(request.kind), " of \"", request.key, request.name,
                         "\" succeeded although the barrier reports itself sealed"));
  }
}

void Simulation::AdminLoop() {
  if (quiet_) return;
  loop_.PostAfter(NextGap(admin_random_, scenario_.catalog_ops_per_min), [this] { AdminOp(); });
}

void Simulation::AdminOp() {
  if (quiet_) return;
  Random& random = admin_random_;
  const uint64_t pick = random.Uniform(100);
  const int name_index = static_cast<int>(random.Uniform(kCatalogNames));
  const std::string version(kVersions[random.Uniform(std::size(kVersions))]);
  const int artifact = static_cast<int>(random.Uniform(kArtifactCount));
  const bool wrong_sha = random.Bernoulli(scenario_.wrong_sha_probability);
  const std::string token = DrawSecret(random);
  const std::string name = absl::StrCat("plug-", name_index);
  const std::string key = absl::StrCat(name, "@", version);

  Request request;
  request.type = catalog::PluginType::kSecret;
  request.name = name;
  request.version = version;
  SendOptions options;
  options.client = true;
  if (pick < 35) {
    scanner_.Add(token);
    request.kind = OpKind::kRegister;
    catalog::RegisterRequest& r = request.registration;
    r.type = catalog::PluginType::kSecret;
    r.name = name;
    r.version = version;
    r.command = std::string(kArtifacts[artifact]);
    r.args = {"--serve"};
    r.env = {absl::StrCat("PLUGIN_TOKEN=", token)};
    r.sha256 =
        artifact_sha_[static_cast<size_t>(wrong_sha ? (artifact + 1) % kArtifactCount : artifact)];
    std::optional<uint64_t> version_number;
    const uint64_t sent = seq_ + 1;
    if (!wrong_sha) version_number = catalog_model_.BeginWrite(key, r.sha256, sent);
    Send(
        0, std::move(request),
        [this, key, wrong_sha, version_number, sent](const Response& response, bool answered) {
          const uint64_t at = ++seq_;
          if (wrong_sha) {
            Count("launch_hash");
            if (answered && response.status.ok()) {
              Violate("launch_hash",
                      absl::StrCat("the catalog accepted ", key,
                                   " registered with a sha256 that is not its artifact's"));
            }
          } else {
            KvModel::Outcome outcome = KvModel::Outcome::kUnknown;
            if (answered && response.status.ok()) {
              outcome = KvModel::Outcome::kAcked;
            } else if (answered) {
              const std::optional<catalog::CatalogError> reason =
                  catalog::CatalogErrorOf(response.status);
              // Refusals decided before the storage write leave nothing behind.
              if ((reason.has_value() && *reason != catalog::CatalogError::kStorageError) ||
                  RefusedBeforeAnyEffect(response.status)) {
                outcome = KvModel::Outcome::kFailed;
              }
            }
            catalog_model_.EndWrite(key, *version_number, outcome, at);
            if (outcome == KvModel::Outcome::kAcked) {
              CheckServedWhileSealed(0, OpKind::kRegister, sent, at);
            }
          }
          FinishClientOp();
          AdminLoop();
        },
        options);
    return;
  }
  if (pick < 45) {
    request.kind = OpKind::kUnregister;
    const uint64_t sent = seq_ + 1;
    const uint64_t number = catalog_model_.BeginWrite(key, std::nullopt, sent);
    Send(
        0, std::move(request),
        [this, key, number, sent](const Response& response, bool answered) {
          const uint64_t at = ++seq_;
          KvModel::Outcome outcome = KvModel::Outcome::kUnknown;
          if (answered && response.status.ok()) {
            outcome = KvModel::Outcome::kAcked;
          } else if (answered && RefusedBeforeAnyEffect(response.status)) {
            outcome = KvModel::Outcome::kFailed;
          }
          catalog_model_.EndWrite(key, number, outcome, at);
          if (outcome == KvModel::Outcome::kAcked) {
            CheckServedWhileSealed(0, OpKind::kUnregister, sent, at);
          }
          FinishClientOp();
          AdminLoop();
        },
        options);
    return;
  }
  if (pick < 60) {
    request.kind = OpKind::kCatalogGet;
    const uint64_t sent = seq_ + 1;
    Send(
        0, std::move(request),
        [this, key, sent](const Response& response, bool answered) {
          const uint64_t at = ++seq_;
          if (answered && (response.status.ok() || absl::IsNotFound(response.status))) {
            Count("durability");
            KvModel::Value seen;
            if (response.status.ok()) {
              CheckServedWhileSealed(0, OpKind::kCatalogGet, sent, at);
              seen = response.view->sha256_hex;
            }
            const Verdict verdict = catalog_model_.CheckRead(key, seen, sent, at);
            if (!verdict.ok) Violate(verdict.invariant, "catalog " + verdict.detail);
          }
          FinishClientOp();
          AdminLoop();
        },
        options);
    return;
  }
  // Mounting, unmounting and reloading start and stop plugin processes: every start is checked
  // at the launcher (OnSpawn) against the artifacts' real hashes.
  if (pick < 80) {
    request.kind = OpKind::kEnableMount;
    request.mount_path = absl::StrCat("x", name_index);
  } else if (pick < 90) {
    request.kind = OpKind::kDisableMount;
    request.mount_path = absl::StrCat("x", name_index);
  } else {
    request.kind = OpKind::kReload;
  }
  Send(
      0, std::move(request),
      [this](const Response&, bool) {
        FinishClientOp();
        AdminLoop();
      },
      options);
}

// ---------------------------------------------------------------------------------------------
// The end: faults stop, the node must come back, then everything is read once more.

void Simulation::StartQuiet() {
  quiet_ = true;
  trace_.Add(Now(), -1, "quiet", "");
  registry_.ClearAll();
  registry_.DisableBuggify();
  if (!config_.failpoints.empty()) CHECK_OK(registry_.Configure(config_.failpoints));
  for (size_t n = 0; n < nodes_.size(); ++n) {
    NodeState& state = nodes_[n];
    state.node->fs().Disarm();
    CloseAllSealWindows(static_cast<int>(n));
    if (state.standby_depth > 0) BecomeActive(static_cast<int>(n), state.standby_generation);
    for (absl::string_view artifact : kArtifacts) {
      state.node->plugin_network().SetSlowdown(std::string(artifact), absl::ZeroDuration());
    }
  }
  for (auto& [plugin, generation] : slow_generation_) ++generation;
  ++swap_generation_;
  for (int i = 0; i < kArtifactCount; ++i) {
    if (swap_depth_[i] > 0) {
      swap_depth_[i] = 0;
      RestoreArtifact(0, i);
    }
  }
  live_deadline_ = Now() + scenario_.liveness_bound;
  for (size_t n = 0; n < nodes_.size(); ++n) MaybeUnseal(static_cast<int>(n));
  ProbeTick();
}

void Simulation::ProbeTick() {
  if (live_ || done_) return;
  if (Now() > live_deadline_) {
    Count("liveness");
    Violate("liveness",
            absl::StrCat("the node did not serve a write and a read within ",
                         absl::FormatDuration(scenario_.liveness_bound),
                         " after faults stopped; last probe: ",
                         last_probe_error_.empty() ? "none answered" : last_probe_error_));
    done_ = true;
    return;
  }
  if (!probe_busy_) {
    probe_busy_ = true;
    const std::string key = absl::StrCat("m0/probe/p", probes_++);
    const std::string value = NewSecret(probe_random_);
    Request put;
    put.kind = OpKind::kPut;
    put.key = key;
    put.value = value;
    Send(
        0, put,
        [this, key, value](const Response& response, bool) {
          if (!response.status.ok()) {
            probe_busy_ = false;
            last_probe_error_ = response.status.ToString();
            return;
          }
          Request get;
          get.kind = OpKind::kGet;
          get.key = key;
          Send(
              0, get,
              [this, value](const Response& r, bool) {
                probe_busy_ = false;
                if (!r.status.ok() || r.value != value) {
                  last_probe_error_ =
                      r.status.ok() ? "read back a different value" : r.status.ToString();
                  return;
                }
                Count("liveness");
                live_ = true;
                trace_.Add(Now(), 0, "live", "");
                MaybeFinish();
              },
              SendOptions());
        },
        SendOptions());
  }
  loop_.PostAfter(kProbeInterval, [this] { ProbeTick(); });
}

void Simulation::MaybeFinish() {
  if (!live_ || finishing_ || client_ops_in_flight_ > 0) return;
  finishing_ = true;
  BuildFinalChecks();
  loop_.Post([this] { RunFinalCheck(0); });
}

void Simulation::BuildFinalChecks() {
  // A request whose plugin crashes under it must still succeed: lazy reload and one retry. One
  // warm-up read first, so the check starts from a working plugin, not from a crash-loop backoff.
  for (int m = 0; m < scenario_.mounts && m < 2; ++m) {
    FinalCheck warm;
    warm.request.kind = OpKind::kGet;
    warm.request.key = absl::StrCat("m", m, "/reload-check");
    final_checks_.push_back(warm);
    FinalCheck check = warm;
    check.crash_under_request = true;
    final_checks_.push_back(check);
  }
  for (const std::string& key : model_.Keys()) {
    FinalCheck check;
    check.request.kind = absl::StartsWith(key, "raw/") ? OpKind::kRawGet : OpKind::kGet;
    check.request.key = key;
    check.model_key = key;
    final_checks_.push_back(check);
  }
  for (int c = 1; c <= scenario_.clients; ++c) {
    for (bool raw : {false, true}) {
      FinalCheck check;
      check.request.kind = raw ? OpKind::kRawList : OpKind::kList;
      check.request.key = Folder(c, raw);
      check.model_key = check.request.key;
      final_checks_.push_back(check);
    }
  }
  for (const std::string& key : catalog_model_.Keys()) {
    FinalCheck check;
    check.catalog = true;
    check.model_key = key;
    const size_t at = key.find('@');
    check.request.kind = OpKind::kCatalogGet;
    check.request.type = catalog::PluginType::kSecret;
    check.request.name = key.substr(0, at);
    check.request.version = key.substr(at + 1);
    final_checks_.push_back(check);
    // A settled entry must launch again now that every artifact is back (checked at spawn).
    KvModel::Value settled;
    if (catalog_model_.Settled(key, &settled) && settled.has_value()) {
      FinalCheck launch = check;
      launch.catalog = false;
      launch.model_key.clear();
      launch.request.kind = OpKind::kEnableMount;
      launch.request.mount_path = absl::StrCat("final/", final_checks_.size());
      final_checks_.push_back(launch);
    }
  }
}

void Simulation::RunFinalCheck(size_t index) {
  if (done_) return;
  if (index >= final_checks_.size()) {
    trace_.Add(Now(), -1, "done", "");
    done_ = true;
    return;
  }
  FinalCheck& check = final_checks_[index];
  ++check.attempts;
  const uint64_t sent = seq_ + 1;
  SendOptions options;
  options.crash_plugins_after_delivery = check.crash_under_request;
  Send(
      0, check.request,
      [this, index, sent](const Response& response, bool answered) {
        const uint64_t at = ++seq_;
        FinalCheck& c = final_checks_[index];
        const bool refused_for_now = !response.status.ok() && !c.crash_under_request &&
                                     !(c.catalog && absl::IsNotFound(response.status));
        if (refused_for_now && c.attempts < kFinalAttemptsMax) {
          // A plugin in crash-loop backoff, a mount still coming up: try again shortly.
          loop_.PostAfter(kFinalRetry, [this, index] { RunFinalCheck(index); });
          return;
        }
        const std::string what = absl::StrCat("final ", OpKindName(c.request.kind), " of \"",
                                              c.request.key, c.request.name, "\"");
        if (c.crash_under_request) {
          Count("reload");
          if (!answered || !response.status.ok()) {
            Violate("reload", absl::StrCat(what,
                                           " failed when its plugin process crashed "
                                           "under it, with no other fault active: ",
                                           response.status.ToString()));
          }
        } else if (refused_for_now) {
          Count("liveness");
          Violate("liveness", absl::StrCat(what, " still failed after ", c.attempts,
                                           " attempts: ", response.status.ToString()));
        } else if (!c.model_key.empty()) {
          Count("durability");
          Verdict verdict;
          if (c.catalog) {
            KvModel::Value seen;
            if (response.status.ok()) seen = response.view->sha256_hex;
            verdict = catalog_model_.CheckRead(c.model_key, seen, sent, at);
          } else if (c.request.kind == OpKind::kGet || c.request.kind == OpKind::kRawGet) {
            verdict = model_.CheckRead(c.model_key, response.value, sent, at);
          } else {
            verdict = model_.CheckList(c.model_key, response.keys, sent, at);
          }
          if (!verdict.ok) Violate(verdict.invariant, "final " + verdict.detail);
        }
        loop_.Post([this, index] { RunFinalCheck(index + 1); });
      },
      options);
}

RunResult Simulation::Run() {
  faultinject::ScopedInstall install(registry_);
  registry_.SetEffects(this);
  registry_.SetObserver([this](const faultinject::FireEvent& event) { OnFire(event); });
  if (!config_.failpoints.empty()) CHECK_OK(registry_.Configure(config_.failpoints));

  for (int n = 0; n < scenario_.nodes; ++n) SetUpNode(n);
  if (config_.schedule.has_value()) {
    CompileSchedule(*config_.schedule);
    if (!config_.failpoints.empty()) CHECK_OK(registry_.Configure(config_.failpoints));
  } else {
    timed_faults_ = DrawTimedFaults();
  }
  for (const FaultEvent& event : timed_faults_) {
    loop_.PostAfter(absl::Milliseconds(event.at_ms), [this, event] { ApplyFault(event); });
  }
  loop_.Post([this] { OperatorInit(); });
  loop_.PostAfter(scenario_.operator_tick, [this] { OperatorTick(); });
  loop_.PostAfter(scenario_.workload, [this] { StartQuiet(); });

  while (!done_) {
    if (loop_.steps_run() >= config_.steps_max) {
      result_.capped = true;
      Violate("caps", absl::StrCat("the run reached its step cap of ", config_.steps_max, " at ",
                                   absl::FormatDuration(Now())));
      break;
    }
    absl::Duration next;
    if (!loop_.NextDeadline(&next)) {
      Violate("liveness", "the simulation ran out of work before the end checks");
      break;
    }
    if (next > config_.sim_time_max) {
      result_.capped = true;
      Violate("caps", absl::StrCat("the run reached its simulated-time cap of ",
                                   absl::FormatDuration(config_.sim_time_max)));
      break;
    }
    if (config_.stop_after > absl::ZeroDuration() && next > config_.stop_after) {
      result_.stopped_early = true;
      break;
    }
    loop_.Step();
    if (config_.stop_at_first_violation && !result_.violations.empty()) break;
  }

  result_.seed = config_.seed;
  result_.scenario = scenario_.name;
  if (config_.schedule.has_value()) {
    result_.schedule = *config_.schedule;
  } else {
    result_.schedule = timed_faults_;
    result_.schedule.insert(result_.schedule.end(), fires_.begin(), fires_.end());
  }
  SortSchedule(result_.schedule);
  result_.trace_hash = trace_.hash();
  result_.trace_events = trace_.count();
  result_.sim_time = Now();
  result_.steps = loop_.steps_run();
  result_.failpoints = registry_.Stats();
  if (config_.record_trace) result_.trace = trace_.events();
  // Stop the nodes while the registry is still installed and this object whole.
  for (NodeState& state : nodes_) state.node->Stop();
  return std::move(result_);
}

}  // namespace

RunResult RunSimulation(const RunConfig& config) {
  Simulation simulation(config);
  return simulation.Run();
}

}  // namespace bulwark::sim
