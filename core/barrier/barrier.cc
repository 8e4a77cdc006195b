// The storage barrier (see barrier.h for the key hierarchy and the record formats).
#include "core/barrier/barrier.h"

#include <openssl/crypto.h>

#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/crypto/shamir.h"
#include "base/status/check.h"
#include "base/status/status_macros.h"
#include "faultinject/failpoint.h"

namespace bulwark {
namespace {

constexpr size_t kKeyBytes = crypto::kAesGcmKeyBytes;
constexpr size_t kNonceBytes = crypto::kAesGcmNonceBytes;
constexpr size_t kTagBytes = crypto::kAesGcmTagBytes;
constexpr size_t kRootKeyHeaderBytes = 3;  // version, shares, threshold.
constexpr size_t kRootKeyRecordBytes = kRootKeyHeaderBytes + kNonceBytes + kKeyBytes + kTagBytes;
constexpr size_t kKeyringRecordHeaderBytes = 1;  // version.
constexpr size_t kKeyringPlainHeaderBytes = 1 + 4 + 4;
constexpr size_t kKeyringPlainTermBytes = 4 + kKeyBytes;
constexpr size_t kKeyInMessageBytesMax = 96;
// Entries: version (1) and term (4) come before the nonce; both are authenticated.
constexpr size_t kEntryNonceOffset = 1 + 4;

// Overwrites a string that held key material. OPENSSL_cleanse cannot be optimised away.
void Wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(&s[0], s.size());
  s.clear();
}

// Wipes a std::string (e.g. a decrypted key) when it goes out of scope, on every path.
class WipeOnExit {
 public:
  explicit WipeOnExit(std::string& s) : s_(s) {}
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;
  ~WipeOnExit() { Wipe(s_); }

 private:
  std::string& s_;
};

void PutBe32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

uint32_t GetBe32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string Quote(absl::string_view key) {
  const bool cut = key.size() > kKeyInMessageBytesMax;
  return absl::StrCat("\"", absl::CHexEscape(key.substr(0, kKeyInMessageBytesMax)),
                      cut ? "\"..." : "\"");
}

absl::Status EntryLoss(absl::string_view key, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("barrier entry ", Quote(key), " ", what));
}

absl::Status ValidateBarrierKey(absl::string_view key) {
  RETURN_IF_ERROR(ValidateStorageKey(key));
  if (key.size() > kBarrierKeyBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("barrier key ", Quote(key), " is ", key.size(),
                                                   " bytes; the limit is ", kBarrierKeyBytesMax));
  }
  return absl::OkStatus();
}

struct RootKeyConfig {
  int shares;
  int threshold;
};

absl::StatusOr<RootKeyConfig> ParseRootKeyHeader(absl::string_view record) {
  if (record.size() != kRootKeyRecordBytes) {
    return absl::DataLossError(absl::StrCat("barrier root-key record is ", record.size(),
                                            " bytes; it must be ", kRootKeyRecordBytes));
  }
  if (static_cast<uint8_t>(record[0]) != kBarrierFormatVersion) {
    return absl::DataLossError(absl::StrCat("barrier root-key record has unknown format version ",
                                            static_cast<uint8_t>(record[0])));
  }
  RootKeyConfig config{static_cast<uint8_t>(record[1]), static_cast<uint8_t>(record[2])};
  if (config.threshold < 1 || config.threshold > config.shares) {
    return absl::DataLossError(
        absl::StrCat("barrier root-key record gives an impossible "
                     "share configuration (",
                     config.threshold, " of ", config.shares, ")"));
  }
  return config;
}

std::string RootKeyAad(absl::string_view record) {
  return absl::StrCat(kBarrierRootKeyPath, record.substr(0, kRootKeyHeaderBytes));
}

std::string KeyringAad() {
  return absl::StrCat(kBarrierKeyringPath,
                      std::string(1, static_cast<char>(kBarrierFormatVersion)));
}

}  // namespace

