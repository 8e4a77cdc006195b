// The wrapping store over in-memory storage with simulated time: single use, expiry by the
// Env's clock (never by waiting), the key kept in storage, limits, and what storage and error
// messages may never hold.
#include "core/wrapping/wrapping_store.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/env/sim/sim_event_loop.h"
#include "base/storage/in_memory_storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/wrapping_token.h"

namespace bulwark::wrapping {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kSeed = 41;
constexpr char kData[] = R"({"ServerCert":"Y2VydA==","ServerKey":"c2VjcmV0LWtleQ=="})";

// Storage whose every call fails, like a sealed barrier.
class SealedStorage final : public Storage {
 public:
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view) override { return Sealed(); }
  absl::Status Put(absl::string_view, absl::string_view) override { return Sealed(); }
  absl::Status Delete(absl::string_view) override { return Sealed(); }
  absl::StatusOr<std::vector<std::string>> List(absl::string_view) override { return Sealed(); }

 private:
  static absl::Status Sealed() { return absl::FailedPreconditionError("Vault is sealed"); }
};

class WrappingStoreTest : public ::testing::Test {
 protected:
  WrappingStoreTest() : random_(kSeed), loop_(clock_), store_(storage_, clock_, random_, loop_) {
    std::printf("seed: %llu\n", static_cast<unsigned long long>(kSeed));
  }

  WrapRequest Request(absl::Duration ttl = protocol::kPluginWrapTtl) {
    WrapRequest r;
    r.data_json = crypto::SecureBuffer(std::string(kData));
    r.ttl = ttl;
    r.creation_path = "sys/plugins/bootstrap/kv";
    r.addr = "http://127.0.0.1:8200";
    return r;
  }

  std::string MustWrap(absl::Duration ttl = protocol::kPluginWrapTtl) {
    absl::StatusOr<WrapResult> wrapped = store_.Wrap(Request(ttl));
    EXPECT_TRUE(wrapped.ok()) << wrapped.status();
    return wrapped.ok() ? wrapped->token : "";
  }

  std::vector<std::string> Records() { return *storage_.List(kResponsePrefix); }

  // Moves simulated time on by `d`, running the timers that fall due.
  void Advance(absl::Duration d) {
    const absl::Duration until = clock_.MonotonicNow() + d;
    loop_.RunUntil([] { return false; }, d);
    if (clock_.MonotonicNow() < until) clock_.AdvanceTo(until);
  }

  void ExpectRefused(const absl::StatusOr<std::string>& r, absl::string_view reason,
                     absl::string_view token) {
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(IsInvalidWrappingToken(r.status())) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(reason));
    EXPECT_THAT(std::string(r.status().message()), Not(HasSubstr(token)));
  }

  sim::SimClock clock_;
  SeededRandom random_;
  sim::SimEventLoop loop_;
  InMemoryStorage storage_;
  WrappingStore store_;
};

TEST_F(WrappingStoreTest, UnwrapReturnsTheEnvelopeOnce) {
  absl::StatusOr<WrapResult> wrapped = store_.Wrap(Request());
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  EXPECT_EQ(wrapped->expire_time - wrapped->creation_time, absl::Seconds(60));
  absl::StatusOr<protocol::WrappingClaims> claims =
      protocol::ParseWrappingJwtUnverified(wrapped->token);
  ASSERT_TRUE(claims.ok());
  EXPECT_EQ(claims->addr, "http://127.0.0.1:8200");
  EXPECT_THAT(claims->id, ::testing::StartsWith("hvs."));

  absl::StatusOr<std::string> reply = store_.Unwrap(wrapped->token);
  ASSERT_TRUE(reply.ok()) << reply.status();
  const nlohmann::json envelope = nlohmann::json::parse(*reply);
  EXPECT_EQ(envelope["data"], nlohmann::json::parse(kData));
  EXPECT_EQ(envelope["lease_id"], "");
  EXPECT_EQ(envelope["wrap_info"], nullptr);
  EXPECT_TRUE(envelope["request_id"].is_string());
  absl::StatusOr<protocol::PluginTlsMaterial> tls = protocol::DecodePluginTlsReply(*reply);
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ(tls->cert_der, "cert");
  EXPECT_EQ(tls->key_der.view(), "secret-key");
  EXPECT_TRUE(Records().empty()) << "the record must be gone once unwrapped";

  ExpectRefused(store_.Unwrap(wrapped->token), "already unwrapped", wrapped->token);
}

TEST_F(WrappingStoreTest, ExpiredTokensAreRefusedAndTheirRecordsRemoved) {
  const std::string token = MustWrap();
  Advance(absl::Seconds(59));
  ASSERT_EQ(Records().size(), 1u);
  const std::string fresh = MustWrap();
  Advance(absl::Seconds(1));  // 60 s after the first: its exp.
  ExpectRefused(store_.Unwrap(token), "expired", token);
  EXPECT_TRUE(store_.Unwrap(fresh).ok()) << "the second token has 59 s left";
  // The expiry timer removes the record nobody unwrapped.
  Advance(absl::Seconds(5));
  EXPECT_TRUE(Records().empty());
}

