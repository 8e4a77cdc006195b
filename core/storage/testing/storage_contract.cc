// The Storage contract's tests (storage_contract.h); linked into each backend's test.
#include "core/storage/testing/storage_contract.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "gmock/gmock.h"

namespace bulwark::storage_testing {

std::string BackendName(const ::testing::TestParamInfo<BackendParam>& info) {
  return info.param.name;
}

namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Optional;

TEST_P(StorageContractTest, GetOfMissingKeyIsNullopt) {
  absl::StatusOr<std::optional<std::string>> got = storage().Get("missing");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, std::nullopt);
}

TEST_P(StorageContractTest, PutThenGetRoundTrips) {
  const std::string binary("\0\x01\xff\n value", 10);
  ASSERT_TRUE(storage().Put("a/b", binary).ok());
  ASSERT_TRUE(storage().Put("empty", "").ok());
  EXPECT_THAT(*storage().Get("a/b"), Optional(binary));
  EXPECT_THAT(*storage().Get("empty"), Optional(std::string()));
}

TEST_P(StorageContractTest, PutReplacesTheValue) {
  ASSERT_TRUE(storage().Put("k", "a much longer first value").ok());
  ASSERT_TRUE(storage().Put("k", "second").ok());
  EXPECT_THAT(*storage().Get("k"), Optional(std::string("second")));
  EXPECT_THAT(*storage().List(""), ElementsAre("k"));
}

TEST_P(StorageContractTest, DeleteRemovesAndIsIdempotent) {
  ASSERT_TRUE(storage().Put("k", "v").ok());
  ASSERT_TRUE(storage().Delete("k").ok());
  EXPECT_EQ(*storage().Get("k"), std::nullopt);
  EXPECT_THAT(*storage().List(""), IsEmpty());
  EXPECT_TRUE(storage().Delete("k").ok());
  EXPECT_TRUE(storage().Delete("never/existed").ok());
}

TEST_P(StorageContractTest, ListReturnsFullKeysWithThePrefixSortedBytewise) {
  for (const char* key : {"b", "a/c", "a/b", "ab", "a/b/c", "\xff", "a", "A"}) {
    ASSERT_TRUE(storage().Put(key, "v").ok()) << key;
  }
  EXPECT_THAT(*storage().List(""), ElementsAre("A", "a", "a/b", "a/b/c", "a/c", "ab", "b", "\xff"));
  EXPECT_THAT(*storage().List("a/"), ElementsAre("a/b", "a/b/c", "a/c"));
  EXPECT_THAT(*storage().List("a/b"), ElementsAre("a/b", "a/b/c"));
  EXPECT_THAT(*storage().List("zzz"), IsEmpty());
  EXPECT_THAT(*storage().List("\xff"), ElementsAre("\xff"));
}

TEST_P(StorageContractTest, InvalidKeysAreRejectedByEveryMethod) {
  const std::vector<std::string> invalid = {"",
                                            "/abs",
                                            "trailing/",
                                            "a//b",
                                            ".",
                                            "..",
                                            "a/./b",
                                            "a/../b",
                                            "../../etc/passwd",
                                            "a/../../b",
                                            std::string("nul\0byte", 8),
                                            std::string(kStorageKeyBytesMax + 1, 'k')};
  for (const std::string& key : invalid) {
    SCOPED_TRACE(testing::PrintToString(key));
    EXPECT_EQ(ValidateStorageKey(key).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(storage().Put(key, "v").code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(storage().Get(key).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(storage().Delete(key).code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_THAT(*storage().List(""), IsEmpty());
}

TEST_P(StorageContractTest, KeyLengthLimitIsInclusive) {
  const std::string longest(kStorageKeyBytesMax, 'k');
  ASSERT_TRUE(storage().Put(longest, "v").ok());
  EXPECT_THAT(*storage().Get(longest), Optional(std::string("v")));
  EXPECT_THAT(*storage().List(""), ElementsAre(longest));
  const absl::Status too_long = storage().Put(longest + "k", "v");
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_long.message()), ::testing::HasSubstr("limit is 1024"));
}

TEST_P(StorageContractTest, ValueSizeLimitIsInclusiveAndAnOversizedPutChangesNothing) {
  const std::string largest(kStorageValueBytesMax, 'v');
  ASSERT_TRUE(storage().Put("big", largest).ok());
  EXPECT_THAT(*storage().Get("big"), Optional(largest));
  ASSERT_TRUE(storage().Put("k", "old").ok());
  const absl::Status too_big = storage().Put("k", largest + "v");
  EXPECT_EQ(too_big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_big.message()), ::testing::HasSubstr("limit"));
  EXPECT_THAT(*storage().Get("k"), Optional(std::string("old")));
}

TEST_P(StorageContractTest, HostileKeysNeverNameAPathOutsideTheDataDirectory) {
  // Traversal attempts that the key rules reject outright.
  for (const std::string& key :
       {std::string("../../etc/passwd"), std::string("a/../../b"), std::string("/etc/passwd"),
        std::string("..\0/x", 5), std::string("x\0/../../y", 10)}) {
    EXPECT_EQ(storage().Put(key, "pwned").code(), absl::StatusCode::kInvalidArgument);
  }
  // Valid keys that an escaping scheme or a path join could get wrong.
  const std::vector<std::string> hostile = {"%2e%2e/%2e%2e/etc/passwd",
                                            "..%2f..%2fetc",
                                            "...",
                                            "..a/b..",
                                            "%00",
                                            "%",
                                            "a%2fb",
                                            "k-0123",
                                            "x.tmp",
                                            "\\..\\..\\windows",
                                            "~/.ssh/authorized_keys",
                                            "\xc0\xae\xc0\xae/\xc0\xae\xc0\xae",
                                            "\n\r\t",
                                            std::string(300, 'x')};
  for (const std::string& key : hostile) {
    ASSERT_TRUE(storage().Put(key, key).ok()) << testing::PrintToString(key);
  }
  for (const std::string& key : hostile) {
    EXPECT_THAT(*storage().Get(key), Optional(key)) << testing::PrintToString(key);
  }
  std::vector<std::string> sorted = hostile;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(*storage().List(""), sorted);

  std::optional<std::vector<std::string>> tree = backend_->Tree();
  if (!tree.has_value()) return;  // No files to check.
  // Only the data directory and flat files directly inside it exist under the root.
  size_t files = 0;
  for (const std::string& path : *tree) {
    if (path == "data") continue;
    EXPECT_TRUE(absl::StartsWith(path, "data/")) << path;
    const std::string name = path.substr(5);
    EXPECT_EQ(name.find('/'), std::string::npos) << path;
    EXPECT_TRUE(absl::StartsWith(name, "k-")) << path;
    EXPECT_EQ(name.size(), 66u) << path;
    ++files;
  }
  EXPECT_EQ(files, hostile.size());
}

}  // namespace
}  // namespace bulwark::storage_testing
