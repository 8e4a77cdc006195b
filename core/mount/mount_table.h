// The mount table: which path serves which catalog entry, persisted behind the barrier, and the
// router's longest-prefix match from a request path to its mount. Follows Vault's mount table
// (vault/mount.go, vault/router.go) for path rules and errors, minus leases and policies.
//
// Paths are stored normalised: no leading '/', one trailing '/', e.g. "kv/", "ns1/team/kv/",
// "auth/userpass/". A mount inside a namespace carries the namespace prefix in its path (routing
// sees one flat tree) and records the namespace separately.
//
// Storage: the whole table is one JSON record at MountTableOptions::storage_key (default
// "core/mounts", Vault's key), so an Enable or Disable is one atomic, durable Put. The in-memory
// table changes only after that Put succeeded.
//
// Single-threaded: call it from the event loop.
#ifndef BULWARK_CORE_MOUNT_MOUNT_TABLE_H_
#define BULWARK_CORE_MOUNT_MOUNT_TABLE_H_

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/env/failpoint_source.h"
#include "base/env/random.h"
#include "base/storage/storage.h"
#include "core/catalog/catalog.h"

namespace bulwark::mount {

// Longest normalised mount path (namespace included), most mounts, longest description.
inline constexpr size_t kMountPathBytesMax = 256;
inline constexpr size_t kMountsMax = 1024;
inline constexpr size_t kDescriptionBytesMax = 1024;

// Prefixes no user mount may take (Vault's protected and singleton mounts). Checked against the
// path inside its namespace.
inline constexpr absl::string_view kReservedPrefixes[] = {"sys/", "identity/", "cubbyhole/",
                                                          "token/"};

struct MountEntry {
  std::string path;            // Normalised, namespace prefix included: "ns1/kv/".
  std::string namespace_path;  // "" for the root namespace, else "ns1/" (normalised).
  catalog::PluginType type = catalog::PluginType::kSecret;
  std::string plugin_name;
  // The version the mount runs: the one asked for at enable or tune, else the pinned version at
  // that time, else "" (the unversioned entry or the built-in).
  std::string plugin_version;
  std::string description;
  std::string accessor;  // "<plugin_name>_<8 hex>", unique in the table.
  std::string uuid;      // The backend UUID handed to the plugin's Setup.

  friend bool operator==(const MountEntry& a, const MountEntry& b);
  friend bool operator!=(const MountEntry& a, const MountEntry& b) { return !(a == b); }
};

struct EnableRequest {
  std::string path;            // "kv", "/kv/", "team/kv"; for auth plugins Vault's
                               // "auth/<path>" form is required.
  std::string namespace_path;  // "" or "ns1" / "ns1/team/".
  catalog::PluginType type = catalog::PluginType::kSecret;
  std::string plugin_name;
  std::string plugin_version;  // "" = pinned, else the unversioned entry or the built-in.
  std::string description;
};

struct TuneRequest {
  std::optional<std::string> description;
  // A new version to run ("" = back to the pinned / unversioned entry). The lifecycle manager
  // restarts the mount's plugin afterwards.
  std::optional<std::string> plugin_version;
};

// The result of routing a request path.
struct Route {
  const MountEntry* entry = nullptr;  // Valid until the next change to the table.
  std::string remaining;              // The path below the mount, e.g. "foo/bar".
};

struct MountTableOptions {
  std::string storage_key = "core/mounts";
  // The node's failpoint state (Env::failpoints; nullptr = the process's registry).
  FailpointSource* failpoints = nullptr;
};

// Normalises a mount or namespace path: trims one leading '/', adds the trailing '/', and checks
// the rules (non-empty; segments of [A-Za-z0-9._-], none "." or ".."; at most
// kMountPathBytesMax bytes). InvalidArgument naming the rule and the path otherwise.
absl::StatusOr<std::string> NormalizeMountPath(absl::string_view path);

class MountTable {
 public:
  // Loads the table from `storage` (a barrier view: call after unseal). The references must
  // outlive the table. Errors: kDataLoss (mount.storage_corrupt) when the record does not decode
  // or breaks the rules; the Storage's error otherwise.
  static absl::StatusOr<std::unique_ptr<MountTable>> Open(Storage& storage, Random& random,
                                                          MountTableOptions options = {});

  MountTable(const MountTable&) = delete;
  MountTable& operator=(const MountTable&) = delete;

  // Re-reads the table from storage (after an unseal). On error the old table is kept.
  absl::Status Reload();

  // Binds a catalog entry to a path. The entry must exist in `catalog` at the resolved version.
  // Errors:
  //   kInvalidArgument   a bad path or namespace, a reserved prefix, an auth plugin outside
  //                      "auth/" or a secret plugin inside it, a database plugin (those are used
  //                      through a database secrets engine), an over-long description
  //   kAlreadyExists     the path is in use, or overlaps an existing mount (either is a prefix of
  //                      the other): the message names the existing mount
  //   kNotFound          no such catalog entry (the catalog's error)
  //   kResourceExhausted kMountsMax reached
  //   others             the Storage's error; the table is unchanged
  absl::StatusOr<MountEntry> Enable(const EnableRequest& request, const catalog::Catalog& catalog);

  // Removes the mount at `path` (normalised first) and returns it. kNotFound if none.
  absl::StatusOr<MountEntry> Disable(absl::string_view path);

  // Changes the description and/or plugin version of the mount at `path`. Errors as Enable plus
  // kNotFound for an unknown mount.
  absl::StatusOr<MountEntry> Tune(absl::string_view path, const TuneRequest& request,
                                  const catalog::Catalog& catalog);

  // The mount at exactly `path` (normalised), or null.
  const MountEntry* Find(absl::string_view path) const;

  // The mount with the longest path that is a prefix of `request_path` at a segment boundary
  // ("kv/foo" matches "kv/", never "k/" ... of "kvx/"), or nullopt.
  std::optional<Route> Match(absl::string_view request_path) const;

  // Every mount, sorted by path; with `namespace_path`, only those in that namespace.
  std::vector<MountEntry> List() const;
  std::vector<MountEntry> ListNamespace(absl::string_view namespace_path) const;

  size_t size() const { return mounts_.size(); }

 private:
  MountTable(Storage& storage, Random& random, MountTableOptions options);

  absl::Status Persist(const std::map<std::string, MountEntry, std::less<>>& mounts);
  absl::Status CheckNoOverlap(absl::string_view path) const;
  std::string NewAccessor(absl::string_view plugin_name) const;

  Storage& storage_;
  Random& random_;
  MountTableOptions options_;
  std::map<std::string, MountEntry, std::less<>> mounts_;  // By normalised path.
};

// Encoding of the stored record, exposed for tests and tools.
std::string EncodeMountTable(const std::vector<MountEntry>& mounts);
absl::StatusOr<std::vector<MountEntry>> DecodeMountTable(absl::string_view json);

}  // namespace bulwark::mount

#endif  // BULWARK_CORE_MOUNT_MOUNT_TABLE_H_
