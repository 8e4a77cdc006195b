// The database operator (see db_operator.h).
#include "sim/database/db_operator.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/crypto/sha256.h"
#include "base/env/sim/sim_process_launcher.h"
#include "base/status/check.h"
#include "sim/cluster.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

constexpr absl::Duration kSetupRetry = absl::Seconds(1);
constexpr absl::Duration kFinalRetry = absl::Seconds(10);
constexpr int kFinalAttemptsMax = 12;
// Workload rates, per simulated minute.
constexpr double kCredsPerMin = 8;
constexpr double kRevokesPerMin = 2;
constexpr double kRotationsPerMin = 1;
constexpr double kConnectionChangesPerMin = 2;
// The role's TTL is drawn per run from this range (seconds).
constexpr int64_t kTtlMinSeconds = 20;
constexpr int64_t kTtlMaxSeconds = 60;
constexpr size_t kCredsMax = 4096;

}  // namespace

DbOperator::DbOperator(World& world)
    : world_(world),
      random_(world.root_random.Derive("db-operator")),
      artifact_sha_(crypto::HexEncode(
          crypto::Sha256::Hash(SimProcessLauncher::ExecutableContents(kDatabasePlugin)))),
      ttl_(absl::Seconds(
          static_cast<int64_t>(random_.UniformInRange(kTtlMinSeconds, kTtlMaxSeconds)))) {}

void DbOperator::Start() {
  SimDatabase& db = world_.database;
  for (int n = 0; n < world_.cluster->size(); ++n) {
    Node& node = *world_.cluster->machine(n).node;
    SimPluginSpec spec;
    spec.multiplexing = true;
    spec.database = [&db](SimProcessContext& ctx) { return SimDbFactory(db, ctx.random()); };
    node.plugin_network().RegisterPlugin(node.launcher(), std::string(kDatabasePlugin), spec);
    const std::string path = absl::StrCat("/bulwark/plugins/", kDatabasePlugin);
    CHECK_OK(node.disk().WriteFileDurably(
        path, SimProcessLauncher::ExecutableContents(kDatabasePlugin), 0755));
    CHECK_OK(node.disk().SyncDir("/bulwark/plugins"));
  }
  root_password_ = world_.NewSecret(random_);
  db.PutUser(kDbRootUser, root_password_, /*dynamic=*/false);
  side_password_ = world_.NewSecret(random_);
  db.PutUser(kDbSideUser, side_password_, /*dynamic=*/false);
}

void DbOperator::OnReady() { Setup(0); }

absl::Time DbOperator::NodeWallNow() const {
  return world_.cluster->machine(0).node->clock().WallNow();
}

void DbOperator::Send(Request request, Network::Callback done, bool client) {
  Network::SendOptions options;
  options.client = client;
  world_.network->Send(0, std::move(request), std::move(done), options);
}

Request DbOperator::Logical(const std::string& path, const std::string& operation,
                            std::string data_json) {
  Request request;
  request.kind = OpKind::kLogical;
  request.key = absl::StrCat(kDbMount, "/", path);
  request.operation = operation;
  request.data_json = std::move(data_json);
  return request;
}

// The one-time setup, step by step; every step is idempotent, so a failed one starts over.
void DbOperator::Setup(int step) {
  if (world_.quiet || world_.done) return;
  Request request;
  switch (step) {
    case 0: {
      request.kind = OpKind::kRegister;
      catalog::RegisterRequest& r = request.registration;
      r.type = catalog::PluginType::kDatabase;
      r.name = std::string(kDatabasePlugin);
      r.command = std::string(kDatabasePlugin);
      r.sha256 = artifact_sha_;
      break;
    }
    case 1:
      request.kind = OpKind::kEnableMount;
      request.mount_path = kDbMount;
      request.type = catalog::PluginType::kSecret;
      request.name = "database";
      break;
    case 2:  // Is the connection configured already (an earlier answer may have been lost)?
      request = Logical(absl::StrCat("config/", kDbConnection), "read", "");
      break;
    case 3:
      request = Logical(absl::StrCat("config/", kDbConnection), "update",
                        nlohmann::json{{"plugin_name", std::string(kDatabasePlugin)},
                                       {"connection_url", kDbConnection},
                                       {"username", kDbRootUser},
                                       {"password", root_password_},
                                       {"allowed_roles", "*"}}
                            .dump());
      break;
    case 4:
      request = Logical(absl::StrCat("roles/", kDbRole), "update",
                        nlohmann::json{{"db_name", kDbConnection},
                                       {"default_ttl", absl::ToInt64Seconds(ttl_)},
                                       {"max_ttl", absl::ToInt64Seconds(ttl_)}}
                            .dump());
      break;
    default:
      ready_ = true;
      world_.trace.Add(world_.Now(), 0, "db-ready", "");
      world_.loop.PostAfter(NextGap(random_, kCredsPerMin), [this] { CredsLoop(); });
      world_.loop.PostAfter(NextGap(random_, kRevokesPerMin), [this] { RevokeLoop(); });
      world_.loop.PostAfter(NextGap(random_, kRotationsPerMin), [this] { RotateLoop(); });
      world_.loop.PostAfter(NextGap(random_, kConnectionChangesPerMin),
                            [this] { ConnectionLoop(); });
      return;
  }
  Send(std::move(request), [this, step](const Response& response, bool answered) {
    const bool ok =
        answered && (response.status.ok() || (step <= 1 && absl::IsAlreadyExists(response.status)));
    if (!ok) {
      world_.trace.Add(world_.Now(), 0, "db-setup-retry",
                       absl::StrCat(step, " ", absl::StatusCodeToString(response.status.code())));
      world_.loop.PostAfter(kSetupRetry, [this] { Setup(0); });
      return;
    }
    // A config already there is kept: after a rotation only the engine knows the root password.
    Setup(step == 2 && response.value.has_value() ? 4 : step + 1);
  });
}

