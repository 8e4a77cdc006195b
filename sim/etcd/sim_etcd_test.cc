// The simulated etcd: the store's revisions, transactions, leases and watches; the Storage
// contract on SimEtcdStorage (unfenced and fenced, as server/etcd runs it on the real etcd); the
// coordinator's election, loss deadline, fencing and clock skew; and the planted bug.
#include "sim/etcd/sim_etcd.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/env/random.h"
#include "base/env/sim/sim_event_loop.h"
#include "base/storage/storage_errors.h"
#include "core/storage/testing/storage_contract.h"
#include "faultinject/failpoint.h"
#include "faultinject/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/etcd/sim_etcd_client.h"

namespace bulwark::sim::etcd {
namespace {

using ::testing::ElementsAre;
using ::testing::Optional;

constexpr absl::Duration kTtl = absl::Seconds(15);

SimCoordinatorOptions CoordinatorOptions(std::string path) {
  SimCoordinatorOptions options;
  options.path = std::move(path);
  options.lock_ttl = kTtl;
  return options;
}

TEST(SimEtcdTest, RevisionsAndTransactionsFollowEtcd) {
  SimClock clock;
  SimEventLoop loop(clock);
  SimEtcd store(loop);
  const int64_t r0 = store.revision();
  ASSERT_EQ(store.Put("a", "1").value(), r0 + 1);
  ASSERT_EQ(store.Put("a", "2").value(), r0 + 2);
  EXPECT_EQ(store.Get("a")->create_revision, r0 + 1);
  EXPECT_EQ(store.Get("a")->mod_revision, r0 + 2);
  // A failed comparison writes nothing and bumps nothing.
  Op put{Op::Type::kPut, "b", "x", 0};
  EXPECT_FALSE(store.Txn({Compare{"a", Compare::Target::kCreateRevision, r0 + 2}}, {put}).value());
  EXPECT_EQ(store.revision(), r0 + 2);
  EXPECT_FALSE(store.Get("b").has_value());
  // A missing key compares as revision 0; two writes share one revision.
  Op put2{Op::Type::kPut, "c", "y", 0};
  EXPECT_TRUE(store.Txn({Compare{"b", Compare::Target::kCreateRevision, 0}}, {put, put2}).value());
  EXPECT_EQ(store.revision(), r0 + 3);
  EXPECT_EQ(store.Get("b")->create_revision, store.Get("c")->create_revision);
  EXPECT_EQ(store.FirstCreated("")->first, "a");
  ASSERT_TRUE(store.Delete("a").ok());
  EXPECT_EQ(store.FirstCreated("")->first, "b");
}

TEST(SimEtcdTest, LeasesRunOutOnTheSimulatedClockUnlessKeptAlive) {
  SimClock clock;
  SimEventLoop loop(clock);
  SimEtcd store(loop);
  std::vector<Event> seen;
  ASSERT_TRUE(
      store
          .Watch("l/",
                 [&](const std::vector<Event>& e) { seen.insert(seen.end(), e.begin(), e.end()); })
          .ok());
  const int64_t lease = store.Grant(absl::Seconds(10)).value();
  ASSERT_TRUE(store.Put("l/k", "v", lease).ok());
  loop.RunUntil([] { return false; }, absl::Seconds(9));
  ASSERT_TRUE(store.KeepAlive(lease).ok());
  loop.RunUntil([] { return false; }, absl::Seconds(9));
  EXPECT_TRUE(store.Get("l/k").has_value());  // 18 s after the grant, 9 after the renewal.
  loop.RunUntil([] { return false; }, absl::Seconds(2));
  EXPECT_FALSE(store.Get("l/k").has_value());
  EXPECT_FALSE(store.LeaseAlive(lease));
  EXPECT_TRUE(absl::IsNotFound(store.KeepAlive(lease)));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].type, Event::Type::kPut);
  EXPECT_EQ(seen[1].type, Event::Type::kDelete);
  EXPECT_GT(seen[1].revision, seen[0].revision);
  // Bad input is refused by name.
  EXPECT_TRUE(absl::IsNotFound(store.Put("x", "v", 99).status()));
}

