// The fault kinds, in registration order. The order decides the order in which a seed's timed
// faults are drawn (each from its own stream) and in which kinds undo their effects when faults
// stop; append new kinds at the end to keep existing trace hashes.
#include "sim/faults/fault.h"

namespace bulwark::sim {

std::unique_ptr<Fault> MakePowerLossFault();
std::unique_ptr<Fault> MakeMidOpPowerLossFault();
std::unique_ptr<Fault> MakeProcessKillFault();
std::unique_ptr<Fault> MakeSealFault();
std::unique_ptr<Fault> MakeClockJumpFault();
std::unique_ptr<Fault> MakeArtifactSwapFault();
std::unique_ptr<Fault> MakePluginCrashFault();
std::unique_ptr<Fault> MakePluginHangFault();
std::unique_ptr<Fault> MakePluginSlowFault();
std::unique_ptr<Fault> MakeStepDownFault();
std::unique_ptr<Fault> MakeComponentFault(FaultKind kind);
std::unique_ptr<Fault> MakeTamperFault();
std::unique_ptr<Fault> MakeHaFault();
std::unique_ptr<Fault> MakeRotateCredentialsFault();

std::vector<std::unique_ptr<Fault>> MakeFaultKinds() {
  std::vector<std::unique_ptr<Fault>> kinds;
  kinds.push_back(MakePowerLossFault());
  kinds.push_back(MakeMidOpPowerLossFault());
  kinds.push_back(MakeProcessKillFault());
  kinds.push_back(MakeSealFault());
  kinds.push_back(MakeClockJumpFault());
  kinds.push_back(MakeArtifactSwapFault());
  kinds.push_back(MakePluginCrashFault());
  kinds.push_back(MakePluginHangFault());
  kinds.push_back(MakePluginSlowFault());
  kinds.push_back(MakeStepDownFault());
  // A hook for a piece not built yet: applied only when a node component handles it.
  kinds.push_back(MakeComponentFault(FaultKind::kPartition));
  kinds.push_back(MakeRotateCredentialsFault());  // The database workload (sim/database).
  kinds.push_back(MakeTamperFault());
  kinds.push_back(MakeHaFault());
  return kinds;
}

}  // namespace bulwark::sim