void DbOperator::CredsLoop() {
  if (world_.quiet || world_.done) return;
  Creds(nullptr);
  world_.loop.PostAfter(NextGap(random_, kCredsPerMin), [this] { CredsLoop(); });
}

void DbOperator::RotateLoop() {
  if (world_.quiet || world_.done) return;
  Rotate(nullptr);
  world_.loop.PostAfter(NextGap(random_, kRotationsPerMin), [this] { RotateLoop(); });
}

void DbOperator::ConnectionLoop() {
  if (world_.quiet || world_.done) return;
  // One at a time: c1 has no other traffic, so the sessions it had when an event was sent are
  // exactly the instances that event must close.
  ConnectionChange(-1, [this] {
    world_.loop.PostAfter(NextGap(random_, kConnectionChangesPerMin), [this] { ConnectionLoop(); });
  });
}

void DbOperator::ConnectionChange(int op, std::function<void()> then) {
  enum Op { kWrite, kReset, kDelete, kReload, kOps };
  const std::string connection = kDbSideConnection;
  // While c1 is (believed) absent, write it: a create. Otherwise any event.
  if (op < 0) op = side_configured_ ? static_cast<int>(random_.Uniform(kOps)) : kWrite;
  Request request;
  const char* what = "";
  switch (op) {
    case kWrite:
      what = "a config write";
      // A connection detail that changes with each write: every write is a real update.
      request = Logical(absl::StrCat("config/", connection), "update",
                        nlohmann::json{{"plugin_name", std::string(kDatabasePlugin)},
                                       {"connection_url", connection},
                                       {"username", kDbSideUser},
                                       {"password", side_password_},
                                       {"allowed_roles", ""},
                                       {"write", ++side_writes_}}
                            .dump());
      break;
    case kReset:
      what = "a reset";
      request = Logical(absl::StrCat("reset/", connection), "update", "{}");
      break;
    case kDelete:
      what = "a config delete";
      request = Logical(absl::StrCat("config/", connection), "delete", "");
      break;
    default:
      what = "a reload of the plugin";
      request = Logical(absl::StrCat("reload/", kDatabasePlugin), "update", "{}");
      break;
  }
  const std::set<uint64_t> before = world_.database.SessionIdsOf(connection);
  Send(std::move(request),
       [this, op, what, connection, before, then](const Response& response, bool answered) {
         if (answered && response.status.ok()) {
           if (op == kWrite) side_configured_ = true;
           if (op == kDelete) side_configured_ = false;
           CheckSessionsClosed(connection, before, what);
           if (op == kDelete && world_.database.SessionsOf(connection) > 0) {
             world_.Violate("instance_closed", absl::StrCat("after a config delete of connection ",
                                                            connection, " answered, it still has ",
                                                            world_.database.SessionsOf(connection),
                                                            " open database session(s)"));
           }
         }
         if (then) then();
       });
}

void DbOperator::CheckSessionsClosed(const std::string& connection,
                                     const std::set<uint64_t>& before, absl::string_view after) {
  world_.Count("instance_closed");
  for (uint64_t session : before) {
    if (!world_.database.SessionOpen(session)) continue;
    world_.Violate(
        "instance_closed",
        absl::StrCat("after ", after, " of connection ", connection, " answered, session ", session,
                     " it had when the request was sent is still open: the instance "
                     "it replaced was not closed"));
    return;
  }
}

