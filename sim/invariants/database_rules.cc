// The database workload's invariants (issue 15). The database operator (sim/database/
// db_operator.h) checks them on what the simulated database shows, as the auditor checks
// liveness; they are registered here so the report, shrinking and the drill name them.
#include <memory>

#include "sim/invariants/invariant.h"

namespace bulwark::sim {

std::unique_ptr<Invariant> MakeRootRecoverableInvariant() {
  return MakeNamedInvariant(
      "root_recoverable",
      "once faults stop and rollback has run, the engine's stored root credential logs in to the "
      "database (and rotates again)");
}
std::unique_ptr<Invariant> MakeNoLeakedUsersInvariant() {
  return MakeNamedInvariant(
      "no_leaked_users",
      "every dynamic user is gone from the database within its TTL plus 11 min after its lease "
      "ended");
}
std::unique_ptr<Invariant> MakeIssuedCredentialsInvariant() {
  return MakeNamedInvariant(
      "issued_credentials",
      "issued credentials log in until their lease ends or is revoked; an acknowledged "
      "revocation has removed the user");
}
std::unique_ptr<Invariant> MakeInstanceClosedInvariant() {
  return MakeNamedInvariant(
      "instance_closed",
      "after every database termination event (config update, delete, reset, reload, rotate-root, "
      "rollback) the plugin instance it replaced or used is closed: its database session is gone");
}

}  // namespace bulwark::sim
