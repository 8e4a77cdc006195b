// Plugin artifact checks (see artifact.h). Every file-system call goes through the FileSystem
// passed in; nothing here touches the operating system directly.
#include "core/catalog/artifact.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "base/crypto/sha256.h"
#include "base/status/status_macros.h"
#include "core/catalog/catalog_error.h"
#include "core/catalog/plugin_entry.h"
#include "core/catalog/validation.h"
#include "faultinject/failpoint.h"

namespace bulwark::catalog {
namespace {

absl::Status FileSystemError(const absl::Status& status, absl::string_view doing) {
  return CatalogStatus(status.code(), CatalogError::kFileSystemError,
                       absl::StrCat(doing, ": ", status.message()));
}

std::string Octal(uint32_t mode) {
  std::string out;
  for (int shift = 9; shift >= 0; shift -= 3)
    out.push_back(static_cast<char>('0' + ((mode >> shift) & 7)));
  return out;
}

// The optional ownership and mode checks, for the directory and for the artifact alike.
absl::Status CheckPermissions(const ArtifactPolicy& policy, const FileInfo& info,
                              absl::string_view what, absl::string_view path) {
  if (!policy.check_permissions) return absl::OkStatus();
  if ((info.mode & 022) != 0) {
    return CatalogStatus(
        absl::StatusCode::kPermissionDenied, CatalogError::kWritableByOthers,
        absl::StrCat(what, " ", path, " has mode ", Octal(info.mode),
                     ", writable by group or other, so someone else could replace the plugin; "
                     "run chmod go-w ",
                     path));
  }
  if (policy.expected_uid.has_value() && info.uid != *policy.expected_uid) {
    return CatalogStatus(absl::StatusCode::kPermissionDenied, CatalogError::kOwnerMismatch,
                         absl::StrCat(what, " ", path, " is owned by uid ", info.uid,
                                      ", not by uid ", *policy.expected_uid,
                                      " as configured; chown it to uid ", *policy.expected_uid));
  }
  return absl::OkStatus();
}

bool IsInside(absl::string_view path, absl::string_view directory) {
  if (directory == "/") return path.size() > 1 && path.front() == '/';
  return path.size() > directory.size() + 1 && absl::StartsWith(path, directory) &&
         path[directory.size()] == '/';
}

}  // namespace

absl::StatusOr<std::string> HashFile(ReadableFile& file, absl::string_view path_for_messages,
                                     uint64_t bytes_max, crypto::SshMessageHasher* also) {
  crypto::Sha256 hasher;
  std::vector<char> buffer(kHashChunkBytes);
  uint64_t offset = 0;
  while (true) {
    absl::StatusOr<size_t> n = file.ReadAt(offset, absl::MakeSpan(buffer));
    if (!n.ok()) {
      return FileSystemError(n.status(), absl::StrCat("hash ", path_for_messages));
    }
    if (*n == 0) break;
    offset += *n;
    if (offset > bytes_max) {
      return CatalogStatus(
          absl::StatusCode::kResourceExhausted, CatalogError::kArtifactTooLarge,
          absl::StrCat(path_for_messages, " is larger than the limit of ", bytes_max,
                       " bytes; raise artifact_bytes_max or ship a "
                       "smaller plugin"));
    }
    hasher.Update(absl::string_view(buffer.data(), *n));
    if (also != nullptr) also->Update(absl::string_view(buffer.data(), *n));
  }
  return crypto::HexEncode(hasher.Finish());
}

namespace {

// What every check but the hash established: the resolved path, the open file and its Stat.
struct CheckedFile {
  std::string real;
  std::unique_ptr<ExecutableFile> file;
  FileInfo info;
};

// OpenArtifact's checks up to (not including) the hash.
absl::StatusOr<CheckedFile> OpenChecked(FileSystem& fs, const ArtifactPolicy& policy,
                                        absl::string_view command) {
  const std::string& dir = policy.plugin_directory;
  if (dir.empty()) {
    return CatalogStatus(absl::StatusCode::kFailedPrecondition,
                         CatalogError::kDirectoryNotConfigured,
                         "no plugin directory is configured, so no external plugin can be "
                         "registered or run; set plugin_directory in the server configuration "
                         "to a real directory (not a symlink) that holds the plugin artifacts");
  }
  RETURN_IF_ERROR(ValidateCommand(command));

  // The directory itself: present, a directory, not a symlink and reached through none.
  absl::StatusOr<FileInfo> dir_info = fs.Lstat(dir);
  if (!dir_info.ok()) {
    if (absl::IsNotFound(dir_info.status())) {
      return CatalogStatus(absl::StatusCode::kFailedPrecondition, CatalogError::kDirectoryInvalid,
                           absl::StrCat("plugin directory ", dir,
                                        " does not exist; create it or fix plugin_directory"));
    }
    return FileSystemError(dir_info.status(), "check the plugin directory");
  }
  // A planted bug for the simulator's drill (testonly builds only): a symlinked directory is
  // followed, and commands are confined to wherever it points.
  bool follow_symlinked_dir = false;
  if (dir_info->type == FileType::kSymlink) {
    follow_symlinked_dir = static_cast<bool>(
        BW_PLANTED_BUG_IN(policy.failpoints, "bug.catalog.allow_symlinked_directory"));
    if (!follow_symlinked_dir) {
      return CatalogStatus(absl::StatusCode::kFailedPrecondition, CatalogError::kDirectoryIsSymlink,
                           absl::StrCat("plugin directory ", dir,
                                        " is a symbolic link, which is not allowed; set "
                                        "plugin_directory to the real directory"));
    }
    dir_info = fs.Stat(dir);
    if (!dir_info.ok()) return FileSystemError(dir_info.status(), "check the plugin directory");
  }
  if (dir_info->type != FileType::kDirectory) {
    return CatalogStatus(
        absl::StatusCode::kFailedPrecondition, CatalogError::kDirectoryInvalid,
        absl::StrCat("plugin directory ", dir, " is a ", FileTypeName(dir_info->type),
                     ", not a directory; fix plugin_directory"));
  }
  absl::StatusOr<std::string> dir_real = fs.RealPath(dir);
  if (!dir_real.ok()) return FileSystemError(dir_real.status(), "resolve the plugin directory");
  if (*dir_real != dir && !follow_symlinked_dir) {
    return CatalogStatus(absl::StatusCode::kFailedPrecondition, CatalogError::kDirectoryIsSymlink,
                         absl::StrCat("plugin directory ", dir,
                                      " is reached through a symbolic link (it resolves to ",
                                      *dir_real, "); set plugin_directory to ", *dir_real));
  }
  RETURN_IF_ERROR(CheckPermissions(policy, *dir_info, "plugin directory", dir));
  const std::string& confined_to = follow_symlinked_dir ? *dir_real : dir;

  // The command: resolved through every symlink, it must stay inside the directory.
  const std::string joined = JoinPath(dir, command);
  absl::StatusOr<std::string> real = fs.RealPath(joined);
  if (!real.ok()) {
    if (absl::IsNotFound(real.status())) {
      return CatalogStatus(absl::StatusCode::kNotFound, CatalogError::kCommandNotFound,
                           absl::StrCat("command ", QuoteForMessage(command), ": ", joined,
                                        " does not exist (or is a symlink to nothing); copy the "
                                        "plugin there or fix command"));
    }
    return FileSystemError(real.status(), absl::StrCat("resolve command ", joined));
  }
  // The failpoint is a planted bug (testonly builds only): a symlink may lead anywhere.
  if (!IsInside(*real, confined_to) &&
      !BW_PLANTED_BUG_IN(policy.failpoints, "bug.catalog.command_escapes_directory")) {
    return CatalogStatus(absl::StatusCode::kPermissionDenied,
                         CatalogError::kCommandOutsideDirectory,
                         absl::StrCat("command ", QuoteForMessage(command), ": resolves to ", *real,
                                      ", outside the plugin directory ", dir,
                                      "; copy the plugin into the directory instead of linking "
                                      "to it"));
  }
  auto not_regular = [&](FileType type) {
    return CatalogStatus(absl::StatusCode::kFailedPrecondition,
                         CatalogError::kCommandNotRegularFile,
                         absl::StrCat("command ", QuoteForMessage(command), ": ", *real, " is a ",
                                      FileTypeName(type),
                                      ", not a regular file; give the path of the plugin "
                                      "executable"));
  };
  absl::StatusOr<FileInfo> info = fs.Lstat(*real);
  if (!info.ok()) return FileSystemError(info.status(), absl::StrCat("check ", *real));
  if (info->type != FileType::kRegular) return not_regular(info->type);

  // Open what was checked, then check the open file: that descriptor is what will run.
  absl::StatusOr<std::unique_ptr<ExecutableFile>> file = fs.OpenForExec(*real);
  if (!file.ok()) {
    if (absl::IsFailedPrecondition(file.status())) return not_regular(FileType::kOther);
    if (absl::IsNotFound(file.status())) {
      return CatalogStatus(absl::StatusCode::kNotFound, CatalogError::kCommandNotFound,
                           absl::StrCat("command ", QuoteForMessage(command), ": ", *real,
                                        " disappeared while it was being checked; try again"));
    }
    return FileSystemError(file.status(), absl::StrCat("open ", *real));
  }
  absl::StatusOr<FileInfo> opened = (*file)->Stat();
  if (!opened.ok()) return FileSystemError(opened.status(), absl::StrCat("stat ", *real));
  if (opened->type != FileType::kRegular) return not_regular(opened->type);
  RETURN_IF_ERROR(CheckPermissions(policy, *opened, "plugin file", *real));
  if (opened->size > policy.artifact_bytes_max) {
    return CatalogStatus(absl::StatusCode::kResourceExhausted, CatalogError::kArtifactTooLarge,
                         absl::StrCat(*real, " is ", opened->size,
                                      " bytes, larger than the limit "
                                      "of ",
                                      policy.artifact_bytes_max,
                                      " bytes; raise artifact_bytes_max or ship a smaller "
                                      "plugin"));
  }
  return CheckedFile{*std::move(real), *std::move(file), *opened};
}

// Hashes the checked file and compares; the OpenedArtifact on a match.
absl::StatusOr<OpenedArtifact> HashChecked(CheckedFile checked, const ArtifactPolicy& policy,
                                           absl::string_view command,
                                           absl::string_view expected_sha256_hex,
                                           crypto::SshMessageHasher* signature_hasher) {
  ASSIGN_OR_RETURN(std::string actual, HashFile(*checked.file, checked.real,
                                                policy.artifact_bytes_max, signature_hasher));
  // The failpoint is a planted bug for the simulator's drill (compiled into testonly builds only):
  // it skips this check, so a swapped artifact would run.
  if (actual != expected_sha256_hex &&
      !BW_PLANTED_BUG_IN(policy.failpoints, "bug.catalog.skip_hash_check")) {
    return CatalogStatus(
        absl::StatusCode::kFailedPrecondition, CatalogError::kSha256Mismatch,
        absl::StrCat("sha256 for command ", QuoteForMessage(command), ": ", checked.real,
                     " has SHA-256 ", actual, ", not ", expected_sha256_hex,
                     "; if the plugin was upgraded, register it again with the new sha256 "
                     "(sha256sum ",
                     checked.real, ")"));
  }
  return OpenedArtifact{std::move(checked.real), std::move(checked.file), std::move(actual),
                        signature_hasher == nullptr ? "" : signature_hasher->Finish()};
}

// The same file, unchanged: same device and inode, and nothing moved its change time, size,
// mode or owner. A file system that gives no identity never matches.
bool SameUnchangedFile(const FileInfo& a, const FileInfo& b) {
  return a.inode != 0 && a.device == b.device && a.inode == b.inode &&
         a.change_time_ns == b.change_time_ns && a.size == b.size && a.mode == b.mode &&
         a.uid == b.uid && a.gid == b.gid;
}

}  // namespace

absl::StatusOr<OpenedArtifact> OpenArtifact(FileSystem& fs, const ArtifactPolicy& policy,
                                            absl::string_view command,
                                            absl::string_view expected_sha256_hex,
                                            crypto::SshMessageHasher* signature_hasher) {
  ASSIGN_OR_RETURN(CheckedFile checked, OpenChecked(fs, policy, command));
  return HashChecked(std::move(checked), policy, command, expected_sha256_hex, signature_hasher);
}

absl::StatusOr<OpenedArtifact> VerifiedArtifacts::Open(
    FileSystem& fs, const ArtifactPolicy& policy, absl::string_view command,
    absl::string_view expected_sha256_hex,
    std::optional<crypto::SshHashAlgorithm> signature_algorithm) {
  ASSIGN_OR_RETURN(CheckedFile checked, OpenChecked(fs, policy, command));
  const uint64_t now = ++clock_;
  auto it = kept_.find(checked.real);
  if (it != kept_.end()) {
    Kept& kept = it->second;
    if (kept.sha256_hex == expected_sha256_hex && kept.signature_algorithm == signature_algorithm &&
        SameUnchangedFile(kept.info, checked.info)) {
      absl::StatusOr<std::unique_ptr<ExecutableFile>> shared = kept.file->ShareSealed();
      if (shared.ok()) {
        kept.last_used = now;
        ++reuses_;
        return OpenedArtifact{std::move(checked.real), *std::move(shared), kept.sha256_hex,
                              kept.signature_digest};
      }
    }
    Forget(it);  // Changed, or no longer shareable: verified in full below.
  }
  const FileInfo info = checked.info;
  std::optional<crypto::SshMessageHasher> hasher;
  if (signature_algorithm.has_value()) hasher.emplace(*signature_algorithm);
  ASSIGN_OR_RETURN(OpenedArtifact opened,
                   HashChecked(std::move(checked), policy, command, expected_sha256_hex,
                               hasher.has_value() ? &*hasher : nullptr));
  // Kept only if it fits, and only as a sealed copy: bytes that could still change are not.
  if (info.size > bytes_max_) return opened;
  absl::StatusOr<std::unique_ptr<ExecutableFile>> shared = opened.file->ShareSealed();
  if (!shared.ok()) return opened;
  while (bytes_ + info.size > bytes_max_) {
    auto oldest = kept_.begin();
    for (auto k = kept_.begin(); k != kept_.end(); ++k) {
      if (k->second.last_used < oldest->second.last_used) oldest = k;
    }
    Forget(oldest);
  }
  bytes_ += info.size;
  kept_.emplace(opened.path, Kept{opened.sha256_hex, signature_algorithm, info, *std::move(shared),
                                  opened.signature_digest, now});
  return opened;
}

void VerifiedArtifacts::Forget(std::map<std::string, Kept>::iterator it) {
  bytes_ -= it->second.info.size;
  kept_.erase(it);
}

void VerifiedArtifacts::Clear() {
  kept_.clear();
  bytes_ = 0;
}

}  // namespace bulwark::catalog
