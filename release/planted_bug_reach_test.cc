// BULWARK_FAILPOINTS cannot reach a planted bug in what ships. Built twice: against the production
// catalog, where "bug.catalog.skip_hash_check=return" must change nothing, and (with
// PLANTED_BUGS_LINKED) against its testonly planted-bug variant, where the same configuration
// must let a swapped artifact through: that build shows the configuration would work if the site
// were there, so the production one can fail.
#include <cstdlib>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "base/env/random.h"
#include "base/env/sim/sim_file_system.h"
#include "core/catalog/artifact.h"
#include "faultinject/failpoint.h"
#include "faultinject/registry.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

constexpr char kBug[] = "bug.catalog.skip_hash_check";
// The SHA-256 of nothing: not the artifact's.
constexpr char kWrongSha256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(PlantedBugReachTest, EnvironmentConfigurationOfSkipHashCheck) {
  ASSERT_EQ(::setenv(faultinject::kEnvironmentVariable, "bug.catalog.skip_hash_check=return", 1),
            0);
  SeededRandom random(1);
  faultinject::Registry registry(random);
  ASSERT_TRUE(faultinject::ConfigureFromEnvironment(registry).ok());
  ASSERT_EQ(registry.Get(kBug), std::optional<std::string>("return(unavailable)"));
  faultinject::ScopedInstall install(registry);

  sim::SimFileSystem fs(random);
  ASSERT_TRUE(fs.CreateDir("/plugins", 0755).ok());
  ASSERT_TRUE(fs.SyncDir("/").ok());
  ASSERT_TRUE(fs.WriteFileDurably("/plugins/kv", "a swapped plugin", 0755).ok());
  catalog::ArtifactPolicy policy;
  policy.plugin_directory = "/plugins";
  policy.artifact_bytes_max = 1 << 20;

  absl::StatusOr<catalog::OpenedArtifact> opened =
      catalog::OpenArtifact(fs, policy, "kv", kWrongSha256);

  uint64_t hits = 0;
  for (const faultinject::SiteStats& site : registry.Stats()) {
    if (site.name == kBug) hits = site.hits;
  }
#ifdef PLANTED_BUGS_LINKED
  EXPECT_TRUE(opened.ok()) << "the planted bug did not fire in the variant: " << opened.status();
  EXPECT_EQ(hits, 1u);
#else
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kFailedPrecondition) << opened.status();
  EXPECT_EQ(hits, 0u) << "a production build evaluated " << kBug;
#endif
}

}  // namespace
}  // namespace bulwark
