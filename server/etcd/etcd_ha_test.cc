// The HA coordinator and fenced EtcdStorage against a real etcd: the lock and its FIFO hand-over,
// loss when the lease is revoked, watches, read-only standbys, and fenced writes of a deposed
// active node that never land. Every wait is for an event (a callback, a key appearing); the
// timeouts are hang guards only.
#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/env/random.h"
#include "base/storage/storage_errors.h"
#include "faultinject/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/etcd/etcd_client.h"
#include "server/etcd/etcd_coordinator.h"
#include "server/etcd/etcd_storage.h"
#include "server/etcd/ha_test_util.h"
#include "server/testing/etcd.h"

namespace bulwark::etcd {
namespace {

using ha_testing::Node;
using ha_testing::TakeOver;
using ha_testing::WaitForLockEntries;
using ::testing::HasSubstr;
using ::testing::Optional;

class EtcdHaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { etcd_ = new server_testing::EtcdProcess(); }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  std::string NewPath() {
    static int counter = 0;
    return absl::StrCat("/ha-", ++counter, "/");
  }

  static server_testing::EtcdProcess* etcd_;
};

server_testing::EtcdProcess* EtcdHaTest::etcd_ = nullptr;

TEST_F(EtcdHaTest, ALoneNodeWinsAndIsTheHolder) {
  const std::string path = NewPath();
  Node a(*etcd_, path);
  EXPECT_THAT(a.coordinator->Holder().value(), std::nullopt);
  a.Campaign("uuid-a");
  ASSERT_TRUE(a.WaitWon());
  ASSERT_TRUE(a.won->ok()) << a.won->status();
  const ha::LockGrant& grant = **a.won;
  EXPECT_EQ(grant.holder_id, "uuid-a");
  EXPECT_GT(grant.revision, 0);
  EXPECT_EQ(grant.lock_key, absl::StrCat(path, "core/lock/", absl::Hex(grant.lease_id)));
  EXPECT_EQ(grant.ttl, absl::Seconds(6));
  EXPECT_THAT(a.coordinator->Holder().value(), Optional(std::string("uuid-a")));
  // The lock entries are not storage keys: List hides them, writes there are refused.
  ASSERT_TRUE(a.storage->Put("core/keyring", "k").ok());
  EXPECT_THAT(a.storage->List("").value(), ::testing::ElementsAre("core/keyring"));
  EXPECT_EQ(a.storage->Put("core/lock/x", "v").code(), absl::StatusCode::kInvalidArgument);
  // A second campaign while one runs is refused.
  std::optional<absl::StatusOr<ha::LockGrant>> second;
  a.coordinator->Campaign(
      "again", [&](absl::StatusOr<ha::LockGrant> g) { second = std::move(g); },
      [](absl::Status) {});
  ASSERT_TRUE(a.loop.RunUntil([&] { return second.has_value(); }));
  EXPECT_EQ(second->status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(a.coordinator->Resign().ok());
  EXPECT_THAT(a.coordinator->Holder().value(), std::nullopt);
}

TEST_F(EtcdHaTest, AWaitingContenderWinsOnlyWhenTheHolderResigns) {
  const std::string path = NewPath();
  Node a(*etcd_, path), b(*etcd_, path);
  a.Campaign("uuid-a");
  ASSERT_TRUE(a.WaitWon());
  ASSERT_TRUE(a.won->ok());
  b.Campaign("uuid-b");
  ASSERT_TRUE(WaitForLockEntries(*b.client, path, 2));
  // B's entry exists; A still holds.
  EXPECT_THAT(b.coordinator->Holder().value(), Optional(std::string("uuid-a")));
  EXPECT_FALSE(b.won.has_value());
  ASSERT_TRUE(a.coordinator->Resign().ok());
  ASSERT_TRUE(b.WaitWon());
  ASSERT_TRUE(b.won->ok()) << b.won->status();
  EXPECT_GT((*b.won)->revision, (*a.won)->revision);
  EXPECT_THAT(b.coordinator->Holder().value(), Optional(std::string("uuid-b")));
  EXPECT_FALSE(a.lost.has_value());  // Resigning is not losing.
}

// With cache_holder (the server's standbys): Holder() reads etcd once, then answers from memory
// until the watch on the lock entries reports a change (the test runs the node's loop until the
// event has been delivered, then sees the new holder), or the caller invalidates it.
TEST_F(EtcdHaTest, ACachedHolderIsReadOnceAndDroppedByTheLockWatch) {
  const std::string path = NewPath();
  Node a(*etcd_, path), b(*etcd_, path, /*cache_holder=*/true);
  a.Campaign("uuid-a");
  ASSERT_TRUE(a.WaitWon());
  ASSERT_TRUE(a.won->ok()) << a.won->status();
  EXPECT_THAT(b.coordinator->Holder().value(), Optional(std::string("uuid-a")));
  EXPECT_THAT(b.coordinator->Holder().value(), Optional(std::string("uuid-a")));
  EXPECT_EQ(b.coordinator->holder_reads(), 1);
  b.coordinator->InvalidateHolder();  // A forward failed.
  EXPECT_THAT(b.coordinator->Holder().value(), Optional(std::string("uuid-a")));
  EXPECT_EQ(b.coordinator->holder_reads(), 2);
  // A resigns: its lock entry goes; B's watch delivers the delete, the cache is dropped, and the
  // next Holder() reads etcd again.
  ASSERT_TRUE(a.coordinator->Resign().ok());
  ASSERT_TRUE(b.loop.RunUntil([&] {
    absl::StatusOr<std::optional<std::string>> holder = b.coordinator->Holder();
    return holder.ok() && !holder->has_value();
  }));
  EXPECT_EQ(b.coordinator->holder_reads(), 3);
  // Without cache_holder every call reads etcd (A's coordinator).
  const int64_t before = a.coordinator->holder_reads();
  (void)a.coordinator->Holder();
  (void)a.coordinator->Holder();
  EXPECT_EQ(a.coordinator->holder_reads(), before + 2);
}

// A wins and writes; its lease is revoked (as if it expired); B takes over; A learns it lost the
// lock, and its writes are refused with the fenced error and do not land.
TEST_F(EtcdHaTest, ADeposedActivesWritesAreFencedAndDoNotLand) {
  const std::string path = NewPath();
  Node a(*etcd_, path), b(*etcd_, path);
  ASSERT_TRUE(TakeOver(*etcd_, path, a, b, [&] {
    ASSERT_TRUE(a.storage->Put("secret/k", "from-a").ok());
    ASSERT_TRUE(a.storage->Put("secret/gone", "x").ok());
  }));
  ASSERT_TRUE(a.loop.RunUntil([&] { return a.lost.has_value(); }));
  EXPECT_THAT(a.lost->message(), HasSubstr("expired or was revoked"));

  std::vector<int64_t> fenced_on;
  a.storage->SetFencedListener([&](const ha::LockGrant& g) { fenced_on.push_back(g.revision); });
  const absl::Status put = a.storage->Put("secret/k", "late-from-a");
  EXPECT_TRUE(IsFenced(put)) << put;
  EXPECT_THAT(fenced_on, ::testing::ElementsAre((*a.won)->revision));
  EXPECT_THAT(put.message(), HasSubstr("fenced: this node no longer holds the lock"));
  EXPECT_TRUE(IsFenced(a.storage->Delete("secret/gone")));
  EXPECT_THAT(b.storage->Get("secret/k").value(), Optional(std::string("from-a")));
  EXPECT_THAT(b.storage->Get("secret/gone").value(), Optional(std::string("x")));
  ASSERT_TRUE(b.storage->Put("secret/k", "from-b").ok());
  EXPECT_THAT(a.storage->Get("secret/k").value(), Optional(std::string("from-b")));
}

// A paused active: its loop never runs after it won (it cannot notice the loss), B takes over,
// then A issues writes. They are refused by etcd itself and do not land.
TEST_F(EtcdHaTest, APausedWritersWritesIssuedAfterTheTakeoverDoNotLand) {
  const std::string path = NewPath();
  Node a(*etcd_, path), b(*etcd_, path);
  // A's loop is never run after it won: nothing its coordinator posts reaches it.
  ASSERT_TRUE(
      TakeOver(*etcd_, path, a, b, [&] { ASSERT_TRUE(a.storage->Put("k", "before").ok()); }));
  ASSERT_TRUE(b.storage->Put("k", "b-took-over").ok());
  EXPECT_FALSE(a.lost.has_value());  // A has not noticed.
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(IsFenced(a.storage->Put("k", absl::StrCat("paused-", i))));
    EXPECT_TRUE(IsFenced(a.storage->Put(absl::StrCat("new-", i), "paused")));
  }
  EXPECT_THAT(b.storage->Get("k").value(), Optional(std::string("b-took-over")));
  EXPECT_THAT(b.storage->List("new-").value(), ::testing::IsEmpty());
}

// The active node's reads come from memory while its lease window is open: shown by changing a
// key behind its back (what no other node can do while it holds the lock). Closing the window,
// or any mode change, sends reads to etcd again.
TEST_F(EtcdHaTest, TheActiveNodeReadsFromItsCacheOnlyWhileItsLeaseIsConfirmed) {
  const std::string path = NewPath();
  Node a(*etcd_, path);
  a.Campaign("uuid-a");
  ASSERT_TRUE(a.WaitWon());
  ASSERT_TRUE(a.won->ok());
  auto window = std::make_shared<LeaseWindow>();
  a.storage->EnableReadCache(window);
  a.storage->FenceOn(**a.won);
  window->ExtendTo(std::chrono::steady_clock::now() + std::chrono::hours(1));
  ASSERT_TRUE(a.storage->Put("c", "written").ok());
  EXPECT_THAT(a.storage->Get("absent").value(), std::nullopt);
  auto behind_its_back = [&](const std::string& key, const std::string& value) {
    server_testing::ProcessResult r = etcd_->Etcdctl({"put", path + key, value});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  };
  behind_its_back("c", "changed");
  behind_its_back("absent", "now here");
  EXPECT_THAT(a.storage->Get("c").value(), Optional(std::string("written")));  // From memory.
  EXPECT_THAT(a.storage->Get("absent").value(), std::nullopt);
  window->Close();
  EXPECT_THAT(a.storage->Get("c").value(), Optional(std::string("changed")));  // From etcd.
  EXPECT_THAT(a.storage->Get("absent").value(), Optional(std::string("now here")));
  // A mode change forgets everything: after FenceOn again, reads start from etcd.
  window->ExtendTo(std::chrono::steady_clock::now() + std::chrono::hours(1));
  behind_its_back("c", "changed again");
  a.storage->FenceOn(**a.won);
  EXPECT_THAT(a.storage->Get("c").value(), Optional(std::string("changed again")));
  // The coordinator's own window is open while it holds the lock and closed once it resigned.
  EXPECT_TRUE(a.coordinator->lease_window()->Open());
  ASSERT_TRUE(a.coordinator->Resign().ok());
  EXPECT_FALSE(a.coordinator->lease_window()->Open());
}

TEST_F(EtcdHaTest, AReadOnlyStandbyWritesNothingAndAnUnfencedNodeWritesFreely) {
  const std::string path = NewPath();
  Node a(*etcd_, path);
  a.storage->MakeReadOnly();
  const absl::Status put = a.storage->Put("k", "v");
  EXPECT_TRUE(IsReadOnly(put)) << put;
  EXPECT_EQ(put.message(), "cannot write to readonly storage");
  EXPECT_TRUE(IsReadOnly(a.storage->Delete("k")));
  EXPECT_THAT(a.storage->Get("k").value(), std::nullopt);
  a.storage->Unfence();
  ASSERT_TRUE(a.storage->Put("k", "v").ok());
  EXPECT_THAT(a.storage->Get("k").value(), Optional(std::string("v")));
}

TEST_F(EtcdHaTest, WatchReportsChangesUnderThePrefixUntilTheHandleIsDropped) {
  const std::string path = NewPath();
  Node a(*etcd_, path);
  std::vector<ha::WatchEvent> seen;
  absl::StatusOr<std::unique_ptr<ha::WatchHandle>> watch =
      a.coordinator->Watch("core/", [&](std::vector<ha::WatchEvent> events) {
        seen.insert(seen.end(), events.begin(), events.end());
      });
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE(a.storage->Put("other/x", "not watched").ok());
  ASSERT_TRUE(a.storage->Put("core/mounts", "m").ok());
  ASSERT_TRUE(a.storage->Delete("core/mounts").ok());
  ASSERT_TRUE(a.loop.RunUntil([&] { return seen.size() >= 2; }));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].type, ha::WatchEvent::Type::kPut);
  EXPECT_EQ(seen[0].key, "core/mounts");
  EXPECT_EQ(seen[1].type, ha::WatchEvent::Type::kDelete);
  EXPECT_EQ(seen[1].key, "core/mounts");
  EXPECT_LT(seen[0].revision, seen[1].revision);
  watch->reset();
  ASSERT_TRUE(a.storage->Put("core/after", "x").ok());
  // A marker proves the loop ran everything posted before it; nothing from the dropped watch.
  bool marker = false;
  a.loop.poster()([&] { marker = true; });
  ASSERT_TRUE(a.loop.RunUntil([&] { return marker; }));
  EXPECT_EQ(seen.size(), 2u);
}