Barrier::Barrier(Storage& physical, Random& random, FailpointSource* failpoints)
    : physical_(physical), random_(random), failpoints_(failpoints), root_key_(kKeyBytes) {}

Barrier::~Barrier() { Seal(); }

absl::StatusOr<std::unique_ptr<Barrier>> Barrier::Open(Storage& physical, Random& random,
                                                       FailpointSource* failpoints) {
  std::unique_ptr<Barrier> barrier(new Barrier(physical, random, failpoints));
  RETURN_IF_ERROR(barrier->RefreshInitialized());
  return barrier;
}

absl::Status Barrier::RefreshInitialized() const {
  if (initialized_) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::optional<std::string> record, physical_.Get(kBarrierRootKeyPath));
  if (!record.has_value()) return absl::OkStatus();
  ASSIGN_OR_RETURN(RootKeyConfig config, ParseRootKeyHeader(*record));
  initialized_ = true;
  shares_ = config.shares;
  threshold_ = config.threshold;
  root_key_record_ = *std::move(record);
  return absl::OkStatus();
}

bool Barrier::initialized() const {
  (void)RefreshInitialized();  // Unreadable: not known to be initialized yet.
  return initialized_;
}

SealStatus Barrier::seal_status() const {
  (void)RefreshInitialized();  // Unreadable: reported as not initialized yet.
  SealStatus status;
  status.initialized = initialized_;
  status.sealed = sealed_;
  status.shares = shares_;
  status.threshold = threshold_;
  status.progress = static_cast<int>(collected_shares_.size());
  return status;
}

absl::Status Barrier::CheckUnsealed() const {
  if (!sealed_ || serving_while_sealed_) return absl::OkStatus();
  if (!initialized_) {
    return absl::FailedPreconditionError(
        "barrier is sealed: it is not initialized yet; initialize it, then unseal it with the "
        "unseal key shares");
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "barrier is sealed: unseal it with ", threshold_, " of its ", shares_, " unseal key shares"));
}

absl::StatusOr<std::string> Barrier::SealKeyring(
    const std::vector<std::pair<uint32_t, absl::string_view>>& keys) {
  CHECK(!keys.empty());
  std::string plain;
  WipeOnExit wipe_plain(plain);
  plain.reserve(kKeyringPlainHeaderBytes + keys.size() * kKeyringPlainTermBytes);
  plain.push_back(static_cast<char>(kBarrierFormatVersion));
  PutBe32(plain, keys.back().first);
  PutBe32(plain, static_cast<uint32_t>(keys.size()));
  for (const auto& [term, key] : keys) {
    CHECK(key.size() == kKeyBytes);
    PutBe32(plain, term);
    plain.append(key.data(), key.size());
  }
  std::string record(kKeyringRecordHeaderBytes + kNonceBytes, '\0');
  record[0] = static_cast<char>(kBarrierFormatVersion);
  random_.Fill(absl::MakeSpan(reinterpret_cast<uint8_t*>(&record[1]), kNonceBytes));
  ASSIGN_OR_RETURN(crypto::AesGcm aead, crypto::AesGcm::Create(root_key_.view()));
  ASSIGN_OR_RETURN(std::string sealed, aead.Seal(absl::string_view(record).substr(1, kNonceBytes),
                                                 plain, KeyringAad()));
  record.append(sealed);
  return record;
}

