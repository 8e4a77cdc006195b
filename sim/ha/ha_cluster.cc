// The simulated HA cluster (see ha_cluster.h).
#include "sim/ha/ha_cluster.h"

#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/status/check.h"
#include "core/barrier/barrier.h"
#include "core/ha/forwarding.h"
#include "core/ha/leadership.h"
#include "faultinject/failpoint.h"
#include "sim/cluster.h"
#include "sim/invariants/invariant.h"
#include "sim/world.h"

namespace bulwark::sim {

namespace {

constexpr absl::string_view kPath = "/bulwark/";
constexpr absl::string_view kAddressPrefix = "sim://node-";
constexpr absl::string_view kClusterAddressPrefix = "sim-cluster://node-";

// The requests a standby answers itself (Vault's unauthenticated sys/ endpoints that a standby
// serves: seal status, unseal, init) or that act on the node itself (seal).
bool StandbyServes(OpKind kind) {
  return kind == OpKind::kInit || kind == OpKind::kUnseal || kind == OpKind::kSeal ||
         kind == OpKind::kStatus;
}

// What a performance standby serves with its own plugins and storage view: mount data and raw
// storage. Catalog, mount, reload, rotate and lease requests go to the active node, so that
// nothing it answers comes from its in-memory catalog or mount table, which may lag.
bool PerfStandbyServes(OpKind kind) { return IsDataOp(kind); }

bool ReadOnlyAnswer(const Response& response, bool forwarded) {
  return ha::ShouldResendToActive(response.status, forwarded) ||
         ha::ShouldResendToActive(response.status.message(), forwarded);
}

int NodeOf(absl::string_view address, absl::string_view prefix) {
  int id = -1;
  if (!absl::ConsumePrefix(&address, prefix) || !absl::SimpleAtoi(address, &id)) return -1;
  return id;
}

}  // namespace

// One node's HA part: the real Leadership over the node's SimEtcdCoordinator and SimEtcdStorage,
// and the node's side of the cluster port (core/ha/forwarding.h's decisions).
class HaComponent final : public NodeComponent {
 public:
  HaComponent(HaCluster& cluster, int id) : cluster_(cluster), id_(id) {}

  absl::string_view name() const override { return "ha"; }

  absl::Status OnStart(Node& node) override {
    etcd::SimCoordinatorOptions options;
    options.path = std::string(kPath);
    options.lock_ttl = kHaLockTtl;
    options.clock_rate = cluster_.clock_rates_.at(static_cast<size_t>(id_));
    options.on_watch = [this](etcd::WatchSignal signal, int64_t revision) {
      cluster_.OnWatch(id_, signal, revision);
    };
    coordinator_ = std::make_unique<etcd::SimEtcdCoordinator>(cluster_.link(id_), node.executor(),
                                                              node.clock(), options);
    ha::LeadershipOptions leadership;
    leadership.advertise.api_addr = absl::StrCat(kAddressPrefix, id_);
    leadership.advertise.cluster_addr = absl::StrCat(kClusterAddressPrefix, id_);
    leadership.performance_standby = IsPerfStandbyNode(id_);
    leadership_ = std::make_unique<ha::Leadership>(node.env(), *node.core(), *coordinator_,
                                                   *cluster_.storages_.at(static_cast<size_t>(id_)),
                                                   node.log_sink(), leadership);
    node_ = &node;
    return absl::OkStatus();
  }
  void OnUnsealed(Node& /*node*/) override {
    if (leadership_) leadership_->OnUnsealed();
  }
  void OnSealing(Node& node) override {
    if (leadership_) leadership_->OnSealed();
    // What it was forwarding ends here, outcome unknown: a sealed node answers nothing that
    // succeeded (sealed_read), and the active may have applied it.
    std::map<uint64_t, PendingForward> pending = std::move(forwards_);
    forwards_.clear();
    for (auto& [id, p] : pending) {
      node.executor().Cancel(p.timer);
      Response response;
      response.status = absl::UnavailableError(
          "the node sealed while forwarding the request: its outcome is unknown");
      p.done(std::move(response));
    }
  }
  void OnStop(Node& /*node*/) override {
    // The process died: it does not resign (its lease runs out by itself), and what it was
    // forwarding dies with it (the clients' connections broke).
    if (coordinator_) coordinator_->Abandon();
    leadership_.reset();
    cluster_.storages_.at(static_cast<size_t>(id_))->EndWatchedReads();
    coordinator_.reset();
    forwards_.clear();
    node_ = nullptr;
    ++generation_;
  }

