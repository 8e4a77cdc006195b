// The simulated HA cluster (see ha_cluster.h).
#include "sim/ha/ha_cluster.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/status/check.h"
#include "core/ha/leadership.h"
#include "sim/cluster.h"
#include "sim/world.h"

namespace bulwark::sim {

namespace {

constexpr absl::string_view kPath = "/bulwark/";
constexpr absl::string_view kAddressPrefix = "sim://node-";

// The requests a standby answers itself (Vault's unauthenticated sys/ endpoints that a standby
// serves: seal status, unseal, init) or that act on the node itself (seal).
bool StandbyServes(OpKind kind) {
  return kind == OpKind::kInit || kind == OpKind::kUnseal || kind == OpKind::kSeal ||
         kind == OpKind::kStatus;
}

}  // namespace

// One node's HA part: the real Leadership over the node's SimEtcdCoordinator and SimEtcdStorage.
class HaComponent final : public NodeComponent {
 public:
  HaComponent(HaCluster& cluster, int id) : cluster_(cluster), id_(id) {}

  absl::string_view name() const override { return "ha"; }

  absl::Status OnStart(Node& node) override {
    etcd::SimCoordinatorOptions options;
    options.path = std::string(kPath);
    options.lock_ttl = kHaLockTtl;
    options.clock_rate = cluster_.clock_rates_.at(static_cast<size_t>(id_));
    coordinator_ = std::make_unique<etcd::SimEtcdCoordinator>(cluster_.link(id_), node.executor(),
                                                              node.clock(), options);
    ha::LeadershipOptions leadership;
    leadership.advertise.api_addr = absl::StrCat(kAddressPrefix, id_);
    leadership_ = std::make_unique<ha::Leadership>(node.env(), *node.core(), *coordinator_,
                                                   *cluster_.storages_.at(static_cast<size_t>(id_)),
                                                   node.log_sink(), leadership);
    return absl::OkStatus();
  }
  void OnUnsealed(Node& /*node*/) override {
    if (leadership_) leadership_->OnUnsealed();
  }
  void OnSealing(Node& /*node*/) override {
    if (leadership_) leadership_->OnSealed();
  }
  void OnStop(Node& /*node*/) override {
    // The process died: it does not resign (its lease runs out by itself).
    if (coordinator_) coordinator_->Abandon();
    leadership_.reset();
    coordinator_.reset();
  }

  std::optional<Response> Handle(Node& node, const Request& request) override {
    if (StandbyServes(request.kind) || !leadership_ || node.core() == nullptr) return std::nullopt;
    if (node.core()->sealed() || node.core()->role() == node::Role::kActive) return std::nullopt;
    Response response;
    absl::StatusOr<ha::LeaderView> view = leadership_->Leader();
    int to = -1;
    if (view.ok() && absl::StartsWith(view->leader_address, kAddressPrefix) &&
        absl::SimpleAtoi(absl::StripPrefix(view->leader_address, kAddressPrefix), &to) &&
        to != id_) {
      response.redirect_to = to;
      response.status = absl::FailedPreconditionError(
          absl::StrCat("standby: the active node is ", view->leader_address));
      return response;
    }
    // No active node known (an election is on): refused before any effect, the client retries.
    response.status = absl::UnavailableError(
        view.ok()
            ? "standby: no active node is known (an election is under way)"
            : absl::StrCat("standby: cannot find the active node: ", view.status().message()));
    return response;
  }

  bool serving() const { return leadership_ && leadership_->active(); }
  ha::Leadership* leadership() { return leadership_.get(); }
  etcd::SimEtcdCoordinator* coordinator() { return coordinator_.get(); }

