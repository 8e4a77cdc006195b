#include "base/crypto/hmac.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <vector>

#include "base/crypto/sha256.h"
#include "gtest/gtest.h"

namespace bulwark::crypto {
namespace {

// RFC 4231 test cases 1 and 2, and a key longer than the block (case 6).
TEST(HmacSha256Test, MatchesRfc4231) {
  EXPECT_EQ(HexEncode(HmacSha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(HexEncode(HmacSha256(std::string(131, '\xaa'),
                                 "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256Test, EmptyKeyAndDataAreAllowed) {
  EXPECT_EQ(HexEncode(HmacSha256("", "")),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

// Cross-checked against OpenSSL's own HMAC() for keys and messages of many lengths.
TEST(HmacSha256Test, MatchesOpenSslHmacForManyLengths) {
  for (size_t key_len : {0, 1, 31, 32, 63, 64, 65, 200}) {
    const std::string k(key_len, static_cast<char>('k' + key_len % 7));
    HmacSha256Key key(k);
    for (size_t len : {0, 1, 55, 56, 64, 1000}) {
      const std::string m(len, static_cast<char>('a' + len % 5));
      unsigned char want[32];
      unsigned int want_len = 0;
      static const unsigned char kZero = 0;
      ASSERT_NE(
          HMAC(EVP_sha256(), k.empty() ? &kZero : reinterpret_cast<const unsigned char*>(k.data()),
               static_cast<int>(k.size()), reinterpret_cast<const unsigned char*>(m.data()),
               m.size(), want, &want_len),
          nullptr);
      EXPECT_EQ(key.Sign(m), std::string(reinterpret_cast<char*>(want), want_len))
          << key_len << " " << len;
      EXPECT_EQ(HmacSha256(k, m), key.Sign(m));
    }
  }
}

}  // namespace
}  // namespace bulwark::crypto
