// The secret scanner finds any 12-byte fragment of a remembered secret, and nothing else.
#include "sim/secrets.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/env/random.h"
#include "gtest/gtest.h"

namespace bulwark::sim {
namespace {

TEST(SecretScannerTest, FindsFragmentsAnywhere) {
  SecretScanner scanner;
  const std::string secret = "s0123456789abcdef01234567";
  ASSERT_TRUE(scanner.Add(secret));
  EXPECT_TRUE(scanner.Leaks(secret));
  EXPECT_TRUE(scanner.Leaks(absl::StrCat("put failed: value ", secret, " too long")));
  EXPECT_TRUE(scanner.Leaks(absl::StrCat("...", secret.substr(7, 12), "...")));
  EXPECT_FALSE(scanner.Leaks(absl::StrCat("...", secret.substr(7, 11), "...")));
  EXPECT_FALSE(scanner.Leaks("barrier is sealed: unseal it with 3 of its 5 unseal key shares"));
  EXPECT_FALSE(scanner.Leaks(""));
  EXPECT_FALSE(scanner.Add("short"));
}

TEST(SecretScannerTest, NoFalseAlarmsOnUnrelatedRandomText) {
  constexpr uint64_t kSeed = 7;
  std::printf("seed %llu\n", static_cast<unsigned long long>(kSeed));
  SeededRandom random(kSeed);
  SecretScanner scanner;
  for (int i = 0; i < 2000; ++i) {
    scanner.Add(absl::StrCat("s", absl::BytesToHexString(random.Bytes(12))));
  }
  for (int i = 0; i < 2000; ++i) {
    EXPECT_FALSE(scanner.Leaks(absl::BytesToHexString(random.Bytes(64))));
  }
  EXPECT_EQ(scanner.scans(), 2000u);
}

}  // namespace
}  // namespace bulwark::sim
