// The token store over in-memory storage with a simulated clock and a seeded random source.
#include "core/token/token_store.h"

#include <cstdio>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/env/sim/sim_event_loop.h"
#include "base/storage/in_memory_storage.h"
#include "gtest/gtest.h"

namespace bulwark::token {
namespace {

constexpr uint64_t kSeed = 13;

class TokenStoreTest : public ::testing::Test {
 protected:
  TokenStoreTest() : random_(kSeed), store_(storage_, clock_, random_) {
    std::printf("seed: %llu\n", static_cast<unsigned long long>(kSeed));
  }

  // True when no stored key or value contains `text`.
  bool StorageFreeOf(absl::string_view text) {
    const std::vector<std::string> keys = *storage_.List("");
    for (const std::string& key : keys) {
      if (absl::StrContains(key, text)) return false;
      if (absl::StrContains(**storage_.Get(key), text)) return false;
    }
    return true;
  }

  sim::SimClock clock_;
  SeededRandom random_;
  InMemoryStorage storage_;
  TokenStore store_;
};

TEST_F(TokenStoreTest, RootTokenHasVaultFormAndIsStoredOnlyAsAHash) {
  absl::StatusOr<CreatedToken> root = store_.CreateRoot();
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_TRUE(absl::StartsWith(root->token, "hvs."));
  EXPECT_EQ(root->token.size(), 4 + kTokenRandomChars);
  for (char c : root->token.substr(4)) EXPECT_TRUE(absl::ascii_isalnum(c)) << root->token;
  EXPECT_TRUE(StorageFreeOf(root->token));
  EXPECT_TRUE(StorageFreeOf(root->token.substr(4)));
  EXPECT_TRUE(**storage_.Get(absl::StrCat("core/token/id/", TokenHash(root->token))) != "");

  absl::StatusOr<TokenEntry> e = store_.Lookup(root->token);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->policies, std::vector<std::string>{"root"});
  EXPECT_EQ(e->path, "auth/token/root");
  EXPECT_EQ(e->display_name, "root");
  EXPECT_TRUE(e->orphan());
  EXPECT_FALSE(e->expire_time.has_value());
  EXPECT_EQ(e->accessor.size(), kAccessorChars);
  EXPECT_EQ(e->creation_time, absl::FromUnixSeconds(absl::ToUnixSeconds(clock_.WallNow())));
}

TEST_F(TokenStoreTest, CustomRootIdIsValidatedAndUnique) {
  ASSERT_TRUE(store_.CreateRoot("root").ok());
  EXPECT_TRUE(store_.Lookup("root").ok());
  absl::Status again = store_.CreateRoot("root").status();
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(absl::StrContains(again.message(), "root"));
  EXPECT_EQ(store_.CreateRoot("has space").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_.CreateRoot(std::string(kCustomIdBytesMax + 1, 'a')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_.CreateRoot("tab\there").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenStoreTest, UnknownAndEmptyTokensAreDeniedAlike) {
  EXPECT_EQ(store_.Lookup("").status(), absl::PermissionDeniedError("permission denied"));
  EXPECT_EQ(store_.Lookup("hvs.nope").status(), absl::PermissionDeniedError("permission denied"));
}

TEST_F(TokenStoreTest, ChildInheritsPoliciesAndGetsTheDefaultTtl) {
  const std::string root = store_.CreateRoot()->token;
  CreateRequest r;
  r.display_name = "ci";
  r.meta = {{"team", "a"}};
  absl::StatusOr<CreatedToken> child = store_.CreateChild(root, r);
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_NE(child->token, root);
  absl::StatusOr<TokenEntry> e = store_.Lookup(child->token);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->policies, std::vector<std::string>{"root"});
  EXPECT_EQ(e->display_name, "token-ci");
  EXPECT_EQ(e->path, "auth/token/create");
  EXPECT_EQ(e->meta.at("team"), "a");
  EXPECT_EQ(e->ttl, kDefaultTtl);
  EXPECT_EQ(e->depth, 1);
  EXPECT_FALSE(e->orphan());
  ASSERT_TRUE(e->expire_time.has_value());
  EXPECT_EQ(*e->expire_time, e->creation_time + kDefaultTtl);
}

TEST_F(TokenStoreTest, ChildOfAnInvalidParentIsDenied) {
  EXPECT_EQ(store_.CreateChild("hvs.unknown", {}).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(TokenStoreTest, TokensExpireByTheWallClockAndAreTidiedAway) {
  const std::string root = store_.CreateRoot()->token;
  CreateRequest r;
  r.ttl = absl::Seconds(60);
  const std::string child = store_.CreateChild(root, r)->token;
  clock_.JumpWall(absl::Seconds(59));
  EXPECT_TRUE(store_.Lookup(child).ok());
  clock_.JumpWall(absl::Seconds(1));
  EXPECT_EQ(store_.Lookup(child).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(storage_.Get(absl::StrCat("core/token/id/", TokenHash(child)))->has_value());
  EXPECT_TRUE(store_.Lookup(root).ok());  // Root tokens never expire.
}

TEST_F(TokenStoreTest, TtlIsCappedByTheMaximumAndByTheParent) {
  const std::string root = store_.CreateRoot()->token;
  CreateRequest big;
  big.ttl = kMaxTtl + absl::Hours(1);
  absl::StatusOr<CreatedToken> capped = store_.CreateChild(root, big);
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->entry.ttl, kMaxTtl);
  ASSERT_EQ(capped->warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(capped->warnings[0], "769h0m0s")) << capped->warnings[0];

  CreateRequest short_lived;
  short_lived.ttl = absl::Seconds(10);
  const std::string parent = store_.CreateChild(root, short_lived)->token;
  CreateRequest longer;
  longer.ttl = absl::Hours(1);
  absl::StatusOr<CreatedToken> grandchild = store_.CreateChild(parent, longer);
  ASSERT_TRUE(grandchild.ok());
  EXPECT_EQ(grandchild->entry.ttl, absl::Seconds(10));
  EXPECT_EQ(grandchild->entry.depth, 2);

  CreateRequest negative;
  negative.ttl = absl::Seconds(-1);
  EXPECT_EQ(store_.CreateChild(root, negative).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenStoreTest, RevokeRemovesTheTokenAndItsDescendantsOnly) {
  const std::string root = store_.CreateRoot()->token;
  const std::string a = store_.CreateChild(root, {})->token;
  const std::string a1 = store_.CreateChild(a, {})->token;
  const std::string a11 = store_.CreateChild(a1, {})->token;
  const std::string b = store_.CreateChild(root, {})->token;
  ASSERT_TRUE(store_.Revoke(a).ok());
  for (const std::string& t : {a, a1, a11}) {
    EXPECT_EQ(store_.Lookup(t).status().code(), absl::StatusCode::kPermissionDenied);
  }
  EXPECT_TRUE(store_.Lookup(root).ok());
  EXPECT_TRUE(store_.Lookup(b).ok());
  // Nothing of the revoked subtree is left, index entries included.
  EXPECT_EQ(storage_.List("core/token/id/")->size(), 2u);
  EXPECT_EQ(storage_.List("core/token/parent/")->size(), 1u);
  EXPECT_TRUE(store_.Revoke(a).ok());  // Idempotent.
  ASSERT_TRUE(store_.Revoke(root).ok());
  EXPECT_EQ(storage_.size(), 0u);
}

TEST_F(TokenStoreTest, ChainDepthIsBounded) {
  std::string t = store_.CreateRoot()->token;
  for (int i = 0; i < kTokenDepthMax; ++i) {
    absl::StatusOr<CreatedToken> c = store_.CreateChild(t, {});
    ASSERT_TRUE(c.ok()) << i << ": " << c.status();
    t = c->token;
  }
  EXPECT_EQ(store_.CreateChild(t, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenStoreTest, BadMetaAndDisplayNameAreRefused) {
  const std::string root = store_.CreateRoot()->token;
  CreateRequest r;
  r.display_name = std::string(kDisplayNameBytesMax + 1, 'x');
  EXPECT_EQ(store_.CreateChild(root, r).status().code(), absl::StatusCode::kInvalidArgument);
  r = {};
  r.meta[""] = "v";
  EXPECT_EQ(store_.CreateChild(root, r).status().code(), absl::StatusCode::kInvalidArgument);
  r = {};
  for (size_t i = 0; i <= kMetaMax; ++i) r.meta[std::to_string(i)] = "v";
  EXPECT_EQ(store_.CreateChild(root, r).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenStoreTest, CorruptRecordIsDataLoss) {
  const std::string root = store_.CreateRoot()->token;
  ASSERT_TRUE(storage_.Put(absl::StrCat("core/token/id/", TokenHash(root)), "{\"v\":1}").ok());
  EXPECT_EQ(store_.Lookup(root).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(TokenStoreTest, EntryRoundTrips) {
  TokenEntry e;
  e.accessor = "acc";
  e.policies = {"root"};
  e.path = "auth/token/create";
  e.display_name = "token";
  e.meta = {{"k", "v"}};
  e.creation_time = absl::FromUnixSeconds(100);
  e.ttl = absl::Seconds(5);
  e.expire_time = absl::FromUnixSeconds(105);
  e.depth = 3;
  e.parent_hash = "abc";
  absl::StatusOr<TokenEntry> d = DecodeTokenEntry(EncodeTokenEntry(e));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->accessor, e.accessor);
  EXPECT_EQ(d->meta, e.meta);
  EXPECT_EQ(d->expire_time, e.expire_time);
  EXPECT_EQ(d->depth, 3);
  EXPECT_EQ(d->parent_hash, "abc");
}

}  // namespace
}  // namespace bulwark::token
