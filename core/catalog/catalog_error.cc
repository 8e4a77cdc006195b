// Reason strings and the status payload of catalog errors (see catalog_error.h).
#include "core/catalog/catalog_error.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "base/status/check.h"

namespace bulwark::catalog {
namespace {

constexpr CatalogError kAllErrors[] = {
    CatalogError::kInvalidType,
    CatalogError::kInvalidName,
    CatalogError::kInvalidVersion,
    CatalogError::kReservedVersion,
    CatalogError::kInvalidCommand,
    CatalogError::kCommandAbsolute,
    CatalogError::kCommandParentReference,
    CatalogError::kInvalidArgs,
    CatalogError::kInvalidEnv,
    CatalogError::kInvalidSha256,
    CatalogError::kInvalidLimits,
    CatalogError::kInvalidOptions,
    CatalogError::kBuiltinNameRequiresVersion,
    CatalogError::kCatalogFull,
    CatalogError::kNotFound,
    CatalogError::kVersionPinned,
    CatalogError::kBuiltinImmutable,
    CatalogError::kDirectoryNotConfigured,
    CatalogError::kDirectoryIsSymlink,
    CatalogError::kDirectoryInvalid,
    CatalogError::kCommandNotFound,
    CatalogError::kCommandOutsideDirectory,
    CatalogError::kCommandNotRegularFile,
    CatalogError::kArtifactTooLarge,
    CatalogError::kSha256Mismatch,
    CatalogError::kWritableByOthers,
    CatalogError::kOwnerMismatch,
    CatalogError::kSignatureRequired,
    CatalogError::kSignatureRefused,
    CatalogError::kAllowedSignersInvalid,
    CatalogError::kStorageCorrupt,
    CatalogError::kStorageError,
    CatalogError::kFileSystemError,
};

}  // namespace

absl::string_view CatalogErrorReason(CatalogError error) {
  switch (error) {
    case CatalogError::kInvalidType:
      return "catalog.invalid_type";
    case CatalogError::kInvalidName:
      return "catalog.invalid_name";
    case CatalogError::kInvalidVersion:
      return "catalog.invalid_version";
    case CatalogError::kReservedVersion:
      return "catalog.reserved_version";
    case CatalogError::kInvalidCommand:
      return "catalog.invalid_command";
    case CatalogError::kCommandAbsolute:
      return "catalog.command_absolute";
    case CatalogError::kCommandParentReference:
      return "catalog.command_parent_reference";
    case CatalogError::kInvalidArgs:
      return "catalog.invalid_args";
    case CatalogError::kInvalidEnv:
      return "catalog.invalid_env";
    case CatalogError::kInvalidSha256:
      return "catalog.invalid_sha256";
    case CatalogError::kInvalidLimits:
      return "catalog.invalid_limits";
    case CatalogError::kInvalidOptions:
      return "catalog.invalid_options";
    case CatalogError::kBuiltinNameRequiresVersion:
      return "catalog.builtin_name_requires_version";
    case CatalogError::kCatalogFull:
      return "catalog.catalog_full";
    case CatalogError::kNotFound:
      return "catalog.not_found";
    case CatalogError::kVersionPinned:
      return "catalog.version_pinned";
    case CatalogError::kBuiltinImmutable:
      return "catalog.builtin_immutable";
    case CatalogError::kDirectoryNotConfigured:
      return "catalog.directory_not_configured";
    case CatalogError::kDirectoryIsSymlink:
      return "catalog.directory_is_symlink";
    case CatalogError::kDirectoryInvalid:
      return "catalog.directory_invalid";
    case CatalogError::kCommandNotFound:
      return "catalog.command_not_found";
    case CatalogError::kCommandOutsideDirectory:
      return "catalog.command_outside_dir";
    case CatalogError::kCommandNotRegularFile:
      return "catalog.command_not_regular_file";
    case CatalogError::kArtifactTooLarge:
      return "catalog.artifact_too_large";
    case CatalogError::kSha256Mismatch:
      return "catalog.sha256_mismatch";
    case CatalogError::kWritableByOthers:
      return "catalog.writable_by_others";
    case CatalogError::kOwnerMismatch:
      return "catalog.owner_mismatch";
    case CatalogError::kSignatureRequired:
      return "catalog.signature_required";
    case CatalogError::kSignatureRefused:
      return "catalog.signature_refused";
    case CatalogError::kAllowedSignersInvalid:
      return "catalog.allowed_signers_invalid";
    case CatalogError::kStorageCorrupt:
      return "catalog.storage_corrupt";
    case CatalogError::kStorageError:
      return "catalog.storage_error";
    case CatalogError::kFileSystemError:
      return "catalog.file_system_error";
  }
  return "catalog.unknown";
}

absl::Status CatalogStatus(absl::StatusCode code, CatalogError error, absl::string_view message) {
  CHECK(code != absl::StatusCode::kOk) << "CatalogStatus needs an error code";
  const absl::string_view reason = CatalogErrorReason(error);
  absl::Status status(code, absl::StrCat(reason, ": ", message));
  status.SetPayload(kCatalogErrorPayloadUrl, absl::Cord(reason));
  return status;
}

std::optional<CatalogError> CatalogErrorOf(const absl::Status& status) {
  if (status.ok()) return std::nullopt;
  auto payload = status.GetPayload(kCatalogErrorPayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  const std::string reason(*payload);
  for (CatalogError error : kAllErrors) {
    if (CatalogErrorReason(error) == reason) return error;
  }
  return std::nullopt;
}

}  // namespace bulwark::catalog
