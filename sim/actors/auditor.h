// The auditor: once faults stop, probes until the node serves a write and a read (liveness), then
// waits for the workload's requests to end and makes the final checks — every key read, every
// folder listed, every catalog entry read, every settled entry mounted once more, and each
// external plugin crashed under a request (lazy reload). When they are done, so is the run.
#ifndef BULWARK_SIM_ACTORS_AUDITOR_H_
#define BULWARK_SIM_ACTORS_AUDITOR_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/env/random.h"
#include "sim/actors/actor.h"
#include "sim/node.h"

namespace bulwark::sim {

class Auditor final : public Actor {
 public:
  explicit Auditor(World& world);

  absl::string_view name() const override { return "auditor"; }
  void OnQuiet() override;
  void OnWorkloadOpFinished() override;

 private:
  struct FinalCheck {
    Request request;
    std::string model_key;  // "" for checks that only need success.
    bool catalog = false;
    bool crash_under_request = false;
    int attempts = 0;
  };

  void ProbeTick();
  void MaybeFinish();
  // The liveness probe with a plugin under test: its probe written and read back on m0.
  void ProbeLiveness();
  // The liveness probe's read of `key`: live when it succeeds and `wrong` answers "" (else the
  // probe's last error is what `wrong` says).
  void ReadBack(const std::string& key, std::function<std::string(const Response&)> wrong);
  void BuildFinalChecks();
  void RunFinalCheck(size_t index);

  World& world_;
  SeededRandom random_;
  bool live_ = false;
  bool probe_busy_ = false;
  bool finishing_ = false;
  uint64_t probes_ = 0;
  std::string last_probe_error_;
  absl::Duration live_deadline_;
  std::vector<FinalCheck> final_checks_;
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_ACTORS_AUDITOR_H_
