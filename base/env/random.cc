// Portable distributions over Random::Next64 and the xoshiro256** generator.
#include "base/env/random.h"

#include <cstring>

#include "base/status/check.h"

namespace bulwark {
namespace {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t RotateLeft(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

void Random::Fill(absl::Span<uint8_t> out) {
  size_t i = 0;
  while (i < out.size()) {
    uint64_t word = Next64();
    size_t n = std::min(sizeof(word), out.size() - i);
    std::memcpy(out.data() + i, &word, n);
    i += n;
  }
}

uint64_t Random::Uniform(uint64_t n) {
  CHECK(n > 0) << "Uniform(0)";
  // Lemire, "Fast Random Integer Generation in an Interval" (2019): take the high word of
  // x * n, rejecting the few low words that would bias the result.
  unsigned __int128 m = static_cast<unsigned __int128>(Next64()) * n;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < n) {
    uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<unsigned __int128>(Next64()) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

uint64_t Random::UniformInRange(uint64_t lo, uint64_t hi) {
  CHECK(lo <= hi) << "UniformInRange(" << lo << ", " << hi << ")";
  uint64_t span = hi - lo;
  if (span == UINT64_MAX) return Next64();
  return lo + Uniform(span + 1);
}

double Random::UnitDouble() { return static_cast<double>(Next64() >> 11) * 0x1.0p-53; }

bool Random::Bernoulli(double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return UnitDouble() < p;
}

std::string Random::Bytes(size_t n) {
  std::string out(n, '\0');
  Fill(absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size()));
  return out;
}

SeededRandom::SeededRandom(uint64_t seed) : seed_(seed) {
  uint64_t sm = seed;
  for (uint64_t& word : state_) word = SplitMix64(sm);
}

uint64_t SeededRandom::Next64() {
  const uint64_t result = RotateLeft(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = RotateLeft(state_[3], 45);
  return result;
}

SeededRandom SeededRandom::Derive(absl::string_view name) const {
  return SeededRandom(StableHash64(name, seed_));
}

uint64_t StableHash64(absl::string_view bytes, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return SplitMix64(h);
}

}  // namespace bulwark
