// Mount table rules, persistence and routing.
#include "core/mount/mount_table.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/crypto/sha256.h"
#include "base/status/status_macros.h"
#include "faultinject/failpoint.h"

namespace bulwark::mount {
namespace {

using catalog::PluginType;
using Json = nlohmann::json;

constexpr absl::string_view kAuthPrefix = "auth/";
constexpr int kFormatVersion = 1;

bool IsSegmentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// Quotes user input in an error, cut so a hostile path cannot flood a message.
std::string Quote(absl::string_view s) {
  constexpr size_t kQuoteMax = 80;
  std::string out = "\"";
  for (char c : s.substr(0, kQuoteMax)) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  if (s.size() > kQuoteMax) out += "...";
  return out + "\"";
}

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("mount.storage_corrupt: the stored mount table ", what));
}

// The path inside its namespace.
absl::string_view LocalPath(const MountEntry& e) {
  return absl::string_view(e.path).substr(e.namespace_path.size());
}

absl::Status CheckTypeAndPrefix(PluginType type, absl::string_view local_path) {
  for (absl::string_view reserved : kReservedPrefixes) {
    if (absl::StartsWith(local_path, reserved)) {
      return absl::InvalidArgumentError(absl::StrCat("mount.reserved_path: cannot mount at ",
                                                     Quote(local_path), ": \"", reserved,
                                                     "\" is reserved"));
    }
  }
  const bool under_auth = absl::StartsWith(local_path, kAuthPrefix);
  switch (type) {
    case PluginType::kAuth:
      if (!under_auth || local_path.size() == kAuthPrefix.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("mount.auth_path: an auth plugin mounts under \"auth/\", e.g. \"auth/",
                         local_path, "\"; got ", Quote(local_path)));
      }
      return absl::OkStatus();
    case PluginType::kSecret:
      if (under_auth) {
        return absl::InvalidArgumentError(
            absl::StrCat("mount.auth_path: \"auth/\" holds auth plugins only; cannot mount a "
                         "secrets plugin at ",
                         Quote(local_path)));
      }
      return absl::OkStatus();
    case PluginType::kDatabase:
      break;
  }
  return absl::InvalidArgumentError(
      "mount.database_not_mountable: a database plugin is not mounted itself; it is used through "
      "a database secrets engine's connection config");
}

absl::StatusOr<std::string> NormalizeNamespace(absl::string_view ns) {
  if (ns.empty() || ns == "/") return std::string();
  absl::StatusOr<std::string> normalized = NormalizeMountPath(ns);
  if (!normalized.ok()) return Annotate(normalized.status(), "namespace");
  return normalized;
}

Json ToJson(const MountEntry& e) {
  return Json{{"path", e.path},
              {"namespace", e.namespace_path},
              {"type", std::string(catalog::PluginTypeName(e.type))},
              {"plugin_name", e.plugin_name},
              {"plugin_version", e.plugin_version},
              {"description", e.description},
              {"accessor", e.accessor},
              {"uuid", e.uuid}};
}

absl::StatusOr<std::string> StringField(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    return Corrupt(absl::StrCat("has an entry without a string \"", key, "\""));
  }
  return it->get<std::string>();
}

}  // namespace

bool operator==(const MountEntry& a, const MountEntry& b) {
  return a.path == b.path && a.namespace_path == b.namespace_path && a.type == b.type &&
         a.plugin_name == b.plugin_name && a.plugin_version == b.plugin_version &&
         a.description == b.description && a.accessor == b.accessor && a.uuid == b.uuid;
}

