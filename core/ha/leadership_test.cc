// Leadership on the simulated Env with a scripted coordinator and an in-memory fenced storage:
// sys/step-down releases the lock, leaves the storage read-only and the node a standby, and
// contends again only once `step_down_wait` of simulated time has passed.
#include "core/ha/leadership.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "base/env/sim/sim_env.h"
#include "base/log/log.h"
#include "base/metrics/metrics.h"
#include "base/status/check.h"
#include "base/storage/in_memory_storage.h"
#include "base/storage/storage_errors.h"
#include "core/lifecycle/builtin_runner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::ha {
namespace {

// Writes pass unless read-only (fencing itself is etcd's, tested in //server/etcd).
class MemoryFencedStorage final : public FencedStorage {
 public:
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) override {
    return mem_.Get(key);
  }
  absl::Status Put(absl::string_view key, absl::string_view value) override {
    if (read_only_) return ReadOnlyError();
    return mem_.Put(key, value);
  }
  absl::Status Delete(absl::string_view key) override {
    if (read_only_) return ReadOnlyError();
    return mem_.Delete(key);
  }
  absl::StatusOr<std::vector<std::string>> List(absl::string_view prefix) override {
    return mem_.List(prefix);
  }
  void Unfence() override { read_only_ = false; }
  void MakeReadOnly() override { read_only_ = true; }
  void FenceOn(const LockGrant&) override { read_only_ = false; }
  bool read_only() const { return read_only_; }

 private:
  InMemoryStorage mem_;
  bool read_only_ = false;
};

// Grants every campaign at once (on the loop), as if no other node contended.
class GrantingCoordinator final : public Coordinator {
 public:
  explicit GrantingCoordinator(Executor& loop) : loop_(loop) {}
  void Campaign(std::string holder_id, WonCallback won, LostCallback) override {
    ++campaigns;
    holder = holder_id;
    LockGrant grant{holder_id, "core/lock/1", campaigns, campaigns, absl::Seconds(15)};
    loop_.Post([won = std::move(won), grant]() mutable { won(grant); });
  }
  absl::Status Resign() override {
    ++resigns;
    holder.reset();
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<std::string>> Holder() override { return holder; }
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(std::string, EventsCallback) override {
    return absl::UnimplementedError("no watches here");
  }

  int campaigns = 0;
  int resigns = 0;
  std::optional<std::string> holder;

 private:
  Executor& loop_;
};

// A standby node on the sim Env over in-memory fenced storage.
struct StandbyNode {
  sim::SimEnv sim{7};
  MemoryFencedStorage storage;
  lifecycle::BuiltinRunnerFactory runners{sim.loop(), {}};
  metrics::Registry metrics;
  MemoryLogSink log;
  std::unique_ptr<node::Node> node;

  StandbyNode() {
    node::NodeOptions options;
    options.role = node::Role::kStandby;
    absl::StatusOr<std::unique_ptr<node::Node>> opened =
        node::Node::Open(sim.env(), storage, runners, metrics, log, options);
    CHECK(opened.ok()) << opened.status();
    node = *std::move(opened);
  }