absl::StatusOr<std::vector<crypto::SecureBuffer>> Barrier::Initialize(int shares, int threshold) {
  // Another node sharing the storage may have initialized it: never write over its root key.
  RETURN_IF_ERROR(RefreshInitialized());
  if (initialized_) {
    return absl::AlreadyExistsError(
        "barrier is already initialized: unseal it with its existing unseal key shares");
  }
  if (threshold < 1 || threshold > shares || shares > crypto::kShamirMaxShares) {
    return absl::InvalidArgumentError(absl::StrCat(
        "barrier initialization needs 1 <= threshold <= shares <= ", crypto::kShamirMaxShares,
        "; got threshold ", threshold, " and shares ", shares));
  }
  crypto::SecureBuffer unseal_key(kKeyBytes);
  crypto::SecureBuffer data_key(kKeyBytes);
  random_.Fill(unseal_key.span());
  random_.Fill(root_key_.span());
  random_.Fill(data_key.span());

  // Split first: nothing may be written unless the shares exist to unlock it.
  absl::StatusOr<std::vector<std::string>> parts = crypto::Split(
      unseal_key.view(), shares, threshold, [this](absl::Span<uint8_t> out) { random_.Fill(out); });
  if (!parts.ok()) {
    root_key_.Clear();
    return parts.status();
  }
  std::vector<crypto::SecureBuffer> result;
  for (std::string& part : *parts) {
    result.emplace_back(part);
    Wipe(part);
  }

  // 1. The keyring, under the root key. Not yet reachable: the root-key record is absent.
  absl::StatusOr<std::string> keyring = SealKeyring({{1, data_key.view()}});
  absl::Status status = keyring.status();
  if (status.ok()) status = physical_.Put(kBarrierKeyringPath, *keyring);

  // 2. The root key, under the unseal key: from here on the barrier is initialized.
  std::string record;
  if (status.ok()) {
    record.push_back(static_cast<char>(kBarrierFormatVersion));
    record.push_back(static_cast<char>(shares));
    record.push_back(static_cast<char>(threshold));
    record.resize(kRootKeyHeaderBytes + kNonceBytes);
    random_.Fill(
        absl::MakeSpan(reinterpret_cast<uint8_t*>(&record[kRootKeyHeaderBytes]), kNonceBytes));
    absl::StatusOr<std::string> sealed = crypto::Seal(
        unseal_key.view(), absl::string_view(record).substr(kRootKeyHeaderBytes, kNonceBytes),
        root_key_.view(), RootKeyAad(record));
    status = sealed.status();
    if (status.ok()) {
      record.append(*sealed);
      status = physical_.Put(kBarrierRootKeyPath, record);
    }
  }
  root_key_.Clear();  // The barrier stays sealed.
  if (!status.ok()) return Annotate(status, "barrier initialize");

  initialized_ = true;
  shares_ = shares;
  threshold_ = threshold;
  root_key_record_ = std::move(record);
  return result;
}

void Barrier::NextEntryNonce(uint8_t* out) {
  if (nonce_pool_used_ == nonce_pool_.size()) {
    random_.Fill(absl::MakeSpan(nonce_pool_));
    nonce_pool_used_ = 0;
  }
  std::memcpy(out, nonce_pool_.data() + nonce_pool_used_, kNonceBytes);
  nonce_pool_used_ += kNonceBytes;
}

void Barrier::DiscardShares() {
  for (crypto::SecureBuffer& share : collected_shares_) share.Clear();
  collected_shares_.clear();
}

