// The invariants, in registration order: the report names them in this order's sorted form, and
// on one observation they are checked in this order (so the first violation is the first one's).
#include "sim/invariants/invariant.h"

namespace bulwark::sim {

std::unique_ptr<Invariant> MakeDurabilityInvariant();
std::unique_ptr<Invariant> MakePhantomReadInvariant();
std::unique_ptr<Invariant> MakeSealedReadInvariant();
std::unique_ptr<Invariant> MakeStoppedPluginsInvariant();
std::unique_ptr<Invariant> MakeProcessSharingInvariant();
std::unique_ptr<Invariant> MakeLaunchHashInvariant();
std::unique_ptr<Invariant> MakeSecretLeakInvariant();
std::unique_ptr<Invariant> MakeRecoveryInvariant();
std::unique_ptr<Invariant> MakeReloadInvariant();
std::unique_ptr<Invariant> MakeLivenessInvariant();
std::unique_ptr<Invariant> MakeCapsInvariant();
std::unique_ptr<Invariant> MakeSealedAdminInvariant();
std::unique_ptr<Invariant> MakeUnsealThresholdInvariant();
std::unique_ptr<Invariant> MakeMountIsolationInvariant();
std::unique_ptr<Invariant> MakeRestartBackoffInvariant();
std::unique_ptr<Invariant> MakePluginConfinementInvariant();
std::unique_ptr<Invariant> MakeRunnerConfigInvariant();
std::unique_ptr<Invariant> MakeBadHandshakeInvariant();
std::unique_ptr<Invariant> MakeCatalogValidationInvariant();
std::unique_ptr<Invariant> MakeProbeReadInvariant();
std::unique_ptr<Invariant> MakePluginCheckInvariant();
std::unique_ptr<Invariant> MakeSignedLaunchInvariant();
std::vector<std::unique_ptr<Invariant>> MakeHaInvariants();
std::unique_ptr<Invariant> MakeRootRecoverableInvariant();
std::unique_ptr<Invariant> MakeNoLeakedUsersInvariant();
std::unique_ptr<Invariant> MakeIssuedCredentialsInvariant();
std::unique_ptr<Invariant> MakeInstanceClosedInvariant();

std::vector<std::unique_ptr<Invariant>> MakeInvariants() {
  std::vector<std::unique_ptr<Invariant>> all;
  all.push_back(MakeDurabilityInvariant());
  all.push_back(MakePhantomReadInvariant());
  all.push_back(MakeSealedReadInvariant());
  all.push_back(MakeStoppedPluginsInvariant());
  all.push_back(MakeProcessSharingInvariant());
  all.push_back(MakeLaunchHashInvariant());
  all.push_back(MakeSecretLeakInvariant());
  all.push_back(MakeRecoveryInvariant());
  all.push_back(MakeReloadInvariant());
  all.push_back(MakeLivenessInvariant());
  all.push_back(MakeCapsInvariant());
  all.push_back(MakeSealedAdminInvariant());
  all.push_back(MakeUnsealThresholdInvariant());
  all.push_back(MakeMountIsolationInvariant());
  all.push_back(MakeRestartBackoffInvariant());
  all.push_back(MakePluginConfinementInvariant());
  all.push_back(MakeRunnerConfigInvariant());
  all.push_back(MakeBadHandshakeInvariant());
  all.push_back(MakeCatalogValidationInvariant());
  all.push_back(MakeProbeReadInvariant());
  all.push_back(MakePluginCheckInvariant());
  all.push_back(MakeSignedLaunchInvariant());
  for (std::unique_ptr<Invariant>& ha : MakeHaInvariants()) all.push_back(std::move(ha));
  // The database workload (sim/database), checked by the database operator.
  all.push_back(MakeRootRecoverableInvariant());
  all.push_back(MakeNoLeakedUsersInvariant());
  all.push_back(MakeIssuedCredentialsInvariant());
  all.push_back(MakeInstanceClosedInvariant());
  return all;
}

}  // namespace bulwark::sim
