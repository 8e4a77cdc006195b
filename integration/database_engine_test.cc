// The database engine over the userdb plugin on simulated time: every path, every close event
// (each a lifecycle termination record), leased credentials (expiry, revocation, renewal,
// retries while the database is down), and each row of the half-done rotation table driven by
// a failpoint at that step, then rolled back, then stored root == database root.
//
// The plugin runs in-process behind the lifecycle manager's runner seam (the SDK's
// DatabaseDispatcher over a UserDb on the SimFileSystem), so a runner can be killed and the
// database cut off ("down") at will; everything else is the production code.
#include "core/database/database_engine.h"

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/env/sim/sim_env.h"
#include "base/log/log.h"
#include "base/metrics/metrics.h"
#include "base/status/check.h"
#include "base/storage/in_memory_storage.h"
#include "core/catalog/catalog.h"
#include "core/database/prefix_storage.h"
#include "core/lease/lease_manager.h"
#include "core/lifecycle/lifecycle.h"
#include "examples/userdb/userdb.h"
#include "faultinject/registry.h"
#include "gtest/gtest.h"
#include "integration/db_runner.h"
#include "protocol/wire_names.h"

namespace bulwark::database {
namespace {

using Json = nlohmann::json;
using lifecycle::TerminationEvent;
using testing_db::DbRunnerFactory;
using testing_db::DbWorld;

using testing_db::kDbDir;
using testing_db::kPlugin;
using testing_db::kRootPassword;
using testing_db::kRootUser;

constexpr uint64_t kSeed = 15;

class DatabaseEngineTest : public ::testing::Test {
 protected:
  DatabaseEngineTest() : sim_(kSeed), registry_(sim_.random()), env_(sim_.env()) {
    std::printf("seed: %llu\n", static_cast<unsigned long long>(kSeed));
    env_.failpoints = &registry_;
    testing_db::CreateDatabase(sim_.fs(), sim_.random());
    catalog::CatalogOptions copts;
    copts.builtins = {{catalog::PluginType::kDatabase, kPlugin, "v0.1.0+builtin"}};
    absl::StatusOr<std::unique_ptr<catalog::Catalog>> c =
        catalog::Catalog::Open(storage_, sim_.fs(), copts);
    CHECK_OK(c.status());
    catalog_ = std::move(*c);
    StartNode();
  }
  ~DatabaseEngineTest() override { CrashNode(); }

  // A node process coming up on the same storage and database.
  void StartNode() {
    lifecycle_ = std::make_unique<lifecycle::LifecycleManager>(
        env_, *catalog_, runners_, [](const mount::MountEntry&) { return nullptr; }, metrics_, log_,
        lifecycle_options_);
    leases_ = std::make_unique<lease::LeaseManager>(
        env_, storage_,
        [this](absl::string_view mount) -> lease::LeaseBackend* {
          return engine_ != nullptr && mount == engine_->mount().path ? engine_.get() : nullptr;
        },
        log_);
    mount::MountEntry m;
    m.path = "database/";
    m.plugin_name = kDatabaseEngineName;
    m.uuid = "0000-uuid";
    engine_ = std::make_unique<DatabaseEngine>(env_, view_, m, *lifecycle_, *leases_, log_,
                                               engine_options_);
    CHECK_OK(leases_->Restore());
  }
  // The node dies: nothing of its memory survives, storage and the database do.
  void CrashNode() {
    engine_.reset();
    leases_.reset();
    lifecycle_.reset();
    sim_.loop().RunUntil([] { return false; }, absl::Milliseconds(1));
  }

  absl::StatusOr<lifecycle::Reply> Do(absl::string_view op, absl::string_view path,
                                      Json data = Json::object()) {
    pb::Request r;
    r.set_operation(std::string(op));
    r.set_path(std::string(path));
    r.set_data(data.dump());
    r.set_client_token("root");
    std::optional<absl::StatusOr<lifecycle::Reply>> result;
    engine_->HandleRequest(r, [&](absl::StatusOr<lifecycle::Reply> x) { result = std::move(x); });
    sim_.loop().RunUntil([&] { return result.has_value(); }, absl::Minutes(5));
    CHECK(result.has_value()) << "request " << op << " " << path << " did not finish";
    return *result;
  }
  static Json DataOf(const lifecycle::Reply& r) { return Json::parse(r->data()); }

  void RunFor(absl::Duration d) {
    sim_.loop().RunUntil([] { return false; }, d);
  }

  Json ConnectionBody(std::string password = kRootPassword) {
    return {{"plugin_name", kPlugin},
            {"connection_url", kDbDir},
            {"username", kRootUser},
            {"password", password},
            {"allowed_roles", "ro,app-*"}};
  }
  void Configure() {
    absl::StatusOr<lifecycle::Reply> r = Do("update", "config/db1", ConnectionBody());
    ASSERT_TRUE(r.ok()) << r.status();
    r = Do("update", "roles/ro", {{"db_name", "db1"}, {"default_ttl", "1h"}, {"max_ttl", 7200}});
    ASSERT_TRUE(r.ok()) << r.status();
  }

