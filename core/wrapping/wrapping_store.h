// Response wrapping: a response stored behind the barrier that exactly one presentation of a
// short-lived token can read (Vault's cubbyhole wrapping, vault/wrapping.go). bulwark issues
// only JWT-formatted tokens (format "jwt": ES512, protocol/wrapping_token.h), for the plugin
// bootstrap without AutoMTLS: the host wraps a plugin's TLS material and the plugin unwraps it at
// sys/wrapping/unwrap. See docs/server.md, "Wrapped-token bootstrap".
//
// Rules:
//   - One signing key (P-521), created on first use from the Random and kept behind the barrier
//     at kJwtKeyPath (Vault's path). Never cached: each call reads it, so a sealed barrier
//     refuses at once and nothing outlives a seal in memory.
//   - Single use: Unwrap deletes the stored response before it returns it; a second
//     presentation finds nothing. If the delete fails, nothing is returned.
//   - Expiry by the Clock's wall time: a token whose exp (or whose record's expire_time) has
//     passed is refused, and the record is deleted when met, by a timer at its expiry, and by a
//     sweep when the store is full or SweepExpired is called (after unseal).
//   - Every refusal is kInvalidArgument with a message that starts with kInvalidWrappingToken
//     (Vault's text, what the HTTP API answers with 400) followed by the reason, for the log.
//     No message contains a token, a token id or wrapped data.
//
// Storage layout (in the Storage given: the node's barrier):
//   core/wrapping/jwtkey                      {"v":1,"curve":"P-521","d":"<base64 scalar>"}
//   core/wrapping/response/<hex sha256(jti)>  {"v":1,"creation_time":s,"expire_time":s,
//                                              "creation_path":"...","response":"<envelope>"}
// Records are keyed by a hash of the token id, so the storage never holds a usable id.
//
// Single-threaded: call it from the event loop (expiry timers run there).
#ifndef BULWARK_CORE_WRAPPING_WRAPPING_STORE_H_
#define BULWARK_CORE_WRAPPING_WRAPPING_STORE_H_

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/crypto/secure_buffer.h"
#include "base/env/clock.h"
#include "base/env/executor.h"
#include "base/env/random.h"
#include "base/storage/storage.h"

namespace bulwark::wrapping {

inline constexpr absl::string_view kJwtKeyPath = "core/wrapping/jwtkey";
inline constexpr absl::string_view kResponsePrefix = "core/wrapping/response/";
// Vault's answer to any token that cannot be unwrapped (consts.ErrInvalidWrappingToken).
inline constexpr absl::string_view kInvalidWrappingToken =
    "wrapping token is not valid or does not exist";
// Wrapped responses held at once; Wrap sweeps expired ones, then refuses beyond this.
inline constexpr size_t kWrappedResponsesMax = 1024;
// Largest response Wrap takes (the plugin bootstrap wraps about 1 KiB).
inline constexpr size_t kWrappedResponseBytesMax = 64 * 1024;
// Longest and shortest TTL Wrap takes.
inline constexpr absl::Duration kWrapTtlMin = absl::Seconds(1);
inline constexpr absl::Duration kWrapTtlMax = absl::Hours(24);

struct WrapRequest {
  // The wrapped data: a JSON object's text. Becomes "data" of the stored envelope. May hold
  // secrets; it is never logged.
  crypto::SecureBuffer data_json;
  absl::Duration ttl;
  // What the response came from (Vault's creation_path), e.g. "sys/plugins/bootstrap/kv".
  std::string creation_path;
  // The JWT's addr claim: the server's api_addr, where the token is to be unwrapped.
  std::string addr;
};

struct WrapResult {
  std::string token;  // The JWT. Returned once; never stored or logged.
  absl::Time creation_time;
  absl::Time expire_time;
};

// Whether `status` is a refusal of the token (answer 400 with kInvalidWrappingToken) rather
// than a failure of the server.
bool IsInvalidWrappingToken(const absl::Status& status);

class WrappingStore {
 public:
  // `storage` is the barrier; `clock` gives wall time for creation and expiry; `random` must be
  // a CSPRNG in production (keys, token ids, signing nonces); `executor` runs expiry timers.
  // All must outlive the store.
  WrappingStore(Storage& storage, Clock& clock, Random& random, Executor& executor);
  ~WrappingStore();

  WrappingStore(const WrappingStore&) = delete;
  WrappingStore& operator=(const WrappingStore&) = delete;

  // Stores the envelope {"request_id":..., "lease_id":"", ..., "data":<data_json>, ...} under a
  // fresh token id and returns the signed JWT. Creates the signing key on first use.
  // Errors: kInvalidArgument for data that is not a JSON object, larger than
  // kWrappedResponseBytesMax, or a TTL outside kWrapTtlMin..kWrapTtlMax; kResourceExhausted
  // when kWrappedResponsesMax live responses are already held; Storage errors (a sealed barrier
  // is kFailedPrecondition); kDataLoss for a corrupt key record.
  absl::StatusOr<WrapResult> Wrap(WrapRequest request);

  // Verifies `token` (a JWT signed by this store's key, not expired), deletes its stored
  // response and returns it: the unwrap reply's body. Refusals: see the top of this file.
  // Other errors: Storage errors (the response is then not returned), kDataLoss.
  absl::StatusOr<std::string> Unwrap(absl::string_view token);

  // Deletes every stored response whose expiry has passed; returns how many. Storage errors.
  absl::StatusOr<size_t> SweepExpired();

 private:
  struct Key;
  absl::StatusOr<std::unique_ptr<Key>> LoadOrCreateKey(bool create);
  absl::Status MakeRoom();
  void ScheduleExpiry(const std::string& record_key, absl::Duration ttl);
  std::string NewTokenId();
  std::string NewUuid();

  Storage& storage_;
  Clock& clock_;
  Random& random_;
  Executor& executor_;
  // The expiry timer of each stored response, by record key: at most kWrappedResponsesMax.
  std::map<std::string, TimerId> timers_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace bulwark::wrapping

#endif  // BULWARK_CORE_WRAPPING_WRAPPING_STORE_H_
