// A main() for running a libFuzzer target without libFuzzer, so it runs under `bazel test`:
// the target's seed inputs, then seeded random mutations of them (byte flips, inserts, deletes,
// splices, truncations). With file arguments, runs exactly those files (to replay a crash that
// libFuzzer found); with `--write_seeds DIR`, writes the seed inputs there as a starting corpus
// for libFuzzer. The seed is printed; set BULWARK_FUZZ_SEED and BULWARK_FUZZ_RUNS to change the
// seed and the number of mutated inputs.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/env/random.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace bulwark::fuzz {

// Defined by the fuzz target: well-formed inputs to start from.
std::vector<std::string> SeedInputs();

namespace {

constexpr uint64_t kDefaultSeed = 20240601;
constexpr uint64_t kDefaultRuns = 20000;
constexpr size_t kInputBytesMax = 64 * 1024;

void Run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

std::string Mutate(Random& random, const std::vector<std::string>& seeds, std::string input) {
  const uint64_t mutations = random.UniformInRange(1, 8);
  for (uint64_t i = 0; i < mutations; ++i) {
    switch (random.Uniform(7)) {
      case 0:  // Flip a bit.
        if (!input.empty()) {
          input[random.Uniform(input.size())] ^= static_cast<char>(1u << random.Uniform(8));
        }
        break;
      case 1:  // Set a byte to an interesting value.
        if (!input.empty()) {
          static constexpr char kInteresting[] = {'\0', '/',    '.',    '=',    '+', '-',  'v',
                                                  ' ',  '\x7f', '\x80', '\xff', '"', '\\', 'A'};
          input[random.Uniform(input.size())] = kInteresting[random.Uniform(sizeof(kInteresting))];
        }
        break;
      case 2:  // Insert random bytes.
        if (input.size() < kInputBytesMax) {
          input.insert(random.Uniform(input.size() + 1),
                       random.Bytes(random.UniformInRange(1, 16)));
        }
        break;
      case 3:  // Delete a range.
        if (!input.empty()) {
          const size_t at = random.Uniform(input.size());
          input.erase(at, random.UniformInRange(1, 16));
        }
        break;
      case 4: {  // Splice in part of another seed.
        const std::string& other = seeds[random.Uniform(seeds.size())];
        if (!other.empty() && input.size() < kInputBytesMax) {
          const size_t from = random.Uniform(other.size());
          input.insert(random.Uniform(input.size() + 1),
                       other.substr(from, random.UniformInRange(1, other.size() - from)));
        }
        break;
      }
      case 5:  // Truncate.
        input.resize(random.Uniform(input.size() + 1));
        break;
      case 6:  // Repeat a range (grows counts and lengths past the limits).
        if (!input.empty() && input.size() < kInputBytesMax) {
          const size_t at = random.Uniform(input.size());
          const std::string piece = input.substr(at, random.UniformInRange(1, 64));
          const uint64_t times = random.UniformInRange(1, 200);
          std::string repeated;
          for (uint64_t t = 0; t < times && repeated.size() < kInputBytesMax; ++t)
            repeated += piece;
          input.insert(at, repeated);
        }
        break;
    }
  }
  return input;
}

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::strtoull(value, nullptr, 10) : fallback;
}

}  // namespace
}  // namespace bulwark::fuzz

int main(int argc, char** argv) {
  using namespace bulwark::fuzz;  // NOLINT: a tiny main.
  if (argc == 3 && std::string(argv[1]) == "--write_seeds") {
    const std::vector<std::string> seeds = SeedInputs();
    for (size_t i = 0; i < seeds.size(); ++i) {
      const std::string path = std::string(argv[2]) + "/seed_" + std::to_string(i);
      std::ofstream out(path, std::ios::binary);
      out << seeds[i];
      if (!out) {
        std::fprintf(stderr, "cannot write %s\n", path.c_str());
        return 2;
      }
    }
    std::printf("wrote %zu seeds to %s\n", seeds.size(), argv[2]);
    return 0;
  }
  if (argc > 1) {
    for (int i = 1; i < argc; ++i) {
      std::ifstream file(argv[i], std::ios::binary);
      if (!file) {
        std::fprintf(stderr, "cannot read %s\n", argv[i]);
        return 2;
      }
      std::stringstream contents;
      contents << file.rdbuf();
      std::fprintf(stderr, "running %s\n", argv[i]);
      Run(contents.str());
    }
    return 0;
  }
  const uint64_t seed = EnvOr("BULWARK_FUZZ_SEED", kDefaultSeed);
  const uint64_t runs = EnvOr("BULWARK_FUZZ_RUNS", kDefaultRuns);
  std::printf("fuzz corpus driver: seed=%llu runs=%llu (BULWARK_FUZZ_SEED, BULWARK_FUZZ_RUNS)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(runs));
  std::fflush(stdout);
  const std::vector<std::string> seeds = SeedInputs();
  for (const std::string& input : seeds) Run(input);
  bulwark::SeededRandom random(seed);
  for (uint64_t i = 0; i < runs; ++i) {
    const std::string& base = seeds[random.Uniform(seeds.size())];
    Run(Mutate(random, seeds, base));
  }
  std::printf("ran %zu seeds and %llu mutated inputs: no invariant broken\n", seeds.size(),
              static_cast<unsigned long long>(runs));
  return 0;
}
