// Unit tests of the barrier: initialization, unsealing with shares, the sealed state and the wipe
// of key material, the physical layout, limits, rotation and damaged key records.
#include "core/barrier/barrier.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/crypto/secure_buffer.h"
#include "base/env/random.h"
#include "base/storage/in_memory_storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;

std::vector<std::string> Views(const std::vector<crypto::SecureBuffer>& shares) {
  std::vector<std::string> out;
  for (const crypto::SecureBuffer& share : shares) out.emplace_back(share.view());
  return out;
}

class BarrierTest : public ::testing::Test {
 protected:
  BarrierTest() : random_(42) { barrier_ = Reopen(); }

  std::unique_ptr<Barrier> Reopen() {
    absl::StatusOr<std::unique_ptr<Barrier>> barrier = Barrier::Open(physical_, random_);
    EXPECT_TRUE(barrier.ok()) << barrier.status();
    return *std::move(barrier);
  }

  std::vector<std::string> Initialize(int shares, int threshold) {
    absl::StatusOr<std::vector<crypto::SecureBuffer>> result =
        barrier_->Initialize(shares, threshold);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? Views(*result) : std::vector<std::string>();
  }

  void UnsealWith(const std::vector<std::string>& shares) {
    for (const std::string& share : shares) {
      absl::StatusOr<SealStatus> status = barrier_->Unseal(share);
      ASSERT_TRUE(status.ok()) << status.status();
    }
    ASSERT_FALSE(barrier_->sealed());
  }

  // Every Storage operation and Rotate fail with the sealed error.
  void ExpectEveryOperationSealed() {
    std::vector<absl::Status> results = {
        barrier_->Get("k").status(), barrier_->Put("k", "v"),
        barrier_->Delete("k"),       barrier_->List("").status(),
        barrier_->Rotate().status(), barrier_->Get("../bad/key").status(),
        barrier_->Put("", "v"),
    };
    for (const absl::Status& status : results) {
      EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
      EXPECT_THAT(std::string(status.message()), HasSubstr("barrier is sealed"));
      EXPECT_THAT(std::string(status.message()), HasSubstr("unseal"));
    }
  }

  SeededRandom random_;
  InMemoryStorage physical_;
  std::unique_ptr<Barrier> barrier_;
};

