// Tests for SHA-256 (FIPS 180-2 known answers, streaming in chunks) and hex encoding.
#include "base/crypto/sha256.h"

#include <cctype>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidcheck/gtest.h"

namespace bulwark::crypto {
namespace {

using ::testing::HasSubstr;

// FIPS 180-2 appendix B and the empty message; checked with coreutils sha256sum too.
TEST(Sha256Test, KnownAnswers) {
  EXPECT_EQ(HexEncode(Sha256::Hash("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexEncode(Sha256::Hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Sha256::Hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, MillionAsInUnevenChunks) {
  const std::string chunk(1000, 'a');
  Sha256 hasher;
  size_t fed = 0;
  // Chunk sizes 1, 2, ..., 999, 1, 2, ... so that boundaries fall everywhere within a block.
  for (size_t size = 1; fed < 1000000; size = size % 999 + 1) {
    const size_t take = std::min(size, 1000000 - fed);
    hasher.Update(absl::string_view(chunk).substr(0, take));
    fed += take;
  }
  const std::string digest = hasher.Finish();
  EXPECT_EQ(digest.size(), kSha256DigestBytes);
  EXPECT_EQ(HexEncode(digest), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, FinishStartsANewMessage) {
  Sha256 hasher;
  hasher.Update("ab");
  hasher.Update("");
  hasher.Update("c");
  EXPECT_EQ(hasher.Finish(), Sha256::Hash("abc"));
  EXPECT_EQ(hasher.Finish(), Sha256::Hash(""));
  hasher.Update("abc");
  Sha256 moved = std::move(hasher);
  EXPECT_EQ(moved.Finish(), Sha256::Hash("abc"));
}

RC_GTEST_PROP(Sha256Property, ChunkingDoesNotChangeTheDigest, (const std::string& data)) {
  const size_t cut = *rc::gen::inRange<size_t>(0, data.size() + 1);
  Sha256 hasher;
  hasher.Update(absl::string_view(data).substr(0, cut));
  hasher.Update(absl::string_view(data).substr(cut));
  RC_ASSERT(hasher.Finish() == Sha256::Hash(data));
}

TEST(HexTest, EncodesLowerCase) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode(std::string("\x00\x01\x09\x0a\x7f\x80\xab\xff", 8)), "0001090a7f80abff");
}

TEST(HexTest, DecodesAnyCase) {
  EXPECT_EQ(HexDecode("").value(), "");
  EXPECT_EQ(HexDecode("0001090a7f80abff").value(),
            std::string("\x00\x01\x09\x0a\x7f\x80\xab\xff", 8));
  EXPECT_EQ(HexDecode("ABCDEF").value(), "\xab\xcd\xef");
  EXPECT_EQ(HexDecode("aBcDeF").value(), "\xab\xcd\xef");
}

// Every byte value, in both digit positions, is accepted exactly when it is a hex digit.
TEST(HexTest, AcceptsExactlyTheHexDigits) {
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    const bool is_hex = std::isxdigit(c) != 0;
    for (const std::string& input : {std::string{ch, '0'}, std::string{'0', ch}}) {
      absl::StatusOr<std::string> decoded = HexDecode(input);
      EXPECT_EQ(decoded.ok(), is_hex) << "byte " << c;
      if (is_hex) {
        const int value = std::isdigit(c) ? c - '0' : std::tolower(c) - 'a' + 10;
        const int expected = input[0] == ch ? value << 4 : value;
        EXPECT_EQ(static_cast<unsigned char>((*decoded)[0]), expected) << "byte " << c;
      }
    }
  }
}

TEST(HexTest, RejectsOddLengthAndNonHex) {
  const absl::Status odd = HexDecode("abc").status();
  EXPECT_EQ(odd.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(odd.message()), HasSubstr("3 characters; it must be even"));

  const absl::Status bad = HexDecode("00112z").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("position 5 is not a hex digit"));
  EXPECT_THAT(std::string(bad.message()), ::testing::Not(HasSubstr("z")));  // Not echoed.

  EXPECT_THAT(std::string(HexDecode(std::string("0\0", 2)).status().message()),
              HasSubstr("position 1"));
  EXPECT_THAT(std::string(HexDecode(" 0").status().message()), HasSubstr("position 0"));
  EXPECT_EQ(HexDecode("0x").status().code(), absl::StatusCode::kInvalidArgument);
}

RC_GTEST_PROP(HexProperty, RoundTrips, (const std::string& bytes)) {
  const std::string hex = HexEncode(bytes);
  RC_ASSERT(hex.size() == 2 * bytes.size());
  absl::StatusOr<std::string> decoded = HexDecode(hex);
  RC_ASSERT(decoded.ok());
  RC_ASSERT(*decoded == bytes);
}

}  // namespace
}  // namespace bulwark::crypto