  // The password storage holds for the root user, and whether it logs in to the database.
  std::string StoredRootPassword() {
    absl::StatusOr<std::optional<std::string>> raw = view_.Get("config/db1");
    CHECK(raw.ok() && raw->has_value());
    return Json::parse(**raw)["connection_details"]["password"].get<std::string>();
  }
  bool DbAccepts(absl::string_view user, absl::string_view password) {
    return testing_db::DbAccepts(sim_.fs(), sim_.random(), user, password);
  }
  bool UserExists(absl::string_view user) {
    return testing_db::UserExists(sim_.fs(), sim_.random(), user);
  }
  size_t Wals() { return view_.List("wal/")->size(); }
  size_t Terminations(TerminationEvent e) {
    size_t n = 0;
    for (const auto& t : lifecycle_->terminations()) n += t.event == e ? 1 : 0;
    return n;
  }
  // The instance recorded by the last termination of kind `e`.
  std::string LastTerminated(TerminationEvent e) {
    std::string key;
    for (const auto& t : lifecycle_->terminations()) {
      if (t.event == e) key = t.path;
    }
    return key;
  }
  absl::Status RollbackPass(bool immediate = false) {
    std::optional<absl::Status> result;
    engine_->Rollback(immediate, [&](absl::Status s) { result = s; });
    sim_.loop().RunUntil([&] { return result.has_value(); }, absl::Minutes(5));
    CHECK(result.has_value());
    return *result;
  }

