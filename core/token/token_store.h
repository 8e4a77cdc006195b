// The token store: who may call the server. Tokens live behind the barrier, stored only under
// the SHA-256 of their value, so neither the storage nor a backup of it holds a usable token.
// Follows Vault's token store (vault/token_store.go) for token form, root token, child tokens,
// TTLs and revocation of a token with its children. Policies are out of scope: every valid
// token may do everything (see docs/server.md).
//
// Storage layout (in the Storage given, normally the node's barrier):
//   core/token/id/<hex sha256(token)>                    the token's record (JSON, below)
//   core/token/parent/<hex parent hash>/<hex child hash>  "1": the child index, for revocation
//
// Single-threaded: call it from the event loop.
#ifndef BULWARK_CORE_TOKEN_TOKEN_STORE_H_
#define BULWARK_CORE_TOKEN_TOKEN_STORE_H_

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/env/clock.h"
#include "base/env/random.h"
#include "base/storage/storage.h"

namespace bulwark::token {

// Generated tokens are Vault's service tokens: "hvs." and 24 base62 characters (~143 bits).
inline constexpr absl::string_view kServiceTokenPrefix = "hvs.";
inline constexpr size_t kTokenRandomChars = 24;
inline constexpr size_t kAccessorChars = 24;
inline constexpr absl::string_view kStoragePrefix = "core/token/";
// Limits on what a caller supplies.
inline constexpr size_t kCustomIdBytesMax = 256;
inline constexpr size_t kDisplayNameBytesMax = 256;
inline constexpr size_t kMetaMax = 64;
inline constexpr size_t kMetaKeyBytesMax = 128;
inline constexpr size_t kMetaValueBytesMax = 1024;
// How deep a chain of child tokens may grow (a root token is depth 0).
inline constexpr int kTokenDepthMax = 32;
// Most tokens one revocation removes (a token and its descendants); beyond it the revocation
// fails before deleting anything, so nothing is half revoked.
inline constexpr size_t kRevokeTreeTokensMax = 100000;
// Vault's system default and maximum lease TTL (768 h): a child token without a TTL gets it.
inline constexpr absl::Duration kDefaultTtl = absl::Hours(768);
inline constexpr absl::Duration kMaxTtl = absl::Hours(768);

struct TokenEntry {
  std::string accessor;
  std::vector<std::string> policies;  // Shown, never enforced: ["root"] for every token today.
  std::string path;                   // "auth/token/root" or "auth/token/create".
  std::string display_name;           // "root", "token" or "token-<name>".
  std::map<std::string, std::string> meta;
  absl::Time creation_time;
  absl::Duration ttl;                     // The TTL at creation; zero: never expires.
  std::optional<absl::Time> expire_time;  // nullopt: never expires.
  int depth = 0;                          // 0 for a root token, parent's + 1 for a child.
  std::string parent_hash;                // Hex SHA-256 of the parent; "" for a root token.
  bool orphan() const { return parent_hash.empty(); }
};

struct CreateRequest {
  std::string id;  // "" draws a random "hvs." token; else a custom value (see ValidateCustomId).
  std::optional<absl::Duration> ttl;  // nullopt or zero: kDefaultTtl. Capped at kMaxTtl.
  std::string display_name;
  std::map<std::string, std::string> meta;
};

struct CreatedToken {
  std::string token;  // The value: returned to the caller once, never stored or logged.
  TokenEntry entry;
  std::vector<std::string> warnings;  // E.g. a TTL capped by the maximum or by the parent.
};

// The hex SHA-256 under which a token is stored.
std::string TokenHash(absl::string_view token);

// A custom token id (Vault's `id`, the server's -dev-root-token-id): 1..kCustomIdBytesMax
// printable ASCII characters without spaces. InvalidArgument naming the rule (never the value).
absl::Status ValidateCustomId(absl::string_view id);

class TokenStore {
 public:
  // `storage` is where records live (the barrier); `clock` gives wall time for creation and
  // expiry (Vault's TTLs are wall-clock too); `random` must be a CSPRNG in production (the
  // Env's). All must outlive the store.
  TokenStore(Storage& storage, Clock& clock, Random& random);

  TokenStore(const TokenStore&) = delete;
  TokenStore& operator=(const TokenStore&) = delete;

  // Creates a root token (policies ["root"], no parent, never expires): a random one, or `id`.
  // Errors: kInvalidArgument for a bad id; kAlreadyExists if that id is already a token;
  // Storage errors.
  absl::StatusOr<CreatedToken> CreateRoot(absl::string_view id = "");

  // Creates a child of `parent` (which must be valid): it inherits the parent's policies, and
  // it expires no later than the parent. Errors: kPermissionDenied ("permission denied") for an
  // invalid parent; kInvalidArgument for a bad id, display name, meta or TTL, or a chain deeper
  // than kTokenDepthMax; kAlreadyExists for a custom id that is taken; Storage errors.
  absl::StatusOr<CreatedToken> CreateChild(absl::string_view parent, const CreateRequest& request);

  // The entry of a valid token. An unknown, revoked or expired token is kPermissionDenied
  // ("permission denied"), with nothing about which; an expired one is revoked on the way.
  // Errors: Storage errors (kFailedPrecondition while sealed); kDataLoss for a corrupt record.
  absl::StatusOr<TokenEntry> Lookup(absl::string_view token);

  // Revokes `token` and every token created under it. Children go first, so a crash part way
  // leaves the token itself valid and the revocation can be repeated. OK if the token does not
  // exist. Errors: kResourceExhausted beyond kRevokeTreeTokensMax tokens; Storage errors.
  absl::Status Revoke(absl::string_view token);

 private:
  absl::StatusOr<std::optional<TokenEntry>> Read(absl::string_view hash);
  absl::StatusOr<CreatedToken> Store(absl::string_view id, TokenEntry entry);
  absl::Status RevokeHash(const std::string& hash);
  std::string RandomBase62(size_t n);

  Storage& storage_;
  Clock& clock_;
  Random& random_;
};

// The record encoding, exposed for tests.
std::string EncodeTokenEntry(const TokenEntry& entry);
absl::StatusOr<TokenEntry> DecodeTokenEntry(absl::string_view json);

}  // namespace bulwark::token

#endif  // BULWARK_CORE_TOKEN_TOKEN_STORE_H_
