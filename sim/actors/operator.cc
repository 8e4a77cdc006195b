// The operator (see operator.h).
#include "sim/actors/operator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "sim/cluster.h"
#include "sim/ha/ha_cluster.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

constexpr int kShares = 5;
constexpr int kThreshold = 3;
constexpr absl::Duration kSetupRetry = absl::Seconds(1);
constexpr absl::Duration kWatchdogRestart = absl::Milliseconds(100);

}  // namespace

Operator::Operator(World& world) : world_(world), random_(world.root_random.Derive("operator")) {}

Operator::PerNode& Operator::at(int node) {
  if (nodes_.size() <= static_cast<size_t>(node)) nodes_.resize(static_cast<size_t>(node) + 1);
  return nodes_[static_cast<size_t>(node)];
}

void Operator::Start() {
  world_.loop.Post([this] { Init(); });
  world_.loop.PostAfter(world_.scenario.operator_tick, [this] { Tick(); });
}

void Operator::Send(int node, Request request, Network::Callback done) {
  at(node).queue.push_back(Call{std::move(request), std::move(done)});
  Pump(node);
}

void Operator::Pump(int node) {
  PerNode& state = at(node);
  if (state.busy || state.queue.empty()) return;
  Call call = std::move(state.queue.front());
  state.queue.pop_front();
  state.busy = true;
  world_.network->Send(
      node, std::move(call.request),
      [this, node, done = std::move(call.done)](const Response& response, bool answered) {
        at(node).busy = false;
        done(response, answered);
        Pump(node);
      },
      Network::SendOptions());
}

std::vector<std::string> Operator::PickShares() {
  std::vector<std::string> shares = world_.unseal_shares;
  random_.Shuffle(shares);
  shares.resize(std::min<size_t>(shares.size(), kThreshold));
  return shares;
}

void Operator::Init() {
  Request request;
  request.kind = OpKind::kInit;
  request.shares = kShares;
  request.threshold = kThreshold;
  Send(0, request, [this](const Response& response, bool answered) {
    if (!answered || !response.status.ok()) {
      world_.trace.Add(world_.Now(), 0, "init-retry",
                       absl::StatusCodeToString(response.status.code()));
      world_.loop.PostAfter(kSetupRetry, [this] { Init(); });
      return;
    }
    world_.unseal_shares = response.shares;
    for (const std::string& share : world_.unseal_shares) {
      world_.scanner.Add(share);
      world_.scanner.Add(absl::BytesToHexString(share));
      world_.scanner.Add(absl::Base64Escape(share));
    }
    world_.initialized = true;
    MaybeUnseal(0);
  });
}

void Operator::MaybeUnseal(int node) {
  PerNode& state = at(node);
  Machine& m = world_.cluster->machine(node);
  if (!world_.initialized || state.seal_depth > 0 || state.unseal_check_busy || m.wedged ||
      !m.node->running() || world_.done) {
    return;
  }
  state.unseal_check_busy = true;
  Request status;
  status.kind = OpKind::kStatus;
  Send(node, status, [this, node](const Response& response, bool answered) {
    PerNode& s = at(node);
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
    Send(node, unseal, [this, node](const Response& r, bool ok) {
      at(node).unseal_check_busy = false;
      if (!ok || !r.status.ok() || r.sealed) return;
      world_.trace.Add(world_.Now(), node, "unsealed", "");
      if (!mounts_ready_) SetUpMounts(0);
    });
  });
}

// The one-time setup once unsealed: the kv plugins in the catalog, the data mounts. Steps are
// idempotent, so an interrupted setup starts again from the top.
void Operator::SetUpMounts(size_t next) {
  if (next == 0) {
    if (setting_up_) return;
    setting_up_ = true;
  }
  const size_t registrations = kArtifactCount;
  const size_t total = registrations + static_cast<size_t>(world_.scenario.mounts);
  if (next >= total) {
    setting_up_ = false;
    mounts_ready_ = true;
    if (!world_.ready) world_.BeginWorkload();
    return;
  }
  Request request;
  if (next < registrations) {
    request.kind = OpKind::kRegister;
    catalog::RegisterRequest& r = request.registration;
    r.type = catalog::PluginType::kSecret;
    r.name = std::string(kArtifacts[next]);
    r.command = std::string(kArtifacts[next]);
    r.sha256 = world_.artifact_sha[next];
    r.env = {absl::StrCat("KV_TOKEN=", world_.NewSecret(random_))};
  } else {
    const int mount = static_cast<int>(next - registrations);
    request.kind = OpKind::kEnableMount;
    request.mount_path = absl::StrCat("m", mount);
    request.name = std::string(kMountPlugins[mount % 3]);
  }
  Send(0, request, [this, next](const Response& response, bool answered) {
    if (answered && (response.status.ok() || absl::IsAlreadyExists(response.status))) {
      SetUpMounts(next + 1);
      return;
    }
    world_.trace.Add(world_.Now(), 0, "setup-retry",
                     absl::StatusCodeToString(response.status.code()));
    setting_up_ = false;
    world_.loop.PostAfter(kSetupRetry, [this] {
      if (!mounts_ready_) SetUpMounts(0);
    });
  });
}

