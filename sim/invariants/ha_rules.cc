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
//   ha_keyring     every node reads every entry whatever term sealed it (a node that missed
//                  another's rotation reloads the keyring), and no keyring write loses a term
//                  (checked here on the nodes' answers, and by the cluster on each keyring write)
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sim/invariants/invariant.h"
#include "sim/world.h"

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

// The answers' half of ha_keyring: Barrier::Get reports an entry sealed under a term its keyring
// does not hold (after reloading it once) as data loss naming the term.
class HaKeyring final : public Invariant {
 public:
  absl::string_view name() const override { return "ha_keyring"; }
  absl::string_view rule() const override {
    return "every node reads entries sealed under any rotated term (its keyring follows the "
           "store's), and no keyring write drops a term";
  }
  uint32_t hooks() const override { return kNodeAnswer; }
  void OnNodeAnswer(World& world, int node, const Request& request,
                    const Response& response) override {
    if (!world.ha) return;
    world.Count(name());
    if (!absl::IsDataLoss(response.status) ||
        !absl::StrContains(response.status.message(), "which the keyring does not hold")) {
      return;
    }
    world.Violate(
        name(), absl::StrCat(
                    "node ", node, " answered ", OpKindName(request.kind), " request #", request.op,
                    " with an entry its keyring cannot open: ", response.status.message()));
  }
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
  all.push_back(std::make_unique<HaKeyring>());
  return all;
}

}  // namespace bulwark::sim