TEST(SimEtcdTest, AnUnavailableStoreRefusesEverythingAndLetsNoLeaseExpire) {
  SimClock clock;
  SimEventLoop loop(clock);
  SimEtcd store(loop);
  const int64_t lease = store.Grant(absl::Seconds(10)).value();
  ASSERT_TRUE(store.Put("k", "v", lease).ok());
  store.SetAvailable(false);
  EXPECT_TRUE(absl::IsUnavailable(store.Put("x", "y").status()));
  EXPECT_TRUE(absl::IsUnavailable(store.KeepAlive(lease)));
  loop.RunUntil([] { return false; }, absl::Seconds(30));
  store.SetAvailable(true);
  EXPECT_TRUE(store.Get("k").has_value());
  loop.RunUntil([] { return false; }, absl::Seconds(11));
  EXPECT_FALSE(store.Get("k").has_value());
}

// ---- The Storage contract ----------------------------------------------------------------------

class SimEtcdBackend : public storage_testing::Backend {
 public:
  SimEtcdBackend() : loop_(clock_), store_(loop_), link_(store_, loop_, 1) {
    storage_ = std::make_unique<SimEtcdStorage>(link_, "contract");
  }
  Storage& storage() override { return *storage_; }

 protected:
  SimClock clock_;
  SimEventLoop loop_;
  SimEtcd store_;
  Link link_;
  std::unique_ptr<SimEtcdStorage> storage_;
};

// The active node's view: holding the lock, every write a fenced Txn.
class FencedSimEtcdBackend final : public SimEtcdBackend {
 public:
  FencedSimEtcdBackend() {
    coordinator_ =
        std::make_unique<SimEtcdCoordinator>(link_, loop_, clock_, CoordinatorOptions("contract"));
    std::optional<absl::StatusOr<ha::LockGrant>> won;
    coordinator_->Campaign(
        "uuid", [&](absl::StatusOr<ha::LockGrant> g) { won = std::move(g); }, [](absl::Status) {});
    loop_.RunUntil([&] { return won.has_value(); }, absl::Seconds(5));
    EXPECT_TRUE(won.has_value() && won->ok());
    if (won.has_value() && won->ok()) storage_->FenceOn(**won);
  }

 private:
  std::unique_ptr<SimEtcdCoordinator> coordinator_;
};

using storage_testing::StorageContractTest;

INSTANTIATE_TEST_SUITE_P(
    SimEtcd, StorageContractTest,
    ::testing::Values(
        storage_testing::BackendParam{"SimEtcd", [] { return std::make_unique<SimEtcdBackend>(); }},
        storage_testing::BackendParam{"SimEtcdFenced",
                                      [] { return std::make_unique<FencedSimEtcdBackend>(); }}),
    storage_testing::BackendName);

// ---- The coordinator ---------------------------------------------------------------------------

// One HA node's pieces over a shared store.
struct TestNode {
  TestNode(SimEtcd& store, SimEventLoop& loop, SimClock& clock, uint64_t seed)
      : link(store, loop, seed),
        storage(link, "/ha/"),
        coordinator(link, loop, clock, CoordinatorOptions("/ha/")) {
    storage.SetFencedListener([this](const ha::LockGrant&) { ++fenced; });
  }
  void Campaign(std::string id) {
    won.reset();
    lost.reset();
    coordinator.Campaign(
        std::move(id), [this](absl::StatusOr<ha::LockGrant> g) { won = std::move(g); },
        [this](absl::Status why) { lost = std::move(why); });
  }
  bool holds() const { return won.has_value() && won->ok() && !lost.has_value(); }

  Link link;
  SimEtcdStorage storage;
  SimEtcdCoordinator coordinator;
  std::optional<absl::StatusOr<ha::LockGrant>> won;
  std::optional<absl::Status> lost;
  int fenced = 0;
};

class CoordinatorTest : public ::testing::Test {
 protected:
  void Run(absl::Duration d) {
    loop_.RunUntil([] { return false; }, d);
  }
  // Runs until `done` or `limit` of simulated time; returns the time it took.
  absl::Duration RunUntil(const std::function<bool()>& done, absl::Duration limit) {
    const absl::Duration start = clock_.MonotonicNow();
    loop_.RunUntil(done, limit);
    return clock_.MonotonicNow() - start;
  }