  sim::SimEnv sim_;
  faultinject::Registry registry_;
  Env env_;
  DbWorld world_;
  DbRunnerFactory runners_{env_, world_};
  InMemoryStorage storage_;
  PrefixStorage view_{storage_, "logical/0000-uuid/"};
  metrics::Registry metrics_;
  MemoryLogSink log_;
  std::unique_ptr<catalog::Catalog> catalog_;
  lifecycle::LifecycleOptions lifecycle_options_;
  DatabaseEngineOptions engine_options_;
  std::unique_ptr<lifecycle::LifecycleManager> lifecycle_;
  std::unique_ptr<lease::LeaseManager> leases_;
  std::unique_ptr<DatabaseEngine> engine_;
};

// ---- config/:name ----------------------------------------------------------------------------

TEST_F(DatabaseEngineTest, ConfigCreateReadListWithoutSecrets) {
  absl::StatusOr<lifecycle::Reply> r = Do("update", "config/db1", ConnectionBody());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->has_value());  // 204
  EXPECT_NE(engine_->CachedInstance("db1"), "");
  r = Do("read", "config/db1");
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status();
  Json data = DataOf(*r);
  EXPECT_EQ(data["plugin_name"], kPlugin);
  EXPECT_EQ(data["connection_details"]["username"], kRootUser);
  EXPECT_FALSE(data["connection_details"].contains("password"));
  EXPECT_EQ(data["allowed_roles"], Json::array({"ro", "app-*"}));
  EXPECT_EQ(data["root_credentials_rotate_statements"], Json::array());
  EXPECT_EQ((*r)->data().find(kRootPassword), std::string::npos);
  r = Do("list", "config/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(DataOf(*r)["keys"], Json::array({"db1"}));
  // Missing: no response (404); bad names are not routes.
  r = Do("read", "config/nope");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(Do("read", "config/-bad").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Do("update", "config/x", {{"connection_url", kDbDir}}).status().message(),
            "empty plugin name");
}

TEST_F(DatabaseEngineTest, ConfigUrlPasswordIsRedactedAndWarned) {
  Json body = ConnectionBody();
  body["connection_url"] = "postgresql://vault:secret@h/db";
  body["verify_connection"] = false;
  absl::StatusOr<lifecycle::Reply> r = Do("update", "config/pg", body);
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status();
  ASSERT_EQ((*r)->warnings_size(), 1);
  EXPECT_TRUE(absl::StartsWith((*r)->warnings(0), "Password found in connection_url"));
  r = Do("read", "config/pg");
  EXPECT_EQ(DataOf(*r)["connection_details"]["connection_url"], "postgresql://vault:xxxxx@h/db");
}

TEST_F(DatabaseEngineTest, ConfigUpdateClosesTheReplacedInstance) {
  Configure();
  const std::string first = engine_->CachedInstance("db1");
  ASSERT_TRUE(Do("update", "config/db1", {{"allowed_roles", "*"}}).ok());
  const std::string second = engine_->CachedInstance("db1");
  EXPECT_NE(first, second);
  EXPECT_EQ(LastTerminated(TerminationEvent::kConnectionChange), first);
  EXPECT_FALSE(lifecycle_->HasDatabaseInstance(first));
  // Merged, not replaced: the details are still there.
  EXPECT_EQ(DataOf(*Do("read", "config/db1"))["connection_details"]["username"], kRootUser);
}

TEST_F(DatabaseEngineTest, ConfigWriteThatFailsClosesOnlyTheNewInstance) {
  Configure();
  const std::string cached = engine_->CachedInstance("db1");
  const size_t before = Terminations(TerminationEvent::kConnectionChange);
  absl::StatusOr<lifecycle::Reply> r = Do("update", "config/db1", {{"password", "wrong"}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "error creating database object: "))
      << r.status();
  EXPECT_EQ(r.status().message().find("wrong"), std::string::npos);
  EXPECT_EQ(Terminations(TerminationEvent::kConnectionChange), before + 1);
  EXPECT_NE(LastTerminated(TerminationEvent::kConnectionChange), cached);
  EXPECT_EQ(engine_->CachedInstance("db1"), cached);  // Old instance and config untouched.
  EXPECT_EQ(StoredRootPassword(), kRootPassword);
}

TEST_F(DatabaseEngineTest, ConfigDeleteClearsTheConnection) {
  Configure();
  const std::string cached = engine_->CachedInstance("db1");
  absl::StatusOr<lifecycle::Reply> r = Do("delete", "config/db1");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(LastTerminated(TerminationEvent::kConnectionChange), cached);
  EXPECT_EQ(engine_->CachedInstance("db1"), "");
  EXPECT_FALSE(Do("read", "config/db1")->has_value());
  // Its process outlives its last instance by the idle grace period only.
  EXPECT_EQ(lifecycle_->idle_process_count(), 1u);
  RunFor(lifecycle_options_.database_idle_grace);
  EXPECT_EQ(lifecycle_->process_count(), 0u);
}

TEST_F(DatabaseEngineTest, ResetClosesAndReconnects) {
  Configure();
  const std::string cached = engine_->CachedInstance("db1");
  absl::StatusOr<lifecycle::Reply> r = Do("update", "reset/db1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(LastTerminated(TerminationEvent::kConnectionChange), cached);
  EXPECT_NE(engine_->CachedInstance("db1"), "");
  EXPECT_NE(engine_->CachedInstance("db1"), cached);
  // A reset that cannot reconnect is a bare error, and the cache stays empty.
  world_.down = true;
  r = Do("update", "reset/db1");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(engine_->CachedInstance("db1"), "");
}

TEST_F(DatabaseEngineTest, ReloadResetsEveryConnectionOfThePlugin) {
  Configure();
  ASSERT_TRUE(Do("update", "config/db2", ConnectionBody()).ok());
  const std::string one = engine_->CachedInstance("db1");
  absl::StatusOr<lifecycle::Reply> r = Do("update", std::string("reload/") + kPlugin);
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status();
  EXPECT_EQ(DataOf(*r), Json({{"connections", {"db1", "db2"}}, {"count", 2}}));
  EXPECT_NE(engine_->CachedInstance("db1"), one);
  bool closed = false;
  for (const auto& t : lifecycle_->terminations()) {
    closed |= t.path == one && t.event == TerminationEvent::kConnectionChange;
  }
  EXPECT_TRUE(closed);
  r = Do("update", "reload/other-plugin");
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ(DataOf(*r)["count"], 0);
  EXPECT_EQ((*r)->warnings(0), "no connections were found with plugin_name \"other-plugin\"");
}

TEST_F(DatabaseEngineTest, InstancesShareOneMultiplexedProcess) {
  Configure();
  ASSERT_TRUE(Do("update", "config/db2", ConnectionBody()).ok());
  EXPECT_EQ(world_.starts, 1);
  ASSERT_EQ(lifecycle_->Processes().size(), 1u);
  EXPECT_TRUE(lifecycle_->Processes()[0].multiplexed);
  EXPECT_EQ(lifecycle_->Processes()[0].mounts.size(), 2u);
}

// ---- roles and creds -------------------------------------------------------------------------

TEST_F(DatabaseEngineTest, RolesCrud) {
  Configure();
  absl::StatusOr<lifecycle::Reply> r = Do("read", "roles/ro");
  ASSERT_TRUE(r.ok() && r->has_value());
  Json data = DataOf(*r);
  EXPECT_EQ(data["db_name"], "db1");
  EXPECT_EQ(data["default_ttl"], 3600);
  EXPECT_EQ(data["max_ttl"], 7200);
  EXPECT_EQ(data["creation_statements"], Json::array());
  ASSERT_TRUE(Do("update", "roles/ro", {{"creation_statements", "CREATE ROLE x"}}).ok());
  data = DataOf(*Do("read", "roles/ro"));
  EXPECT_EQ(data["creation_statements"], Json::array({"CREATE ROLE x"}));
  EXPECT_EQ(data["default_ttl"], 3600);  // Kept on update.
  EXPECT_EQ(DataOf(*Do("list", "roles/"))["keys"], Json::array({"ro"}));
  EXPECT_EQ(Do("update", "roles/x", Json::object()).status().message(),
            "database name is required");
  ASSERT_TRUE(Do("delete", "roles/ro").ok());
  EXPECT_FALSE(Do("read", "roles/ro")->has_value());
}

TEST_F(DatabaseEngineTest, CredsAreLeasedAndExpire) {
  Configure();
  absl::StatusOr<lifecycle::Reply> r = Do("read", "creds/ro");
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status();
  Json data = DataOf(*r);
  const std::string user = data["username"].get<std::string>();
  const std::string pass = data["password"].get<std::string>();
  EXPECT_EQ(pass.size(), kPasswordChars);
  EXPECT_TRUE(DbAccepts(user, pass));
  const pb::Secret& secret = (*r)->secret();
  EXPECT_TRUE(absl::StartsWith(secret.lease_id(), "database/creds/ro/"));
  EXPECT_EQ(secret.lease_options().ttl(), absl::ToInt64Nanoseconds(absl::Hours(1)));
  EXPECT_TRUE(secret.lease_options().renewable());
  // The stored lease holds what revocation needs, not the password.
  absl::StatusOr<std::optional<std::string>> stored =
      storage_.Get("sys/expire/id/" + secret.lease_id());
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ(stored->value().find(pass), std::string::npos);
  RunFor(absl::Minutes(59));
  EXPECT_TRUE(UserExists(user));
  RunFor(absl::Minutes(2));
  EXPECT_FALSE(UserExists(user));
  EXPECT_EQ(leases_->size(), 0u);
}

TEST_F(DatabaseEngineTest, CredsErrors) {
  Configure();
  EXPECT_EQ(Do("read", "creds/nope").status().message(), "unknown role: nope");
  ASSERT_TRUE(Do("update", "roles/other", {{"db_name", "db1"}}).ok());
  absl::StatusOr<lifecycle::Reply> r = Do("read", "creds/other");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "\"other\" is not an allowed role"));
  ASSERT_TRUE(Do("update", "roles/app-1", {{"db_name", "db1"}}).ok());
  EXPECT_TRUE(Do("read", "creds/app-1").ok());  // Glob "app-*".
  ASSERT_TRUE(Do("update", "roles/gone", {{"db_name", "nodb"}}).ok());
  r = Do("read", "creds/gone");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(absl::StrContains(r.status().message(),
                                "failed to find entry for connection with name: \"nodb\""));
}

TEST_F(DatabaseEngineTest, RevokeAndRenewThroughLeases) {
  Configure();
  Json data = DataOf(*Do("read", "creds/ro"));
  const std::string user = data["username"].get<std::string>();
  const std::string id = leases_->List("database/")[0];
  RunFor(absl::Minutes(30));
  std::optional<absl::StatusOr<lease::LeaseView>> renewed;
  leases_->Renew(id, absl::Hours(1), [&](absl::StatusOr<lease::LeaseView> v) { renewed = v; });
  sim_.loop().RunUntil([&] { return renewed.has_value(); }, absl::Minutes(1));
  ASSERT_TRUE(renewed.has_value() && renewed->ok());
  EXPECT_EQ((*renewed)->ttl, absl::Hours(1));
  // The database got the new expiry (now + ttl + 5 s).
  examples::userdb::UserDb db = testing_db::OpenDb(sim_.fs(), sim_.random());
  EXPECT_EQ(*db.ReadUser(user)->expiration,
            absl::FromUnixSeconds(
                absl::ToUnixSeconds(sim_.clock().WallNow() + absl::Hours(1) + kExpirationSlack)));
  std::optional<absl::Status> revoked;
  leases_->Revoke(id, [&](absl::Status s) { revoked = s; });
  sim_.loop().RunUntil([&] { return revoked.has_value(); }, absl::Minutes(1));
  ASSERT_TRUE(revoked.has_value() && revoked->ok()) << *revoked;
  EXPECT_FALSE(UserExists(user));
}

TEST_F(DatabaseEngineTest, RevocationAfterRoleDeleteUsesTheLeaseData) {
  Configure();
  const std::string user = DataOf(*Do("read", "creds/ro"))["username"].get<std::string>();
  ASSERT_TRUE(Do("delete", "roles/ro").ok());
  RunFor(absl::Hours(1) + absl::Minutes(1));
  EXPECT_FALSE(UserExists(user));
}

TEST_F(DatabaseEngineTest, RevocationRetriedWhileTheDatabaseIsDown) {
  Configure();
  const std::string user = DataOf(*Do("read", "creds/ro"))["username"].get<std::string>();
  world_.down = true;
  RunFor(absl::Hours(3));  // Expired long ago; every attempt failed.
  EXPECT_TRUE(UserExists(user));
  EXPECT_EQ(leases_->size(), 1u);
  world_.down = false;
  RunFor(absl::Minutes(11));  // The next retry, at most revoke_retry_max later.
  EXPECT_FALSE(UserExists(user));
  EXPECT_EQ(leases_->size(), 0u);
}

TEST_F(DatabaseEngineTest, DeadPluginClosesTheInstanceAndTheNextRequestStartsAnew) {
  Configure();
  const std::string cached = engine_->CachedInstance("db1");
  runners_.last->Kill();
  RunFor(absl::Milliseconds(1));
  absl::StatusOr<lifecycle::Reply> r = Do("read", "creds/ro");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "plugin shutdown")) << r.status();
  RunFor(absl::Milliseconds(1));
  EXPECT_EQ(LastTerminated(TerminationEvent::kPluginShutdown), cached);
  EXPECT_EQ(engine_->CachedInstance("db1"), "");
  r = Do("read", "creds/ro");
  EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(world_.starts, 2);
}

