// The fuzz body for opening barrier entries: arbitrary bytes are stored as a physical entry and
// read back through an unsealed barrier. Shared by the libFuzzer target (tools/fuzz) and by
// barrier_open_fuzzer_test, which runs it over a fixed corpus under `bazel test`.
#ifndef BULWARK_CORE_BARRIER_BARRIER_OPEN_FUZZER_H_
#define BULWARK_CORE_BARRIER_BARRIER_OPEN_FUZZER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "base/env/random.h"
#include "base/storage/in_memory_storage.h"
#include "core/barrier/barrier.h"

namespace bulwark::fuzz {

// The barrier key every fuzz input is stored under, and the only value ever sealed there.
inline constexpr absl::string_view kFuzzEntryKey = "fuzz/entry";
inline constexpr absl::string_view kFuzzEntryValue = "the one value sealed at fuzz/entry";

// One process-wide barrier: keys from a fixed seed, initialized 1-of-1, unsealed, rotated once
// (terms 1 and 2), with real entries written under both terms. Deterministic in every process.
struct FuzzFixture {
  FuzzFixture();

  SeededRandom random;
  InMemoryStorage physical;
  std::unique_ptr<Barrier> barrier;
  std::string real_entry;        // Physical bytes of kFuzzEntryKey (term 2): opens.
  std::string real_entry_term1;  // An earlier sealing of the same value under term 1: opens.
  std::string other_entry;       // A real entry of another key: must not open here.
};

FuzzFixture& GetFuzzFixture();

// Stores `data` as the physical entry of kFuzzEntryKey and opens it through the barrier.
// Returns OK if it opened (then the value is checked to be kFuzzEntryValue) or the kDataLoss
// error; any other outcome, or an oversized input, aborts with CHECK: that is the finding.
// Inputs longer than kStorageValueBytesMax are ignored (OK).
absl::Status FuzzBarrierOpen(absl::string_view data);

}  // namespace bulwark::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

#endif  // BULWARK_CORE_BARRIER_BARRIER_OPEN_FUZZER_H_