TEST_F(EtcdHaTest, APerformanceStandbyReadsFromMemoryOnlyWhatItsWatchKeepsFresh) {
  const std::string path = NewPath();
  Node writer(*etcd_, path);  // Unfenced: writes freely, like an active node.
  Node perf(*etcd_, path);
  auto health = std::make_shared<WatchHealth>();
  health->Opened();
  perf.storage->EnableWatchedReads(health);
  perf.storage->MakeReadOnly();
  int64_t delivered = 0;
  absl::StatusOr<std::unique_ptr<ha::WatchHandle>> watch =
      perf.coordinator->Watch("", [&](std::vector<ha::WatchEvent> events) {
        perf.storage->Changed(events);
        for (const ha::WatchEvent& e : events) delivered = std::max(delivered, e.revision);
      });
  ASSERT_TRUE(watch.ok()) << watch.status();
  auto deliver_up_to = [&](int64_t revision) {
    return perf.loop.RunUntil([&] { return delivered >= revision; });
  };
  auto read = [&](const std::string& key) { return perf.storage->Get(key).value(); };
  // Before BeginWatchedReads every read goes to etcd.
  ASSERT_TRUE(writer.storage->Put("k", "v1").ok());
  EXPECT_THAT(read("k"), Optional(std::string("v1")));
  EXPECT_THAT(read("k"), Optional(std::string("v1")));
  EXPECT_EQ(perf.storage->cached_reads(), 0);

  perf.storage->BeginWatchedReads();
  EXPECT_THAT(read("k"), Optional(std::string("v1")));  // From etcd, remembered.
  EXPECT_THAT(read("k"), Optional(std::string("v1")));  // From memory.
  EXPECT_THAT(read("absent"), std::nullopt);
  EXPECT_THAT(read("absent"), std::nullopt);
  EXPECT_EQ(perf.storage->cached_reads(), 2);

  // What lags: a change the watch has not delivered yet is not seen from memory...
  ASSERT_TRUE(writer.storage->Put("k", "v2").ok());
  EXPECT_THAT(read("k"), Optional(std::string("v1")));
  EXPECT_EQ(perf.storage->cached_reads(), 3);
  // ...and is once it has: the key is dropped and read from etcd again.
  ASSERT_TRUE(deliver_up_to(writer.storage->last_write_revision()));
  EXPECT_THAT(read("k"), Optional(std::string("v2")));
  EXPECT_EQ(perf.storage->cached_reads(), 3);

  // A write this node re-sent to the active node: its revision is awaited, so the client reads
  // it at once (from etcd), and from memory again once the watch has delivered it.
  ASSERT_TRUE(writer.storage->Put("k", "v3").ok());
  ASSERT_TRUE(writer.storage->Put("absent", "now here").ok());
  perf.storage->AwaitRevision(writer.storage->last_write_revision());
  EXPECT_THAT(read("k"), Optional(std::string("v3")));
  EXPECT_THAT(read("absent"), Optional(std::string("now here")));
  EXPECT_EQ(perf.storage->cached_reads(), 3);
  ASSERT_TRUE(deliver_up_to(writer.storage->last_write_revision()));
  EXPECT_THAT(read("k"), Optional(std::string("v3")));
  EXPECT_THAT(read("k"), Optional(std::string("v3")));
  EXPECT_EQ(perf.storage->cached_reads(), 4);

  // A broken watch: nothing from memory while it is down, and what was remembered before the
  // break is forgotten (its events may arrive late).
  health->Broke();
  ASSERT_TRUE(writer.storage->Put("k", "v4").ok());
  EXPECT_THAT(read("k"), Optional(std::string("v4")));
  health->Opened();
  ASSERT_TRUE(writer.storage->Put("k", "v5").ok());  // Not delivered yet, but not remembered.
  EXPECT_THAT(read("k"), Optional(std::string("v5")));
  EXPECT_EQ(perf.storage->cached_reads(), 4);
  EXPECT_THAT(read("k"), Optional(std::string("v5")));
  EXPECT_EQ(perf.storage->cached_reads(), 5);

  // Only read-only storage reads from memory this way; a mode change forgets everything.
  perf.storage->Unfence();
  ASSERT_TRUE(writer.storage->Put("k", "v6").ok());
  EXPECT_THAT(read("k"), Optional(std::string("v6")));
  perf.storage->MakeReadOnly();
  perf.storage->EndWatchedReads();
  EXPECT_THAT(read("k"), Optional(std::string("v6")));
  EXPECT_THAT(read("k"), Optional(std::string("v6")));
  EXPECT_EQ(perf.storage->cached_reads(), 5);
}