TEST_F(DatabaseEngineTest, UnmountCleanupClosesEveryConnection) {
  Configure();
  const std::string cached = engine_->CachedInstance("db1");
  bool done = false;
  engine_->Cleanup(TerminationEvent::kUnmount, [&] { done = true; });
  sim_.loop().RunUntil([&] { return done; }, absl::Minutes(1));
  EXPECT_EQ(LastTerminated(TerminationEvent::kUnmount), cached);
  EXPECT_EQ(lifecycle_->process_count(), 0u);
}

// ---- rotate-root ------------------------------------------------------------------------------

TEST_F(DatabaseEngineTest, RotateRootChangesBothAndClosesTheInstance) {
  Configure();
  const std::string cached = engine_->CachedInstance("db1");
  absl::StatusOr<lifecycle::Reply> r = Do("update", "rotate-root/db1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->has_value());
  const std::string stored = StoredRootPassword();
  EXPECT_NE(stored, kRootPassword);
  EXPECT_TRUE(DbAccepts(kRootUser, stored));
  EXPECT_FALSE(DbAccepts(kRootUser, kRootPassword));
  EXPECT_EQ(Wals(), 0u);
  EXPECT_EQ(LastTerminated(TerminationEvent::kRootRotation), cached);
  EXPECT_FALSE(lifecycle_->HasDatabaseInstance(cached));
  // Its successor opens in the background, logging in with the new password, and serves the
  // next request.
  RunFor(absl::Seconds(1));
  const std::string next = engine_->CachedInstance("db1");
  EXPECT_NE(next, "");
  EXPECT_NE(next, cached);
  EXPECT_TRUE(Do("read", "creds/ro").ok());
  EXPECT_EQ(engine_->CachedInstance("db1"), next);
  // Without root credentials there is nothing to rotate.
  Json body = {{"plugin_name", kPlugin}, {"connection_url", kDbDir}, {"allowed_roles", "*"}};
  ASSERT_TRUE(Do("update", "config/nouser", body).ok());
  EXPECT_TRUE(absl::StrContains(Do("update", "rotate-root/nouser").status().message(),
                                "unable to rotate root credentials: no username in configuration"));
}

TEST_F(DatabaseEngineTest, RotateRootClosesTheInstanceButTheNextOneReusesItsProcess) {
  // Without the reopen, so the process is left idle after each rotation.
  CrashNode();
  engine_options_.reopen_after_rotation = false;
  StartNode();
  Configure();
  ASSERT_EQ(world_.starts, 1);
  const std::string cached = engine_->CachedInstance("db1");
  const int closes = world_.closes;
  ASSERT_TRUE(Do("update", "rotate-root/db1").ok());
  // Vault's close: a termination record and the plugin's Close call...
  EXPECT_EQ(LastTerminated(TerminationEvent::kRootRotation), cached);
  EXPECT_FALSE(lifecycle_->HasDatabaseInstance(cached));
  EXPECT_EQ(world_.closes, closes + 1);
  // ...but the process stays up, idle, and the next instance reuses it.
  EXPECT_EQ(lifecycle_->process_count(), 1u);
  EXPECT_EQ(lifecycle_->idle_process_count(), 1u);
  ASSERT_TRUE(Do("read", "creds/ro").ok());
  EXPECT_EQ(world_.starts, 1);
  EXPECT_EQ(lifecycle_->idle_process_count(), 0u);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Do("update", "rotate-root/db1").ok());
  EXPECT_EQ(world_.starts, 1);
  EXPECT_EQ(world_.closes, closes + 4);
  EXPECT_TRUE(DbAccepts(kRootUser, StoredRootPassword()));
  // Nothing takes it within the grace period: it stops, and the next request starts one.
  RunFor(lifecycle_options_.database_idle_grace - absl::Seconds(1));
  EXPECT_EQ(lifecycle_->idle_process_count(), 1u);
  RunFor(absl::Seconds(1));
  EXPECT_EQ(lifecycle_->process_count(), 0u);
  ASSERT_TRUE(Do("read", "creds/ro").ok());
  EXPECT_EQ(world_.starts, 2);
}

