// The storage barrier: an encrypted view of a physical Storage. Everything the core keeps (the
// catalog, mounts, plugin data) goes through it; only the barrier's own key records do not.
#ifndef BULWARK_CORE_BARRIER_BARRIER_H_
#define BULWARK_CORE_BARRIER_BARRIER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/crypto/aead.h"
#include "base/crypto/secure_buffer.h"
#include "base/env/failpoint_source.h"
#include "base/env/random.h"
#include "base/storage/storage.h"

namespace bulwark {

// Key hierarchy (Vault's, with Vault's names where it has them):
//
//   unseal key (32 bytes, random) --- split into Shamir shares over GF(2^8), never stored
//     encrypts the root key ------------------------ physical "barrier/root-key"
//   root key (32 bytes, random)
//     encrypts the keyring ------------------------- physical "barrier/keyring"
//   keyring: data-key terms, term number (1, 2, ...) -> 32-byte AES-256-GCM key; the highest
//     term is the active one, which seals new entries; older terms only open old entries
//     encrypts every entry ------------------------- physical "logical/<key>"
//
// Physical records (all integers big-endian; AES-256-GCM, 12-byte nonce, 16-byte tag):
//
//   "barrier/root-key"  u8 version (1) | u8 shares | u8 threshold | nonce | GCM(unseal key,
//                       root key) with associated data = "barrier/root-key" || the 3 header bytes
//   "barrier/keyring"   u8 version (1) | nonce | GCM(root key, keyring) with associated data =
//                       "barrier/keyring" || the version byte; the keyring plaintext is
//                       u8 version (1) | u32 active term | u32 count | count x (u32 term | 32-byte
//                       key), terms strictly increasing, the active term the last one
//   "logical/<key>"     u8 version (1) | u32 term | nonce | GCM(data key of `term`, value) with
//                       associated data = the 5 header bytes || "logical/<key>"
//
// Entry nonces are drawn fresh from Random::Fill for every write (the CSPRNG in production).
// Because the physical path is authenticated, an entry copied to another path, or a key record
// copied over another, fails to open; so does any bit flip, truncation or extension.
//
// Every key given to the Storage methods is stored under the physical prefix "logical/", so the
// barrier's own records ("barrier/...") can neither be read nor overwritten through it; the cost
// is that logical keys are limited to kBarrierKeyBytesMax (8 bytes less than physical keys) and
// values to kBarrierValueBytesMax (the 33-byte entry overhead less than physical values).
inline constexpr absl::string_view kBarrierLogicalPrefix = "logical/";
inline constexpr absl::string_view kBarrierRootKeyPath = "barrier/root-key";
inline constexpr absl::string_view kBarrierKeyringPath = "barrier/keyring";
inline constexpr uint8_t kBarrierFormatVersion = 1;
inline constexpr size_t kBarrierEntryHeaderBytes = 1 + 4 + crypto::kAesGcmNonceBytes;
inline constexpr size_t kBarrierEntryOverheadBytes =
    kBarrierEntryHeaderBytes + crypto::kAesGcmTagBytes;
inline constexpr size_t kBarrierKeyBytesMax = kStorageKeyBytesMax - kBarrierLogicalPrefix.size();
inline constexpr size_t kBarrierValueBytesMax = kStorageValueBytesMax - kBarrierEntryOverheadBytes;
// Most terms a keyring may hold (36 bytes each: well inside one physical value).
inline constexpr size_t kBarrierKeyringTermsMax = size_t{1} << 16;
// An unseal key share: 32 key bytes then the x-coordinate (see crypto/shamir.h).
inline constexpr size_t kUnsealShareBytes = crypto::kAesGcmKeyBytes + 1;

// What Vault's sys/seal-status reports.
struct SealStatus {
  bool initialized = false;
  bool sealed = true;
  int shares = 0;     // Shares made by Initialize (0 when not initialized).
  int threshold = 0;  // Shares needed to unseal (0 when not initialized).
  int progress = 0;   // Distinct shares collected so far towards the threshold.
};

// The barrier starts sealed. Lifecycle: Open -> (Initialize once, ever) -> Unseal with
// `threshold` shares -> use it as a Storage -> Seal (wipes every key) -> Unseal again ...
//
// Errors common to every method (beyond those named per method):
//   kFailedPrecondition  the barrier is sealed: "barrier is sealed: unseal it ..." (every
//                        Storage method and Rotate, checked before any argument)
//   kDataLoss            a physical record fails to parse or authenticate; the message names the
//                        path, never key bytes
//   others               as returned by the physical Storage
//
// Single-threaded, like every Storage. `physical` and `random` must outlive the barrier.
// Crash safety rests on the physical Storage: every barrier operation writes at most one record
// per step and each Put is atomic, so the barrier always reopens with the old or the new keyring.
class Barrier final : public Storage {
 public:
  // Reads the root-key record (only its plaintext header) to learn whether the barrier is
  // initialized and its share configuration. Until it is initialized, every seal_status(),
  // initialized(), Initialize and Unseal reads the record again: a storage shared by the nodes
  // of an HA cluster may be initialized through another node after this one opened. Pass the Env's
  // random (env.random): it must be a CSPRNG in production. The barrier is sealed.
  //
  // Errors: kDataLoss if the root-key record's header is malformed; physical Storage errors.
  // `failpoints` is the node's (Env::failpoints): where the barrier's failpoint sites look.
  static absl::StatusOr<std::unique_ptr<Barrier>> Open(Storage& physical, Random& random,
                                                       FailpointSource* failpoints = nullptr);

  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;
  ~Barrier() override;

