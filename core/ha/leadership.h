// Leadership: what an HA node does with the coordinator (docs/ha.md), for one or more servers
// that are each active or standby (standbys redirect; forwarding and performance standbys come
// later).
//
//   sealed          storage unfenced until the first unseal (sys/init must write), read-only after
//   unsealed        storage read-only, the node a standby; it campaigns with a fresh UUID
//   won the lock    storage fenced on the grant, the node becomes active (mounts and plugins up),
//                   the advertisement core/leader/<uuid> is written through the barrier
//   lost the lock   storage read-only, the node steps down (every plugin stops), and campaigns
//                   again after `retry_after`
//   step-down       (sys/step-down) the advertisement is cleared, the lock released (its lease
//                   revoked, so another node can win at once), then as "lost the lock", but the
//                   node campaigns again only after `step_down_wait`
//   sealing         the campaign ends (the lease is revoked, so another node can win at once)
//
// Runs on the node's event loop, like the node.
#ifndef BULWARK_CORE_HA_LEADERSHIP_H_
#define BULWARK_CORE_HA_LEADERSHIP_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "base/env/env.h"
#include "base/log/log.h"
#include "core/ha/advertisement.h"
#include "core/ha/coordinator.h"
#include "core/ha/fenced_storage.h"
#include "core/node/node.h"

namespace bulwark::ha {

// How long a node that stepped down by request waits before contending again (Vault's
// manualStepDownSleepPeriod), so that another node takes the role.
inline constexpr absl::Duration kStepDownWait = absl::Seconds(10);

struct LeadershipOptions {
  Advertisement advertise;  // This node's api_addr and cluster_addr.
  // Pause before contending again after losing the lock or a failed campaign.
  absl::Duration retry_after = absl::Seconds(10);
  // Pause before contending again after a step-down by request.
  absl::Duration step_down_wait = kStepDownWait;
  // Runs on the loop once the node is active and before it advertises itself (the server sets
  // up its cluster port here: the cluster CA, its certificate, the listener); may change the
  // advertisement through SetAdvertisement (a cluster port on port 0). An error is logged and
  // the node advertises itself anyway (standbys then redirect instead of forwarding). Unset in
  // the simulator.
  std::function<absl::Status()> prepare_active;
  // Performance standby (docs/ha.md): while not active the node runs its plugins over read-only
  // storage (node::Role::kPerfStandby) and watches every key of the store, handing each batch to
  // the storage (FencedStorage::Changed: its watched reads) and turning each changed barrier
  // entry into node::Node::Invalidate.
  bool performance_standby = false;
  // Runs `then` on the loop once the requests in flight when it is called have been answered, or
  // after a bound (the server: api::Api::WhenDrained with kStepDownDrainLimit). A step-down by
  // request waits for it while still holding the lock, before it releases the lock and stops the
  // plugins (Vault lets in-flight requests finish before its teardown). Unset: at once.
  std::function<void(absl::AnyInvocable<void()> then)> drain_requests;
};

// How long a step-down by request waits for the requests in flight (server.ha step-down).
inline constexpr absl::Duration kStepDownDrainLimit = absl::Seconds(90);

// What sys/leader reports.
struct LeaderView {
  bool is_self = false;
  std::string leader_address;              // "" when no leader is known.
  std::string leader_cluster_address;      // "" when no leader is known.
  std::optional<absl::Time> active_since;  // is_self only.
};

class Leadership {
 public:
  // Every reference must outlive the Leadership. The node must have been opened as a standby.
  Leadership(Env& env, node::Node& node, Coordinator& coordinator, FencedStorage& storage,
             LogSink& log, LeadershipOptions options);
  ~Leadership();

  // Sets the advertisement written when this node wins (the listener's address may be known
  // only after construction).
  void SetAdvertisement(Advertisement ad) { advertise_ = std::move(ad); }

  // The node finished unsealing: contend for the lock.
  void OnUnsealed();
  // The node sealed: give the lock up.
  void OnSealed();
  // sys/step-down: give the lock up and step down (a termination event: every plugin stops),
  // then contend again after `step_down_wait`. Logs "stepped down by request; contending again
  // in <wait>" once the plugins have stopped. Nothing happens unless this node holds the lock.
  void StepDown();

  // Holds the lock, is active and has advertised itself.
  bool active() const { return serving_; }
  // The holder and its advertisement (read through the barrier: the node must be unsealed). A
  // standby asks the coordinator for the holder each time and reads the advertisement again only
  // when the holder changed (Vault's Leader(): the cached {uuid, addresses} while the lock value
  // is the same).
  absl::StatusOr<LeaderView> Leader();
  // How many times Leader() read an advertisement from the barrier (tests).
  int advertisement_reads() const { return advertisement_reads_; }

 private:
  void Contend();
  void Won(absl::StatusOr<LockGrant> grant);
  void Lost(absl::Status why);
  // Read-only storage, the node a standby (plugins stopped), a new campaign after `wait`.
  void StandDown(absl::Duration wait, std::string done_message);
  // The step-down once the requests in flight are answered.
  void FinishStepDown();
  // A performance standby: the node's plugins up over read-only storage, then `then`.
  void BecomePerfStandby(absl::AnyInvocable<void()> then);
  void OnStoreEvents(const std::vector<WatchEvent>& events);
  void Log(LogLevel level, std::string message, std::string error = "");

  Env& env_;
  node::Node& node_;
  Coordinator& coordinator_;
  FencedStorage& storage_;
  LogSink& log_;
  const LeadershipOptions options_;
  Advertisement advertise_;
  bool unsealed_ = false;
  std::optional<LockGrant> grant_;
  bool serving_ = false;
  bool draining_ = false;  // A step-down waits for requests in flight.
  absl::Time active_since_;
  TimerId retry_ = kNoTimer;
  // A standby's cached view of the active node, for holder `cached_holder_`.
  std::string cached_holder_;
  Advertisement cached_ad_;
  int advertisement_reads_ = 0;
  std::unique_ptr<WatchHandle> watch_;  // A performance standby's, while unsealed.
  // Callbacks that run after the Leadership is gone do nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace bulwark::ha

#endif  // BULWARK_CORE_HA_LEADERSHIP_H_
