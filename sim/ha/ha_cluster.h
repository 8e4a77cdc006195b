// The simulator as an HA cluster (issue 14): N nodes (scenario.nodes > 1) share one simulated
// etcd (sim/etcd) as the storage under their barriers and as their HA coordinator. Each node runs
// the real core/ha Leadership on its own SimEtcdCoordinator and SimEtcdStorage, reached over its
// own link, with its own executor and clock (which faults may skew or pause). Standbys answer
// every request but seal, unseal, status and init with a redirect to the active node (Vault's
// 307, Response::redirect_to), which the network follows; forwarding over a cluster port and
// performance standbys are not simulated (see docs/simulation.md).
//
// The HA invariants are checked here, on what the store and the nodes do:
//   ha_one_writer  no write lands from a node that does not hold the lock it was fenced on
//   ha_plugins     no plugin process runs on a node that is not the active one, once it has had
//                  kPluginStopBound to stop them (none on a standby; none left after a
//                  step-down or a lost lock)
//   ha_liveness    once faults stop, a node is active and serving within scenario.liveness_bound
// The rest of the cluster's rules are the single-node ones, now judged across nodes: durability
// (no acknowledged write is lost across a failover) and fresh reads (a read through any node
// reflects every write acknowledged before it began: it is redirected to the active, which reads
// the store) are the durability and phantom_read invariants over the shared history.
#ifndef BULWARK_SIM_HA_HA_CLUSTER_H_
#define BULWARK_SIM_HA_HA_CLUSTER_H_

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

  // Faults.
  void StepDown(int id);
  void SetClockRate(int id, double rate);
  void Pause(int id, absl::Duration d);
  void SetStoreSlow(absl::Duration extra);

 private:
  friend class HaComponent;
  void OnLanded(int node, const etcd::LandedWrite& write);
  void CheckPlugins();
  void CheckLiveness();

  World& world_;
  etcd::SimEtcd store_;
  std::vector<std::unique_ptr<etcd::Link>> links_;
  std::vector<std::unique_ptr<etcd::SimEtcdStorage>> storages_;
  std::vector<HaComponent*> components_;
  std::vector<absl::Duration> not_active_since_;
  std::vector<double> clock_rates_;
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_HA_HA_CLUSTER_H_
