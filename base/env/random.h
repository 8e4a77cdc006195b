// The Random seam: every random choice in core code draws from this interface. Distributions are
// our own (libstdc++'s *_distribution outputs differ between library versions), so a seed gives
// the same choices on every machine.
#ifndef BULWARK_BASE_ENV_RANDOM_H_
#define BULWARK_BASE_ENV_RANDOM_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace bulwark {

// A source of random 64-bit words plus distributions derived from them. Thread-compatible.
class Random {
 public:
  virtual ~Random() = default;

  // Returns 64 uniformly distributed bits.
  virtual uint64_t Next64() = 0;

  // Fills `out` with random bytes. Production implementations draw from a CSPRNG, so this is
  // the call to use for key material and nonces; simulated ones draw from the seeded stream.
  virtual void Fill(absl::Span<uint8_t> out);

  // Uniform in [0, n). REQUIRES: n > 0. Unbiased (Lemire's multiply-and-reject).
  uint64_t Uniform(uint64_t n);

  // Uniform in [lo, hi], both inclusive. REQUIRES: lo <= hi.
  uint64_t UniformInRange(uint64_t lo, uint64_t hi);

  // True with probability 1/n. REQUIRES: n > 0.
  bool OneIn(uint64_t n) { return Uniform(n) == 0; }

  // True with probability p; p <= 0 is never, p >= 1 is always.
  bool Bernoulli(double p);

  // Uniform in [0, 1) with 53 bits of precision.
  double UnitDouble();

  // Returns n random bytes (via Fill).
  std::string Bytes(size_t n);

  // Fisher-Yates shuffle driven by Uniform.
  template <typename T>
  void Shuffle(std::vector<T>& items) {
    for (size_t i = items.size(); i > 1; --i) {
      size_t j = static_cast<size_t>(Uniform(i));
      std::swap(items[i - 1], items[j]);
    }
  }
};

// A deterministic generator (xoshiro256**, seeded through splitmix64). Same seed, same stream,
// on every platform. Not cryptographically secure: for simulation and for jitter only.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(uint64_t seed);

  uint64_t Next64() override;

  // An independent stream derived from this generator's seed and `name` (not from its current
  // position), so subsystems can draw without shifting each other's sequences.
  SeededRandom Derive(absl::string_view name) const;

  uint64_t seed() const { return seed_; }

 private:
  uint64_t seed_;
  uint64_t state_[4];
};

// A stable 64-bit hash of bytes (FNV-1a followed by a splitmix64 finaliser). Unlike absl::Hash
// it is not salted per process, so it may feed seeds and trace hashes.
uint64_t StableHash64(absl::string_view bytes, uint64_t seed = 0);

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_RANDOM_H_