 private:
  HaCluster& cluster_;
  const int id_;
  std::unique_ptr<etcd::SimEtcdCoordinator> coordinator_;
  std::unique_ptr<ha::Leadership> leadership_;
};

HaCluster::HaCluster(World& world) : world_(world), store_(world.loop) {
  const int n = world.scenario.nodes;
  for (int id = 0; id < n; ++id) {
    etcd::LinkOptions link;
    links_.push_back(std::make_unique<etcd::Link>(
        store_, world.loop, StableHash64(absl::StrCat("etcd-link/", id), world.config.seed), link));
    storages_.push_back(std::make_unique<etcd::SimEtcdStorage>(*links_.back(), kPath));
    storages_.back()->SetLandedListener(
        [this, id](const etcd::LandedWrite& write) { OnLanded(id, write); });
  }
  components_.assign(static_cast<size_t>(n), nullptr);
  not_active_since_.assign(static_cast<size_t>(n), absl::ZeroDuration());
  clock_rates_.assign(static_cast<size_t>(n), 1.0);
  world.loop.PostAfter(kHaCheckInterval, [this] { CheckPlugins(); });
  world.loop.PostAfter(world.scenario.workload + world.scenario.liveness_bound,
                       [this] { CheckLiveness(); });
}

HaCluster::~HaCluster() = default;

void HaCluster::Configure(int id, NodeOptions& options) {
  options.physical = storages_.at(static_cast<size_t>(id)).get();
  options.role = node::Role::kStandby;
}

std::unique_ptr<NodeComponent> HaCluster::MakeComponent(int id) {
  auto component = std::make_unique<HaComponent>(*this, id);
  components_.at(static_cast<size_t>(id)) = component.get();
  return component;
}

HaComponent* HaCluster::component(int id) const { return components_.at(static_cast<size_t>(id)); }

int HaCluster::Active() const {
  for (size_t id = 0; id < components_.size(); ++id) {
    if (components_[id] != nullptr && components_[id]->serving()) return static_cast<int>(id);
  }
  return -1;
}

void HaCluster::StepDown(int id) {
  HaComponent* c = component(id);
  if (c != nullptr && c->leadership() != nullptr) c->leadership()->StepDown();
}

void HaCluster::SetClockRate(int id, double rate) {
  clock_rates_.at(static_cast<size_t>(id)) = rate;
  HaComponent* c = component(id);
  if (c != nullptr && c->coordinator() != nullptr) c->coordinator()->SetClockRate(rate);
}

void HaCluster::Pause(int id, absl::Duration d) {
  HaComponent* c = component(id);
  if (c != nullptr && c->coordinator() != nullptr) c->coordinator()->Pause(d);
}

void HaCluster::SetStoreSlow(absl::Duration extra) {
  for (const std::unique_ptr<etcd::Link>& link : links_) link->SetExtraLatency(extra);
}

void HaCluster::OnLanded(int node, const etcd::LandedWrite& write) {
  world_.Count("ha_one_writer");
  std::optional<std::pair<std::string, etcd::KeyValue>> holder =
      store_.FirstCreated(absl::StrCat(kPath, etcd::kLockPrefix));
  const int64_t held = holder.has_value() ? holder->second.create_revision : 0;
  if (write.fenced_on != 0 && write.fenced_on != held) {
    world_.Violate("ha_one_writer",
                   absl::StrCat("node ", node, "'s ", write.deleted ? "delete of " : "write to ",
                                write.key, " landed at revision ", write.revision,
                                " though the lock it was fenced on (revision ", write.fenced_on,
                                ") is gone; the lock is held at revision ", held));
  } else if (write.fenced_on == 0 && held != 0) {
    world_.Violate("ha_one_writer",
                   absl::StrCat("node ", node, "'s unfenced write to ", write.key,
                                " landed while the lock is held (revision ", held, ")"));
  }
}

void HaCluster::CheckPlugins() {
  if (world_.done) return;
  world_.loop.PostAfter(kHaCheckInterval, [this] { CheckPlugins(); });
  const absl::Duration now = world_.Now();
  for (int id = 0; id < world_.cluster->size(); ++id) {
    HaComponent* c = component(id);
    Machine& m = world_.cluster->machine(id);
    // A node whose process started before sys/init (on another node) never sees the barrier
    // initialized: core/barrier reads that once, at Open. The operator restarts it, as one would
    // start the standbys after init.
    if (world_.initialized && m.up() && m.node->core() != nullptr &&
        !m.node->core()->seal_status().initialized) {
      world_.trace.Add(now, id, "ha-restart-after-init", "");
      world_.cluster->ProcessKill(id, absl::Milliseconds(100));
      continue;
    }
    // Allowed: the node holds the lock (it may be bringing its mounts up) or serves as active.
    const bool active = c != nullptr && c->leadership() != nullptr &&
                        (c->leadership()->active() || c->coordinator()->held_revision() != 0);
    absl::Duration& since = not_active_since_[static_cast<size_t>(id)];
    if (active || !m.up()) {
      since = now;
      continue;
    }
    world_.Count("ha_plugins");
    const size_t live = m.node->launcher().LivePids().size();
    if (live > 0 && now - since > kPluginStopBound) {
      world_.Violate("ha_plugins", absl::StrCat("node ", id, " is not the active node (since ",
                                                absl::FormatDuration(since), ") but still runs ",
                                                live, " plugin process(es) after ",
                                                absl::FormatDuration(kPluginStopBound)));
      since = now;  // Once per stretch.
    }
  }
}

void HaCluster::CheckLiveness() {
  if (world_.done) return;
  world_.Count("ha_liveness");
  if (Active() < 0) {
    world_.Violate("ha_liveness", absl::StrCat("no node is active and serving ",
                                               absl::FormatDuration(world_.scenario.liveness_bound),
                                               " after the faults stopped"));
  }
}

}  // namespace bulwark::sim
