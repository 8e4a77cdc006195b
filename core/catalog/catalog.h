// The plugin catalog: which plugin artifacts may run, pinned by SHA-256, stored behind the barrier
// (any Storage) and indexed in memory for fast lookup. It follows Vault's plugin catalog
// (vault/plugincatalog): same entry fields, storage layout, version rules and refusals.
//
// Storage layout, under CatalogOptions::storage_prefix (default "core/plugin-catalog/", Vault's
// catalog view):
//   <type>/<name>             the unversioned entry of a plugin     e.g. secret/kv-ext
//   <type>/<name>/<version>   a versioned entry                      e.g. secret/kv-ext/v1.2.3
//   pinned/<type>/<name>      the pinned version of a plugin         e.g. pinned/secret/kv-ext
// with <type> one of auth, database, secret. Values are JSON (codec.h). Built-in plugins are
// never stored: they come from CatalogOptions::builtins at every Open.
//
// Rules (Vault's, except where marked):
//   - An external plugin is registered only from the configured plugin directory: its command is
//     a relative path that must resolve, through symlinks, to a regular file inside that
//     directory, and the file's SHA-256 must equal the one given. Unlike Vault, a file in a
//     subdirectory of the plugin directory is allowed (Vault wants it directly inside).
//   - Registering the same type/name/version again replaces the entry (Vault's update).
//   - A user version may not carry "builtin" build metadata. A plugin named like a built-in of
//     the same type may be registered only with a version (bulwark's rule: Vault lets an
//     unversioned entry shadow the built-in; here it must be versioned, so the built-in stays
//     reachable without a version). An unversioned stored entry that does shadow a built-in (the
//     built-in list changed after it was registered) is honoured as in Vault.
//   - Get without a version returns the unversioned external entry, else the built-in. Get with
//     the built-in's version returns the built-in. Pins are not applied by Get: the mount layer
//     asks EffectiveVersion.
//   - A pinned version cannot be deleted; a built-in cannot be deleted. Deleting what is not
//     there is not an error (as in Vault).
//   - Reads (Get, List) never return env values: they may hold secrets. Only GetForLaunch does.
//
// Single-threaded: call it from the event loop. Every method that writes does so to Storage
// first and changes the in-memory index only when that write succeeded.
#ifndef BULWARK_CORE_CATALOG_CATALOG_H_
#define BULWARK_CORE_CATALOG_CATALOG_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/env/clock.h"
#include "base/env/failpoint_source.h"
#include "base/env/file_system.h"
#include "base/log/log.h"
#include "base/storage/storage.h"
#include "core/catalog/artifact.h"
#include "core/catalog/plugin_entry.h"
#include "core/catalog/signature.h"

