// A simulated database server for the database engine's workload: users with passwords (the root
// user the engine logs in as and the dynamic users it creates), open sessions (one per plugin
// instance that logged in, as pg_stat_activity shows them), and the link from the plugin
// processes to it, which can be cut for a while. It is a machine of its own: it outlives node
// crashes and plugin deaths. Passwords are secrets: nothing here traces or logs one.
//
// The database plugin that reaches it (SimDbPlugin) is an sdk::Database served by the SDK's
// DatabaseDispatcher in a simulated plugin process (sim/plugin), so the engine, the lifecycle
// manager and the plugin client are the production code.
#ifndef BULWARK_SIM_DATABASE_SIM_DATABASE_H_
#define BULWARK_SIM_DATABASE_SIM_DATABASE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/env/random.h"
#include "base/env/sim/sim_event_loop.h"
#include "sdk/database.h"

namespace bulwark::sim {

// The plugin program (an artifact in every node's plugin directory) and its catalog name.
inline constexpr absl::string_view kDatabasePlugin = "simdb";
// The database type its Type() reports.
inline constexpr char kSimDbType[] = "simdb";
// Most users and sessions the database holds (a named limit: a runaway workload is an error).
inline constexpr size_t kSimDbUsersMax = 100000;
inline constexpr size_t kSimDbSessionsMax = 10000;

class SimDatabase {
 public:
  struct User {
    std::string password;  // A secret.
    bool dynamic = false;  // Created through NewUser (not the root user).
    absl::Duration created;
    std::optional<absl::Time> valid_until;  // Recorded, not enforced: node wall clocks jump.
  };

  // `clock` is the world's; it must outlive the database.
  explicit SimDatabase(SimClock& clock) : clock_(clock) {}

  // ---- The administrator's view (no link): how the simulator checks the database. ----------
  // Creates or replaces a user (the root user the engine is configured with).
  void PutUser(const std::string& name, const std::string& password, bool dynamic);
  // Whether `name` exists and `password` is its password.
  bool Accepts(absl::string_view name, absl::string_view password) const;
  bool Exists(absl::string_view name) const { return users_.count(std::string(name)) > 0; }
  const std::map<std::string, User>& users() const { return users_; }
  // Open sessions, by the connection (config) name their plugin instance was initialized for.
  size_t SessionsOf(absl::string_view connection) const;
  std::set<uint64_t> SessionIdsOf(absl::string_view connection) const;
  size_t sessions() const { return sessions_.size(); }
  bool SessionOpen(uint64_t session) const { return sessions_.count(session) > 0; }
  // Sessions that changed the password of a user who is not dynamic (the root user), still open:
  // each belongs to an instance a rotation or a rollback used, which the engine must close.
  std::vector<uint64_t> OpenRootChangers() const;

  // ---- Faults. -------------------------------------------------------------------------------
  // The link from the plugins is down until `now + duration` (extends a cut in force).
  void CutFor(absl::Duration duration);
  void Restore() { cut_until_ = absl::ZeroDuration(); }
  bool reachable() const { return clock_.MonotonicNow() >= cut_until_; }
  // The next password change of a user is applied, but its caller gets an error (the reply was
  // lost): the database has the new password, the engine believes the change failed.
  void ArmLostReply() { lose_next_reply_ = true; }
  void DisarmLostReply() { lose_next_reply_ = false; }

  // ---- What a plugin instance does over the link. Errors: kUnavailable while the link is cut,
  // kPermissionDenied for a wrong password, kNotFound for a missing user, kResourceExhausted past
  // a limit. ------------------------------------------------------------------------------------
  // Logs in and opens a session for `connection`; returns its id.
  absl::StatusOr<uint64_t> Open(absl::string_view connection, absl::string_view user,
                                absl::string_view password);
  // Ends a session (idempotent; needs no link: the socket just closes).
  void Close(uint64_t session);
  // Whether `session` is open (a database restart would end it; ours never restarts).
  absl::Status Use(uint64_t session) const;
  absl::Status CreateUser(uint64_t session, const std::string& name, const std::string& password,
                          std::optional<absl::Time> valid_until);
  absl::Status SetPassword(uint64_t session, const std::string& name, const std::string& password);
  absl::Status SetExpiration(uint64_t session, const std::string& name, absl::Time valid_until);
  // Dropping a user that does not exist succeeds (Vault retries revocations).
  absl::Status DropUser(uint64_t session, const std::string& name);

  // Counters for the report and tests.
  uint64_t users_created() const { return users_created_; }
  uint64_t users_dropped() const { return users_dropped_; }
  uint64_t lost_replies() const { return lost_replies_; }

 private:
  SimClock& clock_;
  std::map<std::string, User> users_;
  std::map<uint64_t, std::string> sessions_;  // Session id -> connection name.
  std::set<uint64_t> root_changers_;          // Sessions that changed a root password.
  uint64_t next_session_ = 1;
  absl::Duration cut_until_ = absl::ZeroDuration();
  bool lose_next_reply_ = false;
  uint64_t users_created_ = 0;
  uint64_t users_dropped_ = 0;
  uint64_t lost_replies_ = 0;
};

// A DatabaseFactory of plugin instances over `db`, drawing usernames from `random` (the plugin
// process's own stream). Connection details: "connection_url" (the connection's name, which
// sessions are counted by), "username", "password" (the root user). Each instance logs in once
// (at Initialize with verify_connection, else at its first call) and keeps that session until
// Close or the death of its process, as a connection pool does.
sdk::DatabaseFactory SimDbFactory(SimDatabase& db, Random& random);

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_DATABASE_SIM_DATABASE_H_