  bool HandleLater(Node& node, const Request& request,
                   absl::AnyInvocable<void(Response)>& done) override {
    if (StandbyServes(request.kind) || !leadership_ || node.core() == nullptr) return false;
    if (node.core()->sealed()) return false;
    const node::Role role = node.core()->role();
    if (role == node::Role::kActive) {
      cluster_.Applying(id_, request);
      return false;
    }
    if (role == node::Role::kPerfStandby && PerfStandbyServes(request.kind)) {
      ServeAsPerfStandby(node, request, std::move(done));
      return true;
    }
    ToActive(request, std::move(done));
    return true;
  }

  bool serving() const { return leadership_ && leadership_->active(); }
  ha::Leadership* leadership() { return leadership_.get(); }
  etcd::SimEtcdCoordinator* coordinator() { return coordinator_.get(); }

 private:
  using Done = absl::AnyInvocable<void(Response)>;
  struct PendingForward {
    Done done;
    Request request;
    int to = -1;
    TimerId timer = kNoTimer;
  };

  // A performance standby answers from its own plugins; a write that met the read-only storage
  // goes to the active node once, and its answer is the client's.
  void ServeAsPerfStandby(Node& node, const Request& request, Done done) {
    node.Serve(request, [this, generation = generation_, request,
                         done = std::move(done)](Response response) mutable {
      if (generation != generation_) return;
      if (!ReadOnlyAnswer(response, request.forwarded)) {
        response.perf_standby_local = true;
        done(std::move(response));
        return;
      }
      ToActive(request, std::move(done), /*resend=*/true);
    });
  }

  // What a standby does with a request that is not its own (DecideStandby): forward it to the
  // active node, or redirect the client there; refuse while no active node is known.
  void ToActive(const Request& request, Done done, bool resend = false) {
    absl::StatusOr<ha::LeaderView> view = leadership_->Leader();
    const int to = view.ok() ? NodeOf(view->leader_address, kAddressPrefix) : -1;
    if (!view.ok() || to < 0 || to == id_) {
      // No active node is known (an election is on): refused before any effect, the client
      // retries.
      Response response;
      response.status = absl::UnavailableError(
          view.ok()
              ? "standby: no active node is known (an election is under way)"
              : absl::StrCat("standby: cannot find the active node: ", view.status().message()));
      done(std::move(response));
      return;
    }
    ha::StandbyRequest decide;
    decide.forwarding_enabled = true;
    decide.active_cluster_addr_known =
        NodeOf(view->leader_cluster_address, kClusterAddressPrefix) == to;
    decide.already_forwarded = request.forwarded && !resend;
    if (resend || ha::DecideStandby(decide) == ha::StandbyDisposition::kForward) {
      Forward(request, to, std::move(done));
      return;
    }
    done(Redirect(to, "standby"));
  }

  static Response Redirect(int to, absl::string_view why) {
    Response response;
    response.redirect_to = to;
    response.status = absl::FailedPreconditionError(
        absl::StrCat(why, ": the active node is ", kAddressPrefix, to));
    return response;
  }

  void Forward(const Request& request, int to, Done done) {
    const uint64_t id = next_forward_++;
    PendingForward& p = forwards_[id];
    p.done = std::move(done);
    p.request = request;
    p.request.forwarded = true;
    p.to = to;
    Send(id);
  }

  void Send(uint64_t id) {
    PendingForward& p = forwards_.at(id);
    p.timer = node_->executor().PostAfter(kForwardTimeout, [this, generation = generation_, id] {
      if (generation == generation_) Lost(id);
    });
    cluster_.Forward(id_, p.to, p.request,
                     [this, generation = generation_, id](bool delivered, Response response) {
                       if (generation != generation_ || node_ == nullptr) return;
                       node_->executor().Post([this, generation, id, delivered,
                                               response = std::move(response)]() mutable {
                         if (generation == generation_)
                           Answered(id, delivered, std::move(response));
                       });
                     });
  }

