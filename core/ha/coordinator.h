// The HA coordinator contract: what a node needs from the store that elects the active node.
// The real implementation speaks to etcd (//server/etcd:etcd_coordinator); the simulator will
// supply its own over a simulated linearizable store. docs/ha.md describes the protocol.
//
// The lock: every contender writes a lock entry `<lock prefix>/<its lease id, hex>` whose value is
// its holder id (a fresh UUID per campaign), attached to a lease of `ttl`. The contender whose
// entry has the lowest create revision holds the lock; that create revision is its *fencing
// token*, LockGrant::revision. A holder keeps its lease alive; when it is lost (lease expired or
// revoked, entry deleted, store unreachable for too long) the entry goes away and the next
// contender in create-revision order wins.
//
// Threading: callbacks run on the node's event loop (the Executor the implementation was given),
// never on another thread and never inside the call that registered them.
#ifndef BULWARK_CORE_HA_COORDINATOR_H_
#define BULWARK_CORE_HA_COORDINATOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace bulwark::ha {

// What a node learns when it wins the lock.
struct LockGrant {
  std::string holder_id;  // The value of the lock entry (the campaign's UUID).
  std::string lock_key;   // The store's key of this holder's lock entry (store namespace).
  int64_t revision = 0;   // The entry's create revision: the fencing token.
  int64_t lease_id = 0;
  absl::Duration ttl;  // The lease's time to live as the store granted it.
};

// The active node stops serving and stops its plugins once it has gone this long without a
// confirmed lease renewal, measured by its own monotonic clock from the moment it *sent* the
// last renewal the store acknowledged: ttl - margin, with margin = ttl / 3 (at least 1 s). The
// store's lease cannot have expired before then (it started counting no earlier than the send),
// so a node that notices in time is never active alongside another. Fencing (FencedStorage)
// covers the node that does not notice in time (paused, its clock stopped).
absl::Duration LossDeadline(absl::Duration ttl);
// Renewals are sent every ttl / 3, like etcd's own client.
absl::Duration RenewInterval(absl::Duration ttl);

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  std::string key;  // Relative to the coordinator's storage namespace (like Storage keys).
  int64_t revision = 0;
};

// Cancels its watch when destroyed; no callback runs after the destructor returns.
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
};

class Coordinator {
 public:
  using WonCallback = absl::AnyInvocable<void(absl::StatusOr<LockGrant>)>;
  using LostCallback = absl::AnyInvocable<void(absl::Status)>;
  using EventsCallback = absl::AnyInvocable<void(std::vector<WatchEvent>)>;

  virtual ~Coordinator() = default;

  // Contends for the lock as `holder_id`; at most one campaign at a time (a second call before
  // Resign is kFailedPrecondition through `won`). `won` runs once: with the grant when this node
  // holds the lock, or with an error when the campaign failed (kUnavailable naming the store,
  // kCancelled after Resign). After a grant, `lost` runs at most once, with the reason, when the
  // node can no longer be sure it holds the lock (see LossDeadline); the campaign is then over
  // and the node may Campaign again.
  virtual void Campaign(std::string holder_id, WonCallback won, LostCallback lost) = 0;

  // Ends the campaign or gives the lock up: revokes the lease, so the lock entry disappears at
  // once. No callback of the campaign runs after Resign returns. OK when there is no campaign.
  virtual absl::Status Resign() = 0;

  // The holder id of the current lock holder, or nullopt when nobody holds the lock.
  virtual absl::StatusOr<std::optional<std::string>> Holder() = 0;

  // Reports every change to a key under `prefix` (Storage namespace; "" for all) made after
  // the call, in store order, batched per store revision.
  virtual absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(std::string prefix,
                                                             EventsCallback on_events) = 0;
};

}  // namespace bulwark::ha

#endif  // BULWARK_CORE_HA_COORDINATOR_H_