absl::StatusOr<SealStatus> Barrier::Unseal(absl::string_view share) {
  RETURN_IF_ERROR(RefreshInitialized());
  if (!initialized_) {
    return absl::FailedPreconditionError(
        "barrier is not initialized: initialize it before unsealing");
  }
  if (!sealed_) return seal_status();
  if (share.size() != kUnsealShareBytes) {
    return absl::InvalidArgumentError(absl::StrCat("unseal key share is ", share.size(),
                                                   " bytes; a share is ", kUnsealShareBytes,
                                                   " bytes (not counted)"));
  }
  if (share.back() == '\0') {
    return absl::InvalidArgumentError(
        "unseal key share has x-coordinate 0, which no share has (not counted)");
  }
  for (const crypto::SecureBuffer& collected : collected_shares_) {
    if (collected.view() == share &&
        !BW_PLANTED_BUG_IN(failpoints_, "bug.barrier.count_duplicate_share")) {
      return seal_status();  // Given twice: counts once.
    }
    if (collected.view() == share) break;
    if (collected.view().back() == share.back()) {
      DiscardShares();
      return absl::InvalidArgumentError(
          "unseal key share has the same index as a different share given earlier, so one of "
          "them is wrong; the collected shares were discarded: start over");
    }
  }
  collected_shares_.emplace_back(share);
  if (static_cast<int>(collected_shares_.size()) < threshold_) return seal_status();

  // The threshold is met: combine, then forget the shares whatever happens.
  std::vector<std::string> parts;
  for (const crypto::SecureBuffer& collected : collected_shares_) {
    parts.emplace_back(collected.view());
  }
  DiscardShares();
  absl::StatusOr<std::string> unseal_key = crypto::Combine(parts);
  for (std::string& part : parts) Wipe(part);
  if (!unseal_key.ok()) return unseal_key.status();
  WipeOnExit wipe_unseal_key(*unseal_key);

  const absl::string_view record = root_key_record_;
  absl::StatusOr<std::string> root_key =
      crypto::Open(*unseal_key, record.substr(kRootKeyHeaderBytes, kNonceBytes),
                   record.substr(kRootKeyHeaderBytes + kNonceBytes), RootKeyAad(record));
  if (!root_key.ok()) {
    if (absl::IsDataLoss(root_key.status())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the ", threshold_,
          " unseal key shares do not open the barrier: at least one of them is wrong (or the "
          "stored root key is damaged); the collected shares were discarded: start over"));
    }
    return root_key.status();
  }
  WipeOnExit wipe_root_key(*root_key);
  CHECK(root_key->size() == kKeyBytes);
  std::memcpy(root_key_.data(), root_key->data(), kKeyBytes);

  absl::Status loaded = BW_FAILPOINT_STATUS_IN(failpoints_, "barrier.unseal.before_keyring_load");
  if (loaded.ok()) loaded = LoadKeyring();
  if (!loaded.ok()) {
    Seal();
    return loaded;
  }
  sealed_ = false;
  serving_while_sealed_ = false;
  return seal_status();
}

absl::Status Barrier::LoadKeyring() {
  ASSIGN_OR_RETURN(std::optional<std::string> record, physical_.Get(kBarrierKeyringPath));
  if (!record.has_value()) {
    return absl::DataLossError(
        "barrier keyring (physical \"barrier/keyring\") is missing although the root key is "
        "present; restore the storage from a backup");
  }
  if (record->size() < kKeyringRecordHeaderBytes + kNonceBytes + kTagBytes ||
      static_cast<uint8_t>((*record)[0]) != kBarrierFormatVersion) {
    return absl::DataLossError(
        "barrier keyring (physical \"barrier/keyring\") is truncated or has an unknown format "
        "version");
  }
  const absl::string_view sealed = *record;
  ASSIGN_OR_RETURN(crypto::AesGcm root_aead, crypto::AesGcm::Create(root_key_.view()));
  absl::StatusOr<std::string> plain =
      root_aead.Open(sealed.substr(kKeyringRecordHeaderBytes, kNonceBytes),
                     sealed.substr(kKeyringRecordHeaderBytes + kNonceBytes), KeyringAad());
  if (!plain.ok()) {
    if (!absl::IsDataLoss(plain.status())) return plain.status();
    return absl::DataLossError(
        "barrier keyring (physical \"barrier/keyring\") failed to authenticate under the root "
        "key: it was modified or replaced; restore it from a backup");
  }
  WipeOnExit wipe_plain(*plain);
  const absl::string_view p = *plain;
  const absl::Status malformed =
      absl::DataLossError("barrier keyring authenticated but its contents are malformed");
  if (p.size() < kKeyringPlainHeaderBytes || static_cast<uint8_t>(p[0]) != kBarrierFormatVersion) {
    return malformed;
  }
  const uint32_t active = GetBe32(p.data() + 1);
  const uint32_t count = GetBe32(p.data() + 5);
  if (count == 0 || count > kBarrierKeyringTermsMax ||
      p.size() != kKeyringPlainHeaderBytes + size_t{count} * kKeyringPlainTermBytes) {
    return malformed;
  }
  std::map<uint32_t, Term> terms;
  uint32_t previous = 0;
  for (uint32_t i = 0; i < count; ++i) {
    const char* at = p.data() + kKeyringPlainHeaderBytes + size_t{i} * kKeyringPlainTermBytes;
    const uint32_t term = GetBe32(at);
    if (term <= previous) return malformed;
    previous = term;
    crypto::SecureBuffer key(absl::string_view(at + 4, kKeyBytes));
    ASSIGN_OR_RETURN(crypto::AesGcm aead, crypto::AesGcm::Create(key.view()));
    terms.emplace(term, Term{std::move(key), std::move(aead)});
  }
  if (active != previous) return malformed;
  terms_ = std::move(terms);
  active_term_ = active;
  return absl::OkStatus();
}

