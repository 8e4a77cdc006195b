// The actors of a run, in registration order: the order of their phase hooks, and so of the
// events they post. Append new actors before the auditor (it must see the others' quiet first)
// and expect the trace hash to change only if the new actor draws or posts.
#include <memory>

#include "sim/actors/actor.h"
#include "sim/actors/auditor.h"
#include "sim/actors/catalog_admin.h"
#include "sim/actors/data_client.h"
#include "sim/actors/operator.h"
#include "sim/actors/rule_prober.h"
#include "sim/database/db_operator.h"
#include "sim/world.h"

namespace bulwark::sim {

std::vector<std::unique_ptr<Actor>> MakeActors(World& world) {
  std::vector<std::unique_ptr<Actor>> actors;
  for (int c = 1; c <= world.scenario.clients; ++c) {
    actors.push_back(std::make_unique<DataClient>(world, c));
  }
  actors.push_back(std::make_unique<CatalogAdmin>(world));
  auto op = std::make_unique<Operator>(world);
  world.operator_actor = op.get();
  actors.push_back(std::move(op));
  // The rule prober checks the core's rules with the kv plugin's data semantics (nested mounts,
  // the same key through two mounts): not with a plugin under test, which has its own. Its
  // steps assume one node (a seal of node 0 stops everything); not on an HA cluster yet.
  if (world.config.plugin == nullptr && world.scenario.nodes == 1) {
    actors.push_back(std::make_unique<RuleProber>(world));
  }
  // The database engine's workload (issue 15), also with the kv plugin's semantics only. Its
  // operator talks to node 0, where rollback runs: one node only, not on an HA cluster yet.
  if (world.config.plugin == nullptr && world.scenario.database && world.scenario.nodes == 1) {
    auto db = std::make_unique<DbOperator>(world);
    world.db_operator = db.get();
    actors.push_back(std::move(db));
  }
  auto auditor = std::make_unique<Auditor>(world);
  world.auditor = auditor.get();
  actors.push_back(std::move(auditor));
  return actors;
}

}  // namespace bulwark::sim
