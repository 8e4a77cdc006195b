// Opening a plugin artifact from the plugin directory and proving it is the one registered:
// the directory is real (no symlink), the command resolves inside it, it is a regular file,
// optionally it is not writable by group/other and owned by the expected user, and its SHA-256,
// streamed through ReadAt from the very descriptor that will be executed, matches.
#ifndef BULWARK_CORE_CATALOG_ARTIFACT_H_
#define BULWARK_CORE_CATALOG_ARTIFACT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/crypto/sshsig.h"
#include "base/env/failpoint_source.h"
#include "base/env/file_system.h"

namespace bulwark::catalog {

struct ArtifactPolicy {
  // Absolute, canonical path of the plugin directory (CatalogOptions validated it); "" when none
  // is configured.
  std::string plugin_directory;
  // Refuse a directory or file writable by group or other.
  bool check_permissions = false;
  // With check_permissions: refuse a directory or file owned by another uid.
  std::optional<uint32_t> expected_uid;
  uint64_t artifact_bytes_max = 0;
  // The node's failpoint state (Env::failpoints); nullptr: the process's.
  FailpointSource* failpoints = nullptr;
};

struct OpenedArtifact {
  std::string path;  // Absolute path with every symlink resolved: what was opened.
  std::unique_ptr<ExecutableFile> file;
  std::string sha256_hex;  // What was computed (equals the expected one).
  // With a `signature_hasher`: its digest of the same bytes, from the same read pass.
  std::string signature_digest;
};

// Opens `command` (already syntactically valid, see ValidateCommand) under the policy's
// directory and checks it against `expected_sha256_hex` (lower-case). Errors, each a
// CatalogStatus:
//   kFailedPrecondition  catalog.directory_not_configured, catalog.directory_is_symlink,
//                        catalog.directory_invalid (missing, not a directory, or its path passes
//                        through a symlink), catalog.command_not_regular_file,
//                        catalog.sha256_mismatch
//   kInvalidArgument     catalog.command_absolute, catalog.command_parent_reference,
//                        catalog.invalid_command (re-checked here for direct callers)
//   kNotFound            catalog.command_not_found
//   kPermissionDenied    catalog.command_outside_dir, catalog.writable_by_others,
//                        catalog.owner_mismatch
//   kResourceExhausted   catalog.artifact_too_large
//   other                catalog.file_system_error with the FileSystem's code
// With `signature_hasher` (not owned), the bytes hashed are also fed to it, and its digest is
// returned in signature_digest: a signature is checked over the very bytes that were hashed.
absl::StatusOr<OpenedArtifact> OpenArtifact(FileSystem& fs, const ArtifactPolicy& policy,
                                            absl::string_view command,
                                            absl::string_view expected_sha256_hex,
                                            crypto::SshMessageHasher* signature_hasher = nullptr);

// Verified artifacts kept between launches, so that an unchanged artifact is not hashed (and
// copied) again at every launch. Each Open still runs every check OpenArtifact makes except the
// hash (directory, path, confinement, regular file, permissions, size) and opens the file. When
// the opened file is the one verified before (same device and inode) and unchanged since (same
// change time, size, mode and owner), Open hands out another handle on the sealed copy that was
// hashed then: those bytes cannot change, so what runs still has the pinned SHA-256, and every
// launch of the artifact executes (and maps) the same copy. Anything else is verified in full,
// as OpenArtifact does: a replaced, rewritten, truncated, chmod-ed or re-owned file, a different
// expected SHA-256 or signature hash, a file system without sealed copies (ShareSealed; the
// simulated one). Errors: OpenArtifact's. Not thread-safe.
class VerifiedArtifacts {
 public:
  // Keeps sealed copies of at most `bytes_max` bytes in all (the least recently used go first);
  // an artifact larger than that is verified at every launch. 0 keeps none.
  explicit VerifiedArtifacts(uint64_t bytes_max) : bytes_max_(bytes_max) {}

  // As OpenArtifact, with the signature hasher made here: for `signature_algorithm`, the returned
  // signature_digest is that digest of the bytes (computed when they were hashed).
  absl::StatusOr<OpenedArtifact> Open(
      FileSystem& fs, const ArtifactPolicy& policy, absl::string_view command,
      absl::string_view expected_sha256_hex,
      std::optional<crypto::SshHashAlgorithm> signature_algorithm = std::nullopt);

  // Drops every kept copy (a running plugin keeps its own mapping).
  void Clear();

  size_t kept() const { return kept_.size(); }
  uint64_t bytes() const { return bytes_; }
  // Opens answered from a kept copy, without hashing.
  uint64_t reuses() const { return reuses_; }

 private:
  struct Kept {
    std::string sha256_hex;
    std::optional<crypto::SshHashAlgorithm> signature_algorithm;
    FileInfo info;                         // The original file's, when it was verified.
    std::unique_ptr<ExecutableFile> file;  // A handle on the sealed copy.
    std::string signature_digest;
    uint64_t last_used = 0;
  };

  void Forget(std::map<std::string, Kept>::iterator it);

  const uint64_t bytes_max_;
  std::map<std::string, Kept> kept_;  // By resolved path.
  uint64_t bytes_ = 0;
  uint64_t clock_ = 0;
  uint64_t reuses_ = 0;
};

// Streams `file` through SHA-256 in kHashChunkBytes reads; lower-case hex. Refuses
// (catalog.artifact_too_large) once more than `bytes_max` bytes have been read. Each chunk also
// goes to `also` when given.
absl::StatusOr<std::string> HashFile(ReadableFile& file, absl::string_view path_for_messages,
                                     uint64_t bytes_max, crypto::SshMessageHasher* also = nullptr);

}  // namespace bulwark::catalog

#endif  // BULWARK_CORE_CATALOG_ARTIFACT_H_