  SimClock clock_;
  SimEventLoop loop_{clock_};
  SimEtcd store_{loop_};
  TestNode a_{store_, loop_, clock_, 1};
  TestNode b_{store_, loop_, clock_, 2};
};

TEST_F(CoordinatorTest, OneHoldsTheOtherWaitsAndWinsWhenItResigns) {
  a_.Campaign("a");
  RunUntil([&] { return a_.won.has_value(); }, absl::Seconds(1));
  ASSERT_TRUE(a_.holds());
  b_.Campaign("b");
  Run(absl::Seconds(60));  // Renewals keep a's lease; b waits.
  EXPECT_TRUE(a_.holds());
  EXPECT_FALSE(b_.won.has_value());
  EXPECT_THAT(b_.coordinator.Holder().value(), Optional(std::string("a")));
  ASSERT_TRUE(a_.coordinator.Resign().ok());
  RunUntil([&] { return b_.won.has_value(); }, absl::Seconds(1));
  ASSERT_TRUE(b_.holds());
  EXPECT_GT((*b_.won)->revision, (*a_.won)->revision);
  EXPECT_FALSE(a_.lost.has_value());  // No callback after Resign.
  // A second campaign while one runs is refused through `won`.
  std::optional<absl::Status> second;
  b_.coordinator.Campaign(
      "again", [&](absl::StatusOr<ha::LockGrant> g) { second = g.status(); }, [](absl::Status) {});
  Run(absl::Milliseconds(1));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CoordinatorTest, APartitionedHolderGivesUpBeforeItsLeaseCanExpireAndIsFenced) {
  a_.Campaign("a");
  RunUntil([&] { return a_.won.has_value(); }, absl::Seconds(1));
  ASSERT_TRUE(a_.holds());
  a_.storage.FenceOn(**a_.won);
  ASSERT_TRUE(a_.storage.Put("k", "from-a").ok());
  b_.Campaign("b");
  Run(absl::Seconds(1));
  a_.link.SetUp(false);
  const absl::Duration cut = clock_.MonotonicNow();
  RunUntil([&] { return a_.lost.has_value(); }, absl::Seconds(60));
  ASSERT_TRUE(a_.lost.has_value());
  // The loss deadline (10 s of a 15 s TTL) counts from the last acknowledged renewal's send.
  EXPECT_LE(clock_.MonotonicNow() - cut, ha::LossDeadline(kTtl));
  EXPECT_FALSE(b_.won.has_value());  // The store still holds a's lease.
  RunUntil([&] { return b_.won.has_value(); }, absl::Seconds(60));
  ASSERT_TRUE(b_.holds());
  EXPECT_GT(clock_.MonotonicNow() - cut, ha::LossDeadline(kTtl));
  b_.storage.FenceOn(**b_.won);
  ASSERT_TRUE(b_.storage.Put("k", "from-b").ok());
  // The link mends: a deposed node that still writes as the active is fenced.
  a_.link.SetUp(true);
  const absl::Status late = a_.storage.Put("k", "late-from-a");
  EXPECT_TRUE(IsFenced(late)) << late;
  EXPECT_EQ(a_.fenced, 1);
  EXPECT_THAT(b_.storage.Get("k").value(), Optional(std::string("from-b")));
  // Standbys may not write at all.
  a_.storage.MakeReadOnly();
  EXPECT_TRUE(IsReadOnly(a_.storage.Put("k", "x")));
  // And nobody writes the lock entries through the storage.
  EXPECT_EQ(b_.storage.Put("core/lock/1", "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(b_.storage.List("core/").value(), ElementsAre());
}

TEST_F(CoordinatorTest, ASlowClockMissesItsLossDeadlineAndOnlyTheFenceSavesTheData) {
  a_.coordinator.SetClockRate(0.5);  // a's timers run twice as long as they say.
  a_.Campaign("a");
  RunUntil([&] { return a_.won.has_value(); }, absl::Seconds(1));
  ASSERT_TRUE(a_.holds());
  a_.storage.FenceOn(**a_.won);
  b_.Campaign("b");
  Run(absl::Seconds(1));
  a_.link.SetUp(false);
  RunUntil([&] { return b_.won.has_value(); }, absl::Seconds(60));
  ASSERT_TRUE(b_.holds());
  a_.link.SetUp(true);
  EXPECT_FALSE(a_.lost.has_value());  // a still believes it is the active.
  EXPECT_TRUE(IsFenced(a_.storage.Put("k", "late")));
  EXPECT_FALSE(store_.Get("/ha/k").has_value());
}

TEST_F(CoordinatorTest, WatchesReportChangesAfterTheCallInStoreOrder) {
  std::vector<ha::WatchEvent> events;
  absl::StatusOr<std::unique_ptr<ha::WatchHandle>> watch =
      b_.coordinator.Watch("sys/", [&](std::vector<ha::WatchEvent> batch) {
        events.insert(events.end(), batch.begin(), batch.end());
      });
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(a_.storage.Put("sys/a", "1").ok());
  ASSERT_TRUE(a_.storage.Put("other", "1").ok());
  ASSERT_TRUE(a_.storage.Delete("sys/a").ok());
  Run(absl::Seconds(1));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].key, "sys/a");
  EXPECT_EQ(events[0].type, ha::WatchEvent::Type::kPut);
  EXPECT_EQ(events[1].type, ha::WatchEvent::Type::kDelete);
  watch->reset();
  ASSERT_TRUE(a_.storage.Put("sys/b", "1").ok());
  Run(absl::Seconds(1));
  EXPECT_EQ(events.size(), 2u);
}

