// Runs the barrier_open_fuzzer body without libFuzzer over a fixed corpus: seeded random bytes,
// real entries, and systematic mutations of a real entry (every bit flip, every truncation,
// extensions, every version byte, other terms, another key's entry). Real entries must open; every
// other input must fail with kDataLoss. Prints its seed; any CHECK failure aborts the test.
#include "core/barrier/barrier_open_fuzzer.h"

#include <cstdint>
#include <iostream>
#include <string>

#include "base/env/random.h"
#include "base/status/check.h"

namespace bulwark::fuzz {
namespace {

constexpr uint64_t kSeed = 20240501;

int Run() {
  std::cout << "barrier_open_fuzzer_test: seed " << kSeed << std::endl;
  FuzzFixture& f = GetFuzzFixture();
  const std::string real = f.real_entry;
  uint64_t inputs = 0;
  auto expect_open = [&](const std::string& input) {
    ++inputs;
    CHECK_OK(FuzzBarrierOpen(input));
    CHECK(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size()) ==
          0);
  };
  auto expect_loss = [&](const std::string& input) {
    ++inputs;
    const absl::Status status = FuzzBarrierOpen(input);
    CHECK(status.code() == absl::StatusCode::kDataLoss)
        << "input of " << input.size() << " bytes: " << status;
  };

  expect_open(real);
  expect_open(f.real_entry_term1);
  expect_loss(f.other_entry);

  for (size_t bit = 0; bit < real.size() * 8; ++bit) {
    std::string flipped = real;
    flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
    expect_loss(flipped);
  }
  for (size_t size = 0; size < real.size(); ++size) expect_loss(real.substr(0, size));
  for (int version = 0; version < 256; ++version) {
    if (version == kBarrierFormatVersion) continue;
    std::string changed = real;
    changed[0] = static_cast<char>(version);
    expect_loss(changed);
  }
  for (uint32_t term : {0u, 1u, 3u, 0x7fffffffu, 0xffffffffu}) {
    std::string changed = real;
    for (int i = 0; i < 4; ++i) changed[1 + i] = static_cast<char>(term >> (24 - 8 * i));
    expect_loss(changed);
  }

  SeededRandom random(kSeed);
  for (int i = 0; i < 64; ++i) expect_loss(real + random.Bytes(1 + random.Uniform(64)));
  for (int i = 0; i < 3000; ++i) {
    const size_t size = random.OneIn(10) ? random.Uniform(8192) : random.Uniform(128);
    std::string input = random.Bytes(size);
    // Half of them look like entries: the right version and a real term.
    if (input.size() > 5 && random.OneIn(2)) {
      input[0] = static_cast<char>(kBarrierFormatVersion);
      input[1] = input[2] = input[3] = 0;
      input[4] = static_cast<char>(1 + random.Uniform(2));
    }
    expect_loss(input);
  }
  // Random multi-byte damage to the real entry.
  for (int i = 0; i < 2000; ++i) {
    std::string damaged = real;
    const uint64_t edits = 1 + random.Uniform(4);
    for (uint64_t e = 0; e < edits; ++e) {
      damaged[random.Uniform(damaged.size())] = static_cast<char>(random.Uniform(256));
    }
    if (damaged != real) expect_loss(damaged);
  }
  // Still intact after all of that.
  expect_open(real);
  std::cout << "barrier_open_fuzzer_test: " << inputs << " inputs, all as expected" << std::endl;
  return 0;
}

}  // namespace
}  // namespace bulwark::fuzz

int main() { return bulwark::fuzz::Run(); }
