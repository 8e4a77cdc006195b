// Test helpers for HA on a real etcd: a node's event loop driven by the test thread, and one HA
// node (client, coordinator, fenced storage). Header-only, so that a test can link either the
// production or the planted-bug variant of //server/etcd:etcd_storage and :etcd_coordinator.
#ifndef BULWARK_SERVER_ETCD_HA_TEST_UTIL_H_
#define BULWARK_SERVER_ETCD_HA_TEST_UTIL_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/functional/any_invocable.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/etcd/etcd_client.h"
#include "server/etcd/etcd_coordinator.h"
#include "server/etcd/etcd_storage.h"
#include "server/testing/etcd.h"

namespace bulwark::etcd::ha_testing {

inline constexpr absl::Duration kHangGuard = absl::Seconds(60);

// A node's event loop for the test: the coordinator posts from its threads; the test thread runs
// the tasks. A node whose queue is not run is a paused node.
class TaskQueue {
 public:
  std::function<void(absl::AnyInvocable<void()>)> poster() {
    return [this](absl::AnyInvocable<void()> task) {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
      cv_.notify_all();
    };
  }
  // Runs posted tasks until `done()` holds; false after the hang guard.
  bool RunUntil(const std::function<bool()>& done, absl::Duration guard = kHangGuard) {
    const auto until = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(guard);
    while (!done()) {
      absl::AnyInvocable<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (!cv_.wait_until(lock, until, [this] { return !tasks_.empty(); })) return false;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<absl::AnyInvocable<void()>> tasks_;
};

// One HA node: its client, loop, coordinator and storage on `path`.
struct Node {
  Node(const server_testing::EtcdProcess& etcd, const std::string& path,
       bool cache_holder = false) {
    ClientOptions options;
    options.address = etcd.client_url();
    client = *Client::Connect(options);
    CoordinatorOptions coordinator_options;
    coordinator_options.path = path;
    coordinator_options.lock_ttl = absl::Seconds(6);
    coordinator_options.post = loop.poster();
    coordinator_options.cache_holder = cache_holder;
    coordinator = std::make_unique<EtcdCoordinator>(*client, coordinator_options);
    storage = std::make_unique<EtcdStorage>(*client, path);
    storage->EnableReadCache(coordinator->lease_window());
  }
  void Campaign(const std::string& id) {
    coordinator->Campaign(
        id, [this](absl::StatusOr<ha::LockGrant> g) { won = std::move(g); },
        [this](absl::Status s) { lost = std::move(s); });
  }
  bool WaitWon() {
    return loop.RunUntil([this] { return won.has_value(); });
  }

  TaskQueue loop;
  std::unique_ptr<Client> client;
  std::unique_ptr<EtcdCoordinator> coordinator;
  std::unique_ptr<EtcdStorage> storage;
  std::optional<absl::StatusOr<ha::LockGrant>> won;
  std::optional<absl::Status> lost;
};

// Waits until at least `n` lock entries exist under `path` (contenders have written their
// entries). Polls etcd; the deadline is a hang guard, not a timing assertion.
inline bool WaitForLockEntries(Client& client, const std::string& path, int n) {
  const auto until = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(kHangGuard);
  while (std::chrono::steady_clock::now() < until) {
    etcdserverpb::RangeRequest range;
    range.set_key(absl::StrCat(path, kLockPrefix));
    range.set_range_end(PrefixEnd(range.key()));
    range.set_count_only(true);
    absl::StatusOr<etcdserverpb::RangeResponse> r = client.Range(range);
    if (r.ok() && r->count() >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// The takeover the fencing tests start from: A wins the lock and fences its storage on it, then
// `while_a_holds` runs (A's writes as the active node); B contends and fences its storage while
// read-only; A's lease is revoked with etcdctl (as if it expired); B wins and fences its storage
// on its own grant. A's loop is not run meanwhile: A has not noticed.
inline ::testing::AssertionResult TakeOver(const server_testing::EtcdProcess& etcd,
                                           const std::string& path, Node& a, Node& b,
                                           const std::function<void()>& while_a_holds) {
  a.Campaign("uuid-a");
  if (!a.WaitWon() || !a.won->ok()) return ::testing::AssertionFailure() << "A did not win";
  a.storage->FenceOn(**a.won);
  while_a_holds();
  b.Campaign("uuid-b");
  b.storage->MakeReadOnly();
  if (!WaitForLockEntries(*b.client, path, 2)) {
    return ::testing::AssertionFailure() << "B's lock entry did not appear";
  }
  server_testing::ProcessResult revoke =
      etcd.Etcdctl({"lease", "revoke", absl::StrCat(absl::Hex((*a.won)->lease_id))});
  if (revoke.exit_code != 0) {
    return ::testing::AssertionFailure() << "etcdctl lease revoke: " << revoke.out << revoke.err;
  }
  if (!b.WaitWon() || !b.won->ok()) return ::testing::AssertionFailure() << "B did not win";
  b.storage->FenceOn(**b.won);
  return ::testing::AssertionSuccess();
}

}  // namespace bulwark::etcd::ha_testing

#endif  // BULWARK_SERVER_ETCD_HA_TEST_UTIL_H_