  void Answered(uint64_t id, bool delivered, Response response) {
    auto it = forwards_.find(id);
    if (it == forwards_.end()) return;  // Timed out first.
    PendingForward p = std::move(it->second);
    forwards_.erase(it);
    node_->executor().Cancel(p.timer);
    // The request never reached a live node: Vault's fallback, a redirect (the client re-sends
    // it; it was applied nowhere).
    if (!delivered) return p.done(Redirect(p.to, "forwarding refused"));
    // The planted bug also sends the client to the active node after the forward was answered
    // (a handler that falls through from forwarding to the redirect): the client re-sends a
    // request the active has applied already, which ha_forwarded_once must catch.
    if (response.redirect_to < 0 && BW_PLANTED_BUG("bug.sim_ha.redirect_after_forward")) {
      return p.done(Redirect(p.to, "standby"));
    }
    p.done(std::move(response));
  }

  // No answer within kForwardTimeout: the request may or may not have been applied, so it must
  // not be sent again (nor the client redirected, which would re-send it).
  void Lost(uint64_t id) {
    auto it = forwards_.find(id);
    if (it == forwards_.end()) return;
    PendingForward lost = std::move(it->second);
    forwards_.erase(it);
    Response response;
    response.status = absl::DeadlineExceededError(absl::StrCat(
        "forwarding to the active node ", kAddressPrefix, lost.to, " got no answer in ",
        absl::FormatDuration(kForwardTimeout), ": the request's outcome is unknown"));
    lost.done(std::move(response));
  }

