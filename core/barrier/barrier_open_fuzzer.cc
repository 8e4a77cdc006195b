// libFuzzer target: arbitrary bytes as a stored barrier entry must open to the one sealed value
// or fail with kDataLoss, never crash, leak, read out of bounds or answer otherwise. Build and run
// it with tools/fuzz; barrier_open_fuzzer_test runs the same body without libFuzzer.
#include "core/barrier/barrier_open_fuzzer.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/crypto/secure_buffer.h"
#include "base/status/check.h"

namespace bulwark::fuzz {

FuzzFixture::FuzzFixture() : random(0xB417EA) {
  barrier = *Barrier::Open(physical, random);
  std::vector<crypto::SecureBuffer> shares = *barrier->Initialize(1, 1);
  CHECK_OK(barrier->Unseal(shares[0].view()));
  CHECK_OK(barrier->Put(kFuzzEntryKey, kFuzzEntryValue));
  real_entry_term1 = **physical.Get(absl::StrCat(kBarrierLogicalPrefix, kFuzzEntryKey));
  CHECK_OK(barrier->Rotate());
  CHECK_OK(barrier->Put(kFuzzEntryKey, kFuzzEntryValue));
  CHECK_OK(barrier->Put("fuzz/other", kFuzzEntryValue));
  real_entry = **physical.Get(absl::StrCat(kBarrierLogicalPrefix, kFuzzEntryKey));
  other_entry = **physical.Get(absl::StrCat(kBarrierLogicalPrefix, "fuzz/other"));
}

FuzzFixture& GetFuzzFixture() {
  static FuzzFixture* const fixture = new FuzzFixture();  // Never destroyed: no exit-order issues.
  return *fixture;
}

absl::Status FuzzBarrierOpen(absl::string_view data) {
  if (data.size() > kStorageValueBytesMax) return absl::OkStatus();
  FuzzFixture& f = GetFuzzFixture();
  CHECK_OK(f.physical.Put(absl::StrCat(kBarrierLogicalPrefix, kFuzzEntryKey), data));
  absl::StatusOr<std::optional<std::string>> opened = f.barrier->Get(kFuzzEntryKey);
  if (opened.ok()) {
    CHECK(opened->has_value()) << "an entry that is present read as absent";
    CHECK(**opened == kFuzzEntryValue)
        << "a forged entry opened to " << opened->value().size() << " bytes";
    return absl::OkStatus();
  }
  CHECK(opened.status().code() == absl::StatusCode::kDataLoss)
      << "unexpected error: " << opened.status();
  return opened.status();
}

}  // namespace bulwark::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bulwark::fuzz::FuzzBarrierOpen(absl::string_view(reinterpret_cast<const char*>(data), size))
      .IgnoreError();
  return 0;
}
