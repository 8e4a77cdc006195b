// Cost of the storage barrier for 4 KiB entries next to raw AES-256-GCM of 4 KiB with the same
// OpenSSL (base/crypto AesGcm): the barrier's goal is at least 70% of the raw throughput.
// Nonces come from PosixRandom (OpenSSL RAND_bytes), as in production; the physical storage is
// InMemoryStorage, so no disk is involved.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/crypto/aead.h"
#include "base/crypto/secure_buffer.h"
#include "base/env/posix/posix_random.h"
#include "base/status/check.h"
#include "base/storage/in_memory_storage.h"
#include "benchmark/benchmark.h"
#include "core/barrier/barrier.h"

namespace bulwark {
namespace {

constexpr size_t kValueBytes = 4096;

// An unsealed barrier over an in-memory store holding `key` -> 4 KiB.
struct Fixture {
  Fixture() {
    barrier = *Barrier::Open(physical, random);
    std::vector<crypto::SecureBuffer> shares = *barrier->Initialize(1, 1);
    CHECK_OK(barrier->Unseal(shares[0].view()));
    CHECK_OK(barrier->Put(key, value));
  }
  PosixRandom random;
  InMemoryStorage physical;
  std::unique_ptr<Barrier> barrier;
  const std::string key = "logical-mount/secret/path/to/entry";
  const std::string value = std::string(kValueBytes, 'v');
};

void BM_BarrierPut4KiB(benchmark::State& state) {
  Fixture f;
  for (auto _ : state) {
    absl::Status status = f.barrier->Put(f.key, f.value);
    benchmark::DoNotOptimize(status);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kValueBytes));
}
BENCHMARK(BM_BarrierPut4KiB);

void BM_BarrierGet4KiB(benchmark::State& state) {
  Fixture f;
  for (auto _ : state) {
    absl::StatusOr<std::optional<std::string>> got = f.barrier->Get(f.key);
    benchmark::DoNotOptimize(got);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kValueBytes));
}
BENCHMARK(BM_BarrierGet4KiB);

// Raw AES-256-GCM with a precomputed key schedule: the floor under the barrier.
void BM_RawAesGcmSeal4KiB(benchmark::State& state) {
  PosixRandom random;
  crypto::AesGcm aead = *crypto::AesGcm::Create(random.Bytes(32));
  const std::string value(kValueBytes, 'v');
  const std::string nonce = random.Bytes(12);
  const std::string aad = "\x01\0\0\0\x01logical/logical-mount/secret/path/to/entry";
  for (auto _ : state) {
    absl::StatusOr<std::string> sealed = aead.Seal(nonce, value, aad);
    benchmark::DoNotOptimize(sealed);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kValueBytes));
}
BENCHMARK(BM_RawAesGcmSeal4KiB);

void BM_RawAesGcmOpen4KiB(benchmark::State& state) {
  PosixRandom random;
  crypto::AesGcm aead = *crypto::AesGcm::Create(random.Bytes(32));
  const std::string nonce = random.Bytes(12);
  const std::string aad = "\x01\0\0\0\x01logical/logical-mount/secret/path/to/entry";
  const std::string sealed = *aead.Seal(nonce, std::string(kValueBytes, 'v'), aad);
  for (auto _ : state) {
    absl::StatusOr<std::string> opened = aead.Open(nonce, sealed, aad);
    benchmark::DoNotOptimize(opened);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kValueBytes));
}
BENCHMARK(BM_RawAesGcmOpen4KiB);

// What the barrier adds besides AES: one 12-byte nonce from the CSPRNG per Put.
void BM_PosixRandomNonce(benchmark::State& state) {
  PosixRandom random;
  uint8_t nonce[12];
  for (auto _ : state) {
    random.Fill(absl::MakeSpan(nonce));
    benchmark::DoNotOptimize(nonce);
  }
}
BENCHMARK(BM_PosixRandomNonce);

}  // namespace
}  // namespace bulwark
