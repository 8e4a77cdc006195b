// PosixRandom: the production Random, drawing every bit from OpenSSL's CSPRNG.
#ifndef BULWARK_BASE_ENV_POSIX_POSIX_RANDOM_H_
#define BULWARK_BASE_ENV_POSIX_POSIX_RANDOM_H_

#include <cstdint>

#include "absl/types/span.h"
#include "base/env/random.h"

namespace bulwark {

// Thread-safe (OpenSSL's RAND_bytes is). Not seedable: simulations use SeededRandom.
class PosixRandom final : public Random {
 public:
  PosixRandom() = default;

  // 64 bits from RAND_bytes. CHECK-fails if the CSPRNG cannot produce output (an unseeded or
  // broken OpenSSL, which no caller could recover from safely).
  uint64_t Next64() override;

  // Fills `out` straight from RAND_bytes; suitable for key material and nonces. Same failure
  // behaviour as Next64.
  void Fill(absl::Span<uint8_t> out) override;
};

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_POSIX_POSIX_RANDOM_H_
