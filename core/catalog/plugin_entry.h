// The plugin catalog's vocabulary: plugin types, catalog entries (what is stored and launched),
// the redacted view that reads return, registration requests, and the named limits on them.
#ifndef BULWARK_CORE_CATALOG_PLUGIN_ENTRY_H_
#define BULWARK_CORE_CATALOG_PLUGIN_ENTRY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bulwark::catalog {

// Limits on every input that can grow. Exceeding one is a kInvalidArgument (or, for the entry
// count, kResourceExhausted) refusal, never a silent truncation.
inline constexpr size_t kNameBytesMax = 128;
inline constexpr size_t kVersionBytesMax = 128;
inline constexpr size_t kCommandBytesMax = 1024;
inline constexpr size_t kArgsMax = 128;
inline constexpr size_t kArgBytesMax = 4096;
inline constexpr size_t kArgsTotalBytesMax = 64 * 1024;
inline constexpr size_t kEnvMax = 128;
inline constexpr size_t kEnvKeyBytesMax = 256;
inline constexpr size_t kEnvEntryBytesMax = 16 * 1024;
inline constexpr size_t kEnvTotalBytesMax = 128 * 1024;
inline constexpr size_t kSha256HexChars = 64;
// An armored SSHSIG signature (crypto::kSshSignatureTextBytesMax) and the principals field of the
// allowed-signers line that admitted it.
inline constexpr size_t kSignatureBytesMax = 64 * 1024;
inline constexpr size_t kSignerPrincipalBytesMax = 4096;
// Entries (user registrations, not built-ins or pins) one catalog holds by default, and the
// largest value CatalogOptions::entries_max may take.
inline constexpr size_t kCatalogEntriesDefaultMax = 16384;
inline constexpr size_t kCatalogEntriesMax = 1 << 20;
inline constexpr size_t kBuiltinsMax = 1024;
// Artifacts are hashed on the event loop in chunks; this bounds how long one registration or
// launch check can take (about a second per GiB).
inline constexpr uint64_t kArtifactBytesDefaultMax = uint64_t{1} << 30;
inline constexpr size_t kHashChunkBytes = 64 * 1024;
inline constexpr uint64_t kVerifiedCopiesBytesDefaultMax = uint64_t{256} << 20;

// Vault's consts.PluginType values: Credential=1 ("auth"), Database=2, Secrets=3 ("secret").
enum class PluginType : uint32_t { kAuth = 1, kDatabase = 2, kSecret = 3 };

inline constexpr PluginType kAllPluginTypes[] = {PluginType::kAuth, PluginType::kDatabase,
                                                 PluginType::kSecret};

// "auth", "database" or "secret": the spelling of Vault's API paths and storage keys.
absl::string_view PluginTypeName(PluginType type);

// Parses "auth", "database" or "secret". InvalidArgument (catalog.invalid_type) otherwise.
absl::StatusOr<PluginType> ParsePluginType(absl::string_view text);

// A registration as a caller (the HTTP layer, a test) supplies it. Validation normalises it:
// the version gains a leading "v", the sha256 becomes lower-case.
// Resource limits for every process of one catalog entry (issue 17, "Limits"). Unset fields
// impose nothing; entries stored before limits existed decode with none. Enforced through
// cgroups where the machine offers them, else the rlimit fallback (docs/security.md, Limits).
struct PluginLimits {
  std::optional<uint64_t> memory_bytes;  // Resident memory; at least kMemoryBytesMin.
  std::optional<uint64_t> pids;          // Processes and threads; 1 to kPidsMax.
  std::optional<uint64_t> cpu_weight;    // Relative CPU share, 1 to 10000 (cgroup v2's scale).
  std::optional<uint64_t> open_files;    // Descriptors; 16 to kOpenFilesMax.
  static constexpr uint64_t kMemoryBytesMin = 1 << 20;
  static constexpr uint64_t kPidsMax = 1 << 22;
  static constexpr uint64_t kOpenFilesMax = 1 << 20;
  bool empty() const { return !memory_bytes && !pids && !cpu_weight && !open_files; }
  friend bool operator==(const PluginLimits& a, const PluginLimits& b) {
    return a.memory_bytes == b.memory_bytes && a.pids == b.pids && a.cpu_weight == b.cpu_weight &&
           a.open_files == b.open_files;
  }
};
// kInvalidArgument naming the field and its range when a set field is out of range.
absl::Status ValidateLimits(const PluginLimits& limits);

struct RegisterRequest {
  PluginType type = PluginType::kSecret;
  std::string name;
  std::string version;  // "" registers the unversioned entry; else semver, "v" optional.
  std::string command;  // Relative to the plugin directory; no arguments in it.
  std::vector<std::string> args;
  std::vector<std::string> env;  // "KEY=value". Values may be secrets: never echoed.
  std::string sha256;            // 64 hex characters: the artifact's SHA-256.
  PluginLimits limits;
  // The artifact's OpenSSH signature (`ssh-keygen -Y sign -n bulwark-plugin`, armored), or "".
  // Verified, and kept, unless the signature policy is off (see signature.h).
  std::string signature;
};

// A complete catalog entry, env values included. Only the catalog and the launch path hold
// these; anything shown to a user is a CatalogEntryView. DebugString() redacts env values.
struct CatalogEntry {
  PluginType type = PluginType::kSecret;
  std::string name;
  std::string version;  // Normalised ("v1.2.3"), or "" for the unversioned entry.
  std::string command;  // Relative to the plugin directory; "" for built-ins.
  std::vector<std::string> args;
  std::vector<std::string> env;  // "KEY=value".
  std::string sha256_hex;        // Lower-case; "" for built-ins.
  bool builtin = false;
  PluginLimits limits;
  // A signed entry: the armored signature as registered, and who signed it when it was
  // registered: the allowed-signers line's principals and the key's "SHA256:..." fingerprint.
  // All three "" for an unsigned entry (and for entries stored before signatures existed).
  std::string signature;
  std::string signer_principal;
  std::string signer_fingerprint;

  // One line for logs and test failures; env entries appear as "KEY=<redacted>".
  std::string DebugString() const;
};

// What reading the catalog returns: an entry without its env values.
struct CatalogEntryView {
  PluginType type = PluginType::kSecret;
  std::string name;
  std::string version;
  std::string command;
  std::vector<std::string> args;
  std::vector<std::string> env_keys;  // The names of the env entries, in registration order.
  std::string sha256_hex;
  bool builtin = false;
  PluginLimits limits;
  std::string signer_principal;    // "" when unsigned.
  std::string signer_fingerprint;  // "SHA256:<base64>", "" when unsigned.

  // One line for logs, messages and test failures.
  std::string DebugString() const;

  friend bool operator==(const CatalogEntryView& a, const CatalogEntryView& b);
  friend bool operator!=(const CatalogEntryView& a, const CatalogEntryView& b) { return !(a == b); }
};

// The redacted view of `entry`.
CatalogEntryView ViewOf(const CatalogEntry& entry);

// A plugin compiled into the server. Registered at Open, kept in memory only.
struct BuiltinPlugin {
  PluginType type = PluginType::kSecret;
  std::string name;
  std::string version;  // Must carry "builtin" build metadata, e.g. "v1.0.0+builtin".
};

}  // namespace bulwark::catalog

#endif  // BULWARK_CORE_CATALOG_PLUGIN_ENTRY_H_