  // Creates a random unseal key, root key and first data key (term 1), writes the keyring and
  // then the root-key record, and returns the unseal key split into `shares` Shamir shares of
  // which any `threshold` unseal (each kUnsealShareBytes bytes; they are not stored anywhere:
  // this is the only time they are available). The barrier stays sealed.
  //
  // Durability: initialized once the root-key record is written, which is the last step; a
  // crash or failure before it leaves the barrier uninitialized (Initialize may be retried; it
  // overwrites the half-written keyring). If the final write fails with an uncertain outcome the
  // barrier may turn out initialized after a restart with shares nobody saw: the storage then
  // holds nothing but those two records and must be wiped by the operator (Vault alike).
  //
  // Errors: kInvalidArgument unless 1 <= threshold <= shares <= 255; kAlreadyExists if the
  // barrier is already initialized.
  absl::StatusOr<std::vector<crypto::SecureBuffer>> Initialize(int shares, int threshold);

  // Adds one unseal key share. Until `threshold` distinct shares are in, returns the progress.
  // With the threshold reached, combines them, opens the root key and the keyring, and returns
  // a status with sealed == false. Either way the collected shares are wiped once combined. A
  // share identical to one already given is ignored. Unsealing an unsealed barrier is a no-op.
  //
  // Errors: kFailedPrecondition if the barrier is not initialized; kInvalidArgument if the share
  // is not kUnsealShareBytes bytes or has x-coordinate 0 (not counted, collected shares kept),
  // if it has the same x-coordinate as a different collected share, or if the shares combine to
  // a key that fails to open the root key (a wrong share, without saying which) — in those last
  // two cases every collected share is discarded and unsealing starts over; kDataLoss if the
  // keyring is missing or fails to authenticate under the root key.
  absl::StatusOr<SealStatus> Unseal(absl::string_view share);

  // Discards the unseal shares collected so far (Vault's sys/unseal with reset): the next share
  // starts a new attempt. No-op when nothing is collected; cannot fail.
  void ResetUnsealProgress() { DiscardShares(); }

  // Wipes the root key, every data key (their AES key schedules too) and any collected shares,
  // and seals the barrier. Idempotent; cannot fail.
  void Seal();