TEST_F(DatabaseEngineTest, UnmountAndSealStopAnIdleProcessAtOnce) {
  CrashNode();
  engine_options_.reopen_after_rotation = false;
  StartNode();
  Configure();
  // Unmount (the engine's Cleanup), then a seal: each stops the idle process at once.
  const std::vector<std::function<void(std::function<void()>)>> stops = {
      [&](std::function<void()> done) { engine_->Cleanup(TerminationEvent::kUnmount, done); },
      [&](std::function<void()> done) { lifecycle_->TerminateAll(TerminationEvent::kSeal, done); },
  };
  for (size_t i = 0; i < stops.size(); ++i) {
    ASSERT_TRUE(Do("update", "rotate-root/db1").ok());
    EXPECT_EQ(world_.starts, static_cast<int>(i) + 1);
    ASSERT_EQ(lifecycle_->idle_process_count(), 1u);
    bool stopped = false;
    stops[i]([&] { stopped = true; });
    sim_.loop().RunUntil([&] { return stopped; }, absl::Minutes(1));
    ASSERT_TRUE(stopped);
    EXPECT_EQ(lifecycle_->process_count(), 0u);
    EXPECT_EQ(lifecycle_->idle_process_count(), 0u);
  }
}

TEST_F(DatabaseEngineTest, NoIdleGraceForAProcessThatDoesNotMultiplex) {
  CrashNode();
  lifecycle_options_.multiplexing_opt_out = {kPlugin};
  engine_options_.reopen_after_rotation = false;
  StartNode();
  Configure();
  ASSERT_TRUE(Do("update", "rotate-root/db1").ok());
  EXPECT_EQ(lifecycle_->process_count(), 0u);
  ASSERT_TRUE(Do("read", "creds/ro").ok());
  EXPECT_EQ(world_.starts, 2);
}

