// Arithmetic in GF(2^8) with the AES reduction polynomial x^8 + x^4 + x^3 + x + 1 (0x11b), the
// field Shamir secret sharing works in. Constant time: no tables and no data-dependent branches.
#ifndef BULWARK_BASE_CRYPTO_GF256_H_
#define BULWARK_BASE_CRYPTO_GF256_H_

#include <cstdint>

namespace bulwark::crypto::gf256 {

// Addition and subtraction are both XOR in a field of characteristic 2.
constexpr uint8_t Add(uint8_t a, uint8_t b) { return static_cast<uint8_t>(a ^ b); }

// Returns a * b. Shift-and-add ("Russian peasant") over all eight bits of `b`; the conditional
// add and the conditional reduction use all-ones/all-zeros masks instead of branches or a
// log/exp table, so timing does not depend on the operands.
constexpr uint8_t Mul(uint8_t a, uint8_t b) {
  uint8_t product = 0;
  for (int bit = 0; bit < 8; ++bit) {
    const uint8_t add_mask = static_cast<uint8_t>(-(b & 1));
    product = static_cast<uint8_t>(product ^ (a & add_mask));
    const uint8_t reduce_mask = static_cast<uint8_t>(-(a >> 7));
    a = static_cast<uint8_t>((a << 1) ^ (0x1b & reduce_mask));
    b = static_cast<uint8_t>(b >> 1);
  }
  return product;
}

// Returns the multiplicative inverse of `a`, computed as a^254 (a^255 = 1 for a != 0) with a
// fixed sequence of squarings and multiplications. Inverse(0) is 0 by this formula; callers that
// divide must ensure a nonzero divisor.
constexpr uint8_t Inverse(uint8_t a) {
  // 254 = 0b11111110: result = a^2 * a^4 * ... * a^128.
  uint8_t power = a;
  uint8_t result = 1;
  for (int i = 0; i < 7; ++i) {
    power = Mul(power, power);
    result = Mul(result, power);
  }
  return result;
}

// Returns a / b. Precondition: b != 0 (the result is 0 otherwise, never a trap).
constexpr uint8_t Div(uint8_t a, uint8_t b) { return Mul(a, Inverse(b)); }

}  // namespace bulwark::crypto::gf256

#endif  // BULWARK_BASE_CRYPTO_GF256_H_
