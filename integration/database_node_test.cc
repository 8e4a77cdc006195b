// The database engine as a node serves it: a built-in "database" mount, leases that survive a
// seal (and expire while sealed), revoke-on-unmount, and the rollback manager that runs every
// minute on the active node only. Simulated time; the userdb plugin behind the runner seam.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "base/env/sim/sim_env.h"
#include "base/log/log.h"
#include "base/metrics/metrics.h"
#include "base/status/check.h"
#include "base/storage/in_memory_storage.h"
#include "core/database/database_engine.h"
#include "core/node/node.h"
#include "examples/userdb/userdb.h"
#include "faultinject/registry.h"
#include "gtest/gtest.h"
#include "integration/db_runner.h"

namespace bulwark::node {
namespace {

using Json = nlohmann::json;
using lifecycle::TerminationEvent;

using testing_db::kDbDir;
using testing_db::kPlugin;
using testing_db::kRootPassword;
using testing_db::kRootUser;

constexpr uint64_t kSeed = 16;

class DatabaseNodeTest : public ::testing::Test {
 protected:
  DatabaseNodeTest() : sim_(kSeed), registry_(sim_.random()), env_(sim_.env()) {
    std::printf("seed: %llu\n", static_cast<unsigned long long>(kSeed));
    env_.failpoints = &registry_;
    testing_db::CreateDatabase(sim_.fs(), sim_.random());
    NodeOptions options;
    options.catalog.builtins = {{catalog::PluginType::kDatabase, kPlugin, "v0.1.0+builtin"}};
    absl::StatusOr<std::unique_ptr<Node>> node =
        Node::Open(env_, physical_, runners_, metrics_, log_, options);
    CHECK_OK(node.status());
    node_ = std::move(*node);
    absl::StatusOr<InitResult> init = node_->InitializeWithRootToken(1, 1);
    CHECK_OK(init.status());
    share_ = std::string(init->shares[0].view());
    Unseal();
    std::optional<absl::StatusOr<mount::MountEntry>> mounted;
    mount::EnableRequest req;
    req.path = "database";
    req.plugin_name = database::kDatabaseEngineName;
    node_->EnableMount(req, [&](absl::StatusOr<mount::MountEntry> e) { mounted = e; });
    Wait([&] { return mounted.has_value(); });
    CHECK_OK(mounted->status());
  }

  bool UserExists(absl::string_view user) {
    return testing_db::UserExists(sim_.fs(), sim_.random(), user);
  }
  bool DbAccepts(absl::string_view user, absl::string_view pass) {
    return testing_db::DbAccepts(sim_.fs(), sim_.random(), user, pass);
  }
  std::string StoredRootPassword() {
    Json data;
    // Read through the engine's own storage view.
    const mount::MountEntry* m = node_->mounts()->Find("database/");
    absl::StatusOr<std::optional<std::string>> raw =
        node_->barrier().Get("logical/" + m->uuid + "/config/db1");
    CHECK(raw.ok() && raw->has_value());
    return Json::parse(**raw)["connection_details"]["password"].get<std::string>();
  }
  size_t Wals() {
    const mount::MountEntry* m = node_->mounts()->Find("database/");
    return node_->barrier().List("logical/" + m->uuid + "/wal/")->size();
  }

  template <typename F>
  void Wait(F done) {
    sim_.loop().RunUntil(done, absl::Minutes(5));
    CHECK(done());
  }
  void RunFor(absl::Duration d) {
    sim_.loop().RunUntil([] { return false; }, d);
  }
  void Unseal() {
    std::optional<absl::StatusOr<SealStatus>> s;
    node_->Unseal(share_, [&](absl::StatusOr<SealStatus> x) { s = x; });
    Wait([&] { return s.has_value(); });
    CHECK_OK(s->status());
  }
  void Seal() {
    bool done = false;
    node_->Seal([&] { done = true; });
    Wait([&] { return done; });
  }
  absl::StatusOr<lifecycle::Reply> Do(absl::string_view op, absl::string_view path,
                                      Json data = Json::object()) {
    std::optional<absl::StatusOr<lifecycle::Reply>> r;
    node_->Handle(path, op, data.dump(), [&](absl::StatusOr<lifecycle::Reply> x) { r = x; });
    Wait([&] { return r.has_value(); });
    return *r;
  }
  void Configure() {
    ASSERT_TRUE(Do("update", "database/config/db1",
                   {{"plugin_name", kPlugin},
                    {"connection_url", kDbDir},
                    {"username", kRootUser},
                    {"password", kRootPassword},
                    {"allowed_roles", "*"}})
                    .ok());
    ASSERT_TRUE(
        Do("update", "database/roles/ro", {{"db_name", "db1"}, {"default_ttl", 3600}}).ok());
  }
  // Issues credentials; returns {username, lease_id}.
  std::pair<std::string, std::string> Creds() {
    absl::StatusOr<lifecycle::Reply> r = Do("read", "database/creds/ro");
    CHECK(r.ok() && r->has_value()) << r.status();
    return {Json::parse((*r)->data())["username"].get<std::string>(), (*r)->secret().lease_id()};
  }
  size_t Terminations(TerminationEvent e) {
    size_t n = 0;
    for (const auto& t : node_->lifecycle()->terminations()) n += t.event == e ? 1 : 0;
    return n;
  }
  absl::Status Unmount() {
    std::optional<absl::Status> s;
    node_->DisableMount("database", [&](absl::Status x) { s = x; });
    Wait([&] { return s.has_value(); });
    return *s;
  }

