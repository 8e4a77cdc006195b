// Property tests of the barrier (rapidcheck): round trips for arbitrary valid keys and values,
// tamper detection for every kind of damage to a stored entry, the Shamir threshold, and
// rotation. A failing case prints rapidcheck's seed; rerun it with RC_PARAMS="reproduce=...".
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/crypto/aead.h"
#include "base/crypto/secure_buffer.h"
#include "base/crypto/shamir.h"
#include "base/env/random.h"
#include "base/storage/in_memory_storage.h"
#include "core/barrier/barrier.h"
#include "gtest/gtest.h"
#include "rapidcheck/gtest.h"

namespace bulwark {
namespace {

// A valid barrier key: 1-4 segments of 1-200 arbitrary bytes, with '/' and NUL replaced and "."
// and ".." segments extended, so that every byte value but those two appears.
std::string GenKey() {
  const int segments = *rc::gen::inRange(1, 5);
  std::string key;
  for (int i = 0; i < segments; ++i) {
    const size_t size = *rc::gen::inRange<size_t>(1, 201);
    std::string segment = *rc::gen::container<std::string>(size, rc::gen::arbitrary<char>());
    for (char& c : segment) {
      if (c == '/' || c == '\0') c = '_';
    }
    if (segment == "." || segment == "..") segment += '_';
    if (i > 0) key += '/';
    key += segment;
  }
  return key;
}

std::string GenValue() {
  if (*rc::gen::inRange(0, 4) == 0) {
    const size_t size = *rc::gen::inRange<size_t>(0, 20000);
    return *rc::gen::container<std::string>(size, rc::gen::arbitrary<char>());
  }
  return *rc::gen::arbitrary<std::string>();
}

// An initialized, unsealed barrier over in-memory storage, keyed from a generated seed.
struct Unsealed {
  explicit Unsealed(uint64_t seed) : random(seed) {
    barrier = *Barrier::Open(physical, random);
    std::vector<crypto::SecureBuffer> shares = *barrier->Initialize(1, 1);
    share = std::string(shares[0].view());
    RC_ASSERT(barrier->Unseal(share).ok());
  }
  SeededRandom random;
  InMemoryStorage physical;
  std::unique_ptr<Barrier> barrier;
  std::string share;
};

std::string Physical(absl::string_view key) { return absl::StrCat(kBarrierLogicalPrefix, key); }

uint32_t TermOf(const std::string& entry) {
  return (uint32_t{static_cast<uint8_t>(entry[1])} << 24) |
         (uint32_t{static_cast<uint8_t>(entry[2])} << 16) |
         (uint32_t{static_cast<uint8_t>(entry[3])} << 8) | static_cast<uint8_t>(entry[4]);
}

RC_GTEST_PROP(BarrierProperty, PutThenGetRoundTripsForAnyValidKeyAndValue, ()) {
  Unsealed u(*rc::gen::arbitrary<uint64_t>());
  std::map<std::string, std::string> model;
  const int count = *rc::gen::inRange(1, 8);
  for (int i = 0; i < count; ++i) {
    const std::string key = GenKey();
    const std::string value = GenValue();
    RC_ASSERT(ValidateStorageKey(key).ok());
    const absl::Status put = u.barrier->Put(key, value);
    RC_ASSERT(put.ok());
    model[key] = value;
  }
  for (const auto& [key, value] : model) {
    absl::StatusOr<std::optional<std::string>> got = u.barrier->Get(key);
    RC_ASSERT(got.ok());
    RC_ASSERT(got->has_value());
    RC_ASSERT(**got == value);
    // The plaintext never appears in the physical entry (for values long enough to tell).
    if (value.size() >= 16) {
      RC_ASSERT((*u.physical.Get(Physical(key)))->find(value) == std::string::npos);
    }
  }
  std::vector<std::string> keys;
  for (const auto& [key, value] : model) keys.push_back(key);
  RC_ASSERT(*u.barrier->List("") == keys);
}

RC_GTEST_PROP(BarrierProperty, AnyDamageToAStoredEntryIsDataLoss, ()) {
  Unsealed u(*rc::gen::arbitrary<uint64_t>());
  const int rotations = *rc::gen::inRange(0, 3);
  for (int i = 0; i < rotations; ++i) RC_ASSERT(u.barrier->Rotate().ok());
  const std::string key = GenKey();
  const std::string other_key = GenKey();
  RC_PRE(key != other_key);
  RC_ASSERT(u.barrier->Put(key, GenValue()).ok());
  RC_ASSERT(u.barrier->Put(other_key, GenValue()).ok());
  std::string entry = **u.physical.Get(Physical(key));

  const int kind = *rc::gen::inRange(0, 4);
  switch (kind) {
    case 0: {  // Flip one bit anywhere: header, nonce, ciphertext or tag.
      const size_t at = *rc::gen::inRange<size_t>(0, entry.size());
      const int bit = *rc::gen::inRange(0, 8);
      entry[at] = static_cast<char>(entry[at] ^ (1 << bit));
      break;
    }
    case 1:  // Truncate to any shorter length.
      entry.resize(*rc::gen::inRange<size_t>(0, entry.size()));
      break;
    case 2:  // Extend.
      entry += *rc::gen::nonEmpty(rc::gen::arbitrary<std::string>());
      break;
    case 3:  // Swap in the entry stored at another path.
      entry = **u.physical.Get(Physical(other_key));
      break;
  }
  RC_ASSERT(u.physical.Put(Physical(key), entry).ok());
  const absl::Status status = u.barrier->Get(key).status();
  RC_ASSERT(status.code() == absl::StatusCode::kDataLoss);
  // The other entry is untouched.
  RC_ASSERT(u.barrier->Get(other_key).ok());
}

RC_GTEST_PROP(BarrierProperty, AnyThresholdOfTheSharesUnsealsAndFewerDoNot, ()) {
  const int shares = *rc::gen::inRange(1, 8);
  const int threshold = *rc::gen::inRange(1, shares + 1);
  SeededRandom random(*rc::gen::arbitrary<uint64_t>());
  InMemoryStorage physical;
  std::unique_ptr<Barrier> barrier = *Barrier::Open(physical, random);
  std::vector<std::string> all;
  absl::StatusOr<std::vector<crypto::SecureBuffer>> made = barrier->Initialize(shares, threshold);
  RC_ASSERT(made.ok());
  for (const crypto::SecureBuffer& share : *made) all.emplace_back(share.view());
  std::vector<std::string> order = all;
  random.Shuffle(order);

  // Fewer than the threshold: still sealed, with the progress counted.
  const int fewer = *rc::gen::inRange(0, threshold);
  for (int i = 0; i < fewer; ++i) {
    absl::StatusOr<SealStatus> status = barrier->Unseal(order[i]);
    RC_ASSERT(status.ok());
    RC_ASSERT(status->sealed);
    RC_ASSERT(status->progress == i + 1);
  }
  RC_ASSERT(barrier->sealed());
  // And those shares really do not reconstruct the key that opens the root key record.
  if (fewer > 0) {
    const std::vector<std::string> partial(order.begin(), order.begin() + fewer);
    const std::string record = **physical.Get(kBarrierRootKeyPath);
    const std::string key = *crypto::Combine(partial);
    const std::string aad = absl::StrCat(kBarrierRootKeyPath, record.substr(0, 3));
    RC_ASSERT(crypto::Open(key, record.substr(3, 12), record.substr(15), aad).status().code() ==
              absl::StatusCode::kDataLoss);
    // Whereas `threshold` of them do (so the check above is not vacuous).
    const std::vector<std::string> enough(order.begin(), order.begin() + threshold);
    RC_ASSERT(
        crypto::Open(*crypto::Combine(enough), record.substr(3, 12), record.substr(15), aad).ok());
  }
  // The rest of any threshold-sized subset unseals.
  for (int i = fewer; i < threshold; ++i) RC_ASSERT(barrier->Unseal(order[i]).ok());
  RC_ASSERT(!barrier->sealed());
  RC_ASSERT(barrier->Put("k", "v").ok());

  // A set with one share of another barrier fails, and unsealing can start over.
  barrier->Seal();
  InMemoryStorage other_physical;
  std::unique_ptr<Barrier> other = *Barrier::Open(other_physical, random);
  const std::string foreign = std::string((*other->Initialize(shares, threshold))[0].view());
  std::vector<std::string> mixed(order.begin(), order.begin() + threshold - 1);
  mixed.insert(mixed.begin() + *rc::gen::inRange<size_t>(0, mixed.size() + 1), foreign);
  absl::Status last;
  for (const std::string& share : mixed) {
    absl::StatusOr<SealStatus> status = barrier->Unseal(share);
    last = status.status();
    if (!status.ok()) break;
  }
  RC_ASSERT(last.code() == absl::StatusCode::kInvalidArgument);
  RC_ASSERT(barrier->sealed());
  RC_ASSERT(barrier->seal_status().progress == 0);
  RC_ASSERT(barrier->KeyMaterialIsWipedForTest());
  for (int i = 0; i < threshold; ++i) RC_ASSERT(barrier->Unseal(order[i]).ok());
  RC_ASSERT(!barrier->sealed());
  RC_ASSERT(**barrier->Get("k") == "v");
}

RC_GTEST_PROP(BarrierProperty, AfterRotationsEveryEntryOfEveryTermStillOpens, ()) {
  Unsealed u(*rc::gen::arbitrary<uint64_t>());
  std::map<std::string, std::string> model;
  std::set<uint32_t> terms_used;
  const int steps = *rc::gen::inRange(1, 40);
  for (int i = 0; i < steps; ++i) {
    if (*rc::gen::inRange(0, 3) == 0) {
      const uint32_t before = u.barrier->active_term();
      absl::StatusOr<uint32_t> term = u.barrier->Rotate();
      RC_ASSERT(term.ok());
      RC_ASSERT(*term == before + 1);
      RC_ASSERT(u.barrier->active_term() == *term);
    } else {
      const std::string key = absl::StrCat("k", *rc::gen::inRange(0, 12));
      const std::string value = *rc::gen::arbitrary<std::string>();
      RC_ASSERT(u.barrier->Put(key, value).ok());
      const uint32_t term = TermOf(**u.physical.Get(Physical(key)));
      RC_ASSERT(term == u.barrier->active_term());  // New writes use the newest term.
      terms_used.insert(term);
      model[key] = value;
    }
  }
  auto check_all = [&] {
    for (const auto& [key, value] : model) {
      absl::StatusOr<std::optional<std::string>> got = u.barrier->Get(key);
      RC_ASSERT(got.ok());
      RC_ASSERT(**got == value);
    }
  };
  check_all();
  // The keyring was persisted with every term: a reopened barrier opens them all too.
  u.barrier->Seal();
  u.barrier = *Barrier::Open(u.physical, u.random);
  RC_ASSERT(u.barrier->Unseal(u.share).ok());
  check_all();
  RC_TAG(terms_used.size() > 1 ? "several terms" : "one term");
}

}  // namespace
}  // namespace bulwark