  // Adds a new data-key term and makes it the active one: the keyring with the new term is
  // written (one atomic Put, so a crash leaves the old keyring or the new one) before any entry
  // is sealed under it. Entries written under older terms still open. Returns the new term.
  //
  // Errors: kResourceExhausted if the keyring holds kBarrierKeyringTermsMax terms already.
  absl::StatusOr<uint32_t> Rotate();

  // Reads the keyring again (another node rotated it: a performance standby's invalidation,
  // docs/ha.md). Get does the same by itself, once, when it meets an entry sealed under a term
  // newer than the active one. Errors: kFailedPrecondition while sealed; LoadKeyring's (the
  // keyring held so far is kept).
  absl::Status ReloadKeyring();

  bool initialized() const;
  bool sealed() const { return sealed_; }
  SealStatus seal_status() const;
  // The term that seals new entries; 0 while sealed.
  uint32_t active_term() const { return active_term_; }

  // Storage, as described in storage.h, with the limits kBarrierKeyBytesMax and
  // kBarrierValueBytesMax (kInvalidArgument beyond them). Get returns kDataLoss (naming the
  // key) for an entry that is truncated, has an unknown version or term, or fails to
  // authenticate. List accepts any prefix; it decrypts nothing.
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) override;
  absl::Status Put(absl::string_view key, absl::string_view value) override;
  absl::Status Delete(absl::string_view key) override;
  absl::StatusOr<std::vector<std::string>> List(absl::string_view prefix) override;

  // True when no key material is held: the root key buffer is all zero, no data-key term (key
  // or AES context) is held and no unseal share is collected. For tests of Seal.
  bool KeyMaterialIsWipedForTest() const;

 private:
  struct Term {
    crypto::SecureBuffer key;
    crypto::AesGcm aead;  // Key schedule computed once per term.
  };

  Barrier(Storage& physical, Random& random, FailpointSource* failpoints);

  absl::Status CheckUnsealed() const;
  // While not initialized: reads the root-key record again (see Open). Errors as Open's.
  absl::Status RefreshInitialized() const;
  // Writes a fresh random nonce for one entry to `out` (kAesGcmNonceBytes).
  void NextEntryNonce(uint8_t* out);
  void DiscardShares();
  absl::Status LoadKeyring();
  absl::StatusOr<std::string> SealKeyring(
      const std::vector<std::pair<uint32_t, absl::string_view>>& keys);

  Storage& physical_;
  Random& random_;
  FailpointSource* failpoints_;

  // What the root-key record says; filled in lazily by RefreshInitialized until initialized.
  mutable bool initialized_ = false;
  bool sealed_ = true;
  // Set only by the planted bug "bug.barrier.serve_while_sealed" (see Seal).
  bool serving_while_sealed_ = false;
  mutable int shares_ = 0;
  mutable int threshold_ = 0;
  mutable std::string root_key_record_;  // The physical root-key record (ciphertext; not secret).

  std::vector<crypto::SecureBuffer> collected_shares_;
  crypto::SecureBuffer root_key_;  // kAesGcmKeyBytes; all zero while sealed.
  std::map<uint32_t, Term> terms_;
  uint32_t active_term_ = 0;

  // Entry nonces are drawn from `random_` in batches: one call per kNonceBatch writes instead of
  // one per write, because the CSPRNG's per-call cost (OpenSSL 3 RAND_bytes: ~650 ns here, with
  // a getpid syscall) exceeds that of sealing 4 KiB. Every nonce is still fresh CSPRNG output,
  // used once; nonces are public, so holding the unused ones is harmless (wiped on Seal anyway).
  static constexpr size_t kNonceBatch = 64;
  std::array<uint8_t, crypto::kAesGcmNonceBytes * kNonceBatch> nonce_pool_{};
  size_t nonce_pool_used_ = sizeof(nonce_pool_);
};

}  // namespace bulwark

#endif  // BULWARK_CORE_BARRIER_BARRIER_H_
