// The simulator as an HA cluster (issue 14): N nodes (scenario.nodes > 1) share one simulated
// etcd (sim/etcd) as the storage under their barriers and as their HA coordinator. Each node runs
// the real core/ha Leadership on its own SimEtcdCoordinator and SimEtcdStorage, reached over its
// own link, with its own executor and clock (which faults may skew or pause).
//
// Roles and requests (core/ha/forwarding.h decides, as the server's API layer does):
//   active               serves everything.
//   standby              serves init, unseal, seal and status itself; forwards every other request
//                        to the active node over the simulated cluster port (a node<->node link,
//                        kForwardLatency each way), marked as forwarded so it is never forwarded
//                        again; redirects (Vault's 307, Response::redirect_to) when the request
//                        was forwarded already or the forward certainly never arrived (link cut or
//                        active down at the send); answers "outcome unknown" when the forward's
//                        answer did not come back within kForwardTimeout.
//   performance standby  (odd node ids, LeadershipOptions::performance_standby) serves kv and raw
//                        requests with its own plugins over read-only storage; a request that got
//                        the read-only error is re-sent to the active once (ShouldResendToActive);
//                        everything else goes to the active as on a standby.
//
// The HA invariants are checked here, on what the store and the nodes do:
//   ha_one_writer       no write lands from a node that does not hold the lock it was fenced on
//   ha_plugins          no plugin process runs on a node that is neither the active one nor a
//                       performance standby, once it has had kPluginStopBound to stop them (none on
//                       a standby; none left after a step-down or a lost lock)
//   ha_liveness         once faults stop, a node is active and serving within the liveness bound
//   ha_forwarded_once   the active node applies a client request at most once, whatever the
//                       forwarding, re-sends and redirects did (counted per network request)
//   ha_fresh_reads      (judged by the durability check, invariants/durability.cc) a read a
//                       performance standby served itself reflects every write acknowledged
//                       before the read was sent
//   ha_keyring          no keyring write drops a term (each write's newest term is above the
//                       stored one); with invariants/ha_rules.cc: no node answers that an
//                       entry's term is missing from its keyring
// The rest of the cluster's rules are the single-node ones, judged across nodes: durability (no
// acknowledged write is lost across a failover) and phantom_read over the shared history.
#ifndef BULWARK_SIM_HA_HA_CLUSTER_H_
#define BULWARK_SIM_HA_HA_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "sim/etcd/sim_etcd.h"
#include "sim/etcd/sim_etcd_client.h"
#include "sim/node.h"

namespace bulwark::sim {

class World;

// The lock TTL of the simulated cluster (Vault's default lock_ttl is 15 s).
inline constexpr absl::Duration kHaLockTtl = absl::Seconds(15);
// How long a node that lost the active role may take to stop its plugins.
inline constexpr absl::Duration kPluginStopBound = absl::Seconds(30);
// How often the plugin rule is checked.
inline constexpr absl::Duration kHaCheckInterval = absl::Seconds(1);
// The cluster port: a forwarded request's one-way latency range, and how long a standby waits
// for the active node's answer before it answers "outcome unknown".
inline constexpr absl::Duration kForwardLatencyMin = absl::Milliseconds(1);
inline constexpr absl::Duration kForwardLatencyMax = absl::Milliseconds(5);
inline constexpr absl::Duration kForwardTimeout = absl::Seconds(5);

// Whether node `id` of a cluster runs as a performance standby while not active.
inline bool IsPerfStandbyNode(int id) { return id % 2 == 1; }

class HaComponent;

class HaCluster {
 public:
  explicit HaCluster(World& world);
  ~HaCluster();

  // Node `id`'s options and component: the storage and the HA role. Call before it starts.
  void Configure(int id, NodeOptions& options);
  std::unique_ptr<NodeComponent> MakeComponent(int id);

  etcd::SimEtcd& store() { return store_; }
  etcd::Link& link(int id) { return *links_.at(static_cast<size_t>(id)); }
  // The node that holds the lock and serves as the active, or -1.
  int Active() const;
  HaComponent* component(int id) const;

  // The cluster port. Sends `request` from node `from` to node `to`; `reply` runs on the world's
  // loop with the answer (delivered), or with delivered == false when the request certainly
  // never reached a live node (the link was cut or `to` was down at the send: a refusal comes
  // back). When the request or its answer is lost in flight (a link cut meanwhile, `to` died),
  // `reply` never runs: the sender's own timeout speaks.
  using ForwardReply = std::function<void(bool delivered, Response response)>;
  void Forward(int from, int to, Request request, ForwardReply reply);
  // Node<->node partitions: the link between `a` and `b` cut or mended; a node isolated from
  // every other node and from the store, or not.
  void SetNodeLink(int a, int b, bool up);
  void SetIsolated(int id, bool isolated);
  bool NodeLinkUp(int a, int b) const;
  bool isolated(int id) const { return isolated_.at(static_cast<size_t>(id)); }
  // The active node `id` starts applying a client's request (ha_forwarded_once).
  void Applying(int id, const Request& request);

  // Faults.
  void StepDown(int id);
  void SetClockRate(int id, double rate);
  void Pause(int id, absl::Duration d);
  void SetStoreSlow(absl::Duration extra);
  // The watch fault: node `id`'s watch stream breaks for at least `d` (false: it has none).
  bool BreakWatch(int id, absl::Duration d);
  // Faults stopped: forced watch breaks end (the watches resume at their next retry).
  void EndWatchBreaks();

 private:
  friend class HaComponent;
  void OnLanded(int node, const etcd::LandedWrite& write);
  void CheckKeyringWrite(int node, const etcd::LandedWrite& write);
  void OnWatch(int id, etcd::WatchSignal signal, int64_t revision);
  void CheckPlugins();
  void CheckLiveness();

  World& world_;
  etcd::SimEtcd store_;
  std::vector<std::unique_ptr<etcd::Link>> links_;
  std::vector<std::unique_ptr<etcd::SimEtcdStorage>> storages_;
  std::vector<HaComponent*> components_;
  std::vector<absl::Duration> not_active_since_;
  std::vector<double> clock_rates_;
  // Node<->node links: cut_[a * n + b] (symmetric), and isolated nodes.
  std::vector<bool> cut_;
  std::vector<bool> isolated_;
  SeededRandom port_random_;
  // How many times an active node started applying each network request, by request number.
  std::vector<uint8_t> applied_;
  // The newest term of the keyring in the store (ha_keyring), 0 before init.
  uint32_t keyring_term_ = 0;
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_HA_HA_CLUSTER_H_