TEST_F(EtcdHaTest, TheCoordinatorsWatchHealthIsLiveWhileItsWatchStreamIsOpen) {
  const std::string path = NewPath();
  Node a(*etcd_, path);
  EXPECT_FALSE(a.coordinator->watch_health()->Live());
  absl::StatusOr<std::unique_ptr<ha::WatchHandle>> watch =
      a.coordinator->Watch("", [](std::vector<ha::WatchEvent>) {});
  ASSERT_TRUE(watch.ok()) << watch.status();
  EXPECT_TRUE(a.coordinator->watch_health()->Live());
  EXPECT_EQ(a.coordinator->watch_health()->epoch(), 0u);
}

// Polls `condition` every 10 ms; the bound is a hang guard, not a timing assertion.
bool Eventually(const std::function<bool()>& condition) {
  const auto until =
      std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(ha_testing::kHangGuard);
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// The watch breaks after its first delivery and stays closed while three more changes land and
// etcd compacts its history past them: the revision it would resume from is gone. The reader
// then reports every key under the prefix as changed at the revision it read them at (a full
// reload; the watch health's epoch moved, so watched reads were dropped) and watches on from
// there. Before this, it asked etcd for the compacted revision again and again and delivered
// nothing more.
TEST_F(EtcdHaTest, AWatchThatResumesPastACompactionReportsEveryKeyAndWatchesOn) {
  const std::string path = NewPath();
  Node a(*etcd_, path);
  SeededRandom random(1);
  faultinject::Registry registry(random);
  ASSERT_TRUE(registry.Set("etcd.watch.break", "1*return").ok());
  ASSERT_TRUE(registry.Set("etcd.watch.hold_reopen", "return").ok());
  faultinject::ScopedInstall install(registry);
  std::vector<ha::WatchEvent> seen;
  absl::StatusOr<std::unique_ptr<ha::WatchHandle>> watch =
      a.coordinator->Watch("core/", [&](std::vector<ha::WatchEvent> events) {
        seen.insert(seen.end(), events.begin(), events.end());
      });
  ASSERT_TRUE(watch.ok()) << watch.status();
  const uint64_t epoch = a.coordinator->watch_health()->epoch();
  ASSERT_TRUE(a.storage->Put("core/first", "1").ok());
  ASSERT_TRUE(a.loop.RunUntil([&] { return seen.size() == 1; }));
  // The health changes on the reader thread without a post to the loop: poll it.
  ASSERT_TRUE(Eventually([&] { return !a.coordinator->watch_health()->Live(); }));
  ASSERT_TRUE(a.storage->Put("core/second", "2").ok());
  ASSERT_TRUE(a.storage->Put("core/third", "3").ok());
  ASSERT_TRUE(a.storage->Put("other/not-watched", "x").ok());
  etcdserverpb::RangeRequest head;
  head.set_key("/");
  head.set_count_only(true);
  absl::StatusOr<etcdserverpb::RangeResponse> now = a.client->Range(head);
  ASSERT_TRUE(now.ok()) << now.status();
  const int64_t compacted_to = now->header().revision();
  server_testing::ProcessResult compact = etcd_->Etcdctl({"compact", absl::StrCat(compacted_to)});
  ASSERT_EQ(compact.exit_code, 0) << compact.out << compact.err;
  registry.Clear("etcd.watch.hold_reopen");

  ASSERT_TRUE(a.loop.RunUntil([&] { return seen.size() >= 4; }));
  std::vector<std::string> reloaded;
  for (size_t i = 1; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].type, ha::WatchEvent::Type::kPut);
    EXPECT_GE(seen[i].revision, compacted_to);
    reloaded.push_back(seen[i].key);
  }
  EXPECT_THAT(reloaded, ::testing::UnorderedElementsAre("core/first", "core/second", "core/third"));
  EXPECT_GT(a.coordinator->watch_health()->epoch(), epoch);
  ASSERT_TRUE(Eventually([&] { return a.coordinator->watch_health()->Live(); }));
  // And it watches on.
  ASSERT_TRUE(a.storage->Put("core/fourth", "4").ok());
  ASSERT_TRUE(a.loop.RunUntil([&] { return seen.back().key == "core/fourth"; }));
  EXPECT_GT(seen.back().revision, compacted_to);
}

}  // namespace
}  // namespace bulwark::etcd