absl::Status Barrier::ReloadKeyring() {
  RETURN_IF_ERROR(CheckUnsealed());
  // Planted bug for the simulator's drill (never configured in production): the keyring held so
  // far is kept and the reload reported as done, as a node that misses another node's rotation
  // would. Not per node (_IN): the drill configures only the run's registry.
  if (BW_PLANTED_BUG("bug.barrier.skip_keyring_reload")) return absl::OkStatus();
  return LoadKeyring();
}

void Barrier::Seal() {
  // Planted bug for the simulator's drill (never configured in production): the barrier reports
  // itself sealed but keeps its data keys and goes on serving, as a seal that forgot to take
  // effect would.
  if (!sealed_ && BW_PLANTED_BUG_IN(failpoints_, "bug.barrier.serve_while_sealed")) {
    DiscardShares();
    sealed_ = true;
    serving_while_sealed_ = true;
    return;
  }
  serving_while_sealed_ = false;
  DiscardShares();
  root_key_.Clear();
  terms_.clear();  // SecureBuffer and AesGcm wipe their key bytes when destroyed.
  active_term_ = 0;
  OPENSSL_cleanse(nonce_pool_.data(), nonce_pool_.size());
  nonce_pool_used_ = nonce_pool_.size();
  sealed_ = true;
}

bool Barrier::KeyMaterialIsWipedForTest() const {
  return root_key_.size() == kKeyBytes && root_key_.IsZero() && terms_.empty() &&
         collected_shares_.empty() && active_term_ == 0;
}

absl::StatusOr<uint32_t> Barrier::Rotate() {
  RETURN_IF_ERROR(CheckUnsealed());
  if (terms_.size() >= kBarrierKeyringTermsMax ||
      active_term_ == std::numeric_limits<uint32_t>::max()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("barrier keyring already holds ", terms_.size(), " terms (the limit is ",
                     kBarrierKeyringTermsMax, "); it cannot rotate further"));
  }
  const uint32_t term = active_term_ + 1;
  crypto::SecureBuffer key(kKeyBytes);
  random_.Fill(key.span());
  ASSIGN_OR_RETURN(crypto::AesGcm aead, crypto::AesGcm::Create(key.view()));
  std::vector<std::pair<uint32_t, absl::string_view>> keys;
  keys.reserve(terms_.size() + 1);
  for (const auto& [t, existing] : terms_) keys.emplace_back(t, existing.key.view());
  keys.emplace_back(term, key.view());
  ASSIGN_OR_RETURN(std::string record, SealKeyring(keys));
  // Durable before any entry is sealed under the new term. If the Put fails, the new term is
  // not used; should it still have reached the disk, nothing was sealed under it, and the next
  // Rotate replaces it.
  RETURN_IF_ERROR(Annotate(physical_.Put(kBarrierKeyringPath, record), "barrier rotate"));
  terms_.emplace(term, Term{std::move(key), std::move(aead)});
  active_term_ = term;
  return term;
}