  // sys/init with one share, then the unseal; false when either failed.
  bool InitAndUnseal() {
    absl::StatusOr<std::vector<crypto::SecureBuffer>> shares = node->Initialize(1, 1);
    if (!shares.ok()) return false;
    bool unsealed = false;
    node->Unseal((*shares)[0].view(),
                 [&](absl::StatusOr<SealStatus> s) { unsealed = s.ok() && !s->sealed; });
    return sim.loop().RunUntil([&] { return unsealed; }, absl::Seconds(5));
  }
};

TEST(LeadershipTest, StepDownReleasesTheLockAndContendsAgainOnlyAfterItsWait) {
  StandbyNode t;
  sim::SimEnv& sim = t.sim;
  MemoryFencedStorage& storage = t.storage;
  MemoryLogSink& log = t.log;
  node::Node& node = *t.node;
  GrantingCoordinator coordinator(sim.loop());
  LeadershipOptions lo;
  lo.advertise = {"https://10.0.0.1:8200", "https://10.0.0.1:8201"};
  lo.step_down_wait = absl::Seconds(10);
  lo.retry_after = absl::Seconds(1);  // Not the pause a step-down takes.
  Leadership* self = nullptr;
  int prepared = 0;
  lo.prepare_active = [&] {
    // The server's cluster port: set up before the advertisement, which it may change.
    ++prepared;
    self->SetAdvertisement({"https://10.0.0.1:8200", "https://10.0.0.1:9999"});
    return absl::OkStatus();
  };
  Leadership leadership(sim.env(), node, coordinator, storage, log, lo);
  self = &leadership;
  EXPECT_EQ(kStepDownWait, absl::Seconds(10));  // Vault's manualStepDownSleepPeriod.

  ASSERT_TRUE(t.InitAndUnseal());
  leadership.OnUnsealed();
  ASSERT_TRUE(sim.loop().RunUntil([&] { return leadership.active(); }, absl::Seconds(1)));
  EXPECT_EQ(coordinator.campaigns, 1);
  EXPECT_EQ(node.role(), node::Role::kActive);
  EXPECT_FALSE(storage.read_only());
  absl::StatusOr<LeaderView> view = leadership.Leader();
  ASSERT_TRUE(view.ok());
  EXPECT_TRUE(view->is_self);
  EXPECT_EQ(prepared, 1);
  absl::StatusOr<std::optional<Advertisement>> ad =
      ReadAdvertisement(node.barrier(), *coordinator.holder);
  ASSERT_TRUE(ad.ok() && ad->has_value()) << ad.status();
  EXPECT_EQ((*ad)->cluster_addr, "https://10.0.0.1:9999");

  const absl::Duration stepped_at = sim.clock().MonotonicNow();
  leadership.StepDown();
  EXPECT_EQ(coordinator.resigns, 1);
  EXPECT_FALSE(leadership.active());
  EXPECT_TRUE(storage.read_only());
  EXPECT_EQ(node.role(), node::Role::kStandby);
  // Nothing contends before the wait is over (simulated time: the loop runs every task due).
  sim.loop().RunUntil([] { return false; }, absl::Seconds(10) - absl::Milliseconds(1));
  EXPECT_EQ(coordinator.campaigns, 1);
  EXPECT_FALSE(leadership.active());
  // Then it contends, and (no other node) wins again.
  ASSERT_TRUE(sim.loop().RunUntil([&] { return leadership.active(); }, absl::Seconds(1)));
  EXPECT_EQ(coordinator.campaigns, 2);
  EXPECT_GE(sim.clock().MonotonicNow() - stepped_at, absl::Seconds(10));
  EXPECT_EQ(node.role(), node::Role::kActive);

  // A step-down while not holding the lock does nothing.
  leadership.OnSealed();
  const int resigns = coordinator.resigns;
  leadership.StepDown();
  EXPECT_EQ(coordinator.resigns, resigns);
}

TEST(LeadershipTest, AStepDownWaitsForTheRequestsInFlightBeforeReleasingTheLock) {
  StandbyNode t;
  GrantingCoordinator coordinator(t.sim.loop());
  LeadershipOptions lo;
  lo.advertise = {"https://10.0.0.1:8200", ""};
  absl::AnyInvocable<void()> drained;
  int drains = 0;
  lo.drain_requests = [&](absl::AnyInvocable<void()> then) {
    ++drains;
    drained = std::move(then);
  };
  Leadership leadership(t.sim.env(), *t.node, coordinator, t.storage, t.log, lo);
  ASSERT_TRUE(t.InitAndUnseal());
  leadership.OnUnsealed();
  ASSERT_TRUE(t.sim.loop().RunUntil([&] { return leadership.active(); }, absl::Seconds(1)));
  leadership.StepDown();
  leadership.StepDown();  // A second request while waiting changes nothing.
  EXPECT_EQ(drains, 1);
  t.sim.loop().RunUntilIdle();
  // Still active, holding the lock, writes allowed: the requests in flight can finish.
  EXPECT_EQ(coordinator.resigns, 0);
  EXPECT_TRUE(leadership.active());
  EXPECT_FALSE(t.storage.read_only());
  EXPECT_EQ(t.node->role(), node::Role::kActive);
  ASSERT_TRUE(drained != nullptr);
  drained();
  EXPECT_EQ(coordinator.resigns, 1);
  EXPECT_FALSE(leadership.active());
  EXPECT_TRUE(t.storage.read_only());
  EXPECT_EQ(t.node->role(), node::Role::kStandby);
}

// Another node holds the lock: campaigns never win.
class OtherHolderCoordinator final : public Coordinator {
 public:
  void Campaign(std::string, WonCallback, LostCallback) override {}
  absl::Status Resign() override { return absl::OkStatus(); }
  absl::StatusOr<std::optional<std::string>> Holder() override { return holder; }
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(std::string, EventsCallback) override {
    return absl::UnimplementedError("no watches here");
  }
  std::optional<std::string> holder;
};

TEST(LeadershipTest, AStandbyReadsTheAdvertisementAgainOnlyWhenTheHolderChanges) {
  StandbyNode t;
  sim::SimEnv& sim = t.sim;
  MemoryFencedStorage& storage = t.storage;
  node::Node& node = *t.node;
  OtherHolderCoordinator coordinator;
  Leadership leadership(sim.env(), node, coordinator, storage, t.log, {});
  ASSERT_TRUE(t.InitAndUnseal());
  leadership.OnUnsealed();
  auto advertise = [&](const std::string& holder, const Advertisement& ad) {
    storage.Unfence();  // As the other node's writes.
    ASSERT_TRUE(PublishAdvertisement(node.barrier(), holder, ad).ok());
    storage.MakeReadOnly();
  };

  // Nobody holds the lock: no leader, nothing read.
  absl::StatusOr<LeaderView> none = leadership.Leader();
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->leader_address, "");
  EXPECT_EQ(leadership.advertisement_reads(), 0);
  // A holder that has not advertised yet is asked again.
  coordinator.holder = "a";
  EXPECT_EQ(leadership.Leader()->leader_address, "");
  advertise("a", {"https://a:8200", "https://a:8201"});
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<LeaderView> view = leadership.Leader();
    ASSERT_TRUE(view.ok());
    EXPECT_FALSE(view->is_self);
    EXPECT_EQ(view->leader_address, "https://a:8200");
    EXPECT_EQ(view->leader_cluster_address, "https://a:8201");
  }
  EXPECT_EQ(leadership.advertisement_reads(), 2);  // The empty read, then once.
  // Leadership moves: read once more, then cached again.
  advertise("b", {"https://b:8200", "https://b:8201"});
  coordinator.holder = "b";
  EXPECT_EQ(leadership.Leader()->leader_cluster_address, "https://b:8201");
  EXPECT_EQ(leadership.Leader()->leader_cluster_address, "https://b:8201");
  EXPECT_EQ(leadership.advertisement_reads(), 3);
}

}  // namespace
}  // namespace bulwark::ha
