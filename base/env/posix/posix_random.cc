// The production Random: OpenSSL's RAND_bytes for every word and byte.
#include "base/env/posix/posix_random.h"

#include <openssl/rand.h>

#include <algorithm>
#include <climits>

#include "base/status/check.h"

namespace bulwark {

uint64_t PosixRandom::Next64() {
  uint64_t word = 0;
  Fill(absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&word), sizeof(word)));
  return word;
}

void PosixRandom::Fill(absl::Span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    // RAND_bytes takes an int length.
    const size_t n = std::min<size_t>(out.size() - done, INT_MAX);
    CHECK(RAND_bytes(out.data() + done, static_cast<int>(n)) == 1)
        << "OpenSSL RAND_bytes failed to produce " << n << " random bytes";
    done += n;
  }
}

}  // namespace bulwark
