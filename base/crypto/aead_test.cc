// Tests for AES-256-GCM: published known answers, round trips, and rejection of every kind of
// tampering (bit flips, truncation, other AAD, key or nonce) as DataLoss.
#include "base/crypto/aead.h"

#include <openssl/err.h>

#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "base/crypto/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidcheck/gtest.h"

namespace bulwark::crypto {
namespace {

using ::testing::HasSubstr;

std::string Unhex(absl::string_view hex) {
  absl::StatusOr<std::string> bytes = HexDecode(hex);
  if (!bytes.ok()) ADD_FAILURE() << bytes.status();
  return bytes.value_or("");
}

// Test vectors from McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)" (the vectors
// NIST SP 800-38D refers to), AES-256 with a 96-bit IV. Cross-checked against OpenSSL's
// evpciph_aes_common.txt and Python's `cryptography`.
struct GcmVector {
  const char* name;
  const char* key;
  const char* iv;
  const char* plaintext;
  const char* aad;
  const char* ciphertext;
  const char* tag;
};

constexpr GcmVector kVectors[] = {
    {"Test Case 13: zero key, empty plaintext",
     "0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"Test Case 14: zero key, one zero block",
     "0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "00000000000000000000000000000000", "", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    {"Test Case 16: 60-byte plaintext, 20-byte AAD",
     "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

TEST(AeadTest, KnownAnswers) {
  for (const GcmVector& v : kVectors) {
    SCOPED_TRACE(v.name);
    const std::string key = Unhex(v.key), iv = Unhex(v.iv), plaintext = Unhex(v.plaintext),
                      aad = Unhex(v.aad);
    const std::string expected = std::string(v.ciphertext) + v.tag;

    absl::StatusOr<std::string> sealed = Seal(key, iv, plaintext, aad);
    ASSERT_TRUE(sealed.ok()) << sealed.status();
    EXPECT_EQ(HexEncode(*sealed), expected);

    absl::StatusOr<AesGcm> aead = AesGcm::Create(key);
    ASSERT_TRUE(aead.ok()) << aead.status();
    absl::StatusOr<std::string> sealed_again = aead->Seal(iv, plaintext, aad);
    ASSERT_TRUE(sealed_again.ok()) << sealed_again.status();
    EXPECT_EQ(HexEncode(*sealed_again), expected);

    absl::StatusOr<std::string> opened = Open(key, iv, Unhex(expected), aad);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, plaintext);
    absl::StatusOr<std::string> opened_again = aead->Open(iv, Unhex(expected), aad);
    ASSERT_TRUE(opened_again.ok()) << opened_again.status();
    EXPECT_EQ(*opened_again, plaintext);
  }
}

const GcmVector& Tc16() { return kVectors[2]; }

void ExpectDataLoss(const absl::StatusOr<std::string>& result) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss) << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("failed to authenticate"));
}

TEST(AeadTest, EverySingleBitFlipIsRejected) {
  const std::string key = Unhex(Tc16().key), iv = Unhex(Tc16().iv), aad = Unhex(Tc16().aad);
  const std::string sealed = Unhex(std::string(Tc16().ciphertext) + Tc16().tag);
  absl::StatusOr<AesGcm> aead = AesGcm::Create(key);
  ASSERT_TRUE(aead.ok()) << aead.status();
  for (size_t bit = 0; bit < sealed.size() * 8; ++bit) {
    std::string tampered = sealed;
    tampered[bit / 8] = static_cast<char>(tampered[bit / 8] ^ (1 << (bit % 8)));
    SCOPED_TRACE(bit);
    ExpectDataLoss(aead->Open(iv, tampered, aad));
  }
  // The object stays usable after failures.
  absl::StatusOr<std::string> opened = aead->Open(iv, sealed, aad);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(HexEncode(*opened), Tc16().plaintext);
}

TEST(AeadTest, EveryTruncationIsRejected) {
  const std::string key = Unhex(Tc16().key), iv = Unhex(Tc16().iv), aad = Unhex(Tc16().aad);
  const std::string sealed = Unhex(std::string(Tc16().ciphertext) + Tc16().tag);
  for (size_t size = 0; size < sealed.size(); ++size) {
    SCOPED_TRACE(size);
    absl::StatusOr<std::string> opened = Open(key, iv, sealed.substr(0, size), aad);
    if (size < kAesGcmTagBytes) {
      EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument) << opened.status();
    } else {
      ExpectDataLoss(opened);
    }
  }
}

TEST(AeadTest, WrongAadKeyOrNonceIsRejected) {
  const std::string key = Unhex(Tc16().key), iv = Unhex(Tc16().iv), aad = Unhex(Tc16().aad);
  const std::string sealed = Unhex(std::string(Tc16().ciphertext) + Tc16().tag);
  ExpectDataLoss(Open(key, iv, sealed, ""));
  ExpectDataLoss(Open(key, iv, sealed, aad + "x"));
  ExpectDataLoss(Open(key, iv, sealed, aad.substr(1)));
  std::string other_key = key;
  other_key[0] ^= 1;
  ExpectDataLoss(Open(other_key, iv, sealed, aad));
  std::string other_iv = iv;
  other_iv[11] ^= 0x80;
  ExpectDataLoss(Open(key, other_iv, sealed, aad));
}