TEST_F(CoordinatorTest, ABrokenWatchResumesFromItsNextRevisionAndLosesNothing) {
  std::vector<ha::WatchEvent> events;
  std::vector<WatchSignal> signals;
  TestNode c(store_, loop_, clock_, 3);
  SimCoordinatorOptions options = CoordinatorOptions("/ha/");
  options.on_watch = [&](WatchSignal s, int64_t) { signals.push_back(s); };
  SimEtcdCoordinator coordinator(c.link, loop_, clock_, options);
  absl::StatusOr<std::unique_ptr<ha::WatchHandle>> watch =
      coordinator.Watch("", [&](std::vector<ha::WatchEvent> batch) {
        events.insert(events.end(), batch.begin(), batch.end());
      });
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(a_.storage.Put("k1", "1").ok());
  Run(absl::Milliseconds(100));
  ASSERT_EQ(events.size(), 1u);
  ASSERT_TRUE(coordinator.BreakWatches(absl::Seconds(3)));
  ASSERT_TRUE(a_.storage.Put("k2", "1").ok());
  ASSERT_TRUE(a_.storage.Delete("k1").ok());
  Run(absl::Seconds(2));
  EXPECT_EQ(events.size(), 1u);  // Held back while broken.
  // A cut link breaks the stream too; it resumes once the link is up again.
  c.link.SetUp(false);
  Run(absl::Seconds(2));
  ASSERT_TRUE(a_.storage.Put("k3", "1").ok());
  Run(absl::Seconds(2));
  EXPECT_EQ(events.size(), 1u);
  c.link.SetUp(true);
  Run(absl::Seconds(2));
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[1].key, "k2");
  EXPECT_EQ(events[2].key, "k1");
  EXPECT_EQ(events[2].type, ha::WatchEvent::Type::kDelete);
  EXPECT_EQ(events[3].key, "k3");
  EXPECT_LT(events[1].revision, events[2].revision);
  EXPECT_THAT(signals, ElementsAre(WatchSignal::kBroken, WatchSignal::kResumed));
}