namespace bulwark::catalog {

inline constexpr absl::string_view kDefaultStoragePrefix = "core/plugin-catalog/";

struct CatalogOptions {
  // Absolute path of the directory holding plugin artifacts, without a trailing '/' (or "" when
  // external plugins are not allowed). It must not be, or be reached through, a symlink; that is
  // checked at each registration and launch, since the directory may change underneath.
  std::string plugin_directory;
  // Refuse a plugin directory or artifact writable by group or other (Vault's
  // VAULT_ENABLE_FILE_PERMISSIONS_CHECK) and, when expected_uid is set, one owned by another uid
  // (Vault's plugin_file_uid).
  bool check_permissions = false;
  std::optional<uint32_t> expected_uid;
  // Most user entries the catalog holds; 1..kCatalogEntriesMax.
  size_t entries_max = kCatalogEntriesDefaultMax;
  // Largest artifact that is hashed; 1..2^40.
  uint64_t artifact_bytes_max = kArtifactBytesDefaultMax;
  // Launches reuse the sealed copy of an artifact verified before while the file is unchanged
  // (VerifiedArtifacts), keeping copies of at most this many bytes in all; 0 hashes the
  // artifact at every launch.
  uint64_t verified_copies_bytes_max = kVerifiedCopiesBytesDefaultMax;
  // Plugins compiled into the server, at most kBuiltinsMax, distinct by type and name.
  std::vector<BuiltinPlugin> builtins;
  // Where in Storage the catalog lives: "" or a key prefix ending in '/'.
  std::string storage_prefix = std::string(kDefaultStoragePrefix);
  // The node's failpoint state (Env::failpoints) for the catalog's sites; nullptr: the process's.
  FailpointSource* failpoints = nullptr;
  // Signed artifacts (signature.h). Unless the policy is off: the absolute path of the
  // allowed-signers file (read through the FileSystem at each registration and launch) and a
  // clock for its valid-after/valid-before (the Node passes Env::clock).
  SignaturePolicy signature_policy = SignaturePolicy::kOff;
  std::string allowed_signers_file;
  Clock* clock = nullptr;
  // Where warnings of the "warn" policy go (an unsigned plugin runs); nullptr: nowhere.
  LogSink* log = nullptr;
};

// What the lifecycle manager needs to start a plugin. Holds env values: never log it whole.
struct LaunchSpec {
  CatalogEntry entry;  // Complete, env included.
  // For external plugins: the resolved absolute path of the artifact and the open, verified
  // file to hand to ProcessLauncher::Spawn. Empty and null for built-ins.
  std::string path;
  std::unique_ptr<ExecutableFile> executable;
};

class Catalog {
 public:
  // Validates `options` and loads the catalog from `storage`. Both references must outlive the
  // catalog. Errors:
  //   kInvalidArgument    catalog.invalid_options, naming the option and the fix
  //   others              as Reload()
  static absl::StatusOr<std::unique_ptr<Catalog>> Open(Storage& storage, FileSystem& fs,
                                                       CatalogOptions options);

  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // Rebuilds the in-memory index from storage (after an unseal, or when another node wrote it).
  // On error the previous index is kept. Errors:
  //   kDataLoss           catalog.storage_corrupt: a record does not decode or validate, does
  //                       not match its key, or a key does not fit the layout (named)
  //   kResourceExhausted  catalog.catalog_full: more than kCatalogEntriesMax entries or pins
  //   others              catalog.storage_error with the Storage's code (e.g. sealed)
  absl::Status Reload();

  // Validates `request`, checks the artifact (see OpenArtifact) and stores the entry, replacing
  // one with the same type, name and version. Returns the stored entry's view (normalised
  // version, lower-case sha256). Errors:
  //   kInvalidArgument    catalog.invalid_type / invalid_name / invalid_version /
  //                       reserved_version / invalid_command / command_absolute /
  //                       command_parent_reference / invalid_args / invalid_env / invalid_sha256
  //   kAlreadyExists      catalog.builtin_name_requires_version
  //   kResourceExhausted  catalog.catalog_full (entries_max reached), catalog.artifact_too_large
  //   kPermissionDenied   catalog.signature_required (unsigned under "required")
  //   others              the artifact errors of OpenArtifact; catalog.storage_error;
  //                       catalog.signature_refused and catalog.allowed_signers_invalid (see
  //                       VerifyEntrySignature), the signature verified over the bytes hashed
  absl::StatusOr<CatalogEntryView> Register(const RegisterRequest& request);

  // The entry of `type`/`name` at `version` ("" for the unversioned entry or, failing that, the
  // built-in), without env values. Errors: kInvalidArgument (catalog.invalid_name,
  // catalog.invalid_version), kNotFound (catalog.not_found).
  absl::StatusOr<CatalogEntryView> Get(PluginType type, absl::string_view name,
                                       absl::string_view version = "") const;

  // Every entry of `type`, built-ins included (except those an unversioned entry of the same name
  // replaces), sorted by name and then by semver precedence with the unversioned entry first.
  std::vector<CatalogEntryView> List(PluginType type) const;

  // Removes one entry. OK if there was none. Errors: kInvalidArgument (catalog.invalid_name,
  // catalog.invalid_version), kFailedPrecondition (catalog.builtin_immutable for a "+builtin"
  // version, catalog.version_pinned), catalog.storage_error.
  absl::Status Delete(PluginType type, absl::string_view name, absl::string_view version = "");

  // Pins `type`/`name` to `version`, which must be in the catalog (a versioned entry or the
  // built-in's version). Replaces an earlier pin. Errors: kInvalidArgument (catalog.invalid_name,
  // catalog.invalid_version, also for ""), kNotFound (catalog.not_found), catalog.storage_error.
  absl::Status Pin(PluginType type, absl::string_view name, absl::string_view version);

