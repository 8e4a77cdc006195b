// A simulated etcd: the linearizable key-value store with revisions, leases, transactions and
// watches that the HA code (core/ha) relies on, on the simulated clock. One SimEtcd serves every
// node of a run; each node reaches it over a link of its own (SimEtcdLinks) that faults can cut
// or slow. The store itself never fails a call it receives, except when it is made unavailable.
//
// Semantics follow etcd v3 where core/ha depends on them: one global revision, bumped once per
// committed write (a Txn's writes share one); every key's create_revision and mod_revision; a
// lease's keys are deleted (one revision) when it expires or is revoked; watchers see every
// change after their registration, in revision order, batched per revision, synchronously at
// commit (the link decides when a node hears of it).
#ifndef BULWARK_SIM_ETCD_SIM_ETCD_H_
#define BULWARK_SIM_ETCD_SIM_ETCD_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/env/random.h"
#include "base/env/sim/sim_event_loop.h"

namespace bulwark::sim::etcd {

struct KeyValue {
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;  // 0: none.
};

struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  std::string key;
  int64_t revision = 0;
};

// One write of a transaction.
struct Op {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  std::string key;
  std::string value;
  int64_t lease = 0;
};

// One comparison of a transaction: the key's create (or mod) revision equals `revision`; 0 means
// the key does not exist.
struct Compare {
  enum class Target { kCreateRevision, kModRevision };
  std::string key;
  Target target = Target::kCreateRevision;
  int64_t revision = 0;
};

// Limits: a run that grows past one is a bug in the code under test, reported as an error.
inline constexpr size_t kKeysMax = 1 << 20;
inline constexpr size_t kLeasesMax = 4096;
inline constexpr size_t kWatchesMax = 4096;
inline constexpr absl::Duration kLeaseTtlMin = absl::Seconds(1);
inline constexpr size_t kHistoryMax = 1 << 16;

class SimEtcd {
 public:
  using WatchCallback = std::function<void(const std::vector<Event>&)>;

  // Leases expire by `loop`'s clock (the store's own, unskewed).
  explicit SimEtcd(SimEventLoop& loop);
  ~SimEtcd();
  SimEtcd(const SimEtcd&) = delete;
  SimEtcd& operator=(const SimEtcd&) = delete;

  // A store that is down refuses every call (kUnavailable) and lets no lease expire while it
  // is down (etcd extends every lease by its TTL when a new leader takes over; this store
  // extends them by the time it was down).
  void SetAvailable(bool available);
  bool available() const { return available_; }
  // kUnavailable naming `operation` when the store is down.
  absl::Status CheckAvailable(absl::string_view operation) const;

  int64_t revision() const { return revision_; }

  std::optional<KeyValue> Get(absl::string_view key) const;
  // Every key with `prefix`, in key order.
  std::vector<std::pair<std::string, KeyValue>> Range(absl::string_view prefix) const;
  // The key with `prefix` of lowest create revision (etcd's concurrency recipe).
  std::optional<std::pair<std::string, KeyValue>> FirstCreated(absl::string_view prefix) const;

  absl::StatusOr<int64_t> Put(absl::string_view key, absl::string_view value, int64_t lease = 0);
  // Revision of the delete, or the current one when the key did not exist.
  absl::StatusOr<int64_t> Delete(absl::string_view key);
  // Applies `success` when every comparison holds, `failure` otherwise, atomically (one revision
  // if anything was written). True when the comparisons held.
  absl::StatusOr<bool> Txn(const std::vector<Compare>& compares, const std::vector<Op>& success,
                           const std::vector<Op>& failure = {});

  absl::StatusOr<int64_t> Grant(absl::Duration ttl);
  // kNotFound when the lease expired or was revoked.
  absl::Status KeepAlive(int64_t lease);
  absl::Status Revoke(int64_t lease);
  bool LeaseAlive(int64_t lease) const { return leases_.count(lease) != 0; }
  // Expired or revoked leases so far (a count the tests and the trace read).
  uint64_t leases_expired() const { return leases_expired_; }

  // Calls `callback` with every change under `prefix` committed after this call.
  absl::StatusOr<int64_t> Watch(std::string prefix, WatchCallback callback);
  void CancelWatch(int64_t watch);

  // The store keeps every change since its compaction revision, so that a watch can resume
  // from a revision (etcd's WatchCreateRequest.start_revision). Every change under `prefix`
  // with a revision >= `from`, in order; kOutOfRange ("required revision has been compacted",
  // etcd's ErrCompacted) when changes from `from` on were compacted away.
  absl::StatusOr<std::vector<Event>> History(absl::string_view prefix, int64_t from) const;
  // Forgets every change up to `revision` (etcd's Compact). A compaction also happens by itself
  // once kHistoryMax changes are kept (etcd's auto-compaction).
  void Compact(int64_t revision);
  int64_t compacted() const { return compacted_; }

 private:
  struct Lease {
    absl::Duration ttl;
    absl::Duration expires;  // On the loop's clock.
    TimerId timer = kNoTimer;
    std::set<std::string> keys;
  };
  struct Watcher {
    std::string prefix;
    WatchCallback callback;
  };

  absl::Duration Now() const;
  void ArmExpiry(int64_t id);
  void Expire(int64_t id);
  // Applies `ops` as one revision; returns the events.
  absl::Status Apply(const std::vector<Op>& ops);
  void DeleteKey(const std::string& key, std::vector<Event>& events);
  void Notify(const std::vector<Event>& events);

  SimEventLoop& loop_;
  bool available_ = true;
  absl::Duration down_since_;
  int64_t revision_ = 1;  // etcd starts at 1.
  int64_t next_lease_ = 0x1000;
  int64_t next_watch_ = 1;
  uint64_t leases_expired_ = 0;
  std::map<std::string, KeyValue, std::less<>> keys_;
  std::map<int64_t, Lease> leases_;
  std::map<int64_t, Watcher> watchers_;
  // Changes after compacted_, in revision order.
  std::vector<Event> history_;
  int64_t compacted_ = 0;
};

}  // namespace bulwark::sim::etcd

#endif  // BULWARK_SIM_ETCD_SIM_ETCD_H_
