// The parts of the HA contract that hold without a store: the lease margin and the
// advertisement's codec (Vault's JSON shape and its old bare-address format).
#include "absl/time/time.h"
#include "base/storage/in_memory_storage.h"
#include "core/ha/advertisement.h"
#include "core/ha/coordinator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::ha {
namespace {

TEST(LeaseMarginTest, TheActiveGivesUpBeforeTheLeaseCanExpire) {
  EXPECT_EQ(LossDeadline(absl::Seconds(15)), absl::Seconds(10));
  EXPECT_EQ(RenewInterval(absl::Seconds(15)), absl::Seconds(5));
  // Short TTLs keep at least a second of margin.
  EXPECT_EQ(LossDeadline(absl::Seconds(2)), absl::Seconds(1));
  for (int s = 2; s <= 120; ++s) {
    const absl::Duration ttl = absl::Seconds(s);
    EXPECT_LE(LossDeadline(ttl), ttl - absl::Seconds(1)) << s;
    // At least one renewal can fail without losing the lock.
    EXPECT_GT(LossDeadline(ttl), RenewInterval(ttl)) << s;
  }
}

TEST(AdvertisementTest, RoundTripsThroughTheBarrierViewAtVaultsKey) {
  InMemoryStorage barrier;
  Advertisement ad{"https://10.0.0.1:8200", "https://10.0.0.1:8201"};
  ASSERT_TRUE(PublishAdvertisement(barrier, "1b4e28ba-2fa1", ad).ok());
  EXPECT_THAT(barrier.List("core/leader/").value(),
              ::testing::ElementsAre("core/leader/1b4e28ba-2fa1"));
  absl::StatusOr<std::optional<Advertisement>> read = ReadAdvertisement(barrier, "1b4e28ba-2fa1");
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->api_addr, ad.api_addr);
  EXPECT_EQ((*read)->cluster_addr, ad.cluster_addr);
  EXPECT_FALSE(ReadAdvertisement(barrier, "other").value().has_value());
  ASSERT_TRUE(ClearAdvertisement(barrier, "1b4e28ba-2fa1").ok());
  EXPECT_FALSE(ReadAdvertisement(barrier, "1b4e28ba-2fa1").value().has_value());
}

TEST(AdvertisementTest, DecodesVaultsShapesAndRefusesBadOnes) {
  absl::StatusOr<Advertisement> json = DecodeAdvertisement(
      R"({"redirect_addr":"https://a:8200","cluster_addr":"https://a:8201","cluster_cert":"x"})");
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->api_addr, "https://a:8200");
  EXPECT_EQ(json->cluster_addr, "https://a:8201");
  absl::StatusOr<Advertisement> old = DecodeAdvertisement("https://old:8200");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->api_addr, "https://old:8200");
  EXPECT_EQ(old->cluster_addr, "");
  EXPECT_EQ(DecodeAdvertisement(R"({"redirect_addr":7})").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_FALSE(AdvertisementKey("").ok());
  EXPECT_FALSE(AdvertisementKey("a/b").ok());
  EXPECT_FALSE(AdvertisementKey("..").ok());
}

}  // namespace
}  // namespace bulwark::ha