TEST(AeadTest, FailureLeaksNoKeyAndLeavesNoOpenSslError) {
  const std::string key = Unhex(Tc16().key), iv = Unhex(Tc16().iv);
  // An error some other code left in the queue must survive; Open must add none of its own.
  ERR_clear_error();
  ERR_raise(ERR_LIB_USER, 42);
  absl::StatusOr<std::string> opened = Open(key, iv, std::string(40, 'x'), "");
  ExpectDataLoss(opened);
  const std::string message(opened.status().message());
  EXPECT_THAT(message, ::testing::Not(HasSubstr(Tc16().key)));
  EXPECT_THAT(message, ::testing::Not(HasSubstr(key)));
  const unsigned long first = ERR_get_error();
  EXPECT_EQ(ERR_GET_LIB(first), ERR_LIB_USER);
  EXPECT_EQ(ERR_GET_REASON(first), 42);
  EXPECT_EQ(ERR_get_error(), 0u);
}

TEST(AeadTest, RejectsBadSizes) {
  const std::string key(32, 'k'), iv(12, 'n');
  for (size_t size : {0, 16, 31, 33}) {
    const std::string bad_key(size, 'k');
    EXPECT_EQ(Seal(bad_key, iv, "p", "").status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(Open(bad_key, iv, std::string(17, 'c'), "").status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(AesGcm::Create(bad_key).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_THAT(std::string(Seal(std::string(31, 'k'), iv, "p", "").status().message()),
              HasSubstr("key is 31 bytes"));
  for (size_t size : {0, 8, 11, 13, 16}) {
    const std::string bad_iv(size, 'n');
    const absl::Status status = Seal(key, bad_iv, "p", "").status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()), HasSubstr("nonce is"));
    EXPECT_EQ(Open(key, bad_iv, std::string(17, 'c'), "").status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  const absl::Status short_input = Open(key, iv, std::string(15, 'c'), "").status();
  EXPECT_EQ(short_input.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(short_input.message()), HasSubstr("shorter than the 16-byte tag"));
}

TEST(AeadTest, ReusedContextAlternatesSealAndOpen) {
  const std::string key(32, '\x42');
  absl::StatusOr<AesGcm> aead = AesGcm::Create(key);
  ASSERT_TRUE(aead.ok()) << aead.status();
  const std::string record(4096, 'r');
  for (int i = 0; i < 8; ++i) {
    std::string nonce(12, '\0');
    nonce[0] = static_cast<char>(i);
    absl::StatusOr<std::string> sealed = aead->Seal(nonce, record, "entry/path");
    ASSERT_TRUE(sealed.ok()) << sealed.status();
    ASSERT_EQ(sealed->size(), record.size() + kAesGcmTagBytes);
    absl::StatusOr<std::string> expected = Seal(key, nonce, record, "entry/path");
    ASSERT_TRUE(expected.ok()) << expected.status();
    EXPECT_EQ(*sealed, *expected);
    absl::StatusOr<std::string> opened = aead->Open(nonce, *sealed, "entry/path");
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, record);
  }
  // Moving keeps the key.
  AesGcm moved = std::move(*aead);
  absl::StatusOr<std::string> sealed = moved.Seal(std::string(12, '\0'), "x", "");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(Open(key, std::string(12, '\0'), *sealed, "").value_or(""), "x");
}

// The free functions share only the immutable fetched cipher, so they are safe to call from
// several threads at once (also exercised under --config=tsan).
TEST(AeadTest, FreeFunctionsAreThreadSafe) {
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      const std::string key(32, static_cast<char>(t));
      const std::string nonce(12, static_cast<char>(t));
      for (int i = 0; i < 200; ++i) {
        const std::string plaintext(static_cast<size_t>(i), static_cast<char>(i));
        absl::StatusOr<std::string> sealed = Seal(key, nonce, plaintext, "aad");
        if (!sealed.ok() || Open(key, nonce, *sealed, "aad").value_or("?") != plaintext) {
          ++failures[static_cast<size_t>(t)];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(failures, ::testing::Each(0));
}

RC_GTEST_PROP(AeadProperty, RoundTripsAndRejectsTampering, ()) {
  const std::string key = *rc::gen::container<std::string>(32, rc::gen::arbitrary<char>());
  const std::string nonce = *rc::gen::container<std::string>(12, rc::gen::arbitrary<char>());
  const std::string plaintext = *rc::gen::arbitrary<std::string>();
  const std::string aad = *rc::gen::arbitrary<std::string>();

  absl::StatusOr<std::string> sealed = Seal(key, nonce, plaintext, aad);
  RC_ASSERT(sealed.ok());
  RC_ASSERT(sealed->size() == plaintext.size() + kAesGcmTagBytes);
  absl::StatusOr<std::string> opened = Open(key, nonce, *sealed, aad);
  RC_ASSERT(opened.ok());
  RC_ASSERT(*opened == plaintext);

  const size_t bit = *rc::gen::inRange<size_t>(0, sealed->size() * 8);
  std::string flipped = *sealed;
  flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
  RC_ASSERT(Open(key, nonce, flipped, aad).status().code() == absl::StatusCode::kDataLoss);

  const size_t cut = *rc::gen::inRange<size_t>(1, sealed->size() + 1);
  const absl::StatusCode truncated =
      Open(key, nonce, absl::string_view(*sealed).substr(0, sealed->size() - cut), aad)
          .status()
          .code();
  RC_ASSERT(truncated == (sealed->size() - cut < kAesGcmTagBytes
                              ? absl::StatusCode::kInvalidArgument
                              : absl::StatusCode::kDataLoss));

  RC_ASSERT(Open(key, nonce, *sealed, aad + "\x01").status().code() == absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace bulwark::crypto
