// Shamir secret sharing: polynomial evaluation (Split) and interpolation at zero (Combine).
#include "base/crypto/shamir.h"

#include <array>
#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/crypto/gf256.h"
#include "base/crypto/secure_buffer.h"

namespace bulwark::crypto {

absl::StatusOr<std::vector<std::string>> Split(absl::string_view secret, int shares, int threshold,
                                               RandomBytesFn random) {
  if (secret.empty()) {
    return absl::InvalidArgumentError("shamir split: the secret is empty; it needs >= 1 byte");
  }
  if (shares < 1 || shares > kShamirMaxShares) {
    return absl::InvalidArgumentError(absl::StrCat("shamir split: shares is ", shares,
                                                   "; it must be in [1, ", kShamirMaxShares, "]"));
  }
  if (threshold < 1 || threshold > shares) {
    return absl::InvalidArgumentError(absl::StrCat("shamir split: threshold is ", threshold,
                                                   "; it must be in [1, shares = ", shares, "]"));
  }

  const size_t degree = static_cast<size_t>(threshold - 1);
  // coefficients[b * degree + (k - 1)] multiplies x^k in the polynomial for secret byte b.
  SecureBuffer coefficients(secret.size() * degree);
  if (degree > 0) random(coefficients.span());

  std::vector<std::string> result(static_cast<size_t>(shares));
  for (int share = 0; share < shares; ++share) {
    const uint8_t x = static_cast<uint8_t>(share + 1);
    std::string& out = result[static_cast<size_t>(share)];
    out.resize(secret.size() + 1);
    for (size_t b = 0; b < secret.size(); ++b) {
      // Horner's rule, from the highest-degree coefficient down to the secret byte itself.
      const uint8_t* coefficient = coefficients.data() + b * degree;
      uint8_t y = 0;
      for (size_t k = degree; k > 0; --k) y = gf256::Add(gf256::Mul(y, x), coefficient[k - 1]);
      y = gf256::Add(gf256::Mul(y, x), static_cast<uint8_t>(secret[b]));
      out[b] = static_cast<char>(y);
    }
    out[secret.size()] = static_cast<char>(x);
  }
  return result;
}

absl::StatusOr<std::string> Combine(const std::vector<std::string>& parts) {
  if (parts.empty()) {
    return absl::InvalidArgumentError("shamir combine: no parts given; need at least 1");
  }
  const size_t part_size = parts[0].size();
  std::array<bool, 256> seen_x{};
  std::vector<uint8_t> xs(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    if (part.size() < 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("shamir combine: part ", i, " is ", part.size(),
                       " bytes; a part is at least 2 (1 secret byte and the x-coordinate)"));
    }
    if (part.size() != part_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("shamir combine: parts differ in length (part 0 is ", part_size,
                       " bytes, part ", i, " is ", part.size(), "); all must come from one split"));
    }
    const uint8_t x = static_cast<uint8_t>(part.back());
    if (x == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("shamir combine: part ", i, " has x-coordinate 0, which no split makes"));
    }
    if (seen_x[x]) {
      return absl::InvalidArgumentError(absl::StrCat("shamir combine: duplicate x-coordinate ",
                                                     static_cast<int>(x), " (part ", i,
                                                     "); each part must differ"));
    }
    seen_x[x] = true;
    xs[i] = x;
  }

  // The Lagrange basis polynomials evaluated at 0 depend only on the x-coordinates:
  // basis[i] = prod_{j != i} x_j / (x_j - x_i), with subtraction being XOR. The divisor is
  // nonzero because the x-coordinates are distinct.
  std::vector<uint8_t> basis(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    uint8_t numerator = 1;
    uint8_t denominator = 1;
    for (size_t j = 0; j < parts.size(); ++j) {
      if (j == i) continue;
      numerator = gf256::Mul(numerator, xs[j]);
      denominator = gf256::Mul(denominator, gf256::Add(xs[j], xs[i]));
    }
    basis[i] = gf256::Div(numerator, denominator);
  }

  const size_t secret_size = part_size - 1;
  std::string secret(secret_size, '\0');
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    for (size_t b = 0; b < secret_size; ++b) {
      secret[b] = static_cast<char>(gf256::Add(
          static_cast<uint8_t>(secret[b]), gf256::Mul(basis[i], static_cast<uint8_t>(part[b]))));
    }
  }
  return secret;
}

}  // namespace bulwark::crypto
