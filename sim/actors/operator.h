// The operator: initializes the barrier (5 shares, threshold 3), registers the kv plugins and
// enables the data mounts, and from then on unseals whenever a node is sealed and no deliberate
// seal is in force; restarts a hung node (its supervisor's watchdog); rotates the barrier's key
// and seals now and then. Its requests to a node go one at a time, in order, so a seal and an
// unseal never overtake each other on the way.
#ifndef BULWARK_SIM_ACTORS_OPERATOR_H_
#define BULWARK_SIM_ACTORS_OPERATOR_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "base/env/random.h"
#include "sim/actors/actor.h"
#include "sim/network.h"

namespace bulwark::sim {

class Operator final : public Actor {
 public:
  explicit Operator(World& world);

  absl::string_view name() const override { return "operator"; }
  void Start() override;
  void OnReady() override;
  void OnQuiet() override;
  void OnNodeRestarted(int node) override;

  // Seals `node` now and unseals it after `duration` (a deliberate seal window).
  void SealFor(int node, absl::Duration duration);

 private:
  struct Call {
    Request request;
    Network::Callback done;
  };
  struct PerNode {
    std::deque<Call> queue;
    bool busy = false;
    bool unseal_check_busy = false;
    int seal_depth = 0;  // Deliberate seal windows open: the operator does not unseal.
    uint64_t seal_generation = 0;
  };

  PerNode& at(int node);
  void Send(int node, Request request, Network::Callback done);
  void Pump(int node);
  void Init();
  void Tick();
  void MaybeUnseal(int node);
  void SetUpMounts(size_t next);
  void RotateLoop();
  void SealLoop();
  void CloseSealWindow(int node, uint64_t generation);
  void CloseAllSealWindows(int node);
  std::vector<std::string> PickShares();

  World& world_;
  SeededRandom random_;
  std::vector<PerNode> nodes_;
  bool mounts_ready_ = false;
  bool setting_up_ = false;
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_ACTORS_OPERATOR_H_
