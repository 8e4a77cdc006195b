// The database operator: the actor of the database engine's workload (issue 15). It puts the
// simulated database plugin on every node (program and artifact), makes the database's root
// user, and once the node is set up registers the plugin, mounts the `database` engine at "db/",
// configures connection "c0" to the simulated database and a role "r0" with a short TTL. Then,
// until faults stop, it asks for credentials, revokes some of them, and rotates the root
// credential; the rotate-credentials fault asks it for a rotation too (RotateNow). On a second
// connection "c1" (its own root user, no other traffic) it runs the other termination events one
// at a time: config writes, resets, deletes and reloads of the plugin. It checks the database
// invariants itself, on what the simulated database shows:
//   issued_credentials  every credential it was given logs in until its lease ends or it is
//                       revoked (checked at once and again at three quarters of its TTL), and a
//                       revocation the node acknowledged has removed the user;
//   root_recoverable    after faults stop and the rollback manager has had two passes, the
//                       root credential the engine stored logs in (a reset, which initializes a
//                       new instance with verify_connection, succeeds), and a rotation works;
//   instance_closed     after a rotate-root and after the rollback passes no session that
//                       changed the root password is open; after a config write, reset, delete
//                       or reload of "c1" answered, every session c1 had when it was sent is
//                       gone (the instance it replaced was closed), after a delete c1 has none;
//   no_leaked_users     every user it was issued is gone from the database within its TTL plus
//                       kLeakBound after its lease ended (by the simulated and the node's clock).
#ifndef BULWARK_SIM_DATABASE_DB_OPERATOR_H_
#define BULWARK_SIM_DATABASE_DB_OPERATOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "base/env/random.h"
#include "sim/actors/actor.h"
#include "sim/network.h"
#include "sim/node.h"

namespace bulwark::sim {

// The revocation backoff's cap (core/lease: 10 min) plus a minute: a lease that ended is
// revoked (its user dropped) within this long once the database and the plugin work.
inline constexpr absl::Duration kLeakBound = absl::Minutes(11);
// After faults stop: the final rotation checks wait for two rollback passes (a WAL is rolled
// back at the first pass after it is a minute old), the leak check for every lease's end plus
// kLeakBound.
inline constexpr absl::Duration kRollbackWait = absl::Minutes(3);
inline constexpr absl::Duration kLeakCheckWait = absl::Minutes(14);
// Where the engine is mounted, the connection and the role.
inline constexpr char kDbMount[] = "db";
inline constexpr char kDbConnection[] = "c0";
inline constexpr char kDbRole[] = "r0";
inline constexpr char kDbRootUser[] = "vaultadmin";
// The connection whose config writes, resets, deletes and reloads the operator checks, and its
// root user (never rotated).
inline constexpr char kDbSideConnection[] = "c1";
inline constexpr char kDbSideUser[] = "vaultadmin1";

class World;

class DbOperator final : public Actor {
 public:
  explicit DbOperator(World& world);
  absl::string_view name() const override { return "db-operator"; }

  void Start() override;
  void OnReady() override;
  void OnQuiet() override;

  // The rotate-credentials fault: send a rotate-root now. False until the setup is done.
  bool RotateNow();
  bool ready() const { return ready_; }

 private:
  struct Cred {
    std::string user;
    std::string password;  // A secret.
    std::string lease_id;
    absl::Duration sent;
    absl::Duration answered;
    absl::Time wall_sent;  // The node's wall clock at the send and at the answer.
    absl::Time wall_answered;
    absl::Duration ttl;
    bool jumped = false;           // The node's wall clock jumped between the send and the answer.
    absl::Duration skew_answered;  // The node's wall-clock skew when the answer came.
    bool revoke_sent = false;
  };

  void Send(Request request, Network::Callback done, bool client = false);
  Request Logical(const std::string& path, const std::string& operation, std::string data_json);
  void Setup(int step);
  void CredsLoop();
  void RevokeLoop();
  void RotateLoop();
  void Creds(std::function<void(bool ok)> then);
  void Rotate(std::function<void(const Response&, bool)> then);
  // Whether the lease of `cred` may have ended by now (either clock).
  bool MayHaveEnded(const Cred& cred) const;
  void CheckWorks(size_t index, absl::string_view when);
  // The end checks after faults stop (see the file comment).
  void FinalRotationChecks(int attempt);
  void CheckRootChangersClosed(absl::string_view after);
  // One termination event on kDbSideConnection (write, reset, delete or reload), then `then`.
  void ConnectionLoop();
  // `op`: 0 write, 1 reset, 2 delete, 3 reload; -1 draws one (a write while c1 is absent).
  void ConnectionChange(int op, std::function<void()> then);
  // After faults stop: every event once on c1 (write, write, reset, reload, delete), checked.
  void FinalConnectionChecks(size_t step);
  // instance_closed: none of `before` (sessions of `connection` when the event was sent) is open.
  void CheckSessionsClosed(const std::string& connection, const std::set<uint64_t>& before,
                           absl::string_view after);
  void LeakCheck();
  void Release();
  absl::Time NodeWallNow() const;

  World& world_;
  SeededRandom random_;
  std::string artifact_sha_;
  std::string root_password_;  // The root password the operator configured (a secret).
  std::string side_password_;  // kDbSideUser's (a secret).
  bool side_configured_ = false;
  uint64_t side_writes_ = 0;
  absl::Duration ttl_;
  bool ready_ = false;
  bool setting_up_ = false;
  bool holding_end_ = false;
  std::vector<Cred> creds_;
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_DATABASE_DB_OPERATOR_H_
