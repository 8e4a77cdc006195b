// The plugin catalog (see catalog.h): validation, the artifact check, storage and the index.
#include "core/catalog/catalog.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/crypto/sha256.h"
#include "base/status/status_macros.h"
#include "core/catalog/catalog_error.h"
#include "core/catalog/codec.h"
#include "core/catalog/validation.h"
#include "faultinject/failpoint.h"

namespace bulwark::catalog {
namespace {

inline constexpr size_t kStoragePrefixBytesMax = 256;
inline constexpr uint64_t kArtifactBytesLimit = uint64_t{1} << 40;
inline constexpr absl::string_view kPinnedSegment = "pinned";

absl::Status InvalidOption(absl::string_view message) {
  return CatalogStatus(absl::StatusCode::kInvalidArgument, CatalogError::kInvalidOptions, message);
}

absl::Status StorageError(const absl::Status& status, absl::string_view doing) {
  return CatalogStatus(status.code(), CatalogError::kStorageError,
                       absl::StrCat(doing, ": ", status.message()));
}

absl::Status Corrupt(absl::string_view key, absl::string_view what) {
  return CatalogStatus(absl::StatusCode::kDataLoss, CatalogError::kStorageCorrupt,
                       absl::StrCat("stored key ", QuoteForMessage(key, 300), ": ", what,
                                    "; restore it from a backup or delete it"));
}

// A '/'-separated path without empty, "." or ".." segments (and without NUL bytes).
bool IsCleanPath(absl::string_view path) {
  if (path.find('\0') != absl::string_view::npos) return false;
  for (absl::string_view segment : absl::StrSplit(path, '/')) {
    if (segment.empty() || segment == "." || segment == "..") return false;
  }
  return true;
}

absl::Status ValidateOptions(CatalogOptions& options) {
  const std::string& dir = options.plugin_directory;
  if (!dir.empty() && dir != "/") {
    if (dir.front() != '/' || !IsCleanPath(absl::string_view(dir).substr(1))) {
      return InvalidOption(absl::StrCat(
          "plugin_directory ", QuoteForMessage(dir),
          ": must be an absolute path without a trailing '/', \"//\", \".\" or \"..\"; give the "
          "directory's real path, e.g. /etc/bulwark/plugins"));
    }
  }
  if (options.expected_uid.has_value() && !options.check_permissions) {
    return InvalidOption(
        "expected_uid is set but check_permissions is off, so it would have no effect; turn "
        "check_permissions on or drop expected_uid");
  }
  if (options.entries_max == 0 || options.entries_max > kCatalogEntriesMax) {
    return InvalidOption(
        absl::StrCat("entries_max ", options.entries_max, ": must be in 1..", kCatalogEntriesMax));
  }
  if (options.artifact_bytes_max == 0 || options.artifact_bytes_max > kArtifactBytesLimit) {
    return InvalidOption(absl::StrCat("artifact_bytes_max ", options.artifact_bytes_max,
                                      ": must be in 1..", kArtifactBytesLimit));
  }
  const std::string& prefix = options.storage_prefix;
  if (!prefix.empty() && (prefix.size() > kStoragePrefixBytesMax || prefix.back() != '/' ||
                          !IsCleanPath(absl::string_view(prefix).substr(0, prefix.size() - 1)))) {
    return InvalidOption(absl::StrCat("storage_prefix ", QuoteForMessage(prefix),
                                      ": must be \"\" or a clean storage path ending in '/', at "
                                      "most ",
                                      kStoragePrefixBytesMax, " bytes, e.g. ",
                                      kDefaultStoragePrefix));
  }
  if (options.signature_policy != SignaturePolicy::kOff) {
    const std::string& file = options.allowed_signers_file;
    if (file.empty() || file.front() != '/' || !IsCleanPath(absl::string_view(file).substr(1))) {
      return InvalidOption(absl::StrCat(
          "allowed_signers_file ", QuoteForMessage(file), ": the signature policy is ",
          SignaturePolicyName(options.signature_policy),
          ", which needs the absolute path of an allowed-signers file (the format of ssh-keygen "
          "-Y verify), e.g. /etc/bulwark/allowed_signers"));
    }
    if (options.clock == nullptr) {
      return InvalidOption("the signature policy needs a clock for valid-after/valid-before");
    }
  }
  if (options.builtins.size() > kBuiltinsMax) {
    return InvalidOption(absl::StrCat("builtins: ", options.builtins.size(),
                                      " built-in plugins exceed the limit of ", kBuiltinsMax));
  }
  std::set<std::pair<PluginType, std::string>> seen;
  for (BuiltinPlugin& builtin : options.builtins) {
    const std::string where = absl::StrCat("builtins: ", PluginTypeName(builtin.type), " ",
                                           QuoteForMessage(builtin.name));
    if (PluginTypeName(builtin.type) == "unknown") {
      return InvalidOption(absl::StrCat(where, ": unknown plugin type"));
    }
    if (absl::Status s = ValidateName(builtin.name); !s.ok()) {
      return InvalidOption(absl::StrCat(where, ": ", s.message()));
    }
    absl::StatusOr<std::string> version = NormalizeVersion(builtin.version);
    if (!version.ok()) return InvalidOption(absl::StrCat(where, ": ", version.status().message()));
    if (!IsBuiltinVersion(*version)) {
      return InvalidOption(absl::StrCat(where, ": version ", QuoteForMessage(builtin.version),
                                        " must carry \"builtin\" build metadata, e.g. "
                                        "\"v1.0.0+builtin\""));
    }
    builtin.version = *version;
    if (!seen.emplace(builtin.type, builtin.name).second) {
      return InvalidOption(absl::StrCat(where, ": listed twice"));
    }
  }
  return absl::OkStatus();
}

// The artifact's digest with the signature's hash algorithm. A sha256 signature (ssh-keygen -Y
// sign -O hashalg=sha256) reuses the SHA-256 the catalog pins, so the launch hashes once.
std::string SignatureDigest(const crypto::SshSignature& signature, const OpenedArtifact& artifact) {
  if (signature.hash_algorithm == crypto::SshHashAlgorithm::kSha256) {
    return crypto::HexDecode(artifact.sha256_hex).value();
  }
  return artifact.signature_digest;
}

std::string Describe(PluginType type, absl::string_view name, absl::string_view version) {
  return absl::StrCat(PluginTypeName(type), " plugin \"", name, "\"",
                      version.empty() ? " (unversioned)" : absl::StrCat(" version ", version));
}

}  // namespace

Catalog::Catalog(Storage& storage, FileSystem& fs, CatalogOptions options)
    : storage_(storage),
      fs_(fs),
      options_(std::move(options)),
      verified_(options_.verified_copies_bytes_max) {
  policy_.plugin_directory = options_.plugin_directory;
  policy_.check_permissions = options_.check_permissions;
  policy_.expected_uid = options_.expected_uid;
  policy_.artifact_bytes_max = options_.artifact_bytes_max;
  policy_.failpoints = options_.failpoints;
  for (const BuiltinPlugin& builtin : options_.builtins) {
    CatalogEntry entry;
    entry.type = builtin.type;
    entry.name = builtin.name;
    entry.version = builtin.version;
    entry.builtin = true;
    builtins_.emplace(Key{builtin.type, builtin.name, ""}, std::move(entry));
  }
}

absl::StatusOr<std::unique_ptr<Catalog>> Catalog::Open(Storage& storage, FileSystem& fs,
                                                       CatalogOptions options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  std::unique_ptr<Catalog> catalog(new Catalog(storage, fs, std::move(options)));
  RETURN_IF_ERROR(catalog->Reload());
  return catalog;
}

absl::Status Catalog::Reload() {
  verified_.Clear();
  const std::string& prefix = options_.storage_prefix;
  absl::StatusOr<std::vector<std::string>> keys = storage_.List(prefix);
  if (!keys.ok()) return StorageError(keys.status(), absl::StrCat("list ", prefix));
  if (keys->size() > 2 * kCatalogEntriesMax) {
    return CatalogStatus(absl::StatusCode::kResourceExhausted, CatalogError::kCatalogFull,
                         absl::StrCat("storage holds ", keys->size(), " keys under ", prefix,
                                      ", more than the limit of ", 2 * kCatalogEntriesMax,
                                      "; delete unused entries"));
  }
  EntryMap entries;
  PinMap pins;
  for (const std::string& key : *keys) {
    if (!absl::StartsWith(key, prefix)) return Corrupt(key, "listed outside the catalog prefix");
    const std::vector<absl::string_view> parts =
        absl::StrSplit(absl::string_view(key).substr(prefix.size()), '/');
    absl::StatusOr<std::optional<std::string>> value = storage_.Get(key);
    if (!value.ok()) return StorageError(value.status(), absl::StrCat("read ", key));
    if (!value->has_value()) continue;  // Deleted since the listing.
    if (parts.size() == 3 && parts[0] == kPinnedSegment) {
      absl::StatusOr<PluginType> type = ParsePluginType(parts[1]);
      if (!type.ok()) return Corrupt(key, "is not pinned/<type>/<name>");
      absl::StatusOr<PinRecord> pin = DecodePin(**value);
      if (!pin.ok()) return Corrupt(key, pin.status().message());
      if (pin->type != *type || pin->name != parts[2]) {
        return Corrupt(key, "holds the pin of another plugin");
      }
      pins.emplace(Key{pin->type, pin->name, ""}, pin->version);
      continue;
    }
    if (parts.size() != 2 && parts.size() != 3) {
      return Corrupt(key, "is not <type>/<name>[/<version>] or pinned/<type>/<name>");
    }
    absl::StatusOr<PluginType> type = ParsePluginType(parts[0]);
    if (!type.ok()) return Corrupt(key, "does not start with auth/, database/ or secret/");
    absl::StatusOr<CatalogEntry> entry = DecodeEntry(**value);
    if (!entry.ok()) return Corrupt(key, entry.status().message());
    const absl::string_view version = parts.size() == 3 ? parts[2] : absl::string_view();
    if (entry->type != *type || entry->name != parts[1] || entry->version != version) {
      return Corrupt(key, "holds the entry of another plugin or version");
    }
    Key index_key{entry->type, entry->name, entry->version};
    entries.emplace(std::move(index_key), std::move(*entry));
  }
  entries_ = std::move(entries);
  pins_ = std::move(pins);
  return absl::OkStatus();
}

std::string Catalog::EntryStorageKey(PluginType type, absl::string_view name,
                                     absl::string_view version) const {
  return absl::StrCat(options_.storage_prefix, PluginTypeName(type), "/", name,
                      version.empty() ? "" : "/", version);
}

std::string Catalog::PinStorageKey(PluginType type, absl::string_view name) const {
  return absl::StrCat(options_.storage_prefix, kPinnedSegment, "/", PluginTypeName(type), "/",
                      name);
}

const CatalogEntry* Catalog::Find(PluginType type, absl::string_view name,
                                  absl::string_view version) const {
  auto builtin = builtins_.find(KeyRef{type, name, ""});
  if (version.empty()) {
    auto it = entries_.find(KeyRef{type, name, ""});
    if (it != entries_.end()) return &it->second;
    return builtin == builtins_.end() ? nullptr : &builtin->second;
  }
  if (builtin != builtins_.end() && builtin->second.version == version) return &builtin->second;
  auto it = entries_.find(KeyRef{type, name, version});
  return it == entries_.end() ? nullptr : &it->second;
}

absl::StatusOr<const CatalogEntry*> Catalog::FindOrNotFound(PluginType type, absl::string_view name,
                                                            absl::string_view version) const {
  const CatalogEntry* entry = Find(type, name, version);
  if (entry == nullptr) {
    return CatalogStatus(absl::StatusCode::kNotFound, CatalogError::kNotFound,
                         absl::StrCat(Describe(type, name, version),
                                      " is not in the catalog; register it first, or list the "
                                      "catalog to find the right name and version"));
  }
  return entry;
}

absl::StatusOr<CatalogEntryView> Catalog::Register(const RegisterRequest& request) {
  verified_.Clear();
  absl::StatusOr<RegisterRequest> validated = ValidateRegisterRequest(request);
  // A planted bug for the simulator's drill (testonly builds only): names and versions go
  // unchecked (the rest is validated with stand-ins for them), and so does the rule that a
  // built-in's name needs a version.
  if (!validated.ok() &&
      BW_PLANTED_BUG_IN(options_.failpoints, "bug.catalog.skip_name_version_validation")) {
    const std::optional<CatalogError> reason = CatalogErrorOf(validated.status());
    if (reason == CatalogError::kInvalidName || reason == CatalogError::kInvalidVersion ||
        reason == CatalogError::kReservedVersion) {
      RegisterRequest rest = request;
      rest.name = "unchecked";
      rest.version = "";
      validated = ValidateRegisterRequest(rest);
      if (validated.ok()) {
        validated->name = request.name;
        validated->version = request.version;
      }
    }
  }
  ASSIGN_OR_RETURN(RegisterRequest req, std::move(validated));
  if (req.version.empty() && builtins_.count(KeyRef{req.type, req.name, ""}) > 0 &&
      !BW_PLANTED_BUG_IN(options_.failpoints, "bug.catalog.skip_name_version_validation")) {
    return CatalogStatus(
        absl::StatusCode::kAlreadyExists, CatalogError::kBuiltinNameRequiresVersion,
        absl::StrCat("name \"", req.name, "\": a built-in ", PluginTypeName(req.type),
                     " plugin has this name; register it with a version (e.g. \"v1.0.0\") so "
                     "that the built-in stays reachable, or choose another name"));
  }
  const bool replaces = entries_.count(KeyRef{req.type, req.name, req.version}) > 0;
  if (!replaces && entries_.size() >= options_.entries_max) {
    return CatalogStatus(absl::StatusCode::kResourceExhausted, CatalogError::kCatalogFull,
                         absl::StrCat("the catalog holds ", entries_.size(),
                                      " entries, its limit (entries_max); delete unused entries "
                                      "or raise entries_max"));
  }
  const SignaturePolicy policy = options_.signature_policy;
  const std::string what = Describe(req.type, req.name, req.version);
  std::optional<crypto::SshSignature> signature;
  std::optional<crypto::SshMessageHasher> signature_hasher;
  if (!req.signature.empty()) {
    ASSIGN_OR_RETURN(signature, ParseEntrySignature(req.signature));
    if (signature->hash_algorithm != crypto::SshHashAlgorithm::kSha256) {
      signature_hasher.emplace(signature->hash_algorithm);
    }
  } else if (policy == SignaturePolicy::kRequired) {
    return CatalogStatus(
        absl::StatusCode::kPermissionDenied, CatalogError::kSignatureRequired,
        absl::StrCat(what,
                     " has no signature and plugin_signature_policy is \"required\"; sign the "
                     "artifact with ssh-keygen -Y sign -n ",
                     kPluginSignatureNamespace, " -f KEY ARTIFACT and give ARTIFACT.sig"));
  }
  ASSIGN_OR_RETURN(OpenedArtifact artifact,
                   OpenArtifact(fs_, policy_, req.command, req.sha256,
                                signature_hasher.has_value() ? &*signature_hasher : nullptr));
  std::optional<crypto::VerifiedSigner> signer;
  if (signature.has_value() && policy != SignaturePolicy::kOff) {
    ASSIGN_OR_RETURN(signer, VerifyEntrySignature(fs_, options_.allowed_signers_file, *signature,
                                                  SignatureDigest(*signature, artifact),
                                                  options_.clock->WallNow(), what));
  }
  CatalogEntry entry;
  entry.type = req.type;
  entry.name = std::move(req.name);
  entry.version = std::move(req.version);
  entry.command = std::move(req.command);
  entry.args = std::move(req.args);
  entry.env = std::move(req.env);
  entry.sha256_hex = std::move(artifact.sha256_hex);
  entry.builtin = false;
  entry.limits = req.limits;
  entry.signature = std::move(req.signature);
  if (signer.has_value()) {
    entry.signer_principal = std::move(signer->principals);
    entry.signer_fingerprint = std::move(signer->fingerprint);
  } else if (policy == SignaturePolicy::kWarn) {
    Warn("registered without a signature (plugin_signature_policy is \"warn\")", entry);
  }
  const std::string key = EntryStorageKey(entry.type, entry.name, entry.version);
  if (absl::Status s = storage_.Put(key, EncodeEntry(entry)); !s.ok()) {
    return StorageError(s, absl::StrCat("store ", key));
  }
  CatalogEntryView view = ViewOf(entry);
  Key index_key{entry.type, entry.name, entry.version};
  entries_.insert_or_assign(std::move(index_key), std::move(entry));
  return view;
}

absl::StatusOr<CatalogEntryView> Catalog::Get(PluginType type, absl::string_view name,
                                              absl::string_view version) const {
  RETURN_IF_ERROR(ValidateName(name));
  ASSIGN_OR_RETURN(std::string normalized, NormalizeVersion(version));
  ASSIGN_OR_RETURN(const CatalogEntry* entry, FindOrNotFound(type, name, normalized));
  return ViewOf(*entry);
}

std::vector<CatalogEntryView> Catalog::List(PluginType type) const {
  std::vector<CatalogEntryView> out;
  for (auto it = entries_.lower_bound(KeyRef{type, "", ""});
       it != entries_.end() && it->first.type == type; ++it) {
    out.push_back(ViewOf(it->second));
  }
  for (auto it = builtins_.lower_bound(KeyRef{type, "", ""});
       it != builtins_.end() && it->first.type == type; ++it) {
    // An unversioned external entry replaces the built-in of the same name (as in Vault).
    if (entries_.count(KeyRef{type, it->first.name, ""}) > 0) continue;
    out.push_back(ViewOf(it->second));
  }
  std::sort(out.begin(), out.end(), [](const CatalogEntryView& a, const CatalogEntryView& b) {
    if (a.name != b.name) return a.name < b.name;
    return CompareVersions(a.version, b.version) < 0;
  });
  return out;
}

absl::Status Catalog::Delete(PluginType type, absl::string_view name, absl::string_view version) {
  verified_.Clear();
  RETURN_IF_ERROR(ValidateName(name));
  ASSIGN_OR_RETURN(std::string normalized, NormalizeVersion(version));
  if (IsBuiltinVersion(normalized)) {
    return CatalogStatus(absl::StatusCode::kFailedPrecondition, CatalogError::kBuiltinImmutable,
                         absl::StrCat("version ", normalized,
                                      ": built-in plugins are part of the server and cannot be "
                                      "deleted; pin another version instead"));
  }
  auto pin = pins_.find(KeyRef{type, name, ""});
  if (!normalized.empty() && pin != pins_.end() && pin->second == normalized) {
    return CatalogStatus(absl::StatusCode::kFailedPrecondition, CatalogError::kVersionPinned,
                         absl::StrCat(Describe(type, name, normalized),
                                      " is the pinned version and cannot be deleted; unpin it or "
                                      "pin another version first"));
  }
  auto it = entries_.find(KeyRef{type, name, normalized});
  if (it == entries_.end()) return absl::OkStatus();
  const std::string key = EntryStorageKey(type, name, normalized);
  if (absl::Status s = storage_.Delete(key); !s.ok()) {
    return StorageError(s, absl::StrCat("delete ", key));
  }
  entries_.erase(it);
  return absl::OkStatus();
}

absl::Status Catalog::Pin(PluginType type, absl::string_view name, absl::string_view version) {
  RETURN_IF_ERROR(ValidateName(name));
  ASSIGN_OR_RETURN(std::string normalized, NormalizeVersion(version));
  if (normalized.empty()) {
    return CatalogStatus(absl::StatusCode::kInvalidArgument, CatalogError::kInvalidVersion,
                         absl::StrCat("version: a pin needs a version; give the version of ",
                                      Describe(type, name, ""), " to pin, e.g. \"v1.2.3\""));
  }
  RETURN_IF_ERROR(FindOrNotFound(type, name, normalized).status());
  PinRecord record{type, std::string(name), normalized};
  const std::string key = PinStorageKey(type, name);
  if (absl::Status s = storage_.Put(key, EncodePin(record)); !s.ok()) {
    return StorageError(s, absl::StrCat("store ", key));
  }
  pins_.insert_or_assign(Key{type, std::string(name), ""}, std::move(normalized));
  return absl::OkStatus();
}

absl::Status Catalog::Unpin(PluginType type, absl::string_view name) {
  RETURN_IF_ERROR(ValidateName(name));
  auto it = pins_.find(KeyRef{type, name, ""});
  if (it == pins_.end()) return absl::OkStatus();
  const std::string key = PinStorageKey(type, name);
  if (absl::Status s = storage_.Delete(key); !s.ok()) {
    return StorageError(s, absl::StrCat("delete ", key));
  }
  pins_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> Catalog::GetPinned(PluginType type,
                                                              absl::string_view name) const {
  RETURN_IF_ERROR(ValidateName(name));
  auto it = pins_.find(KeyRef{type, name, ""});
  if (it == pins_.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

absl::StatusOr<std::string> Catalog::EffectiveVersion(PluginType type, absl::string_view name,
                                                      absl::string_view requested) const {
  RETURN_IF_ERROR(ValidateName(name));
  ASSIGN_OR_RETURN(std::string normalized, NormalizeVersion(requested));
  if (!normalized.empty()) return normalized;
  auto it = pins_.find(KeyRef{type, name, ""});
  return it == pins_.end() ? std::string() : it->second;
}

absl::StatusOr<CatalogEntry> Catalog::GetForReuse(PluginType type, absl::string_view name,
                                                  absl::string_view version) const {
  if (options_.signature_policy != SignaturePolicy::kOff) {
    return absl::FailedPreconditionError(
        "a signature policy is on: every open verifies the artifact again");
  }
  RETURN_IF_ERROR(ValidateName(name));
  ASSIGN_OR_RETURN(std::string normalized, NormalizeVersion(version));
  ASSIGN_OR_RETURN(const CatalogEntry* entry, FindOrNotFound(type, name, normalized));
  return *entry;
}

absl::StatusOr<LaunchSpec> Catalog::GetForLaunch(PluginType type, absl::string_view name,
                                                 absl::string_view version) {
  RETURN_IF_ERROR(ValidateName(name));
  ASSIGN_OR_RETURN(std::string normalized, NormalizeVersion(version));
  ASSIGN_OR_RETURN(const CatalogEntry* entry, FindOrNotFound(type, name, normalized));
  LaunchSpec spec;
  spec.entry = *entry;
  if (entry->builtin) return spec;
  // An injected failure looks like the file system failing under the check.
  if (absl::Status injected = BW_FAILPOINT_STATUS_IN(options_.failpoints, "catalog.launch.verify");
      !injected.ok()) {
    return CatalogStatus(injected.code(), CatalogError::kFileSystemError,
                         absl::StrCat("verify the artifact for launch: ", injected.message()));
  }
  const SignaturePolicy policy = options_.signature_policy;
  const std::string what = Describe(type, name, normalized);
  // The launch's own verdict on the signature; under "warn" a refusal is logged, not returned.
  absl::Status signature_verdict;
  std::optional<crypto::SshSignature> signature;
  std::optional<crypto::SshHashAlgorithm> signature_algorithm;
  if (policy != SignaturePolicy::kOff) {
    if (entry->signature.empty()) {
      signature_verdict = CatalogStatus(
          absl::StatusCode::kPermissionDenied, CatalogError::kSignatureRequired,
          absl::StrCat(what, " is unsigned and plugin_signature_policy is \"",
                       SignaturePolicyName(policy), "\"; register it again with a signature (",
                       "ssh-keygen -Y sign -n ", kPluginSignatureNamespace, ")"));
    } else {
      absl::StatusOr<crypto::SshSignature> parsed = ParseEntrySignature(entry->signature);
      if (parsed.ok()) {
        signature = *std::move(parsed);
        if (signature->hash_algorithm != crypto::SshHashAlgorithm::kSha256) {
          signature_algorithm = signature->hash_algorithm;
        }
      } else {
        signature_verdict = parsed.status();
      }
    }
  }
  // Every check but the hash runs again; the hash only if the file changed since it was last
  // verified (VerifiedArtifacts).
  ASSIGN_OR_RETURN(OpenedArtifact artifact, verified_.Open(fs_, policy_, entry->command,
                                                           entry->sha256_hex, signature_algorithm));
  if (signature.has_value()) {
    signature_verdict =
        VerifyEntrySignature(fs_, options_.allowed_signers_file, *signature,
                             SignatureDigest(*signature, artifact), options_.clock->WallNow(), what)
            .status();
  }
  // The failpoint is a planted bug for the simulator's drill (testonly builds only): a launch
  // runs whatever the signature check said.
  if (!signature_verdict.ok() &&
      !BW_PLANTED_BUG_IN(options_.failpoints, "bug.catalog.skip_signature_check")) {
    if (policy == SignaturePolicy::kRequired) return signature_verdict;
    Warn(absl::StrCat("launching although ", signature_verdict.message(),
                      " (plugin_signature_policy is \"warn\")"),
         *entry);
  }
  spec.path = std::move(artifact.path);
  spec.executable = std::move(artifact.file);
  return spec;
}

void Catalog::Warn(std::string message, const CatalogEntry& entry) {
  if (options_.log == nullptr) return;
  LogRecord record;
  record.level = LogLevel::kWarn;
  record.time = options_.clock != nullptr ? options_.clock->WallNow() : absl::UnixEpoch();
  record.source = "catalog";
  record.message = std::move(message);
  record.fields = {{"type", std::string(PluginTypeName(entry.type))},
                   {"name", entry.name},
                   {"version", entry.version},
                   {"sha256", entry.sha256_hex}};
  options_.log->Write(record);
}

}  // namespace bulwark::catalog