TEST_F(DatabaseEngineTest, RotateRootReopensInTheBackgroundInTheSameProcess) {
  Configure();
  ASSERT_EQ(world_.starts, 1);
  for (int i = 0; i < 3; ++i) {
    const std::string cached = engine_->CachedInstance("db1");
    ASSERT_TRUE(Do("update", "rotate-root/db1").ok());
    RunFor(absl::Seconds(1));
    EXPECT_EQ(LastTerminated(TerminationEvent::kRootRotation), cached);
    EXPECT_FALSE(lifecycle_->HasDatabaseInstance(cached));
    EXPECT_TRUE(lifecycle_->HasDatabaseInstance(engine_->CachedInstance("db1")));
  }
  EXPECT_EQ(world_.starts, 1);
  EXPECT_EQ(lifecycle_->idle_process_count(), 0u);
  EXPECT_TRUE(DbAccepts(kRootUser, StoredRootPassword()));
  EXPECT_TRUE(Do("read", "creds/ro").ok());
}

// A termination event that comes while the reopen after a rotation is in flight closes what
// that open makes, as the event's own close (the sim's instance_closed rule).
TEST_F(DatabaseEngineTest, EventsDuringTheReopenCloseItsInstance) {
  Configure();
  for (const char* event : {"reset", "delete"}) {
    SCOPED_TRACE(event);
    pb::Request rotate;
    rotate.set_operation("update");
    rotate.set_path("rotate-root/db1");
    bool rotated = false;
    engine_->HandleRequest(rotate, [&](absl::StatusOr<lifecycle::Reply> r) {
      EXPECT_TRUE(r.ok()) << r.status();
      rotated = true;
    });
    sim_.loop().RunUntil([&] { return rotated; }, absl::Minutes(1));
    ASSERT_TRUE(rotated);
    ASSERT_EQ(engine_->CachedInstance("db1"), "");  // The reopen is in flight.
    const int closes = world_.closes;
    if (std::string(event) == "delete") {
      ASSERT_TRUE(Do("delete", "config/db1").ok());
      RunFor(absl::Seconds(1));
      // The reopen's instance is closed: nothing cached, no instance in the process.
      EXPECT_EQ(engine_->CachedInstance("db1"), "");
      EXPECT_EQ(world_.closes, closes + 1);
      EXPECT_EQ(lifecycle_->idle_process_count(), 1u);
    } else {
      ASSERT_TRUE(Do("update", "reset/db1").ok());
      const std::string after_reset = engine_->CachedInstance("db1");
      RunFor(absl::Seconds(1));
      // The reset's instance is the one cached; the reopen's was closed.
      EXPECT_EQ(engine_->CachedInstance("db1"), after_reset);
      EXPECT_EQ(world_.closes, closes + 1);
      EXPECT_TRUE(Do("read", "creds/ro").ok());
    }
  }
}

TEST_F(DatabaseEngineTest, CredsWaitForARotationInProgress) {
  Configure();
  ASSERT_TRUE(Do("read", "creds/ro").ok());  // Connection cached.
  pb::Request rotate;
  rotate.set_operation("update");
  rotate.set_path("rotate-root/db1");
  pb::Request creds;
  creds.set_operation("read");
  creds.set_path("creds/ro");
  std::vector<std::string> order;
  engine_->HandleRequest(rotate, [&](absl::StatusOr<lifecycle::Reply> r) {
    EXPECT_TRUE(r.ok()) << r.status();
    order.push_back("rotate");
  });
  RunFor(absl::Microseconds(1));  // The rotation holds the connection now.
  engine_->HandleRequest(creds, [&](absl::StatusOr<lifecycle::Reply> r) {
    EXPECT_TRUE(r.ok()) << r.status();
    order.push_back("creds");
  });
  sim_.loop().RunUntil([&] { return order.size() == 2; }, absl::Minutes(1));
  EXPECT_EQ(order, (std::vector<std::string>{"rotate", "creds"}));
}

