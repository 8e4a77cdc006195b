// Per-node failpoint state: two simulated nodes in one process, each with its own registry in its
// Env, run the same FileStorage site; configured on one, it fires there and not on the other.
#include <memory>
#include <optional>
#include <string>

#include "base/env/env.h"
#include "base/env/sim/sim_env.h"
#include "core/storage/file_storage.h"
#include "faultinject/failpoint.h"
#include "faultinject/registry.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

// One simulated node: its Env carries its own failpoint registry.
struct SimNode {
  explicit SimNode(uint64_t seed)
      : sim(seed), failpoint_random(seed + 100), registry(failpoint_random) {
    sim.env().failpoints = &registry;
  }
  ~SimNode() { sim.env().failpoints = nullptr; }

  std::unique_ptr<FileStorage> OpenStorage() {
    absl::StatusOr<std::unique_ptr<FileStorage>> storage =
        FileStorage::Open(sim.env().fs, "/data", sim.env().failpoints);
    EXPECT_TRUE(storage.ok()) << storage.status();
    return storage.ok() ? *std::move(storage) : nullptr;
  }

  sim::SimEnv sim;
  SeededRandom failpoint_random;
  faultinject::Registry registry;
};

TEST(PerNodeFailpointTest, TheSameSiteFiresOnlyOnTheNodeConfiguredForIt) {
  SimNode a(1);
  SimNode b(2);
  ASSERT_TRUE(a.registry.Set("storage.file.put.before_sync", "return(unavailable)").ok());
  std::unique_ptr<FileStorage> storage_a = a.OpenStorage();
  std::unique_ptr<FileStorage> storage_b = b.OpenStorage();
  ASSERT_NE(storage_a, nullptr);
  ASSERT_NE(storage_b, nullptr);

  const absl::Status put_a = storage_a->Put("k", "v");
  EXPECT_EQ(put_a.code(), absl::StatusCode::kUnavailable) << put_a;
  EXPECT_TRUE(storage_b->Put("k", "v").ok());
  EXPECT_EQ(*storage_b->Get("k"), std::optional<std::string>("v"));
  EXPECT_EQ(*storage_a->Get("k"), std::nullopt);

  // Each registry counted only its own node's evaluations.
  auto fires = [](const faultinject::Registry& registry) {
    for (const faultinject::SiteStats& site : registry.Stats()) {
      if (site.name == "storage.file.put.before_sync") return site.fires;
    }
    return uint64_t{0};
  };
  EXPECT_EQ(fires(a.registry), 1u);
  EXPECT_EQ(fires(b.registry), 0u);
  bool b_saw_site = false;
  for (const faultinject::SiteStats& site : b.registry.Stats()) {
    b_saw_site |= site.name == "storage.file.put.before_sync" && site.hits == 1;
  }
  EXPECT_TRUE(b_saw_site);
}

TEST(PerNodeFailpointTest, ANodeRegistryIsConsultedInsteadOfTheInstalledOne) {
  SimNode node(3);
  SeededRandom random(9);
  faultinject::Registry process(random);
  ASSERT_TRUE(process.Set("storage.file.put.before_sync", "return(internal)").ok());
  faultinject::ScopedInstall install(process);

  // The node has a registry of its own: the process-wide configuration does not reach it.
  std::unique_ptr<FileStorage> own = node.OpenStorage();
  ASSERT_NE(own, nullptr);
  EXPECT_TRUE(own->Put("k", "v").ok());

  // A component given no source (a real process: one node) falls back to the installed one.
  absl::StatusOr<std::unique_ptr<FileStorage>> fallback =
      FileStorage::Open(node.sim.env().fs, "/data");
  ASSERT_TRUE(fallback.ok());
  EXPECT_EQ((*fallback)->Put("k2", "v").code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace bulwark
