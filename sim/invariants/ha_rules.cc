// The HA cluster's rules (sim/ha/ha_cluster.h), checked by the cluster on what the simulated etcd
// and the nodes do; registered here so reports, shrinking and the drill know them:
//   ha_one_writer  no write lands from a node that does not hold the lock it was fenced on
//   ha_plugins     no plugin runs on a node that is not the active one once it has had
//                  kPluginStopBound to stop them (none on a standby, none left after a step-down)
//   ha_liveness    once faults stop, a node is active and serving within the liveness bound
//   ha_forwarded_once  the active applies a client's request at most once, whatever the
//                  forwarding, re-sends and redirects did
//   ha_fresh_reads a read a performance standby served itself reflects every write acknowledged
//                  before it was sent (judged with durability, invariants/durability.cc)
#include <memory>
#include <string>
#include <vector>

#include "sim/invariants/invariant.h"

namespace bulwark::sim {
namespace {

class HaRule final : public Invariant {
 public:
  HaRule(absl::string_view name, absl::string_view rule) : name_(name), rule_(rule) {}
  absl::string_view name() const override { return name_; }
  absl::string_view rule() const override { return rule_; }

 private:
  const std::string name_;
  const std::string rule_;
};

}  // namespace

std::vector<std::unique_ptr<Invariant>> MakeHaInvariants() {
  std::vector<std::unique_ptr<Invariant>> all;
  all.push_back(std::make_unique<HaRule>(
      "ha_one_writer",
      "no write lands from a node that no longer holds the lock it was fenced on"));
  all.push_back(std::make_unique<HaRule>(
      "ha_plugins", "no plugin runs on a standby, none is left after a step-down or a lost lock"));
  all.push_back(std::make_unique<HaRule>(
      "ha_liveness", "once faults stop, a node is active and serving within the liveness bound"));
  all.push_back(std::make_unique<HaRule>(
      "ha_forwarded_once",
      "the active node applies a client's request at most once (forwarding, re-sends, redirects)"));
  all.push_back(std::make_unique<HaRule>(
      "ha_fresh_reads",
      "a read a performance standby serves reflects every write acknowledged before it was sent"));
  return all;
}

}  // namespace bulwark::sim