TEST_F(WrappingStoreTest, ARecordPastItsExpiryIsRefusedEvenIfTheTimerHasNotRun) {
  const std::string token = MustWrap(absl::Seconds(10));
  // The wall clock steps forward without the loop running (no timer fires).
  clock_.JumpWall(absl::Seconds(11));
  ExpectRefused(store_.Unwrap(token), "expired", token);
}

TEST_F(WrappingStoreTest, SweepRemovesOnlyExpiredRecords) {
  MustWrap(absl::Seconds(10));
  MustWrap(absl::Seconds(100));
  clock_.JumpWall(absl::Seconds(50));
  absl::StatusOr<size_t> swept = store_.SweepExpired();
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(*swept, 1u);
  EXPECT_EQ(Records().size(), 1u);
}

TEST_F(WrappingStoreTest, TheKeyIsCreatedOnceAndOutlivesTheStore) {
  EXPECT_FALSE(storage_.Get(kJwtKeyPath)->has_value());
  const std::string first = MustWrap();
  const std::optional<std::string> key = *storage_.Get(kJwtKeyPath);
  ASSERT_TRUE(key.has_value());
  const std::string second = MustWrap();
  EXPECT_EQ(*storage_.Get(kJwtKeyPath), key) << "the key must not be replaced";
  // A restart: another store over the same storage unwraps what the first issued.
  WrappingStore restarted(storage_, clock_, random_, loop_);
  EXPECT_TRUE(restarted.Unwrap(first).ok());
  EXPECT_TRUE(restarted.Unwrap(second).ok());
}

TEST_F(WrappingStoreTest, TokensOfAnotherKeyOrTamperedOnesAreRefused) {
  const std::string token = MustWrap();
  InMemoryStorage other_storage;
  SeededRandom other_random(kSeed + 1);
  WrappingStore other(other_storage, clock_, other_random, loop_);
  absl::StatusOr<WrapResult> foreign = other.Wrap(Request());
  ASSERT_TRUE(foreign.ok());
  ExpectRefused(store_.Unwrap(foreign->token), "signature does not verify", foreign->token);

  std::string tampered = token;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  ExpectRefused(store_.Unwrap(tampered), "signature", tampered);
  ExpectRefused(store_.Unwrap("hvs.not-a-jwt"), "not a JWT", "hvs.not-a-jwt");
  ExpectRefused(store_.Unwrap(""), "not a JWT", "\x01");
  // The real token still works: refusals consumed nothing.
  EXPECT_TRUE(store_.Unwrap(token).ok());
}

TEST_F(WrappingStoreTest, UnwrapBeforeAnyWrapIsARefusal) {
  ExpectRefused(store_.Unwrap("ab.cd.ef"), "no token was ever issued", "ab.cd.ef");
}

TEST_F(WrappingStoreTest, StorageNeverHoldsTheTokenOrItsId) {
  const std::string token = MustWrap();
  const std::string id = protocol::ParseWrappingJwtUnverified(token)->id;
  const std::vector<std::string> keys = *storage_.List("");
  ASSERT_EQ(keys.size(), 2u);  // The key and the one record.
  for (const std::string& key : keys) {
    EXPECT_THAT(key, Not(HasSubstr(id)));
    const std::string value = **storage_.Get(key);
    EXPECT_THAT(value, Not(HasSubstr(id)));
    EXPECT_THAT(value, Not(HasSubstr(token.substr(token.rfind('.') + 1))));
  }
}

TEST_F(WrappingStoreTest, AtMostTheLimitIsHeldAndExpiredOnesMakeRoom) {
  for (size_t i = 0; i < kWrappedResponsesMax; ++i) {
    ASSERT_TRUE(store_.Wrap(Request(absl::Seconds(10))).ok()) << i;
  }
  absl::StatusOr<WrapResult> full = store_.Wrap(Request());
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  clock_.JumpWall(absl::Seconds(11));  // All expired, no timer has run.
  EXPECT_TRUE(store_.Wrap(Request()).ok());
  EXPECT_EQ(Records().size(), 1u);
}

TEST_F(WrappingStoreTest, BadRequestsAreInvalidArguments) {
  EXPECT_EQ(store_.Wrap(Request(absl::ZeroDuration())).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_.Wrap(Request(absl::Hours(25))).status().code(),
            absl::StatusCode::kInvalidArgument);
  WrapRequest not_object = Request();
  not_object.data_json = crypto::SecureBuffer(std::string("[1]"));
  EXPECT_EQ(store_.Wrap(std::move(not_object)).status().code(), absl::StatusCode::kInvalidArgument);
  WrapRequest huge = Request();
  huge.data_json = crypto::SecureBuffer(
      absl::StrCat("{\"a\":\"", std::string(kWrappedResponseBytesMax, 'x'), "\"}"));
  EXPECT_EQ(store_.Wrap(std::move(huge)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Records().empty());
}

TEST_F(WrappingStoreTest, ASealedBarrierIsAnErrorNotARefusal) {
  const std::string token = MustWrap();
  SealedStorage sealed;
  WrappingStore store(sealed, clock_, random_, loop_);
  absl::StatusOr<std::string> r = store.Unwrap(token);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(IsInvalidWrappingToken(r.status()));
  EXPECT_EQ(store.Wrap(Request()).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace bulwark::wrapping
