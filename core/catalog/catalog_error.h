// Machine-readable reasons for every refusal of the plugin catalog. Each error the catalog returns
// carries one: as the message prefix ("catalog.command_outside_dir: ...") and as a status payload,
// so callers (the HTTP layer, tests, operators' scripts) can branch on it without parsing text.
#ifndef BULWARK_CORE_CATALOG_CATALOG_ERROR_H_
#define BULWARK_CORE_CATALOG_CATALOG_ERROR_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace bulwark::catalog {

// The reasons are stable: their names (CatalogErrorReason) are an interface, never renumbered or
// renamed. Each is listed with the canonical code it always comes with.
enum class CatalogError {
  // Input validation (kInvalidArgument).
  kInvalidType,             // catalog.invalid_type: not "auth", "database" or "secret".
  kInvalidName,             // catalog.invalid_name
  kInvalidVersion,          // catalog.invalid_version: not vMAJOR.MINOR.PATCH[-pre][+build].
  kReservedVersion,         // catalog.reserved_version: "+builtin" metadata in a user version.
  kInvalidCommand,          // catalog.invalid_command: empty, too long, bad characters/segments.
  kCommandAbsolute,         // catalog.command_absolute
  kCommandParentReference,  // catalog.command_parent_reference: contains "..".
  kInvalidArgs,             // catalog.invalid_args
  kInvalidEnv,              // catalog.invalid_env
  kInvalidSha256,           // catalog.invalid_sha256: not 64 hex characters.
  kInvalidLimits,           // catalog.invalid_limits: a limit out of its range.
  kInvalidOptions,          // catalog.invalid_options: bad CatalogOptions at Open.
  // Catalog state.
  kBuiltinNameRequiresVersion,  // catalog.builtin_name_requires_version (kAlreadyExists)
  kCatalogFull,                 // catalog.catalog_full (kResourceExhausted)
  kNotFound,                    // catalog.not_found (kNotFound)
  kVersionPinned,               // catalog.version_pinned (kFailedPrecondition)
  kBuiltinImmutable,            // catalog.builtin_immutable (kFailedPrecondition)
  // The plugin directory and the artifact.
  kDirectoryNotConfigured,   // catalog.directory_not_configured (kFailedPrecondition)
  kDirectoryIsSymlink,       // catalog.directory_is_symlink (kFailedPrecondition)
  kDirectoryInvalid,         // catalog.directory_invalid: missing, not a directory, not canonical
                             // (kFailedPrecondition)
  kCommandNotFound,          // catalog.command_not_found (kNotFound)
  kCommandOutsideDirectory,  // catalog.command_outside_dir: resolves outside (kPermissionDenied)
  kCommandNotRegularFile,    // catalog.command_not_regular_file (kFailedPrecondition)
  kArtifactTooLarge,         // catalog.artifact_too_large (kResourceExhausted)
  kSha256Mismatch,           // catalog.sha256_mismatch (kFailedPrecondition)
  kWritableByOthers,         // catalog.writable_by_others: file or directory (kPermissionDenied)
  kOwnerMismatch,            // catalog.owner_mismatch: file or directory (kPermissionDenied)
  // Signatures (signature.h).
  kSignatureRequired,      // catalog.signature_required: unsigned under "required"
                           // (kPermissionDenied)
  kSignatureRefused,       // catalog.signature_refused: the message carries the signature.*
                           // reason; its code (kPermissionDenied, kInvalidArgument for a
                           // malformed signature, kUnimplemented for an unsupported key)
  kAllowedSignersInvalid,  // catalog.allowed_signers_invalid: missing, unreadable or malformed
                           // (kFailedPrecondition)
  // Errors of the layers below, passed through with their own code.
  kStorageCorrupt,   // catalog.storage_corrupt (kDataLoss): a stored record does not decode.
  kStorageError,     // catalog.storage_error: the Storage failed (its code is kept).
  kFileSystemError,  // catalog.file_system_error: the FileSystem failed (its code is kept).
};

// The stable reason string, e.g. "catalog.command_outside_dir".
absl::string_view CatalogErrorReason(CatalogError error);

// The payload type URL under which the reason string is attached to a Status.
inline constexpr absl::string_view kCatalogErrorPayloadUrl =
    "type.bulwark.dev/catalog.CatalogError";

// Builds Status(code, "<reason>: <message>") with the reason attached as a payload.
// REQUIRES: code != kOk.
absl::Status CatalogStatus(absl::StatusCode code, CatalogError error, absl::string_view message);

// The reason attached to `status` by CatalogStatus, or nullopt (OK statuses and statuses that
// did not come from the catalog).
std::optional<CatalogError> CatalogErrorOf(const absl::Status& status);

}  // namespace bulwark::catalog

#endif  // BULWARK_CORE_CATALOG_CATALOG_ERROR_H_