absl::StatusOr<std::optional<std::string>> Barrier::Get(absl::string_view key) {
  RETURN_IF_ERROR(CheckUnsealed());
  RETURN_IF_ERROR(ValidateBarrierKey(key));
  const std::string path = absl::StrCat(kBarrierLogicalPrefix, key);
  ASSIGN_OR_RETURN(std::optional<std::string> entry, physical_.Get(path));
  if (!entry.has_value()) return std::nullopt;

  const absl::string_view bytes = *entry;
  if (bytes.size() < kBarrierEntryOverheadBytes) {
    return EntryLoss(key, absl::StrCat("is truncated: ", bytes.size(), " bytes, less than the ",
                                       kBarrierEntryOverheadBytes, "-byte overhead of any entry"));
  }
  if (static_cast<uint8_t>(bytes[0]) != kBarrierFormatVersion) {
    return EntryLoss(key, absl::StrCat("has unknown format version ",
                                       static_cast<uint8_t>(bytes[0]), " (damaged?)"));
  }
  const uint32_t term = GetBe32(bytes.data() + 1);
  auto it = terms_.find(term);
  if (it == terms_.end() && term > active_term_ && ReloadKeyring().ok()) it = terms_.find(term);
  if (it == terms_.end()) {
    return EntryLoss(
        key, absl::StrCat("names key term ", term, ", which the keyring does not hold (damaged?)"));
  }
  std::string aad;
  aad.reserve(kEntryNonceOffset + path.size());
  aad.append(bytes.data(), kEntryNonceOffset);
  aad.append(path);
  absl::StatusOr<std::string> value = it->second.aead.Open(
      bytes.substr(kEntryNonceOffset, kNonceBytes), bytes.substr(kBarrierEntryHeaderBytes), aad);
  if (!value.ok()) {
    if (!absl::IsDataLoss(value.status())) return value.status();
    return EntryLoss(key,
                     "failed to authenticate: it was modified, truncated, or copied from "
                     "another path");
  }
  return *std::move(value);
}

absl::Status Barrier::Put(absl::string_view key, absl::string_view value) {
  RETURN_IF_ERROR(CheckUnsealed());
  RETURN_IF_ERROR(ValidateBarrierKey(key));
  if (value.size() > kBarrierValueBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("barrier value for key ", Quote(key), " is ",
                                                   value.size(), " bytes; the limit is ",
                                                   kBarrierValueBytesMax));
  }
  const std::string path = absl::StrCat(kBarrierLogicalPrefix, key);
  Term& term = terms_.at(active_term_);
  std::string entry;
  entry.reserve(kBarrierEntryOverheadBytes + value.size());
  entry.push_back(static_cast<char>(kBarrierFormatVersion));
  PutBe32(entry, active_term_);
  entry.resize(kBarrierEntryHeaderBytes);
  NextEntryNonce(reinterpret_cast<uint8_t*>(&entry[kEntryNonceOffset]));
  std::string aad;
  aad.reserve(kEntryNonceOffset + path.size());
  aad.append(entry.data(), kEntryNonceOffset);
  aad.append(path);
  ASSIGN_OR_RETURN(
      std::string sealed,
      term.aead.Seal(absl::string_view(entry).substr(kEntryNonceOffset, kNonceBytes), value, aad));
  entry.append(sealed);
  return physical_.Put(path, entry);
}

absl::Status Barrier::Delete(absl::string_view key) {
  RETURN_IF_ERROR(CheckUnsealed());
  RETURN_IF_ERROR(ValidateBarrierKey(key));
  return physical_.Delete(absl::StrCat(kBarrierLogicalPrefix, key));
}

absl::StatusOr<std::vector<std::string>> Barrier::List(absl::string_view prefix) {
  RETURN_IF_ERROR(CheckUnsealed());
  ASSIGN_OR_RETURN(std::vector<std::string> keys,
                   physical_.List(absl::StrCat(kBarrierLogicalPrefix, prefix)));
  for (std::string& key : keys) {
    CHECK(absl::StartsWith(key, kBarrierLogicalPrefix)) << "physical List broke its contract";
    key.erase(0, kBarrierLogicalPrefix.size());
  }
  return keys;
}

}  // namespace bulwark