void Operator::Tick() {
  if (world_.done) return;
  Cluster& cluster = *world_.cluster;
  for (int n = 0; n < cluster.size(); ++n) {
    Machine& m = cluster.machine(n);
    if (m.wedged && world_.Now() - m.wedged_since >= world_.scenario.watchdog) {
      cluster.ProcessKill(n, kWatchdogRestart);
      continue;
    }
    if (m.become_active_due) cluster.BecomeActive(n, m.standby_generation);
    MaybeUnseal(n);
  }
  world_.loop.PostAfter(world_.scenario.operator_tick, [this] { Tick(); });
}

void Operator::OnReady() {
  const Scenario& s = world_.scenario;
  if (s.rotate_per_min > 0) {
    world_.loop.PostAfter(NextGap(random_, s.rotate_per_min), [this] { RotateLoop(); });
  }
  if (s.operator_seal_per_min > 0) {
    world_.loop.PostAfter(NextGap(random_, s.operator_seal_per_min), [this] { SealLoop(); });
  }
}

void Operator::RotateLoop() {
  if (world_.quiet) return;
  Request request;
  request.kind = OpKind::kRotate;
  // On a cluster, sys/rotate goes to the active node (node 0 while none is known; a standby
  // forwards it).
  const int active = world_.ha ? world_.ha->Active() : -1;
  Send(std::max(active, 0), request, [](const Response&, bool) {});
  world_.loop.PostAfter(NextGap(random_, world_.scenario.rotate_per_min), [this] { RotateLoop(); });
}

void Operator::SealLoop() {
  if (world_.quiet) return;
  SealFor(0, DrawMillis(random_, absl::Seconds(1), absl::Seconds(5)));
  world_.loop.PostAfter(NextGap(random_, world_.scenario.operator_seal_per_min),
                        [this] { SealLoop(); });
}

void Operator::SealFor(int node, absl::Duration duration) {
  PerNode& state = at(node);
  ++state.seal_depth;
  const uint64_t generation = state.seal_generation;
  Request request;
  request.kind = OpKind::kSeal;
  Send(node, request, [this, node, generation](const Response& response, bool answered) {
    PerNode& s = at(node);
    if (answered && response.status.ok() && s.seal_depth > 0 && s.seal_generation == generation) {
      world_.seal_windows[static_cast<size_t>(node)].push_back(
          SealWindow{world_.NextSeq(), UINT64_MAX});
    }
  });
  world_.loop.PostAfter(duration, [this, node, generation] { CloseSealWindow(node, generation); });
}

void Operator::CloseSealWindow(int node, uint64_t generation) {
  PerNode& state = at(node);
  if (state.seal_generation != generation || state.seal_depth == 0) return;
  if (--state.seal_depth > 0) return;
  CloseAllSealWindows(node);
  MaybeUnseal(node);
}

void Operator::CloseAllSealWindows(int node) {
  PerNode& state = at(node);
  state.seal_depth = 0;
  ++state.seal_generation;
  const uint64_t end = world_.NextSeq();
  for (SealWindow& window : world_.seal_windows[static_cast<size_t>(node)]) {
    if (window.end == UINT64_MAX) window.end = end;
  }
}

void Operator::OnQuiet() {
  for (int n = 0; n < world_.cluster->size(); ++n) CloseAllSealWindows(n);
  for (int n = 0; n < world_.cluster->size(); ++n) MaybeUnseal(n);
}

void Operator::OnNodeRestarted(int node) { MaybeUnseal(node); }

}  // namespace bulwark::sim
