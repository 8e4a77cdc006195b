// Tests for GF(2^8) arithmetic: FIPS-197 known answers, and agreement with an independent
// log/exp-table implementation over every pair of operands.
#include "base/crypto/gf256.h"

#include <array>
#include <cstdint>

#include "gtest/gtest.h"
#include "rapidcheck/gtest.h"

namespace bulwark::crypto::gf256 {
namespace {

// FIPS-197 section 4.2 examples and the inverse pair from its S-box derivation; also checked at
// compile time, since the functions are constexpr.
static_assert(Mul(0x57, 0x83) == 0xc1);
static_assert(Mul(0x57, 0x13) == 0xfe);
static_assert(Mul(0x53, 0xca) == 0x01);

TEST(Gf256Test, KnownAnswers) {
  EXPECT_EQ(Mul(0x53, 0xca), 0x01);
  EXPECT_EQ(Mul(0x57, 0x83), 0xc1);
  EXPECT_EQ(Mul(0x57, 0x13), 0xfe);
  EXPECT_EQ(Mul(0x57, 0x02), 0xae);  // xtime(57), FIPS-197 section 4.2.1.
  EXPECT_EQ(Mul(0xae, 0x02), 0x47);  // xtime(ae): the reduction kicks in.
  EXPECT_EQ(Inverse(0x53), 0xca);
  EXPECT_EQ(Inverse(0xca), 0x53);
  EXPECT_EQ(Inverse(0x01), 0x01);
  EXPECT_EQ(Inverse(0x00), 0x00);
  EXPECT_EQ(Div(0x01, 0x53), 0xca);
}

// Reference arithmetic by another route: powers of the generator 0x03 enumerate the 255 nonzero
// elements, so a * b = exp[log a + log b].
struct LogTables {
  std::array<uint8_t, 510> exp{};
  std::array<int, 256> log{};
  LogTables() {
    unsigned value = 1;
    for (int i = 0; i < 255; ++i) {
      exp[i] = exp[i + 255] = static_cast<uint8_t>(value);
      log[value] = i;
      unsigned times3 = value ^ (value << 1);
      if (times3 & 0x100) times3 ^= 0x11b;
      value = times3;
    }
  }
  uint8_t Mul(uint8_t a, uint8_t b) const {
    if (a == 0 || b == 0) return 0;
    return exp[log[a] + log[b]];
  }
};

TEST(Gf256Test, MulMatchesLogTablesForAllPairs) {
  const LogTables tables;
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      ASSERT_EQ(Mul(static_cast<uint8_t>(a), static_cast<uint8_t>(b)),
                tables.Mul(static_cast<uint8_t>(a), static_cast<uint8_t>(b)))
          << "a=" << a << " b=" << b;
    }
  }
}

TEST(Gf256Test, EveryNonzeroElementHasAnInverse) {
  for (int a = 1; a < 256; ++a) {
    const uint8_t x = static_cast<uint8_t>(a);
    EXPECT_EQ(Mul(x, Inverse(x)), 1) << "a=" << a;
  }
}

RC_GTEST_PROP(Gf256Property, FieldLaws, (uint8_t a, uint8_t b, uint8_t c)) {
  RC_ASSERT(Mul(a, b) == Mul(b, a));
  RC_ASSERT(Mul(Mul(a, b), c) == Mul(a, Mul(b, c)));
  RC_ASSERT(Mul(a, Add(b, c)) == Add(Mul(a, b), Mul(a, c)));
  RC_ASSERT(Mul(a, 1) == a);
  if (b != 0) RC_ASSERT(Mul(Div(a, b), b) == a);
}

}  // namespace
}  // namespace bulwark::crypto::gf256