absl::StatusOr<std::string> NormalizeMountPath(absl::string_view path) {
  absl::string_view p = path;
  if (absl::StartsWith(p, "/")) p.remove_prefix(1);
  if (absl::EndsWith(p, "/")) p.remove_suffix(1);
  if (p.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mount.invalid_path: a mount path must not be empty; got ", Quote(path)));
  }
  if (p.size() + 1 > kMountPathBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("mount.invalid_path: path ", Quote(path),
                                                   " is longer than ", kMountPathBytesMax,
                                                   " bytes"));
  }
  for (absl::string_view segment : absl::StrSplit(p, '/')) {
    if (segment.empty() || segment == "." || segment == "..") {
      return absl::InvalidArgumentError(absl::StrCat("mount.invalid_path: path ", Quote(path),
                                                     " has an empty, \".\" or \"..\" segment"));
    }
    for (char c : segment) {
      if (!IsSegmentChar(c)) {
        return absl::InvalidArgumentError(
            absl::StrCat("mount.invalid_path: path ", Quote(path),
                         " may use only letters, digits, '.', '_', '-' and '/'"));
      }
    }
  }
  return absl::StrCat(p, "/");
}

std::string EncodeMountTable(const std::vector<MountEntry>& mounts) {
  Json list = Json::array();
  for (const MountEntry& e : mounts) list.push_back(ToJson(e));
  return Json{{"version", kFormatVersion}, {"mounts", std::move(list)}}.dump();
}

absl::StatusOr<std::vector<MountEntry>> DecodeMountTable(absl::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Corrupt("is not a JSON object");
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer() ||
      version->get<int>() != kFormatVersion) {
    return Corrupt(absl::StrCat("has an unknown format version (want ", kFormatVersion, ")"));
  }
  auto list = j.find("mounts");
  if (list == j.end() || !list->is_array()) return Corrupt("has no \"mounts\" array");
  if (list->size() > kMountsMax) return Corrupt("has more than kMountsMax entries");
  std::vector<MountEntry> out;
  for (const Json& item : *list) {
    if (!item.is_object()) return Corrupt("has an entry that is not an object");
    MountEntry e;
    ASSIGN_OR_RETURN(e.path, StringField(item, "path"));
    ASSIGN_OR_RETURN(e.namespace_path, StringField(item, "namespace"));
    ASSIGN_OR_RETURN(std::string type, StringField(item, "type"));
    ASSIGN_OR_RETURN(e.plugin_name, StringField(item, "plugin_name"));
    ASSIGN_OR_RETURN(e.plugin_version, StringField(item, "plugin_version"));
    ASSIGN_OR_RETURN(e.description, StringField(item, "description"));
    ASSIGN_OR_RETURN(e.accessor, StringField(item, "accessor"));
    ASSIGN_OR_RETURN(e.uuid, StringField(item, "uuid"));
    absl::StatusOr<PluginType> parsed = catalog::ParsePluginType(type);
    if (!parsed.ok()) return Corrupt(absl::StrCat("has an entry of unknown type ", Quote(type)));
    e.type = *parsed;
    // Stored entries obey the same rules as new ones: a table edited on disk is refused whole.
    absl::StatusOr<std::string> normalized = NormalizeMountPath(e.path);
    if (!normalized.ok() || *normalized != e.path || !absl::StartsWith(e.path, e.namespace_path) ||
        e.path == e.namespace_path || !CheckTypeAndPrefix(e.type, LocalPath(e)).ok() ||
        e.plugin_name.empty()) {
      return Corrupt(absl::StrCat("has an invalid entry at ", Quote(e.path)));
    }
    out.push_back(std::move(e));
  }
  return out;
}

MountTable::MountTable(Storage& storage, Random& random, MountTableOptions options)
    : storage_(storage), random_(random), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<MountTable>> MountTable::Open(Storage& storage, Random& random,
                                                             MountTableOptions options) {
  std::unique_ptr<MountTable> table(new MountTable(storage, random, std::move(options)));
  RETURN_IF_ERROR(table->Reload());
  return table;
}

absl::Status MountTable::Reload() {
  ASSIGN_OR_RETURN(std::optional<std::string> record, storage_.Get(options_.storage_key));
  std::map<std::string, MountEntry, std::less<>> loaded;
  if (record.has_value()) {
    ASSIGN_OR_RETURN(std::vector<MountEntry> entries, DecodeMountTable(*record));
    for (MountEntry& e : entries) {
      std::string path = e.path;
      if (!loaded.emplace(std::move(path), std::move(e)).second) {
        return Corrupt("lists one path twice");
      }
    }
  }
  mounts_ = std::move(loaded);
  return absl::OkStatus();
}

