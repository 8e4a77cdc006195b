// Pure input validation for the plugin catalog: names, semantic versions, commands, args, env and
// digests. No I/O, so the HTTP layer can call it before touching anything, and a fuzzer can
// drive it directly. Every refusal is a CatalogStatus (see catalog_error.h) whose message names
// the field and says how to fix it, and never contains an env value.
#ifndef BULWARK_CORE_CATALOG_VALIDATION_H_
#define BULWARK_CORE_CATALOG_VALIDATION_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/catalog/plugin_entry.h"

namespace bulwark::catalog {

// A parsed semantic version (semver.org 2.0.0).
struct SemVer {
  std::string major, minor, patch;      // Decimal digits, no leading zeros.
  std::vector<std::string> prerelease;  // Dot-separated identifiers after '-'.
  std::vector<std::string> build;       // Dot-separated identifiers after '+'.
};

// Parses "[v]MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]" strictly (numeric identifiers without
// leading zeros, identifiers of [0-9A-Za-z-], at most kVersionBytesMax bytes).
// InvalidArgument (catalog.invalid_version) otherwise.
absl::StatusOr<SemVer> ParseSemVer(absl::string_view text);

// "v" + the canonical text of `version`.
std::string FormatSemVer(const SemVer& version);

// "" stays "" (the unversioned entry); anything else is parsed and returned as "v1.2.3[...]".
// InvalidArgument (catalog.invalid_version) if it is not a semantic version.
absl::StatusOr<std::string> NormalizeVersion(absl::string_view text);

// True if a build-metadata identifier of `version` is "builtin" (Vault's reserved marker).
// False for "" and for text that is not a semantic version.
bool IsBuiltinVersion(absl::string_view version);

// Orders normalised versions by semver precedence, "" first; versions of equal precedence
// (which differ only in build metadata) are ordered bytewise so the order is total.
// Returns <0, 0 or >0. Text that does not parse sorts after every valid version, bytewise.
int CompareVersions(absl::string_view a, absl::string_view b);

// 1..kNameBytesMax bytes of [A-Za-z0-9._-], starting with a letter or digit, without "..".
// InvalidArgument (catalog.invalid_name).
absl::Status ValidateName(absl::string_view name);

// A clean relative path inside the plugin directory: non-empty, at most kCommandBytesMax bytes,
// printable non-space ASCII or valid UTF-8, no empty or "." segment, no trailing '/'.
// InvalidArgument with catalog.command_absolute (starts with '/'),
// catalog.command_parent_reference (contains "..", as Vault refuses), or catalog.invalid_command.
absl::Status ValidateCommand(absl::string_view command);

// At most kArgsMax args of at most kArgBytesMax bytes each and kArgsTotalBytesMax in all,
// valid UTF-8 without NUL. InvalidArgument (catalog.invalid_args); the message gives the index,
// never the argument.
absl::Status ValidateArgs(const std::vector<std::string>& args);

// At most kEnvMax entries of the form KEY=value: KEY matches [A-Za-z_][A-Za-z0-9_]* (at most
// kEnvKeyBytesMax bytes) and is not repeated; each entry is at most kEnvEntryBytesMax bytes and
// all of them at most kEnvTotalBytesMax; valid UTF-8 without NUL. InvalidArgument
// (catalog.invalid_env); the message gives the index and, when it is well-formed, the key, never
// the value.
absl::Status ValidateEnv(const std::vector<std::string>& env);

// Exactly kSha256HexChars hex digits, any case; returns them lower-case. InvalidArgument
// (catalog.invalid_sha256).
absl::StatusOr<std::string> NormalizeSha256(absl::string_view hex);

// Checks every field of `request` in this order: name, version (including the reserved
// "+builtin" metadata: catalog.reserved_version), command, args, env, sha256. Returns the request
// normalised (version with "v", sha256 lower-case). Errors as the functions above.
absl::StatusOr<RegisterRequest> ValidateRegisterRequest(const RegisterRequest& request);

// The key under which the env entry "KEY=value" is stored: everything before the first '='
// (the whole entry if there is none).
absl::string_view EnvKey(absl::string_view entry);

// True if `text` is valid UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool IsValidUtf8(absl::string_view text);

// `text` C-escaped, quoted and cut to `max_bytes` (with "..." appended when cut), for messages.
std::string QuoteForMessage(absl::string_view text, size_t max_bytes = 80);

}  // namespace bulwark::catalog

#endif  // BULWARK_CORE_CATALOG_VALIDATION_H_
