// Strict manifest parsing (see manifest.h): every key is known, every value has its type.
#include "conformance/suite/manifest.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "base/status/status_macros.h"
#include "nlohmann/json.hpp"
#include "sdk/serve_config.h"

namespace bulwark::conformance {
namespace {

using nlohmann::json;

const std::set<std::string>& OptionalProfiles() {
  static const auto* profiles = new std::set<std::string>{"multiplexing"};
  return *profiles;
}

absl::Status Invalid(absl::string_view key, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("manifest: \"", key, "\" ", problem));
}

absl::Status CheckKeys(const json& object, absl::string_view where,
                       const std::set<std::string>& known) {
  for (const auto& [key, value] : object.items()) {
    if (known.count(key) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("manifest: unknown key \"", key.substr(0, 64),
                                                     "\"", where.empty() ? "" : " in ", where,
                                                     " (known: ", absl::StrJoin(known, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> GetString(const json& object, const std::string& key) {
  const json& v = object.at(key);
  if (!v.is_string()) return Invalid(key, "must be a string");
  return v.get<std::string>();
}

absl::StatusOr<std::vector<std::string>> GetStrings(const json& object, const std::string& key) {
  const json& v = object.at(key);
  if (!v.is_array()) return Invalid(key, "must be an array of strings");
  if (v.size() > kManifestListMax) {
    return Invalid(key, absl::StrCat("has more than ", kManifestListMax, " entries"));
  }
  std::vector<std::string> out;
  for (const json& e : v) {
    if (!e.is_string()) return Invalid(key, "must be an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

absl::StatusOr<std::optional<double>> GetLimit(const json& object, const std::string& key) {
  if (!object.contains(key)) return std::optional<double>();
  const json& v = object.at(key);
  if (!v.is_number()) return Invalid(absl::StrCat("performance.", key), "must be a number");
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < 0) {
    return Invalid(absl::StrCat("performance.", key), "must be a finite number >= 0");
  }
  return std::optional<double>(d);
}

constexpr absl::string_view kEnvOpen = "{{env:";

// The NAMEs of every "{{env:NAME}}" in `text`, in order.
std::vector<std::string> EnvReferences(absl::string_view text) {
  std::vector<std::string> names;
  size_t pos = 0;
  while ((pos = text.find(kEnvOpen, pos)) != absl::string_view::npos) {
    const size_t close = text.find("}}", pos);
    if (close == absl::string_view::npos) break;
    names.emplace_back(text.substr(pos + kEnvOpen.size(), close - pos - kEnvOpen.size()));
    pos = close + 2;
  }
  return names;
}

// `config` (compact JSON) with {{scratch_dir}} and {{env:NAME}} expanded. Values are JSON-escaped
// so the result stays valid JSON.
std::string ExpandConfig(absl::string_view config, absl::string_view scratch_dir) {
  auto escaped = [](absl::string_view value) {
    const std::string quoted = json(std::string(value)).dump();
    return quoted.substr(1, quoted.size() - 2);
  };
  std::string out = absl::StrReplaceAll(config, {{"{{scratch_dir}}", escaped(scratch_dir)}});
  for (const std::string& name : EnvReferences(out)) {
    const char* value = std::getenv(name.c_str());
    absl::StrReplaceAll(
        {{absl::StrCat(kEnvOpen, name, "}}"), escaped(value == nullptr ? "" : value)}}, &out);
  }
  return out;
}

// read_fields, idempotent_writes and delete of the "backend" object (see BackendProbe).
absl::Status ParseProbeExpectations(const json& backend, BackendProbe* probe) {
  for (const char* key : {"idempotent_writes", "delete"}) {
    if (backend.contains(key) && !backend.at(key).is_boolean()) {
      return Invalid(absl::StrCat("backend.", key), "must be true or false");
    }
  }
  probe->idempotent_writes = backend.value("idempotent_writes", true);
  probe->deletable = backend.value("delete", true);
  if (backend.contains("read_fields")) {
    const json& fields = backend.at("read_fields");
    constexpr char kShape[] =
        "must be a non-empty JSON object, or a non-empty array of them (the fields after the "
        "1st, 2nd, ... write)";
    if (fields.is_object()) {
      if (fields.empty()) return Invalid("backend.read_fields", kShape);
      probe->read_fields_json.push_back(fields.dump());
    } else if (fields.is_array()) {
      if (fields.empty() || fields.size() > kManifestListMax) {
        return Invalid("backend.read_fields", kShape);
      }
      for (const json& entry : fields) {
        if (!entry.is_object() || entry.empty()) return Invalid("backend.read_fields", kShape);
        probe->read_fields_json.push_back(entry.dump());
      }
    } else {
      return Invalid("backend.read_fields", kShape);
    }
  } else if (!probe->write_data_json.empty()) {
    probe->read_fields_json.push_back(probe->write_data_json);  // A key/value store's echo.
  }
  if (!probe->idempotent_writes && probe->read_fields_json.size() < 2) {
    return Invalid("backend.read_fields",
                   "must be an array with the fields after the 1st and the 2nd write when "
                   "\"idempotent_writes\" is false (the suite writes the probe twice)");
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<std::string> BackendProbe::ReadFieldsAfter(size_t writes) const {
  if (writes == 0 || read_fields_json.empty()) return std::nullopt;
  if (writes <= read_fields_json.size()) return read_fields_json[writes - 1];
  if (idempotent_writes) return read_fields_json.back();
  return std::nullopt;
}

std::vector<std::string> BackendProbe::Adaptations() const {
  std::vector<std::string> lines;
  if (!idempotent_writes) {
    lines.push_back(
        "Backend.ConcurrentRequests: the probe's writes are not idempotent "
        "(idempotent_writes: false), so the values concurrent reads answer depend on how many "
        "writes came first; each read is checked to carry every field of read_fields[0], not "
        "its value");
  }
  if (!deletable) {
    lines.push_back(
        "Backend.ProbeDeleteThenReadNotFound: the probe has no delete (delete: false), so "
        "delete is checked to be refused in band (err_type 5, UnsupportedOperation) and to "
        "leave the written fields readable, instead of removing them");
  }
  return lines;
}

absl::string_view PluginTypeName(PluginType type) {
  switch (type) {
    case PluginType::kSecret:
      return "secret";
    case PluginType::kAuth:
      return "auth";
    case PluginType::kDatabase:
      return "database";
  }
  return "?";
}

bool Manifest::Claims(absl::string_view profile) const {
  return std::find(profiles.begin(), profiles.end(), profile) != profiles.end();
}

std::string Manifest::cookie_key() const {
  return std::string(is_backend() ? sdk::kVaultBackendCookieKey : sdk::kVaultDatabaseCookieKey);
}

std::string Manifest::cookie_value() const {
  return std::string(is_backend() ? sdk::kVaultBackendCookieValue : sdk::kVaultDatabaseCookieValue);
}

absl::StatusOr<Manifest> ParseManifest(absl::string_view json_text) {
  if (json_text.size() > kManifestBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("manifest: longer than ", kManifestBytesMax, " bytes"));
  }
  json root = json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return absl::InvalidArgumentError("manifest: not valid JSON");
  if (!root.is_object()) return absl::InvalidArgumentError("manifest: not a JSON object");
  RETURN_IF_ERROR(CheckKeys(root, "",
                            {"manifest_version", "name", "type", "protocol_versions", "profiles",
                             "env", "backend", "database", "performance"}));
  for (const char* key : {"manifest_version", "name", "type", "protocol_versions"}) {
    if (!root.contains(key)) return Invalid(key, "is required");
  }
  Manifest m;
  const json& version = root.at("manifest_version");
  if (!version.is_number_integer() || version.get<int64_t>() != kManifestVersion) {
    return Invalid("manifest_version", absl::StrCat("must be ", kManifestVersion));
  }
  ASSIGN_OR_RETURN(m.name, GetString(root, "name"));
  if (m.name.empty() || m.name.size() > 128) return Invalid("name", "must be 1 to 128 bytes");
  ASSIGN_OR_RETURN(std::string type, GetString(root, "type"));
  if (type == "secret") {
    m.type = PluginType::kSecret;
  } else if (type == "auth") {
    m.type = PluginType::kAuth;
  } else if (type == "database") {
    m.type = PluginType::kDatabase;
  } else {
    return Invalid("type", absl::StrCat("must be \"secret\", \"auth\" or \"database\", not \"",
                                        type.substr(0, 64), "\""));
  }
  const json& versions = root.at("protocol_versions");
  if (!versions.is_array() || versions.empty() || versions.size() > kManifestListMax) {
    return Invalid("protocol_versions", "must be a non-empty array of integers");
  }
  for (const json& v : versions) {
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 99) {
      return Invalid("protocol_versions", "entries must be integers from 1 to 99");
    }
    const int n = static_cast<int>(v.get<int64_t>());
    if (std::find(m.protocol_versions.begin(), m.protocol_versions.end(), n) !=
        m.protocol_versions.end()) {
      return Invalid("protocol_versions", absl::StrCat("lists ", n, " twice"));
    }
    m.protocol_versions.push_back(n);
  }
  std::sort(m.protocol_versions.begin(), m.protocol_versions.end());
  if (root.contains("profiles")) {
    ASSIGN_OR_RETURN(m.profiles, GetStrings(root, "profiles"));
    std::set<std::string> seen;
    for (const std::string& p : m.profiles) {
      if (OptionalProfiles().count(p) == 0) {
        return Invalid("profiles", absl::StrCat("lists \"", p.substr(0, 64),
                                                "\", which is not an optional "
                                                "profile (optional: ",
                                                absl::StrJoin(OptionalProfiles(), ", "),
                                                "; the others are required and always run)"));
      }
      if (!seen.insert(p).second) return Invalid("profiles", absl::StrCat("lists ", p, " twice"));
    }
    std::sort(m.profiles.begin(), m.profiles.end());
  }
  if (root.contains("env")) {
    ASSIGN_OR_RETURN(m.env, GetStrings(root, "env"));
    for (const std::string& e : m.env) {
      const size_t eq = e.find('=');
      if (eq == std::string::npos || eq == 0) {
        // Only the part before '=' could be shown, and there is none: show nothing of the
        // value, which may be a secret.
        return Invalid("env", "entries must be KEY=VALUE");
      }
    }
  }
  if (root.contains("backend")) {
    const json& backend = root.at("backend");
    if (!backend.is_object()) return Invalid("backend", "must be an object");
    RETURN_IF_ERROR(
        CheckKeys(backend, "\"backend\"",
                  {"write_path", "write_data", "read_fields", "idempotent_writes", "delete"}));
    if (backend.contains("write_path")) {
      ASSIGN_OR_RETURN(m.backend_probe.write_path, GetString(backend, "write_path"));
    }
    if (backend.contains("write_data")) {
      if (!backend.at("write_data").is_object() || backend.at("write_data").empty()) {
        return Invalid("backend.write_data", "must be a non-empty JSON object");
      }
      m.backend_probe.write_data_json = backend.at("write_data").dump();
    }
    RETURN_IF_ERROR(ParseProbeExpectations(backend, &m.backend_probe));
  }
  if (root.contains("database")) {
    const json& database = root.at("database");
    if (!database.is_object()) return Invalid("database", "must be an object");
    RETURN_IF_ERROR(CheckKeys(database, "\"database\"",
                              {"config", "unreachable_config", "creation_statements"}));
    if (database.contains("config")) {
      if (!database.at("config").is_object()) {
        return Invalid("database.config", "must be a JSON object");
      }
      m.database_config_json = database.at("config").dump();
    }
    if (database.contains("unreachable_config")) {
      if (!database.at("unreachable_config").is_object()) {
        return Invalid("database.unreachable_config", "must be a JSON object");
      }
      m.database_unreachable_config_json = database.at("unreachable_config").dump();
    }
    if (database.contains("creation_statements")) {
      ASSIGN_OR_RETURN(m.database_creation_statements, GetStrings(database, "creation_statements"));
    }
    for (const std::string* config :
         {&m.database_config_json, &m.database_unreachable_config_json}) {
      for (const std::string& name : EnvReferences(*config)) {
        if (name.empty() || absl::ascii_isdigit(name[0]) ||
            !std::all_of(name.begin(), name.end(),
                         [](char c) { return absl::ascii_isalnum(c) || c == '_'; })) {
          return Invalid("database", absl::StrCat("refers to {{env:", name.substr(0, 64),
                                                  "}}, which is not an environment variable name"));
        }
      }
    }
  }
  if (root.contains("performance")) {
    const json& perf = root.at("performance");
    if (!perf.is_object()) return Invalid("performance", "must be an object");
    RETURN_IF_ERROR(CheckKeys(perf, "\"performance\"",
                              {"max_startup_ms", "max_p50_us", "max_p99_us", "max_idle_rss_kib"}));
    ASSIGN_OR_RETURN(m.performance.max_startup_ms, GetLimit(perf, "max_startup_ms"));
    ASSIGN_OR_RETURN(m.performance.max_p50_us, GetLimit(perf, "max_p50_us"));
    ASSIGN_OR_RETURN(m.performance.max_p99_us, GetLimit(perf, "max_p99_us"));
    ASSIGN_OR_RETURN(std::optional<double> rss, GetLimit(perf, "max_idle_rss_kib"));
    if (rss) m.performance.max_idle_rss_kib = static_cast<uint64_t>(*rss);
  }
  if (m.is_backend()) {
    if (m.backend_probe.write_path.empty() || m.backend_probe.write_data_json.empty()) {
      return Invalid("backend", absl::StrCat("with \"write_path\" and \"write_data\" is required "
                                             "for a ",
                                             type,
                                             " plugin (the suite writes, reads and "
                                             "deletes there)"));
    }
  } else {
    if (root.contains("backend")) return Invalid("backend", "is only for secret and auth plugins");
    if (m.database_config_json.empty()) {
      return Invalid("database", "with \"config\" is required for a database plugin");
    }
  }
  if (m.is_backend() && root.contains("database")) {
    return Invalid("database", "is only for database plugins");
  }
  return m;
}

std::string RedactedManifestJson(absl::string_view json_text) {
  json root = json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (!root.is_object()) return "{}";
  constexpr char kRedacted[] = "(redacted)";
  if (root.contains("env") && root["env"].is_array()) {
    for (json& entry : root["env"]) {
      if (!entry.is_string()) continue;
      const std::string text = entry.get<std::string>();
      entry = absl::StrCat(text.substr(0, text.find('=')), "=", kRedacted);
    }
  }
  if (root.contains("database") && root["database"].is_object()) {
    // Depth-first over the configs: every string value is replaced, keys and structure stay.
    std::vector<json*> pending;
    for (const char* key : {"config", "unreachable_config"}) {
      if (root["database"].contains(key)) pending.push_back(&root["database"][key]);
    }
    while (!pending.empty()) {
      json* node = pending.back();
      pending.pop_back();
      if (node->is_string()) {
        *node = kRedacted;
      } else if (node->is_structured()) {
        for (json& child : *node) pending.push_back(&child);
      }
    }
  }
  return root.dump();
}

std::string ExpandDatabaseConfig(const Manifest& manifest, absl::string_view scratch_dir) {
  return ExpandConfig(manifest.database_config_json, scratch_dir);
}

std::string ExpandUnreachableDatabaseConfig(const Manifest& manifest,
                                            absl::string_view scratch_dir) {
  if (!manifest.database_unreachable_config_json.empty()) {
    return ExpandConfig(manifest.database_unreachable_config_json, scratch_dir);
  }
  return ExpandConfig(manifest.database_config_json, absl::StrCat(scratch_dir, "/missing/nowhere"));
}

std::vector<std::string> MissingDatabaseEnv(const Manifest& manifest) {
  std::set<std::string> missing;
  for (const std::string* config :
       {&manifest.database_config_json, &manifest.database_unreachable_config_json}) {
    for (const std::string& name : EnvReferences(*config)) {
      if (std::getenv(name.c_str()) == nullptr) missing.insert(name);
    }
  }
  return {missing.begin(), missing.end()};
}

}  // namespace bulwark::conformance