absl::Status MountTable::Persist(const std::map<std::string, MountEntry, std::less<>>& mounts) {
  std::vector<MountEntry> list;
  list.reserve(mounts.size());
  for (const auto& [path, entry] : mounts) list.push_back(entry);
  return storage_.Put(options_.storage_key, EncodeMountTable(list));
}

absl::Status MountTable::CheckNoOverlap(absl::string_view path) const {
  if (BW_PLANTED_BUG_IN(options_.failpoints, "bug.mount.allow_nested")) {
    return mounts_.count(path) > 0 ? absl::AlreadyExistsError(absl::StrCat(
                                         "mount.path_in_use: path ", Quote(path), " is in use"))
                                   : absl::OkStatus();
  }
  // Entries are sorted by path, so a mount that `path` is a prefix of sorts right at or after it,
  // and a mount that is a prefix of `path` is one of its segment-boundary prefixes.
  auto it = mounts_.lower_bound(path);
  if (it != mounts_.end() && it->first == path) {
    return absl::AlreadyExistsError(
        absl::StrCat("mount.path_in_use: path ", Quote(path), " is already in use"));
  }
  if (it != mounts_.end() && absl::StartsWith(it->first, path)) {
    return absl::AlreadyExistsError(absl::StrCat("mount.path_in_use: path ", Quote(path),
                                                 " would contain the existing mount ",
                                                 Quote(it->first)));
  }
  for (size_t i = path.find('/'); i != absl::string_view::npos && i + 1 < path.size();
       i = path.find('/', i + 1)) {
    absl::string_view prefix = path.substr(0, i + 1);
    if (mounts_.count(prefix) > 0) {
      return absl::AlreadyExistsError(absl::StrCat("mount.path_in_use: path ", Quote(path),
                                                   " is inside the existing mount ",
                                                   Quote(prefix)));
    }
  }
  return absl::OkStatus();
}

std::string MountTable::NewAccessor(absl::string_view plugin_name) const {
  // Vault's accessors are "<type>_<8 hex>"; retry on the (unlikely) collision.
  for (;;) {
    std::string accessor = absl::StrCat(plugin_name, "_", crypto::HexEncode(random_.Bytes(4)));
    bool taken = false;
    for (const auto& [path, entry] : mounts_) taken = taken || entry.accessor == accessor;
    if (!taken) return accessor;
  }
}

absl::StatusOr<MountEntry> MountTable::Enable(const EnableRequest& request,
                                              const catalog::Catalog& catalog) {
  ASSIGN_OR_RETURN(std::string ns, NormalizeNamespace(request.namespace_path));
  ASSIGN_OR_RETURN(std::string local, NormalizeMountPath(request.path));
  RETURN_IF_ERROR(CheckTypeAndPrefix(request.type, local));
  std::string path = absl::StrCat(ns, local);
  if (path.size() > kMountPathBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("mount.invalid_path: path ", Quote(path),
                                                   " is longer than ", kMountPathBytesMax,
                                                   " bytes"));
  }
  if (request.description.size() > kDescriptionBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("mount.invalid_description: the description is longer than ",
                     kDescriptionBytesMax, " bytes"));
  }
  RETURN_IF_ERROR(CheckNoOverlap(path));
  if (mounts_.size() >= kMountsMax) {
    return absl::ResourceExhaustedError(
        absl::StrCat("mount.table_full: at most ", kMountsMax, " mounts; disable one first"));
  }
  ASSIGN_OR_RETURN(std::string version, catalog.EffectiveVersion(request.type, request.plugin_name,
                                                                 request.plugin_version));
  ASSIGN_OR_RETURN(catalog::CatalogEntryView view,
                   catalog.Get(request.type, request.plugin_name, version));

  MountEntry entry;
  entry.path = path;
  entry.namespace_path = ns;
  entry.type = request.type;
  entry.plugin_name = request.plugin_name;
  entry.plugin_version = view.version;
  entry.description = request.description;
  entry.accessor = NewAccessor(request.plugin_name);
  const std::string u = crypto::HexEncode(random_.Bytes(16));
  entry.uuid = absl::StrCat(u.substr(0, 8), "-", u.substr(8, 4), "-", u.substr(12, 4), "-",
                            u.substr(16, 4), "-", u.substr(20));

  auto next = mounts_;
  next.emplace(path, entry);
  RETURN_IF_ERROR(Persist(next));
  mounts_ = std::move(next);
  return entry;
}

