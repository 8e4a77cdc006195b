// Catalog entries and their redacted views (see plugin_entry.h).
#include "core/catalog/plugin_entry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/catalog/validation.h"

namespace bulwark::catalog {
namespace {

std::string Describe(PluginType type, absl::string_view name, absl::string_view version,
                     absl::string_view command, const std::vector<std::string>& args,
                     const std::vector<std::string>& env_shown, absl::string_view sha256_hex,
                     bool builtin, absl::string_view signer_fingerprint) {
  return absl::StrCat(
      PluginTypeName(type), "/", name, version.empty() ? "" : "/", version,
      builtin ? " builtin" : "", " command=", QuoteForMessage(command, 256), " args=[",
      absl::StrJoin(
          args, ", ",
          [](std::string* out, const std::string& a) { out->append(QuoteForMessage(a, 256)); }),
      "] env=[", absl::StrJoin(env_shown, ", "), "] sha256=", sha256_hex,
      signer_fingerprint.empty() ? "" : " signer=", signer_fingerprint);
}

}  // namespace

std::string CatalogEntry::DebugString() const {
  std::vector<std::string> redacted;
  redacted.reserve(env.size());
  for (const std::string& entry : env) {
    redacted.push_back(absl::StrCat(EnvKey(entry), "=<redacted>"));
  }
  return Describe(type, name, version, command, args, redacted, sha256_hex, builtin,
                  signer_fingerprint);
}

std::string CatalogEntryView::DebugString() const {
  return Describe(type, name, version, command, args, env_keys, sha256_hex, builtin,
                  signer_fingerprint);
}

bool operator==(const CatalogEntryView& a, const CatalogEntryView& b) {
  return a.type == b.type && a.name == b.name && a.version == b.version && a.command == b.command &&
         a.args == b.args && a.env_keys == b.env_keys && a.sha256_hex == b.sha256_hex &&
         a.builtin == b.builtin && a.limits == b.limits &&
         a.signer_principal == b.signer_principal && a.signer_fingerprint == b.signer_fingerprint;
}

CatalogEntryView ViewOf(const CatalogEntry& entry) {
  CatalogEntryView view;
  view.type = entry.type;
  view.name = entry.name;
  view.version = entry.version;
  view.command = entry.command;
  view.args = entry.args;
  view.env_keys.reserve(entry.env.size());
  for (const std::string& e : entry.env) view.env_keys.emplace_back(EnvKey(e));
  view.sha256_hex = entry.sha256_hex;
  view.builtin = entry.builtin;
  view.limits = entry.limits;
  view.signer_principal = entry.signer_principal;
  view.signer_fingerprint = entry.signer_fingerprint;
  return view;
}

absl::Status ValidateLimits(const PluginLimits& l) {
  auto range = [](const std::optional<uint64_t>& v, absl::string_view field, uint64_t lo,
                  uint64_t hi) -> absl::Status {
    if (v.has_value() && (*v < lo || *v > hi)) {
      return absl::InvalidArgumentError(
          absl::StrCat("limits.", field, " must be between ", lo, " and ", hi, ", got ", *v));
    }
    return absl::OkStatus();
  };
  for (absl::Status s :
       {range(l.memory_bytes, "memory_bytes", PluginLimits::kMemoryBytesMin, uint64_t{1} << 50),
        range(l.pids, "pids", 1, PluginLimits::kPidsMax),
        range(l.cpu_weight, "cpu_weight", 1, 10000),
        range(l.open_files, "open_files", 16, PluginLimits::kOpenFilesMax)}) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace bulwark::catalog
