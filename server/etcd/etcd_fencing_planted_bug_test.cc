// The planted bug the fencing tests catch: with "bug.etcd.unfenced_write" on, EtcdStorage writes
// unconditionally while fenced, so a deposed active's late write lands and overwrites its
// successor's data. Built against the planted-bug variants only.
#include "absl/strings/str_cat.h"
#include "base/env/random.h"
#include "base/storage/storage_errors.h"
#include "faultinject/failpoint.h"
#include "faultinject/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/etcd/ha_test_util.h"

namespace bulwark::etcd {
namespace {

using ::testing::Optional;

TEST(EtcdFencingPlantedBugTest, WithoutFencingADeposedActivesLateWriteLands) {
  server_testing::EtcdProcess etcd;
  SeededRandom random(1);
  faultinject::Registry registry(random);
  ASSERT_TRUE(registry.Set("bug.etcd.unfenced_write", "return").ok());
  faultinject::ScopedInstall install(registry);

  ha_testing::Node a(etcd, "/bug/"), b(etcd, "/bug/");
  ASSERT_TRUE(ha_testing::TakeOver(etcd, "/bug/", a, b, [] {}));
  ASSERT_TRUE(b.storage->Put("k", "from-b").ok());

  // What etcd_ha_test asserts cannot happen: the deposed node's write is accepted and lands.
  const absl::Status late = a.storage->Put("k", "late-from-a");
  EXPECT_FALSE(IsFenced(late));
  EXPECT_TRUE(late.ok()) << late;
  // Read from etcd itself (B's own reads come from its cache, which assumes fencing works).
  EtcdStorage in_etcd(*b.client, "/bug/");
  EXPECT_THAT(in_etcd.Get("k").value(), Optional(std::string("late-from-a")));
}

}  // namespace
}  // namespace bulwark::etcd
