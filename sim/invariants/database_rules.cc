// The database workload's invariants (issue 15). The database operator (sim/database/
// db_operator.h) checks them on what the simulated database shows, as the auditor checks
// liveness; they are registered here so the report, shrinking and the drill name them.
#include <memory>

#include "sim/invariants/invariant.h"

namespace bulwark::sim {
namespace {

class DatabaseRule final : public Invariant {
 public:
  DatabaseRule(absl::string_view name, absl::string_view rule) : name_(name), rule_(rule) {}
  absl::string_view name() const override { return name_; }
  absl::string_view rule() const override { return rule_; }

 private:
  const absl::string_view name_;
  const absl::string_view rule_;
};

}  // namespace

std::unique_ptr<Invariant> MakeRootRecoverableInvariant() {
  return std::make_unique<DatabaseRule>(
      "root_recoverable",
      "once faults stop and rollback has run, the engine's stored root credential logs in to the "
      "database (and rotates again)");
}
std::unique_ptr<Invariant> MakeNoLeakedUsersInvariant() {
  return std::make_unique<DatabaseRule>(
      "no_leaked_users",
      "every dynamic user is gone from the database within its TTL plus 11 min after its lease "
      "ended");
}
std::unique_ptr<Invariant> MakeIssuedCredentialsInvariant() {
  return std::make_unique<DatabaseRule>(
      "issued_credentials",
      "issued credentials log in until their lease ends or is revoked; an acknowledged "
      "revocation has removed the user");
}
std::unique_ptr<Invariant> MakeInstanceClosedInvariant() {
  return std::make_unique<DatabaseRule>(
      "instance_closed",
      "after every rotate-root and rollback (database termination events) the plugin instance "
      "used is closed: no session that changed the root password stays open");
}

}  // namespace bulwark::sim