TEST_F(BarrierTest, ANewBarrierIsUninitializedAndSealed) {
  EXPECT_FALSE(barrier_->initialized());
  EXPECT_TRUE(barrier_->sealed());
  ExpectEveryOperationSealed();
  EXPECT_EQ(barrier_->Unseal(std::string(kUnsealShareBytes, 1)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(physical_.size(), 0u);
}

TEST_F(BarrierTest, InitializeRejectsImpossibleShareCounts) {
  for (auto [shares, threshold] :
       std::vector<std::pair<int, int>>{{0, 0}, {1, 0}, {2, 3}, {256, 2}, {-1, 1}, {3, -1}}) {
    EXPECT_EQ(barrier_->Initialize(shares, threshold).status().code(),
              absl::StatusCode::kInvalidArgument)
        << shares << " " << threshold;
  }
  EXPECT_FALSE(barrier_->initialized());
  EXPECT_EQ(physical_.size(), 0u);
}

TEST_F(BarrierTest, InitializeReturnsSharesOnceAndLeavesTheBarrierSealed) {
  std::vector<std::string> shares = Initialize(5, 3);
  ASSERT_EQ(shares.size(), 5u);
  for (const std::string& share : shares) EXPECT_EQ(share.size(), kUnsealShareBytes);
  EXPECT_TRUE(barrier_->initialized());
  EXPECT_TRUE(barrier_->sealed());
  SealStatus status = barrier_->seal_status();
  EXPECT_EQ(status.shares, 5);
  EXPECT_EQ(status.threshold, 3);
  EXPECT_EQ(status.progress, 0);
  EXPECT_TRUE(barrier_->KeyMaterialIsWipedForTest());
  ExpectEveryOperationSealed();

  absl::Status again = barrier_->Initialize(5, 3).status();
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  // Also for a barrier opened later over the same storage.
  barrier_ = Reopen();
  EXPECT_TRUE(barrier_->initialized());
  EXPECT_EQ(barrier_->seal_status().threshold, 3);
  EXPECT_EQ(barrier_->Initialize(1, 1).status().code(), absl::StatusCode::kAlreadyExists);
}

// The nodes of an HA cluster share one storage: a node opened before another one initialized it
// learns of the initialization at its next status, unseal or init, without a restart (found by
// the simulated cluster, whose operator used to restart such nodes).
TEST_F(BarrierTest, ABarrierOpenedBeforeAnotherInitializedTheStorageSeesIt) {
  std::unique_ptr<Barrier> early = Reopen();
  ASSERT_FALSE(early->initialized());
  std::vector<std::string> shares = Initialize(3, 2);
  ASSERT_EQ(shares.size(), 3u);

  EXPECT_TRUE(early->initialized());
  SealStatus status = early->seal_status();
  EXPECT_TRUE(status.initialized);
  EXPECT_EQ(status.shares, 3);
  EXPECT_EQ(status.threshold, 2);
  // It never initializes over the other node's root key.
  const size_t records = physical_.size();
  EXPECT_EQ(early->Initialize(1, 1).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(physical_.size(), records);
}

TEST_F(BarrierTest, ABarrierOpenedBeforeInitUnsealsWithTheSharesMadeElsewhere) {
  std::unique_ptr<Barrier> early = Reopen();
  std::vector<std::string> shares = Initialize(3, 2);
  ASSERT_TRUE(early->Unseal(shares[0]).ok());
  absl::StatusOr<SealStatus> status = early->Unseal(shares[1]);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_FALSE(status->sealed);
  ASSERT_TRUE(early->Put("k", "v").ok());
  absl::StatusOr<std::optional<std::string>> got = early->Get("k");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, std::optional<std::string>("v"));
}

TEST_F(BarrierTest, UnsealReportsProgressAndIgnoresARepeatedShare) {
  std::vector<std::string> shares = Initialize(5, 3);
  SealStatus status = *barrier_->Unseal(shares[4]);
  EXPECT_TRUE(status.sealed);
  EXPECT_EQ(status.progress, 1);
  status = *barrier_->Unseal(shares[4]);
  EXPECT_EQ(status.progress, 1);
  status = *barrier_->Unseal(shares[1]);
  EXPECT_EQ(status.progress, 2);
  EXPECT_TRUE(barrier_->sealed());
  status = *barrier_->Unseal(shares[2]);
  EXPECT_FALSE(status.sealed);
  EXPECT_EQ(status.progress, 0);
  EXPECT_EQ(barrier_->active_term(), 1u);
  // Unsealing an unsealed barrier changes nothing.
  EXPECT_FALSE(barrier_->Unseal(shares[0])->sealed);
}

TEST_F(BarrierTest, MalformedSharesAreRejectedWithoutLosingProgress) {
  std::vector<std::string> shares = Initialize(3, 2);
  ASSERT_EQ(barrier_->Unseal(shares[0])->progress, 1);
  EXPECT_EQ(barrier_->Unseal("short").status().code(), absl::StatusCode::kInvalidArgument);
  std::string zero_x = shares[1];
  zero_x.back() = '\0';
  EXPECT_EQ(barrier_->Unseal(zero_x).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(barrier_->seal_status().progress, 1);
  UnsealWith({shares[2]});
}

TEST_F(BarrierTest, AWrongShareIsDetectedWithoutNamingItAndTheUserStartsOver) {
  std::vector<std::string> shares = Initialize(5, 3);
  InMemoryStorage other_physical;
  SeededRandom other_random(7);
  std::unique_ptr<Barrier> other = *Barrier::Open(other_physical, other_random);
  std::vector<std::string> other_shares = Views(*other->Initialize(5, 3));

  ASSERT_TRUE(barrier_->Unseal(shares[0]).ok());
  ASSERT_TRUE(barrier_->Unseal(other_shares[1]).ok());  // Another barrier's share.
  absl::Status wrong = barrier_->Unseal(shares[2]).status();
  EXPECT_EQ(wrong.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(wrong.message()), HasSubstr("at least one of them is wrong"));
  EXPECT_THAT(std::string(wrong.message()), HasSubstr("start over"));
  EXPECT_TRUE(barrier_->sealed());
  EXPECT_EQ(barrier_->seal_status().progress, 0);
  EXPECT_TRUE(barrier_->KeyMaterialIsWipedForTest());

  UnsealWith({shares[3], shares[0], shares[2]});
}

TEST_F(BarrierTest, TwoDifferentSharesWithOneIndexAreRejectedAndDiscarded) {
  std::vector<std::string> shares = Initialize(3, 3);
  ASSERT_TRUE(barrier_->Unseal(shares[0]).ok());
  std::string forged = shares[1];
  forged[0] ^= 1;
  ASSERT_TRUE(barrier_->Unseal(forged).ok());
  EXPECT_EQ(barrier_->Unseal(shares[1]).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(barrier_->seal_status().progress, 0);
  UnsealWith(shares);
}

TEST_F(BarrierTest, SealWipesEveryKeyAndEveryOperationThenFails) {
  std::vector<std::string> shares = Initialize(3, 2);
  UnsealWith({shares[0], shares[1]});
  ASSERT_TRUE(barrier_->Put("a", "1").ok());
  ASSERT_TRUE(barrier_->Rotate().ok());
  ASSERT_TRUE(barrier_->Put("b", "2").ok());
  EXPECT_FALSE(barrier_->KeyMaterialIsWipedForTest());

  barrier_->Seal();
  EXPECT_TRUE(barrier_->sealed());
  EXPECT_TRUE(barrier_->KeyMaterialIsWipedForTest());
  EXPECT_EQ(barrier_->active_term(), 0u);
  ExpectEveryOperationSealed();
  barrier_->Seal();  // Idempotent.

  UnsealWith({shares[2], shares[0]});
  EXPECT_THAT(*barrier_->Get("a"), Optional(std::string("1")));
  EXPECT_THAT(*barrier_->Get("b"), Optional(std::string("2")));
}

TEST_F(BarrierTest, SealDiscardsPartiallyCollectedShares) {
  std::vector<std::string> shares = Initialize(3, 3);
  ASSERT_EQ(barrier_->Unseal(shares[0])->progress, 1);
  barrier_->Seal();
  EXPECT_EQ(barrier_->seal_status().progress, 0);
  EXPECT_TRUE(barrier_->KeyMaterialIsWipedForTest());
}

TEST_F(BarrierTest, ResetUnsealProgressStartsANewAttempt) {
  std::vector<std::string> shares = Initialize(3, 2);
  ASSERT_EQ(barrier_->Unseal(shares[0])->progress, 1);
  barrier_->ResetUnsealProgress();
  EXPECT_EQ(barrier_->seal_status().progress, 0);
  EXPECT_TRUE(barrier_->KeyMaterialIsWipedForTest());
  ASSERT_EQ(barrier_->Unseal(shares[1])->progress, 1);
  EXPECT_FALSE(barrier_->Unseal(shares[2])->sealed);
}

TEST_F(BarrierTest, EntriesLiveUnderTheLogicalPrefixInTheDocumentedFormat) {
  UnsealWith(Initialize(1, 1));
  ASSERT_TRUE(barrier_->Put("dir/key", "value").ok());
  EXPECT_THAT(*physical_.List(""),
              ElementsAre("barrier/keyring", "barrier/root-key", "logical/dir/key"));
  const std::string entry = **physical_.Get("logical/dir/key");
  ASSERT_EQ(entry.size(), kBarrierEntryOverheadBytes + 5);
  EXPECT_EQ(entry[0], 1);                                     // Version.
  EXPECT_EQ(entry.substr(1, 4), std::string("\0\0\0\1", 4));  // Term 1.
  EXPECT_EQ(entry.find("value"), std::string::npos);
  EXPECT_EQ(physical_.Get("barrier/root-key")->value().size(), 3u + 12 + 32 + 16);
}

TEST_F(BarrierTest, TheBarriersOwnRecordsAreUnreachableThroughIt) {
  std::vector<std::string> shares = Initialize(1, 1);
  UnsealWith(shares);
  EXPECT_THAT(*barrier_->List(""), IsEmpty());
  EXPECT_EQ(*barrier_->Get("barrier/keyring"), std::nullopt);
  const std::string keyring = **physical_.Get("barrier/keyring");
  ASSERT_TRUE(barrier_->Put("barrier/keyring", "overwrite attempt").ok());
  ASSERT_TRUE(barrier_->Put("barrier/root-key", "overwrite attempt").ok());
  EXPECT_EQ(**physical_.Get("barrier/keyring"), keyring);
  barrier_->Seal();
  UnsealWith(shares);
  EXPECT_THAT(*barrier_->List("barrier/"), ElementsAre("barrier/keyring", "barrier/root-key"));
}

TEST_F(BarrierTest, GetPutDeleteListRoundTrip) {
  UnsealWith(Initialize(1, 1));
  EXPECT_EQ(*barrier_->Get("missing"), std::nullopt);
  ASSERT_TRUE(barrier_->Put("a/1", "one").ok());
  ASSERT_TRUE(barrier_->Put("a/2", "").ok());
  ASSERT_TRUE(barrier_->Put("b", std::string("\0\xff", 2)).ok());
  EXPECT_THAT(*barrier_->Get("a/2"), Optional(std::string()));
  EXPECT_THAT(*barrier_->List("a/"), ElementsAre("a/1", "a/2"));
  ASSERT_TRUE(barrier_->Delete("a/1").ok());
  ASSERT_TRUE(barrier_->Delete("a/1").ok());
  EXPECT_THAT(*barrier_->List(""), ElementsAre("a/2", "b"));
}

TEST_F(BarrierTest, KeyAndValueLimitsLeaveRoomForThePrefixAndTheOverhead) {
  UnsealWith(Initialize(1, 1));
  const std::string longest(kBarrierKeyBytesMax, 'k');
  EXPECT_TRUE(barrier_->Put(longest, "v").ok());
  EXPECT_THAT(*barrier_->Get(longest), Optional(std::string("v")));
  EXPECT_EQ(barrier_->Put(longest + "k", "v").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(barrier_->Get(longest + "k").status().code(), absl::StatusCode::kInvalidArgument);
  const std::string largest(kBarrierValueBytesMax, 'v');
  EXPECT_TRUE(barrier_->Put("big", largest).ok());
  EXPECT_THAT(*barrier_->Get("big"), Optional(largest));
  absl::Status too_big = barrier_->Put("big", largest + "v");
  EXPECT_EQ(too_big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_big.message()), HasSubstr("limit"));
  for (const char* bad : {"", "/a", "a/../b", "..", "a//b"}) {
    EXPECT_EQ(barrier_->Put(bad, "v").code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(BarrierTest, RotateAddsATermThatSealsNewWritesWhileOldTermsStillOpen) {
  std::vector<std::string> shares = Initialize(1, 1);
  UnsealWith(shares);
  ASSERT_TRUE(barrier_->Put("old", "under term 1").ok());
  EXPECT_EQ(*barrier_->Rotate(), 2u);
  EXPECT_EQ(barrier_->active_term(), 2u);
  ASSERT_TRUE(barrier_->Put("new", "under term 2").ok());
  EXPECT_EQ(physical_.Get("logical/new")->value().substr(1, 4), std::string("\0\0\0\2", 4));
  EXPECT_EQ(physical_.Get("logical/old")->value().substr(1, 4), std::string("\0\0\0\1", 4));
  EXPECT_THAT(*barrier_->Get("old"), Optional(std::string("under term 1")));
  // The keyring with the new term is durable.
  barrier_->Seal();
  barrier_ = Reopen();
  UnsealWith(shares);
  EXPECT_EQ(barrier_->active_term(), 2u);
  EXPECT_THAT(*barrier_->Get("old"), Optional(std::string("under term 1")));
  EXPECT_THAT(*barrier_->Get("new"), Optional(std::string("under term 2")));
}

TEST_F(BarrierTest, DamagedEntriesAreDataLossNamingTheKey) {
  UnsealWith(Initialize(1, 1));
  ASSERT_TRUE(barrier_->Put("victim", "some secret value").ok());
  ASSERT_TRUE(barrier_->Put("other", "another value").ok());
  const std::string entry = **physical_.Get("logical/victim");

  auto expect_loss = [&](const std::string& bytes, absl::string_view why) {
    ASSERT_TRUE(physical_.Put("logical/victim", bytes).ok());
    absl::Status status = barrier_->Get("victim").status();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << why;
    EXPECT_THAT(std::string(status.message()), HasSubstr("\"victim\"")) << why;
  };
  std::string flipped = entry;
  flipped.back() ^= 0x80;
  expect_loss(flipped, "tag bit flip");
  expect_loss(entry.substr(0, entry.size() - 1), "truncated by one");
  expect_loss(entry.substr(0, 10), "truncated into the header");
  expect_loss("", "empty");
  expect_loss(entry + "x", "extended");
  std::string version = entry;
  version[0] = 2;
  expect_loss(version, "unknown version");
  std::string term = entry;
  term[4] = 9;
  expect_loss(term, "unknown term");
  expect_loss(**physical_.Get("logical/other"), "copied from another path");
}

TEST_F(BarrierTest, ADamagedKeyringIsDataLossAndLeavesTheBarrierSealedAndWiped) {
  std::vector<std::string> shares = Initialize(1, 1);
  std::string keyring = **physical_.Get("barrier/keyring");
  keyring[20] ^= 1;
  ASSERT_TRUE(physical_.Put("barrier/keyring", keyring).ok());
  absl::Status status = barrier_->Unseal(shares[0]).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()), HasSubstr("barrier/keyring"));
  EXPECT_TRUE(barrier_->sealed());
  EXPECT_TRUE(barrier_->KeyMaterialIsWipedForTest());

  ASSERT_TRUE(physical_.Delete("barrier/keyring").ok());
  EXPECT_EQ(barrier_->Unseal(shares[0]).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(BarrierTest, ADamagedRootKeyRecordLooksLikeWrongShares) {
  std::vector<std::string> shares = Initialize(2, 2);
  std::string record = **physical_.Get("barrier/root-key");
  record[2] = 1;  // Threshold 2 -> 1: authenticated, so the tampering is caught.
  ASSERT_TRUE(physical_.Put("barrier/root-key", record).ok());
  barrier_ = Reopen();
  EXPECT_EQ(barrier_->seal_status().threshold, 1);
  EXPECT_EQ(barrier_->Unseal(shares[0]).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(barrier_->sealed());

  ASSERT_TRUE(physical_.Put("barrier/root-key", "garbage").ok());
  EXPECT_EQ(Barrier::Open(physical_, random_).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace bulwark