  sim::SimEnv sim_;
  faultinject::Registry registry_;
  Env env_;
  testing_db::DbWorld world_;
  testing_db::DbRunnerFactory runners_{env_, world_};
  InMemoryStorage physical_;
  metrics::Registry metrics_;
  MemoryLogSink log_;
  std::unique_ptr<Node> node_;
  std::string share_;
};

TEST_F(DatabaseNodeTest, DatabaseIsABuiltInMountType) {
  ASSERT_NE(node_->DatabaseEngineAt("database/"), nullptr);
  Configure();
  auto [user, lease_id] = Creds();
  EXPECT_TRUE(absl::StartsWith(lease_id, "database/creds/ro/"));
  absl::StatusOr<lease::LeaseView> v = node_->LookupLease(lease_id);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->ttl, absl::Hours(1));
  EXPECT_TRUE(UserExists(user));
  EXPECT_EQ(node_->ListMounts().size(), 1u);
}

TEST_F(DatabaseNodeTest, SealStopsInstancesLeasesSurviveAndExpireAfterUnseal) {
  Configure();
  auto [user, lease_id] = Creds();
  Seal();
  EXPECT_GE(Terminations(TerminationEvent::kSeal), 1u);
  EXPECT_EQ(node_->lifecycle()->process_count(), 0u);
  RunFor(absl::Hours(2));  // The lease expires while sealed: nothing can revoke it now.
  EXPECT_TRUE(UserExists(user));
  Unseal();
  RunFor(absl::Seconds(1));  // Restored, found expired, revoked.
  EXPECT_FALSE(UserExists(user));
  EXPECT_FALSE(node_->LookupLease(lease_id).ok());
}

TEST_F(DatabaseNodeTest, StepDownAndBecomeActiveRestoreLeases) {
  Configure();
  auto [user, lease_id] = Creds();
  bool down = false;
  node_->StepDown([&] { down = true; });
  Wait([&] { return down; });
  EXPECT_GE(Terminations(TerminationEvent::kStepDown), 1u);
  RunFor(absl::Hours(2));
  EXPECT_TRUE(UserExists(user));  // A standby revokes nothing.
  std::optional<absl::Status> up;
  node_->BecomeActive([&](absl::Status s) { up = s; });
  Wait([&] { return up.has_value(); });
  RunFor(absl::Seconds(1));
  EXPECT_FALSE(UserExists(user));
}

TEST_F(DatabaseNodeTest, RenewAndRevokeThroughTheNode) {
  Configure();
  auto [user, lease_id] = Creds();
  std::optional<absl::StatusOr<lease::LeaseView>> renewed;
  node_->RenewLease(lease_id, absl::Minutes(30),
                    [&](absl::StatusOr<lease::LeaseView> v) { renewed = v; });
  Wait([&] { return renewed.has_value(); });
  ASSERT_TRUE(renewed->ok()) << renewed->status();
  EXPECT_EQ((*renewed)->ttl, absl::Minutes(30));
  std::optional<absl::Status> revoked;
  node_->RevokeLeasePrefix("database/creds/", [&](absl::Status s) { revoked = s; });
  Wait([&] { return revoked.has_value(); });
  EXPECT_TRUE(revoked->ok()) << *revoked;
  EXPECT_FALSE(UserExists(user));
}

TEST_F(DatabaseNodeTest, UnmountRevokesEveryLeaseFirstAndFailsIfItCannot) {
  Configure();
  auto [user, lease_id] = Creds();
  world_.down = true;
  absl::Status s = Unmount();
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), "failed to revoke leases of \"database/\"")) << s;
  EXPECT_NE(node_->mounts()->Find("database/"), nullptr);  // Still mounted.
  EXPECT_TRUE(UserExists(user));
  world_.down = false;
  ASSERT_TRUE(Unmount().ok());
  EXPECT_FALSE(UserExists(user));
  EXPECT_EQ(node_->mounts()->Find("database/"), nullptr);
  EXPECT_EQ(node_->DatabaseEngineAt("database/"), nullptr);
  EXPECT_GE(Terminations(TerminationEvent::kUnmount), 1u);
  EXPECT_EQ(node_->lifecycle()->process_count(), 0u);
}

TEST_F(DatabaseNodeTest, RollbackManagerRollsBackOnTheActiveNodeOnly) {
  Configure();
  {
    faultinject::ScopedFailpoint fp(registry_, "database.rotate_root.update_user_reply",
                                    "return(deadline_exceeded)");
    ASSERT_FALSE(Do("update", "database/rotate-root/db1").ok());
  }
  EXPECT_EQ(Wals(), 1u);
  EXPECT_FALSE(DbAccepts(kRootUser, StoredRootPassword()));  // Half done.
  bool down = false;
  node_->StepDown([&] { down = true; });
  Wait([&] { return down; });
  RunFor(absl::Minutes(5));
  EXPECT_EQ(Wals(), 1u);  // A standby does not roll back.
  std::optional<absl::Status> up;
  node_->BecomeActive([&](absl::Status s) { up = s; });
  Wait([&] { return up.has_value(); });
  RunFor(absl::Minutes(1) + absl::Seconds(1));  // The next tick: the WAL is old enough.
  EXPECT_EQ(Wals(), 0u);
  EXPECT_TRUE(DbAccepts(kRootUser, StoredRootPassword()));
  EXPECT_GE(Terminations(TerminationEvent::kWalRollback), 1u);
}

}  // namespace
}  // namespace bulwark::node
