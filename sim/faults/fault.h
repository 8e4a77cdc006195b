// Fault kinds: each a small object that draws its events for a seed, applies a due event to the
// cluster, and undoes its lasting effects when faults stop. Faults (below) holds them in the
// registration order of faults/registry.cc, draws the run's timed schedule from them, dispatches
// due events, and records the failpoint fires that buggify chose.
//
// Adding a fault kind: a FaultKind and its text syntax (schedule.h/.cc), a class in its own file
// here, and one line in faults/registry.cc.
#ifndef BULWARK_SIM_FAULTS_FAULT_H_
#define BULWARK_SIM_FAULTS_FAULT_H_

#include <memory>
#include <vector>

#include "base/env/random.h"
#include "faultinject/registry.h"
#include "sim/scenario.h"
#include "sim/schedule.h"

namespace bulwark::sim {

class World;

class Fault {
 public:
  virtual ~Fault() = default;
  virtual FaultKind kind() const = 0;
  // The mean rate of timed events per simulated minute under `mix`; 0: never drawn.
  virtual double RatePerMin(const FaultMix& /*mix*/) const { return 0; }
  // Draws the event's arguments from the kind's own stream (time and node are drawn already).
  virtual void Draw(const FaultMix& /*mix*/, Random& /*random*/, FaultEvent& /*event*/) const {}
  // Applies a due event. False when it could not apply (the node is down, ...): it is counted as
  // skipped.
  virtual bool Apply(World& world, const FaultEvent& event) = 0;
  // Faults stop: undo what lasts on `node`; then, once every kind has done that, what lasts
  // across the cluster.
  virtual void OnQuietNode(World& /*world*/, int /*node*/) {}
  // A failpoint fired (inside node code: world.cluster->active() is the node), for kinds that
  // act at a failpoint they armed.
  virtual void OnFire(World& /*world*/, const faultinject::FireEvent& /*event*/) {}
  virtual void OnQuiet(World& /*world*/) {}
};

// The fault kinds of a run, in registration order (faults/registry.cc).
std::vector<std::unique_ptr<Fault>> MakeFaultKinds();

class Faults {
 public:
  Faults(World& world, std::vector<std::unique_ptr<Fault>> kinds);

  // The run's timed faults: given (replay; failpoint fires are compiled into the registry) or
  // drawn from the seed, one stream per kind.
  void Plan();
  // Posts every timed fault at its time.
  void Schedule();
  // A due event: applied by its kind, counted, traced.
  void Apply(const FaultEvent& event);
  // Faults stop: every kind undoes its lasting effects.
  void OnQuiet();
  // Buggify: from the workload's start.
  void EnableBuggify();
  // The registry's observer: a failpoint fired.
  void OnFire(const faultinject::FireEvent& event);

  // Timed faults then fires, as the run's schedule.
  std::vector<FaultEvent> Recorded() const;

 private:
  void CompileSchedule(const std::vector<FaultEvent>& schedule);
  std::vector<FaultEvent> DrawTimed();
  Fault* KindOf(FaultKind kind);

  World& world_;
  std::vector<std::unique_ptr<Fault>> kinds_;
  std::vector<FaultEvent> timed_;
  std::vector<FaultEvent> fires_;
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_FAULTS_FAULT_H_