bool DbOperator::RotateNow() {
  if (!ready_ || world_.quiet || world_.done) return false;
  Rotate(nullptr);
  return true;
}

void DbOperator::RevokeLoop() {
  if (world_.quiet || world_.done) return;
  std::vector<size_t> live;
  for (size_t i = 0; i < creds_.size(); ++i) {
    if (!creds_[i].revoke_sent && !MayHaveEnded(creds_[i])) live.push_back(i);
  }
  if (!live.empty()) {
    const size_t index = live[random_.Uniform(live.size())];
    creds_[index].revoke_sent = true;
    Request request;
    request.kind = OpKind::kRevokeLease;
    request.key = creds_[index].lease_id;
    Send(request, [this, index](const Response& response, bool answered) {
      if (!answered || !response.status.ok()) return;  // Retried by the lease manager.
      world_.Count("issued_credentials");
      if (world_.database.Exists(creds_[index].user)) {
        world_.Violate("issued_credentials",
                       absl::StrCat("the revocation of lease ", creds_[index].lease_id,
                                    " was acknowledged but its user is still in the database"));
      }
    });
  }
  world_.loop.PostAfter(NextGap(random_, kRevokesPerMin), [this] { RevokeLoop(); });
}

void DbOperator::Creds(std::function<void(bool ok)> then) {
  const absl::Duration sent = world_.Now();
  const absl::Time wall_sent = NodeWallNow();
  const absl::Duration skew = world_.cluster->machine(0).node->clock().skew();
  Send(Logical(absl::StrCat("creds/", kDbRole), "read", ""),
       [this, sent, wall_sent, skew, then](const Response& response, bool answered) {
         const bool ok = answered && response.status.ok() && response.value.has_value();
         if (ok && creds_.size() < kCredsMax) {
           const nlohmann::json data =
               nlohmann::json::parse(*response.value, nullptr, /*allow_exceptions=*/false);
           Cred cred;
           if (data.is_object() && data.contains("username") && data["username"].is_string() &&
               data.contains("password") && data["password"].is_string()) {
             cred.user = data["username"].get<std::string>();
             cred.password = data["password"].get<std::string>();
           }
           world_.scanner.Add(cred.password);
           cred.lease_id = response.lease_id;
           cred.sent = sent;
           cred.answered = world_.Now();
           cred.wall_sent = wall_sent;
           cred.wall_answered = NodeWallNow();
           cred.ttl = response.lease_ttl;
           // A wall-clock jump between the send and the answer: the lease's end by the node's
           // clock is not known, so only the simulated clock judges it.
           cred.skew_answered = world_.cluster->machine(0).node->clock().skew();
           cred.jumped = cred.skew_answered != skew;
           creds_.push_back(std::move(cred));
           const size_t index = creds_.size() - 1;
           CheckWorks(index, "when issued");
           world_.loop.PostAfter(
               std::max(absl::ZeroDuration(), creds_[index].ttl * 3 / 4 - (world_.Now() - sent)),
               [this, index] { CheckWorks(index, "at 3/4 of its TTL"); });
         }
         if (then) then(ok);
       });
}

void DbOperator::Rotate(std::function<void(const Response&, bool)> then) {
  Send(Logical(absl::StrCat("rotate-root/", kDbConnection), "update", "{}"),
       [this, then](const Response& response, bool answered) {
         // Whatever happened, the database's root password is a secret nothing may leak.
         auto it = world_.database.users().find(kDbRootUser);
         if (it != world_.database.users().end()) world_.scanner.Add(it->second.password);
         if (answered && response.status.ok()) CheckRootChangersClosed("a rotate-root answered");
         if (then) then(response, answered);
       });
}

bool DbOperator::MayHaveEnded(const Cred& cred) const {
  if (world_.Now() >= cred.sent + cred.ttl) return true;
  // A jump after the answer moves the lease's end by the node's clock: a forward jump and then a
  // seal, a restart or a step-down restores the lease by its wall-clock expire time (as Vault
  // does) and may end it early, whatever the clock reads by the time of this check.
  if (world_.cluster->machine(0).node->clock().skew() != cred.skew_answered) return true;
  return cred.jumped || NodeWallNow() >= cred.wall_sent + cred.ttl;
}

void DbOperator::CheckWorks(size_t index, absl::string_view when) {
  const Cred& cred = creds_[index];
  if (cred.revoke_sent || MayHaveEnded(cred)) return;
  world_.Count("issued_credentials");
  if (cred.user.empty() || !world_.database.Accepts(cred.user, cred.password)) {
    world_.Violate(
        "issued_credentials",
        absl::StrCat("the credential of lease ", cred.lease_id, " (user ", cred.user,
                     ") does not log in ", when, ", ",
                     absl::FormatDuration(world_.Now() - cred.sent),
                     " after it was asked for; its TTL is ", absl::FormatDuration(cred.ttl)));
  }
}