// Found by the simulator (rotation scenario, seed 6492): two rotate-roots delivered together
// both found the connection free (it is handed over asynchronously) and ran at once.
TEST_F(DatabaseEngineTest, ConcurrentRotationsRunOneAfterTheOther) {
  Configure();
  pb::Request rotate;
  rotate.set_operation("update");
  rotate.set_path("rotate-root/db1");
  int ok = 0;
  int answered = 0;
  for (int i = 0; i < 3; ++i) {
    engine_->HandleRequest(rotate, [&](absl::StatusOr<lifecycle::Reply> r) {
      EXPECT_TRUE(r.ok()) << r.status();
      ok += r.ok() ? 1 : 0;
      ++answered;
    });
  }
  sim_.loop().RunUntil([&] { return answered == 3; }, absl::Minutes(1));
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(Wals(), 0u);
  EXPECT_TRUE(DbAccepts(kRootUser, StoredRootPassword()));
  EXPECT_EQ(Terminations(TerminationEvent::kRootRotation), 3u);
  EXPECT_TRUE(Do("read", "creds/ro").ok());
}

// ---- The half-done table (§5.3): a failpoint at each step, rollback, agreement --------------

struct HalfDone {
  const char* name;
  const char* failpoint;  // "" for none.
  const char* action;
  bool wal_left;
  bool db_has_new;
  bool storage_has_new;
  bool crash;  // The node dies at the failpoint and a new one rolls back.
};

class HalfDoneRotationTest : public DatabaseEngineTest,
                             public ::testing::WithParamInterface<HalfDone> {};

TEST_P(HalfDoneRotationTest, RollbackLeavesStorageAndDatabaseAgreeing) {
  const HalfDone& row = GetParam();
  Configure();
  std::optional<faultinject::ScopedFailpoint> fp;
  if (row.failpoint[0] != '\0') fp.emplace(registry_, row.failpoint, row.action);
  std::optional<absl::StatusOr<lifecycle::Reply>> result;
  pb::Request rotate;
  rotate.set_operation("update");
  rotate.set_path("rotate-root/db1");
  engine_->HandleRequest(rotate, [&](absl::StatusOr<lifecycle::Reply> r) { result = r; });
  RunFor(absl::Seconds(1));
  fp.reset();
  if (row.crash) {
    EXPECT_FALSE(result.has_value());
    CrashNode();
    StartNode();
  } else {
    ASSERT_TRUE(result.has_value());
    const bool expect_ok = std::string(row.name) == "delete-wal-failed";
    EXPECT_EQ(result->ok(), expect_ok) << result->status();
    // The instance used is closed on every exit.
    EXPECT_GE(Terminations(TerminationEvent::kRootRotation), 1u);
  }
  // The state the row describes.
  EXPECT_EQ(Wals(), row.wal_left ? 1u : 0u);
  const std::string stored = StoredRootPassword();
  EXPECT_EQ(stored != kRootPassword, row.storage_has_new);
  EXPECT_EQ(!DbAccepts(kRootUser, kRootPassword), row.db_has_new);
  // Too young: a pass leaves it alone.
  ASSERT_TRUE(RollbackPass().ok());
  EXPECT_EQ(Wals(), row.wal_left ? 1u : 0u);
  // Older than a minute: rolled back.
  RunFor(absl::Minutes(1));
  absl::Status s = RollbackPass();
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(Wals(), 0u);
  EXPECT_TRUE(DbAccepts(kRootUser, StoredRootPassword()))
      << "storage and database disagree after rollback";
  if (row.wal_left && row.db_has_new && !row.storage_has_new) {
    EXPECT_GE(Terminations(TerminationEvent::kWalRollback), 1u);
  }
  // And the engine works again.
  EXPECT_TRUE(Do("read", "creds/ro").ok());
}

INSTANTIATE_TEST_SUITE_P(
    Table, HalfDoneRotationTest,
    ::testing::Values(HalfDone{"wal-write-failed", "database.rotate_root.wal_put",
                               "return(unavailable)", false, false, false, false},
                      HalfDone{"update-user-failed", "database.rotate_root.before_update_user",
                               "return(unavailable)", true, false, false, false},
                      HalfDone{"update-user-reply-lost", "database.rotate_root.update_user_reply",
                               "return(deadline_exceeded)", true, true, false, false},
                      HalfDone{"store-config-failed", "database.rotate_root.store_config",
                               "return(unavailable)", true, true, false, false},
                      HalfDone{"delete-wal-failed", "database.rotate_root.delete_wal",
                               "return(unavailable)", true, true, true, false},
                      HalfDone{"crash-before-update-user",
                               "database.rotate_root.before_update_user", "hang", true, false,
                               false, true},
                      HalfDone{"crash-after-update-user", "database.rotate_root.update_user_reply",
                               "hang", true, true, false, true},
                      HalfDone{"crash-before-wal-delete", "database.rotate_root.delete_wal", "hang",
                               true, true, true, true}),
    [](const ::testing::TestParamInfo<HalfDone>& info) {
      std::string n = info.param.name;
      for (char& c : n) c = c == '-' ? '_' : c;
      return n;
    });