TEST_F(CoordinatorTest, AResumePastACompactionReloadsAndTheCacheForgetsEverything) {
  std::vector<ha::WatchEvent> events;
  TestNode c(store_, loop_, clock_, 3);
  SimCoordinatorOptions options = CoordinatorOptions("/ha/");
  options.on_watch = [&](WatchSignal s, int64_t r) { c.storage.OnWatch(s, r); };
  SimEtcdCoordinator coordinator(c.link, loop_, clock_, options);
  absl::StatusOr<std::unique_ptr<ha::WatchHandle>> watch =
      coordinator.Watch("", [&](std::vector<ha::WatchEvent> batch) {
        c.storage.Changed(batch);
        events.insert(events.end(), batch.begin(), batch.end());
      });
  ASSERT_TRUE(watch.ok());
  c.storage.MakeReadOnly();
  c.storage.BeginWatchedReads();
  ASSERT_TRUE(a_.storage.Put("logical/data", "old").ok());
  ASSERT_TRUE(a_.storage.Put("barrier/keyring", "k1").ok());
  Run(absl::Milliseconds(100));
  EXPECT_THAT(c.storage.Get("logical/data").value(), Optional(std::string("old")));
  EXPECT_THAT(c.storage.Get("logical/data").value(), Optional(std::string("old")));
  EXPECT_EQ(c.storage.cached_reads(), 1);
  // A write the watch has not delivered yet: memory is not used until it has.
  ASSERT_TRUE(a_.storage.Put("logical/data", "new").ok());
  EXPECT_THAT(c.storage.Get("logical/data").value(), Optional(std::string("new")));
  Run(absl::Milliseconds(100));
  ASSERT_TRUE(coordinator.BreakWatches(absl::Seconds(2)));
  Run(absl::Milliseconds(10));
  ASSERT_TRUE(a_.storage.Put("logical/data", "gap").ok());
  ASSERT_TRUE(a_.storage.Put("barrier/keyring", "k2").ok());
  store_.Compact(store_.revision());
  events.clear();
  Run(absl::Seconds(3));
  // The reload: the core's own entries are reported changed; no data key is.
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].key, "barrier/keyring");
  EXPECT_THAT(c.storage.Get("logical/data").value(), Optional(std::string("gap")));
}

TEST_F(CoordinatorTest, PlantedBugKeepCacheAcrossWatchBreakServesAValueChangedInTheGap) {
  SeededRandom random(1);
  faultinject::Registry registry(random);
  ASSERT_TRUE(registry.Set("bug.sim_etcd.keep_cache_across_watch_break", "return").ok());
  faultinject::ScopedInstall install(registry);
  TestNode c(store_, loop_, clock_, 3);
  SimCoordinatorOptions options = CoordinatorOptions("/ha/");
  options.on_watch = [&](WatchSignal s, int64_t r) { c.storage.OnWatch(s, r); };
  SimEtcdCoordinator coordinator(c.link, loop_, clock_, options);
  absl::StatusOr<std::unique_ptr<ha::WatchHandle>> watch =
      coordinator.Watch("", [&](std::vector<ha::WatchEvent> batch) { c.storage.Changed(batch); });
  ASSERT_TRUE(watch.ok());
  c.storage.MakeReadOnly();
  c.storage.BeginWatchedReads();
  ASSERT_TRUE(a_.storage.Put("logical/data", "old").ok());
  Run(absl::Milliseconds(100));
  EXPECT_THAT(c.storage.Get("logical/data").value(), Optional(std::string("old")));
  ASSERT_TRUE(coordinator.BreakWatches(absl::Seconds(2)));
  Run(absl::Milliseconds(10));
  ASSERT_TRUE(a_.storage.Put("logical/data", "gap").ok());
  store_.Compact(store_.revision());
  Run(absl::Seconds(3));
  EXPECT_THAT(c.storage.Get("logical/data").value(), Optional(std::string("old")));
}

TEST_F(CoordinatorTest, PlantedBugUnfencedWriteLetsADeposedActivesWriteLand) {
  SeededRandom random(1);
  faultinject::Registry registry(random);
  ASSERT_TRUE(registry.Set("bug.sim_etcd.unfenced_write", "return").ok());
  faultinject::ScopedInstall install(registry);
  a_.Campaign("a");
  RunUntil([&] { return a_.won.has_value(); }, absl::Seconds(1));
  a_.storage.FenceOn(**a_.won);
  ASSERT_TRUE(a_.coordinator.Resign().ok());
  b_.Campaign("b");
  RunUntil([&] { return b_.won.has_value(); }, absl::Seconds(1));
  ASSERT_TRUE(b_.holds());
  // What the fence forbids: the deposed node's write lands.
  EXPECT_TRUE(a_.storage.Put("k", "late-from-a").ok());
  EXPECT_EQ(store_.Get("/ha/k")->value, "late-from-a");
}

}  // namespace
}  // namespace bulwark::sim::etcd
