// An actor: one kind of participant in a run (the operator, a data client, the catalog
// administrator, the auditor of the end checks). Actors talk to the nodes only over the
// simulated network (Network::Send) and draw only from their own random streams, so that a fault
// that changes timing does not change what an actor does next.
//
// Adding an actor: a class in its own file here, and one line in actors/registry.cc.
#ifndef BULWARK_SIM_ACTORS_ACTOR_H_
#define BULWARK_SIM_ACTORS_ACTOR_H_

#include <memory>
#include <vector>

#include "absl/strings/string_view.h"

namespace bulwark::sim {

class World;

class Actor {
 public:
  virtual ~Actor() = default;
  virtual absl::string_view name() const = 0;

  // Phase hooks, called in registration order (which decides the order of the events they post:
  // keep it stable, or the trace hash changes). Each runs on the simulation thread.
  // Time zero, before any event has run.
  virtual void Start() {}
  // The operator's setup is done: the workload begins.
  virtual void OnReady() {}
  // Faults stopped (after every fault kind has undone its lasting effects).
  virtual void OnQuiet() {}
  // A node's process came back after a crash, a kill or a watchdog restart.
  virtual void OnNodeRestarted(int /*node*/) {}
  // A workload request (a data client's or the administrator's) ended.
  virtual void OnWorkloadOpFinished() {}
};

// The actors of a run, in registration order (actors/registry.cc). Also sets
// world.operator_actor and world.auditor.
std::vector<std::unique_ptr<Actor>> MakeActors(World& world);

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_ACTORS_ACTOR_H_