  // Removes the pin of `type`/`name`; OK if there was none. Errors: kInvalidArgument
  // (catalog.invalid_name), catalog.storage_error.
  absl::Status Unpin(PluginType type, absl::string_view name);

  // The pinned version of `type`/`name`, or nullopt. Errors: kInvalidArgument
  // (catalog.invalid_name).
  absl::StatusOr<std::optional<std::string>> GetPinned(PluginType type,
                                                       absl::string_view name) const;

  // The version a mount of `type`/`name` should use: `requested` (normalised) if given, else the
  // pinned version, else "". Errors: kInvalidArgument (catalog.invalid_name,
  // catalog.invalid_version).
  absl::StatusOr<std::string> EffectiveVersion(PluginType type, absl::string_view name,
                                               absl::string_view requested) const;

  // For the lifecycle manager only: the complete entry (env values included) and, for an external
  // plugin, the artifact opened and re-verified now (directory, containment, regular file,
  // permissions, SHA-256), so that a binary replaced since registration fails with
  // catalog.sha256_mismatch instead of running. The SHA-256 is computed again only if the file
  // changed since this catalog last verified it; otherwise the launch gets the sealed copy hashed
  // then (VerifiedArtifacts). Under the "warn" and "required" policies the
  // entry's signature is verified again, over the bytes just hashed from that descriptor and
  // against the allowed-signers file as it is now. Errors: as Get, plus those of OpenArtifact;
  // under "required" catalog.signature_required (an unsigned entry), catalog.signature_refused,
  // catalog.allowed_signers_invalid ("warn" logs these and launches).
  absl::StatusOr<LaunchSpec> GetForLaunch(PluginType type, absl::string_view name,
                                          absl::string_view version = "");

  // For the lifecycle manager only: the complete entry (env values included) that GetForLaunch
  // would launch, found without opening the artifact, so that an instance can join a process
  // already running that entry's runner config (whose executable was opened and verified when
  // it was launched; reusing it runs no file). Errors: as Get, and FailedPrecondition while a
  // signature policy is on (its verdict is taken again at every open: use GetForLaunch).
  absl::StatusOr<CatalogEntry> GetForReuse(PluginType type, absl::string_view name,
                                           absl::string_view version = "") const;

  // Number of user entries (built-ins and pins not counted).
  size_t entry_count() const { return entries_.size(); }

  const CatalogOptions& options() const { return options_; }

 private:
  // Index keys: (type, name, version) with heterogeneous lookup by string_views, so a Get
  // allocates nothing to find its entry.
  struct Key {
    PluginType type;
    std::string name;
    std::string version;
  };
  struct KeyRef {
    PluginType type;
    absl::string_view name;
    absl::string_view version;
  };
  struct KeyLess {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      if (a.type != b.type) return a.type < b.type;
      const int c = absl::string_view(a.name).compare(absl::string_view(b.name));
      if (c != 0) return c < 0;
      return absl::string_view(a.version) < absl::string_view(b.version);
    }
  };
  using EntryMap = std::map<Key, CatalogEntry, KeyLess>;
  using PinMap = std::map<Key, std::string, KeyLess>;  // Key.version is "".

  Catalog(Storage& storage, FileSystem& fs, CatalogOptions options);

  // The entry Get would return, or null. `version` is normalised.
  const CatalogEntry* Find(PluginType type, absl::string_view name,
                           absl::string_view version) const;
  absl::StatusOr<const CatalogEntry*> FindOrNotFound(PluginType type, absl::string_view name,
                                                     absl::string_view version) const;
  std::string EntryStorageKey(PluginType type, absl::string_view name,
                              absl::string_view version) const;
  std::string PinStorageKey(PluginType type, absl::string_view name) const;
  void Warn(std::string message, const CatalogEntry& entry);

  Storage& storage_;
  FileSystem& fs_;
  CatalogOptions options_;
  ArtifactPolicy policy_;
  EntryMap builtins_;  // Key.version is "".
  EntryMap entries_;
  PinMap pins_;
  VerifiedArtifacts verified_;  // Cleared by every Register, Delete and Reload.
};

}  // namespace bulwark::catalog

#endif  // BULWARK_CORE_CATALOG_CATALOG_H_
