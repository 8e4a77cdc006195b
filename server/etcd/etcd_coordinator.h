// EtcdCoordinator: the HA coordinator contract (core/ha/coordinator.h) on etcd.
//
// The lock is etcd's concurrency.Mutex recipe, the key shape Vault's etcd backend uses:
// entries `<path>core/lock/<lease id, hex>` attached to a lease of lock_ttl, the lowest create
// revision holds. A contender's entry carries its holder id from the start (one Txn), and it
// waits by watching the entry just before its own. docs/ha.md has the protocol and the margin.
//
// Each campaign runs on a thread of its own (every etcd call there has a deadline: renewals
// bounded by the time left before the loss deadline, waits bounded by the next renewal); each
// Watch has a reader thread. Results reach the node only as tasks handed to `post`, which runs
// them on the node's event loop; the other methods are called on that loop.
#ifndef BULWARK_SERVER_ETCD_ETCD_COORDINATOR_H_
#define BULWARK_SERVER_ETCD_ETCD_COORDINATOR_H_

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "core/ha/coordinator.h"
#include "server/etcd/etcd_client.h"
#include "server/etcd/lease_window.h"
#include "server/etcd/watch_health.h"

namespace bulwark::etcd {

struct CoordinatorOptions {
  std::string path = "/vault/";  // As for EtcdStorage (normalized).
  absl::Duration lock_ttl = absl::Seconds(15);
  // Runs a task on the node's event loop; called from the coordinator's threads.
  std::function<void(absl::AnyInvocable<void()>)> post;
  // Holder() answers from a cache kept by a watch on the lock entries (the server's standbys
  // forward on every request); off: every Holder() reads etcd.
  bool cache_holder = false;
};

class EtcdCoordinator final : public ha::Coordinator {
 public:
  // `client` must outlive the coordinator.
  EtcdCoordinator(Client& client, CoordinatorOptions options);
  // Resigns (revoking a held lease) and joins the campaign thread.
  ~EtcdCoordinator() override;

  void Campaign(std::string holder_id, WonCallback won, LostCallback lost) override;
  absl::Status Resign() override;
  // With cache_holder (docs/ha.md, "Forwarding"): the first call opens a watch on the lock entries
  // and reads the holder from etcd; later calls answer from memory until the watch reports a change
  // to a lock entry, the watch breaks (WatchHealth's epoch), or InvalidateHolder is called. The
  // view may lag etcd by the watch's delivery delay: a forward to a node that no longer holds the
  // lock is redirected or refused by that node, and the caller invalidates.
  absl::StatusOr<std::optional<std::string>> Holder() override;
  // Drops the cached holder (a forward to it failed). Loop thread.
  void InvalidateHolder() { holder_.reset(); }
  // Holder() calls answered by etcd (tests, benchmarks). Loop thread.
  int64_t holder_reads() const { return holder_reads_; }
  absl::StatusOr<std::unique_ptr<ha::WatchHandle>> Watch(std::string prefix,
                                                         EventsCallback on_events) override;

  // "<path>core/lock/".
  const std::string& lock_prefix() const { return lock_prefix_; }
  // Open while this node holds the lock and its lease is confirmed alive (see LeaseWindow).
  std::shared_ptr<const LeaseWindow> lease_window() const { return window_; }
  // Live while every Watch's stream is open; its epoch changes at every break (WatchHealth).
  std::shared_ptr<const WatchHealth> watch_health() const { return watch_health_; }

 private:
  struct Campaign;
  void Run(std::shared_ptr<struct Campaign> campaign);
  absl::StatusOr<std::unique_ptr<ha::WatchHandle>> OpenWatch(std::string prefix,
                                                             EventsCallback on_events,
                                                             std::shared_ptr<WatchHealth> health);
  // Posts `task` to the loop unless the campaign was resigned by the time it runs.
  void PostFor(const std::shared_ptr<struct Campaign>& c, absl::AnyInvocable<void()> task);

  Client& client_;
  const CoordinatorOptions options_;
  const std::string lock_prefix_;
  std::shared_ptr<struct Campaign> campaign_;  // Loop thread only.
  std::thread thread_;                         // Loop thread only.
  const std::shared_ptr<LeaseWindow> window_ = std::make_shared<LeaseWindow>();
  const std::shared_ptr<WatchHealth> watch_health_ = std::make_shared<WatchHealth>();
  // The holder cache (loop thread): valid while `holder_watch_` delivers (`holder_health_`) and
  // its epoch is `holder_epoch_`.
  const std::shared_ptr<WatchHealth> holder_health_ = std::make_shared<WatchHealth>();
  std::unique_ptr<ha::WatchHandle> holder_watch_;
  std::optional<std::optional<std::string>> holder_;
  uint64_t holder_epoch_ = 0;
  int64_t holder_reads_ = 0;
};

}  // namespace bulwark::etcd

#endif  // BULWARK_SERVER_ETCD_ETCD_COORDINATOR_H_
