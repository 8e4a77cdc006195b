// Shamir secret sharing over GF(2^8), byte by byte, with the share layout of HashiCorp Vault's
// `shamir` package: used to split the barrier's root key into unseal key shares.
#ifndef BULWARK_BASE_CRYPTO_SHAMIR_H_
#define BULWARK_BASE_CRYPTO_SHAMIR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace bulwark::crypto {

// Fills the whole span with uniformly random bytes, or aborts: it has no way to report failure.
// Production passes a CSPRNG (OpenSSL RAND_bytes behind a CHECK); the simulator passes its
// seeded generator, which makes shares reproducible from the seed.
using RandomBytesFn = absl::FunctionRef<void(absl::Span<uint8_t>)>;

// A share's x-coordinate is one nonzero byte, so there can be at most 255 distinct shares.
inline constexpr int kShamirMaxShares = 255;

// Splits `secret` into `shares` shares of which any `threshold` reconstruct it with Combine()
// and any `threshold - 1` reveal nothing about it.
//
// Each share is secret.size() + 1 bytes: the y-values of one polynomial per secret byte,
// followed by the share's x-coordinate. Vault lays shares out the same way, so its Combine
// accepts ours. Unlike Vault, which draws x-coordinates as a random permutation of 1..255, share
// i (0-based) gets x = i + 1: x-coordinates are public (stored in the share), so randomising
// them adds no secrecy, and fixed ones make the use of `random` exactly this: when
// threshold > 1, one call for secret.size() * (threshold - 1) bytes, where byte
// [b * (threshold - 1) + (k - 1)] is the coefficient of x^k in the polynomial for secret byte b
// (a zero leading coefficient is allowed; that keeps the polynomial uniform over all of degree
// < threshold). When threshold == 1, `random` is not called and every share's y-values equal
// the secret. Coefficients are wiped before return.
//
// Errors: InvalidArgument if `secret` is empty, or unless 1 <= threshold <= shares <= 255.
absl::StatusOr<std::vector<std::string>> Split(absl::string_view secret, int shares, int threshold,
                                               RandomBytesFn random);

// Reconstructs a secret from shares made by Split(), by Lagrange interpolation at x = 0.
//
// Combine cannot tell whether enough shares were given: with fewer than the threshold, or with
// shares from different splits, it returns an unrelated value of the right length, not an error.
// Callers detect a wrong result by using it (e.g. the key fails to decrypt the keyring).
//
// Errors (all InvalidArgument, message naming the problem): `parts` is empty; a part is shorter
// than 2 bytes; parts differ in length; a part's x-coordinate (last byte) is 0, which Split never
// produces; two parts share an x-coordinate.
absl::StatusOr<std::string> Combine(const std::vector<std::string>& parts);

}  // namespace bulwark::crypto

#endif  // BULWARK_BASE_CRYPTO_SHAMIR_H_