absl::StatusOr<MountEntry> MountTable::Disable(absl::string_view path) {
  ASSIGN_OR_RETURN(std::string normalized, NormalizeMountPath(path));
  auto it = mounts_.find(normalized);
  if (it == mounts_.end()) {
    return absl::NotFoundError(absl::StrCat("mount.not_found: no mount at ", Quote(normalized)));
  }
  MountEntry removed = it->second;
  auto next = mounts_;
  next.erase(normalized);
  RETURN_IF_ERROR(Persist(next));
  mounts_ = std::move(next);
  return removed;
}

absl::StatusOr<MountEntry> MountTable::Tune(absl::string_view path, const TuneRequest& request,
                                            const catalog::Catalog& catalog) {
  ASSIGN_OR_RETURN(std::string normalized, NormalizeMountPath(path));
  auto it = mounts_.find(normalized);
  if (it == mounts_.end()) {
    return absl::NotFoundError(absl::StrCat("mount.not_found: no mount at ", Quote(normalized)));
  }
  MountEntry updated = it->second;
  if (request.description.has_value()) {
    if (request.description->size() > kDescriptionBytesMax) {
      return absl::InvalidArgumentError(
          absl::StrCat("mount.invalid_description: the description is longer than ",
                       kDescriptionBytesMax, " bytes"));
    }
    updated.description = *request.description;
  }
  if (request.plugin_version.has_value()) {
    ASSIGN_OR_RETURN(
        std::string version,
        catalog.EffectiveVersion(updated.type, updated.plugin_name, *request.plugin_version));
    ASSIGN_OR_RETURN(catalog::CatalogEntryView view,
                     catalog.Get(updated.type, updated.plugin_name, version));
    updated.plugin_version = view.version;
  }
  auto next = mounts_;
  next[normalized] = updated;
  RETURN_IF_ERROR(Persist(next));
  mounts_ = std::move(next);
  return updated;
}

const MountEntry* MountTable::Find(absl::string_view path) const {
  absl::StatusOr<std::string> normalized = NormalizeMountPath(path);
  if (!normalized.ok()) return nullptr;
  auto it = mounts_.find(*normalized);
  return it == mounts_.end() ? nullptr : &it->second;
}

std::optional<Route> MountTable::Match(absl::string_view request_path) const {
  absl::string_view p = request_path;
  if (absl::StartsWith(p, "/")) p.remove_prefix(1);
  // Try every segment-boundary prefix, longest first. "kv" (no slash) routes to "kv/" too.
  std::string candidate(p);
  if (!absl::EndsWith(candidate, "/")) candidate.push_back('/');
  for (;;) {
    auto it = mounts_.find(candidate);
    if (it != mounts_.end()) {
      Route route;
      route.entry = &it->second;
      route.remaining =
          candidate.size() <= p.size() ? std::string(p.substr(candidate.size())) : std::string();
      return route;
    }
    if (candidate.size() < 2) return std::nullopt;
    const size_t slash = candidate.rfind('/', candidate.size() - 2);
    if (slash == std::string::npos) return std::nullopt;
    candidate.resize(slash + 1);
  }
}

std::vector<MountEntry> MountTable::List() const {
  std::vector<MountEntry> out;
  out.reserve(mounts_.size());
  for (const auto& [path, entry] : mounts_) out.push_back(entry);
  return out;
}

std::vector<MountEntry> MountTable::ListNamespace(absl::string_view namespace_path) const {
  absl::StatusOr<std::string> ns = NormalizeNamespace(namespace_path);
  std::vector<MountEntry> out;
  if (!ns.ok()) return out;
  for (const auto& [path, entry] : mounts_) {
    if (entry.namespace_path == *ns) out.push_back(entry);
  }
  return out;
}

}  // namespace bulwark::mount