void DbOperator::CheckRootChangersClosed(absl::string_view after) {
  world_.Count("instance_closed");
  const std::vector<uint64_t> open = world_.database.OpenRootChangers();
  if (!open.empty()) {
    world_.Violate("instance_closed",
                   absl::StrCat("after ", after, ", ", open.size(),
                                " plugin instance(s) that changed the root password still hold "
                                "their database session (session ",
                                open.front(), "): the instance was not closed"));
  }
}

void DbOperator::OnQuiet() {
  ++world_.end_holds;
  holding_end_ = true;
  world_.loop.PostAfter(kRollbackWait, [this] {
    if (!ready_) {
      world_.trace.Add(world_.Now(), 0, "db-not-ready", "");
      return Release();
    }
    FinalRotationChecks(1);
  });
}

void DbOperator::FinalRotationChecks(int attempt) {
  if (world_.done) return;
  // The rollback manager has had two passes: every rotation that stopped half way is repaired,
  // and no instance that changed the root password may still be open.
  if (attempt == 1) CheckRootChangersClosed("two rollback passes with no faults");
  // A reset closes the connection's instance and initializes a new one with the stored root
  // credential and verify_connection: it succeeds exactly when that credential logs in.
  Send(Logical(absl::StrCat("reset/", kDbConnection), "update", "{}"), [this, attempt](
                                                                           const Response& response,
                                                                           bool answered) {
    if (!answered || !response.status.ok()) {
      if (attempt < kFinalAttemptsMax) {
        world_.loop.PostAfter(kFinalRetry, [this, attempt] { FinalRotationChecks(attempt + 1); });
        return;
      }
      world_.Count("root_recoverable");
      world_.Violate("root_recoverable",
                     absl::StrCat("after faults stopped and two rollback passes, the stored "
                                  "root credential of connection ",
                                  kDbConnection,
                                  " does not log in (reset: ", response.status.ToString(), ")"));
      return Release();
    }
    world_.Count("root_recoverable");
    Rotate([this](const Response& rotated, bool rotated_answered) {
      if (!rotated_answered || !rotated.status.ok()) {
        world_.Violate("root_recoverable", absl::StrCat("a rotate-root with no faults failed: ",
                                                        rotated.status.ToString()));
        return Release();
      }
      Creds([this](bool ok) {
        world_.Count("root_recoverable");
        if (!ok) {
          world_.Violate("root_recoverable",
                         "no credentials could be issued after the final rotation");
        }
        FinalConnectionChecks(0);
        const absl::Duration left = kLeakCheckWait - kRollbackWait;
        world_.loop.PostAfter(left, [this] { LeakCheck(); });
      });
    });
  });
}

void DbOperator::FinalConnectionChecks(size_t step) {
  // Write (a create or an update), write (an update: it replaces a cached instance), reset,
  // reload, delete: every connection-change event at least once per run, with no faults.
  static constexpr int kSequence[] = {0, 0, 1, 3, 2};
  if (world_.done || step >= sizeof(kSequence) / sizeof(kSequence[0])) return;
  ConnectionChange(kSequence[step], [this, step] { FinalConnectionChecks(step + 1); });
}

void DbOperator::LeakCheck() {
  const absl::Time wall_now = NodeWallNow();
  for (const Cred& cred : creds_) {
    if (cred.user.empty()) continue;
    // A jump after the answer moves the lease's end by the node's clock (a restore reschedules it
    // from the wall-clock expire time, as Vault's does): such a lease has no end this check can
    // name, so it is not judged.
    if (world_.cluster->machine(0).node->clock().skew() != cred.skew_answered) continue;
    const bool ended = world_.Now() >= cred.answered + cred.ttl + kLeakBound &&
                       (cred.jumped || wall_now >= cred.wall_answered + cred.ttl + kLeakBound);
    if (!ended) continue;
    world_.Count("no_leaked_users");
    if (world_.database.Exists(cred.user)) {
      world_.Violate("no_leaked_users",
                     absl::StrCat("user ", cred.user, " of lease ", cred.lease_id,
                                  " is still in the database ",
                                  absl::FormatDuration(world_.Now() - cred.answered - cred.ttl),
                                  " after its lease ended (bound: TTL + ",
                                  absl::FormatDuration(kLeakBound), ")"));
    }
  }
  Release();
}

void DbOperator::Release() {
  if (!holding_end_) return;
  holding_end_ = false;
  --world_.end_holds;
  world_.WorkloadOpFinished();
}

}  // namespace bulwark::sim
