// The cluster model (see cluster.h).
#include "sim/cluster.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/env/sim/sim_process_launcher.h"
#include "base/status/check.h"
#include "sim/actors/actor.h"
#include "sim/ha/ha_cluster.h"
#include "sim/invariants/invariant.h"
#include "sim/network.h"
#include "sim/world.h"

namespace bulwark::sim {

using faultinject::Action;
using faultinject::ActionKind;

Cluster::Cluster(World& world) : world_(world) {}

Cluster::~Cluster() = default;

void Cluster::WriteWorld(SimFileSystem& disk) {
  CHECK_OK(disk.CreateDir("/bulwark", 0755));
  CHECK_OK(disk.CreateDir("/bulwark/plugins", 0755));
  CHECK_OK(disk.CreateDir("/bulwark/run", 0700));
  CHECK_OK(disk.SyncDir("/"));
  CHECK_OK(disk.SyncDir("/bulwark"));
  for (absl::string_view artifact : kArtifacts) {
    CHECK_OK(disk.WriteFileDurably(absl::StrCat("/bulwark/plugins/", artifact),
                                   SimProcessLauncher::ExecutableContents(artifact), 0755));
  }
  CHECK_OK(disk.WriteFileDurably(absl::StrCat("/bulwark/plugins/", kCrashingPlugin),
                                 SimProcessLauncher::ExecutableContents(kCrashingPlugin), 0755));
  CHECK_OK(disk.WriteFileDurably(absl::StrCat("/bulwark/plugins/", kBadHandshakePlugin),
                                 SimProcessLauncher::ExecutableContents(kBadHandshakePlugin),
                                 0755));
  // What the rule prober's symlinks lead to: a genuine artifact, but outside the directory.
  CHECK_OK(disk.CreateDir(kOutsideDir, 0755));
  CHECK_OK(disk.WriteFileDurably(absl::StrCat(kOutsideDir, "/", kPluginMultiplexed),
                                 SimProcessLauncher::ExecutableContents(kPluginMultiplexed), 0755));
  CHECK_OK(disk.CreateSymlink(absl::StrCat("../outside/", kPluginMultiplexed),
                              absl::StrCat("/bulwark/plugins/", kEscapingLink)));
  CHECK_OK(disk.CreateSymlink(kPluginMultiplexed, absl::StrCat("/bulwark/plugins/", kHopLink)));
  if (world_.scenario.signatures_required) {
    CHECK_OK(disk.WriteFileDurably("/bulwark/allowed_signers", world_.allowed_signers_text, 0644));
  }
  CHECK_OK(disk.SyncDir("/bulwark"));
  CHECK_OK(disk.SyncDir("/bulwark/plugins"));
}

void Cluster::AddMachine(int id) {
  NodeOptions options;
  options.id = id;
  options.seed = StableHash64(absl::StrCat("node/", id), world_.config.seed);
  options.plugin = world_.config.plugin;
  options.signatures_required = world_.scenario.signatures_required;
  Machine built;
  if (id == 0) {
    built.registry = &world_.registry;
  } else {
    built.own_failpoint_random = std::make_unique<SeededRandom>(
        world_.root_random.Derive(absl::StrCat("failpoints/node/", id)));
    built.own_registry = std::make_unique<faultinject::Registry>(*built.own_failpoint_random);
    built.own_registry->SetEffects(this);
    built.registry = built.own_registry.get();
  }
  options.failpoints = built.registry;
  NodeHooks hooks;
  hooks.trace = [this](int node, absl::string_view kind, absl::string_view payload) {
    world_.ScanText(kind, payload);
    world_.trace.Add(world_.Now(), node, kind, payload);
  };
  hooks.log = [this](int node, absl::string_view line) {
    world_.ScanText("log line", line);
    world_.trace.Add(world_.Now(), node, "log", line);
  };
  hooks.before_task = [this](int node) {
    world_.trace.Add(world_.Now(), node, "task", "");
    active_ = node;
  };
  hooks.after_task = [this](int node) {
    active_ = -1;
    AfterNodeCode(node);
  };
  hooks.power_lost = [this](int node, CrashMode mode) { machine(node).power_lost = mode; };
  hooks.spawning = [this](int node, absl::string_view path, absl::string_view sha256) {
    OnSpawn(node, path, sha256);
  };
  if (world_.ha) world_.ha->Configure(id, options);
  built.node = std::make_unique<Node>(options, world_.loop, world_.clock, std::move(hooks));
  if (world_.ha) built.node->AddComponent(world_.ha->MakeComponent(id));
  WriteWorld(built.node->disk());
  machines_.push_back(std::move(built));
  world_.seal_windows.emplace_back();
  const absl::Status started = machines_.back().node->Start();
  CHECK_OK(started) << "a fresh node must start";
}

void Cluster::OnSpawn(int node, absl::string_view path, absl::string_view sha256) {
  world_.trace.Add(world_.Now(), node, "spawn", absl::StrCat(path, " ", sha256));
  world_.invariants->OnSpawn(node, path, sha256);
}

absl::Status Cluster::Apply(absl::string_view name, const Action& action) {
  if (active_ < 0) return absl::OkStatus();
  Machine& m = machine(active_);
  const FaultMix& mix = world_.scenario.faults;
  switch (action.kind) {
    case ActionKind::kDelay:
      // A slow step: the node answers its next request that much later.
      m.delay_debt += action.delay;
      return absl::OkStatus();
    case ActionKind::kHang:
      // The process stops right here: nothing after this point reaches the disk or a client.
      m.node->fs().Kill();
      m.hang_requested = true;
      return absl::UnavailableError(absl::StrCat("failpoint ", name, ": the process hangs"));
    case ActionKind::kCrash: {
      m.node->fs().Kill();
      SeededRandom random(
          StableHash64(absl::StrCat("fp-crash/", name, "@", absl::ToInt64Nanoseconds(world_.Now())),
                       world_.config.seed));
      m.power_lost = random.Bernoulli(mix.tear_probability) ? CrashMode::kTearUnsynced
                                                            : CrashMode::kDropUnsynced;
      m.restart_delay = DrawMillis(random, mix.restart_min, mix.restart_max);
      return absl::UnavailableError(absl::StrCat("failpoint ", name, ": the machine crashes"));
    }
    default:
      return absl::OkStatus();
  }
}

bool Cluster::AfterNodeCode(int id) {
  Machine& m = machine(id);
  if (m.power_lost.has_value()) {
    const CrashMode mode = *m.power_lost;
    m.power_lost.reset();
    m.hang_requested = false;
    PowerLoss(id, mode, m.restart_delay);
    return false;
  }
  if (m.hang_requested) {
    m.hang_requested = false;
    Wedge(id);
    return false;
  }
  return true;
}

void Cluster::PowerLoss(int id, CrashMode mode, absl::Duration restart) {
  Machine& m = machine(id);
  world_.network->ConnectionsBroke(id);
  m.node->Stop();
  m.wedged = false;
  // Each power loss tears the disk from its own stream: removing another fault does not change
  // what this one keeps.
  m.node->disk_random().Reseed(StableHash64(
      absl::StrCat("tear/", id, "@", absl::ToInt64Nanoseconds(world_.Now())), world_.config.seed));
  m.node->disk().Crash(mode);
  world_.trace.Add(world_.Now(), id, "power-loss",
                   mode == CrashMode::kDropUnsynced ? "drop" : "tear");
  world_.loop.PostAfter(restart, [this, id] { Restart(id); });
}

void Cluster::ProcessKill(int id, absl::Duration restart) {
  Machine& m = machine(id);
  world_.network->ConnectionsBroke(id);
  m.node->Stop();
  m.wedged = false;
  world_.trace.Add(world_.Now(), id, "kill", "");
  world_.loop.PostAfter(restart, [this, id] { Restart(id); });
}

void Cluster::Wedge(int id) {
  Machine& m = machine(id);
  world_.network->ConnectionsBroke(id);
  m.node->executor().Kill();  // Nothing of the process (or its plugins) runs any more.
  m.wedged = true;
  m.wedged_since = world_.Now();
  world_.trace.Add(world_.Now(), id, "hang", "");
}

void Cluster::Restart(int id) {
  Machine& m = machine(id);
  if (m.node->running()) return;
  EnterNode(id);
  const absl::Status started = m.node->Start();
  LeaveNode();
  // An armed crash may strike during recovery itself: that is another power loss, not a failure.
  const bool died = !AfterNodeCode(id);
  if (world_.ha && !died && absl::IsUnavailable(started)) {
    // An HA node cannot open while the store is out of reach; its supervisor tries again.
    world_.trace.Add(world_.Now(), id, "restart-retry", "store unreachable");
    world_.loop.PostAfter(restart_retry_, [this, id] { Restart(id); });
    return;
  }
  world_.invariants->OnRestart(id, started, died);
  if (died || !started.ok()) return;
  world_.trace.Add(world_.Now(), id, "restarted", "");
  m.standby_depth = 0;  // A fresh process starts active.
  m.stepping_down = false;
  m.become_active_due = false;
  ++m.standby_generation;
  world_.NodeRestarted(id);
}

// A step-down lasts `duration`, and at least until the node has finished stepping down: a node
// that is still stopping its plugins does not campaign for the active role again.
void Cluster::StepDown(int id, absl::Duration duration) {
  Machine& m = machine(id);
  m.standby_depth = 1;
  m.stepping_down = true;
  const uint64_t generation = m.standby_generation;
  const uint64_t epoch = m.epoch;
  EnterNode(id);
  m.node->core()->StepDown([this, id, epoch, generation] {
    Machine& s = machine(id);
    if (s.epoch != epoch) return;
    s.stepping_down = false;
    world_.invariants->OnSteppedDown(id);
    if (s.become_active_due) BecomeActive(id, generation);
  });
  LeaveNode();
  if (!AfterNodeCode(id)) return;
  world_.loop.PostAfter(duration, [this, id, generation] { BecomeActive(id, generation); });
}

void Cluster::BecomeActive(int id, uint64_t generation) {
  Machine& m = machine(id);
  if (m.standby_generation != generation || m.standby_depth == 0) return;
  // Nor does a sealed (or sealing) node: an HA layer campaigns only once unsealed. The operator's
  // tick retries until the node is unsealed again.
  if (m.stepping_down || (m.up() && m.node->core()->sealed())) {
    m.become_active_due = true;
    return;
  }
  m.become_active_due = false;
  m.standby_depth = 0;
  ++m.standby_generation;
  if (!m.up()) return;  // A restart comes back active anyway.
  EnterNode(id);
  m.node->core()->BecomeActive([this, id](absl::Status status) {
    world_.trace.Add(world_.Now(), id, "active", absl::StatusCodeToString(status.code()));
  });
  LeaveNode();
  AfterNodeCode(id);
}

void Cluster::StopAll() {
  for (Machine& m : machines_) m.node->Stop();
}

}  // namespace bulwark::sim
