// The key/value model: what a read may return under acknowledged, failed and uncertain writes.
#include "sim/model.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::sim {
namespace {

using Outcome = KvModel::Outcome;

TEST(KvModelTest, UnknownKeysAreAbsent) {
  KvModel model;
  EXPECT_TRUE(model.CheckRead("k", std::nullopt, 1, 2).ok);
  const Verdict v = model.CheckRead("k", std::string("v"), 1, 2);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.invariant, "phantom_read");
}

TEST(KvModelTest, AnAcknowledgedWriteReplacesWhatCameBefore) {
  KvModel model;
  const uint64_t v1 = model.BeginWrite("k", std::string("one"), 10);
  model.EndWrite("k", v1, Outcome::kAcked, 11);
  // A read sent after the ack sees "one" and nothing older.
  EXPECT_TRUE(model.CheckRead("k", std::string("one"), 12, 13).ok);
  const Verdict lost = model.CheckRead("k", std::nullopt, 12, 13);
  EXPECT_FALSE(lost.ok);
  EXPECT_EQ(lost.invariant, "durability");
  // A read sent before the ack may still see the old state; one answered before the write was
  // sent may not see the new value.
  EXPECT_TRUE(model.CheckRead("k", std::nullopt, 5, 12).ok);
  EXPECT_TRUE(model.CheckRead("k", std::string("one"), 5, 12).ok);
  EXPECT_FALSE(model.CheckRead("k", std::string("one"), 5, 9).ok);
}

TEST(KvModelTest, UncertainWritesStayPossibleEvenAfterALaterAck) {
  KvModel model;
  const uint64_t v1 = model.BeginWrite("k", std::string("one"), 1);
  model.EndWrite("k", v1, Outcome::kAcked, 2);
  const uint64_t v2 = model.BeginWrite("k", std::string("two"), 3);
  model.EndWrite("k", v2, Outcome::kUnknown, 4);
  EXPECT_TRUE(model.CheckRead("k", std::string("one"), 5, 6).ok);
  EXPECT_TRUE(model.CheckRead("k", std::string("two"), 5, 6).ok);
  KvModel::Value settled;
  EXPECT_FALSE(model.Settled("k", &settled));
  const uint64_t v3 = model.BeginWrite("k", std::nullopt, 7);
  model.EndWrite("k", v3, Outcome::kAcked, 8);
  EXPECT_TRUE(model.CheckRead("k", std::nullopt, 9, 10).ok);
  // "two" failed without saying whether it happened: it may still land late (linearizable).
  EXPECT_TRUE(model.CheckRead("k", std::string("two"), 9, 10).ok);
  // "one" was acknowledged and then replaced by an acknowledged delete: it is gone for good.
  EXPECT_EQ(model.CheckRead("k", std::string("one"), 9, 10).invariant, "durability");
  model.Prune(11);
  EXPECT_TRUE(model.CheckRead("k", std::string("two"), 11, 12).ok);
  EXPECT_EQ(model.CheckRead("k", std::string("one"), 11, 12).invariant, "durability");
  EXPECT_TRUE(model.Settled("k", &settled));
  EXPECT_EQ(settled, std::nullopt);
}

TEST(KvModelTest, DefinitelyFailedWritesNeverShow) {
  KvModel model;
  const uint64_t v1 = model.BeginWrite("k", std::string("refused"), 1);
  model.EndWrite("k", v1, Outcome::kFailed, 2);
  EXPECT_FALSE(model.CheckRead("k", std::string("refused"), 3, 4).ok);
  EXPECT_TRUE(model.CheckRead("k", std::nullopt, 3, 4).ok);
  KvModel::Value settled = std::string("x");
  EXPECT_TRUE(model.Settled("k", &settled));
  EXPECT_EQ(settled, std::nullopt);
}

TEST(KvModelTest, ListingsAreCheckedKeyByKey) {
  KvModel model;
  model.EndWrite("m/a", model.BeginWrite("m/a", std::string("1"), 1), Outcome::kAcked, 2);
  model.EndWrite("m/b", model.BeginWrite("m/b", std::string("2"), 3), Outcome::kAcked, 4);
  model.EndWrite("n/c", model.BeginWrite("n/c", std::string("3"), 5), Outcome::kAcked, 6);
  EXPECT_TRUE(model.CheckList("m/", {"m/a", "m/b"}, 7, 8).ok);
  const Verdict missing = model.CheckList("m/", {"m/a"}, 7, 8);
  EXPECT_FALSE(missing.ok);
  EXPECT_EQ(missing.invariant, "durability");
  EXPECT_THAT(missing.detail, ::testing::HasSubstr("m/b"));
  EXPECT_EQ(model.CheckList("m/", {"m/a", "m/b", "m/z"}, 7, 8).invariant, "phantom_read");
  EXPECT_EQ(model.CheckList("m/", {"m/a", "m/b", "n/c"}, 7, 8).invariant, "phantom_read");
}

TEST(KvModelTest, PruningKeepsWhatRunningReadsMaySee) {
  KvModel model;
  uint64_t seq = 0;
  for (int i = 0; i < 100; ++i) {
    const uint64_t v = model.BeginWrite("k", std::to_string(i), ++seq);
    model.EndWrite("k", v, Outcome::kAcked, ++seq);
  }
  model.Prune(150);  // A read sent at 150 is still running.
  EXPECT_TRUE(model.CheckRead("k", std::string("74"), 150, seq + 1).ok);
  EXPECT_LT(model.version_count(), 30u);
  model.Prune(seq + 1);
  EXPECT_EQ(model.version_count(), 1u);
  EXPECT_TRUE(model.CheckRead("k", std::string("99"), seq + 1, seq + 2).ok);
  // Pruned values are still known to have existed: reading one is a lost write, not a phantom.
  EXPECT_EQ(model.CheckRead("k", std::string("3"), seq + 1, seq + 2).invariant, "durability");
}

}  // namespace
}  // namespace bulwark::sim