  HaCluster& cluster_;
  const int id_;
  Node* node_ = nullptr;
  std::unique_ptr<etcd::SimEtcdCoordinator> coordinator_;
  std::unique_ptr<ha::Leadership> leadership_;
  std::map<uint64_t, PendingForward> forwards_;
  uint64_t next_forward_ = 1;
  uint64_t generation_ = 0;
};

HaCluster::HaCluster(World& world)
    : world_(world), store_(world.loop), port_random_(world.root_random.Derive("cluster-port")) {
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
  cut_.assign(static_cast<size_t>(n * n), false);
  isolated_.assign(static_cast<size_t>(n), false);
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

bool HaCluster::NodeLinkUp(int a, int b) const {
  const size_t n = isolated_.size();
  return !isolated_.at(static_cast<size_t>(a)) && !isolated_.at(static_cast<size_t>(b)) &&
         !cut_.at(static_cast<size_t>(a) * n + static_cast<size_t>(b));
}

void HaCluster::SetNodeLink(int a, int b, bool up) {
  const size_t n = isolated_.size();
  cut_.at(static_cast<size_t>(a) * n + static_cast<size_t>(b)) = !up;
  cut_.at(static_cast<size_t>(b) * n + static_cast<size_t>(a)) = !up;
}

void HaCluster::SetIsolated(int id, bool isolated) {
  isolated_.at(static_cast<size_t>(id)) = isolated;
  link(id).SetUp(!isolated);
}

void HaCluster::Forward(int from, int to, Request request, ForwardReply reply) {
  auto latency = [this] {
    return DrawMillis(port_random_, kForwardLatencyMin, kForwardLatencyMax);
  };
  auto refused = [this, latency](ForwardReply reply, std::string why) {
    Response response;
    response.status = absl::UnavailableError(std::move(why));
    world_.loop.PostAfter(latency(), [reply = std::move(reply), response = std::move(response)] {
      reply(false, response);
    });
  };
  if (!NodeLinkUp(from, to)) {
    return refused(std::move(reply), absl::StrCat("no route to node ", to));
  }
  world_.trace.Add(world_.Now(), from, "forward", absl::StrCat("#", request.op, " to ", to));
  world_.loop.PostAfter(latency(), [this, from, to, request = std::move(request), latency, refused,
                                    reply = std::move(reply)]() mutable {
    if (!NodeLinkUp(from, to)) return;  // Lost on the way: the sender times out.
    Cluster& cluster = *world_.cluster;
    Machine& m = cluster.machine(to);
    if (!m.node->running()) {
      return refused(std::move(reply), absl::StrCat("node ", to, " is down"));
    }
    if (!m.up()) return;  // Hung: it never answers; the sender times out.
    const uint64_t epoch = m.epoch;
    cluster.EnterNode(to);
    m.node->Execute(request, [this, from, to, epoch, request, latency,
                              reply = std::move(reply)](Response response) mutable {
      if (world_.cluster->machine(to).epoch != epoch) return;  // It died: the answer is lost.
      world_.invariants->OnNodeAnswer(to, request, response);
      world_.loop.PostAfter(latency(), [this, from, to, reply = std::move(reply),
                                        response = std::move(response)]() mutable {
        if (NodeLinkUp(from, to)) reply(true, std::move(response));
      });
    });
    cluster.LeaveNode();
    cluster.AfterNodeCode(to);
  });
}

void HaCluster::Applying(int id, const Request& request) {
  if (request.op == 0) return;
  world_.Count("ha_forwarded_once");
  if (applied_.size() <= request.op) applied_.resize(request.op + 1, 0);
  uint8_t& times = applied_[request.op];
  if (times < UINT8_MAX) ++times;
  if (times == 2) {
    world_.Violate("ha_forwarded_once",
                   absl::StrCat(OpKindName(request.kind), " request #", request.op,
                                " was applied a second time, by active node ", id,
                                request.forwarded ? " (forwarded to it)" : ""));
  }
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

bool HaCluster::BreakWatch(int id, absl::Duration d) {
  HaComponent* c = component(id);
  return c != nullptr && c->coordinator() != nullptr && c->coordinator()->BreakWatches(d);
}

void HaCluster::EndWatchBreaks() {
  for (HaComponent* c : components_) {
    if (c != nullptr && c->coordinator() != nullptr) c->coordinator()->EndForcedBreaks();
  }
}

void HaCluster::OnWatch(int id, etcd::WatchSignal signal, int64_t revision) {
  storages_.at(static_cast<size_t>(id))->OnWatch(signal, revision);
  switch (signal) {
    case etcd::WatchSignal::kBroken:
      world_.trace.Add(world_.Now(), id, "ha-watch-broken", "");
      return;
    case etcd::WatchSignal::kResumed:
      world_.trace.Add(world_.Now(), id, "ha-watch-resumed", absl::StrCat(revision));
      return;
    case etcd::WatchSignal::kReloaded:
      world_.trace.Add(world_.Now(), id, "ha-watch-reloaded", absl::StrCat(revision));
      return;
  }
}

void HaCluster::SetStoreSlow(absl::Duration extra) {
  for (const std::unique_ptr<etcd::Link>& link : links_) link->SetExtraLatency(extra);
}

void HaCluster::OnLanded(int node, const etcd::LandedWrite& write) {
  if (write.key == kBarrierKeyringPath && !write.deleted) CheckKeyringWrite(node, write);
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

// The keyring writes' half of ha_keyring. Barrier::Initialize writes term 1 while sealed;
// Barrier::Rotate writes active_term() + 1 before it takes the new term: so the term a write
// carries is the writer's active term plus one. It must be above the stored one: a node that
// rotates from a keyring older than the store's writes its new key under a term that already
// sealed entries, which then never open again.
void HaCluster::CheckKeyringWrite(int node, const etcd::LandedWrite& write) {
  world_.Count("ha_keyring");
  Machine& m = world_.cluster->machine(node);
  const uint32_t term = m.node->core() == nullptr ? 1 : m.node->core()->barrier().active_term() + 1;
  if (term <= keyring_term_) {
    world_.Violate("ha_keyring",
                   absl::StrCat("node ", node, " wrote the keyring with term ", term,
                                " as its newest at revision ", write.revision,
                                ", over the stored keyring whose newest term is ", keyring_term_,
                                ": entries sealed under that term no longer open"));
  }
  keyring_term_ = term;
}

void HaCluster::CheckPlugins() {
  if (world_.done) return;
  world_.loop.PostAfter(kHaCheckInterval, [this] { CheckPlugins(); });
  const absl::Duration now = world_.Now();
  for (int id = 0; id < world_.cluster->size(); ++id) {
    HaComponent* c = component(id);
    Machine& m = world_.cluster->machine(id);
    // Allowed: the node holds the lock (it may be bringing its mounts up) or serves as active.
    // A performance standby runs its own plugins (over read-only storage).
    const bool active = c != nullptr && c->leadership() != nullptr &&
                        (c->leadership()->active() || c->coordinator()->held_revision() != 0 ||
                         (m.up() && m.node->core() != nullptr &&
                          m.node->core()->role() == node::Role::kPerfStandby));
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