TEST_F(DatabaseEngineTest, RollbackWaitsWhileTheDatabaseIsDown) {
  Configure();
  faultinject::ScopedFailpoint fp(registry_, "database.rotate_root.store_config",
                                  "return(unavailable)");
  ASSERT_FALSE(Do("update", "rotate-root/db1").ok());
  RunFor(absl::Minutes(1));
  world_.down = true;
  EXPECT_FALSE(RollbackPass().ok());
  EXPECT_EQ(Wals(), 1u);  // Kept for the next pass.
  world_.down = false;
  RunFor(absl::Minutes(1));
  EXPECT_TRUE(RollbackPass().ok());
  EXPECT_EQ(Wals(), 0u);
  EXPECT_TRUE(DbAccepts(kRootUser, StoredRootPassword()));
}

// Found by the simulator (seed 109, swarm): a seal in the middle of a rollback pass destroyed the
// engine and dropped the pass's callbacks, so the pass never answered. The node's rollback
// manager, which runs one pass at a time, then never started another, and the WAL of a rotation
// whose UpdateUser had reached the database was never rolled back: the stored root password no
// longer logged in. The engine answers a pass it cannot finish when it goes away.
TEST_F(DatabaseEngineTest, RollbackPassInFlightAnswersWhenTheEngineGoesAway) {
  Configure();
  faultinject::ScopedFailpoint fp(registry_, "database.rotate_root.store_config",
                                  "return(unavailable)");
  ASSERT_FALSE(Do("update", "rotate-root/db1").ok());
  ASSERT_EQ(Wals(), 1u);
  ASSERT_FALSE(DbAccepts(kRootUser, StoredRootPassword()));  // The database has the new one.
  std::optional<absl::Status> result;
  engine_->Rollback(/*immediate=*/true, [&](absl::Status s) { result = s; });
  ASSERT_FALSE(result.has_value());  // The pass runs on the loop: it is in flight now.
  CrashNode();                       // The engine goes away with the pass in flight (as at a seal).
  ASSERT_TRUE(result.has_value()) << "the rollback pass never answered";
  EXPECT_EQ(result->code(), absl::StatusCode::kAborted) << *result;
  EXPECT_EQ(Wals(), 1u);  // Still there for the next engine's pass.
  StartNode();
  EXPECT_TRUE(RollbackPass(/*immediate=*/true).ok());
  EXPECT_EQ(Wals(), 0u);
  EXPECT_TRUE(DbAccepts(kRootUser, StoredRootPassword()));
}

// A wall clock set back after a half-done rotation makes its WAL look young for as long as the
// clock was set back (Vault's rule alone would wait two hours here); the engine also counts how
// long it has known the entry on its monotonic clock, so one minute later the rollback runs.
TEST_F(DatabaseEngineTest, RollbackRunsAfterTheWallClockIsSetBack) {
  Configure();
  {
    faultinject::ScopedFailpoint fp(registry_, "database.rotate_root.store_config",
                                    "return(unavailable)");
    ASSERT_FALSE(Do("update", "rotate-root/db1").ok());
  }
  sim_.clock().JumpWall(-absl::Hours(2));
  ASSERT_TRUE(RollbackPass().ok());
  EXPECT_EQ(Wals(), 1u);  // Young by both clocks: left alone.
  RunFor(absl::Minutes(1));
  ASSERT_TRUE(RollbackPass().ok());
  EXPECT_EQ(Wals(), 0u);
  EXPECT_TRUE(DbAccepts(kRootUser, StoredRootPassword()))
      << "storage and database disagree after the clock was set back";
}

// The planted bug rotates without writing the WAL: after a failed config write nothing can put
// the database back, and the agreement check above catches it.
TEST_F(DatabaseEngineTest, PlantedBugRotateWithoutWalIsCaught) {
  Configure();
  faultinject::ScopedFailpoint bug(registry_, "bug.database.rotate_without_wal",
                                   "return(internal)");
  faultinject::ScopedFailpoint fp(registry_, "database.rotate_root.store_config",
                                  "return(unavailable)");
  ASSERT_FALSE(Do("update", "rotate-root/db1").ok());
  RunFor(absl::Minutes(2));
  EXPECT_TRUE(RollbackPass().ok());
  EXPECT_FALSE(DbAccepts(kRootUser, StoredRootPassword()))
      << "the planted bug no longer loses the root credential";
}

}  // namespace
}  // namespace bulwark::database
