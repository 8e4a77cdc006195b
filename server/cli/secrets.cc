// `secrets enable|disable|list|tune`: the mount table (sys/mounts).
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/cli/command.h"
#include "server/cli/kv_args.h"
#include "server/cli/output.h"

namespace bulwark::cli {
namespace {

using nlohmann::json;

// "-options=k=v" flags as a JSON object; an error (exit 1) names the bad one.
std::optional<int> OptionsObject(Invocation& inv, const std::vector<std::string>& options,
                                 json* out) {
  std::istringstream no_stdin;
  absl::StatusOr<json> parsed = ParseKeyValueArgs(options, no_stdin);
  if (!parsed.ok())
    return inv.LocalError(absl::StrCat("Invalid -options: ", parsed.status().message()));
  *out = *std::move(parsed);
  return std::nullopt;
}

}  // namespace

int RunSecretsEnable(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark secrets enable [options] TYPE\n\n"
                 "  Mounts a secrets engine of TYPE (a catalog name such as kv) at -path,\n"
                 "  which defaults to TYPE.");
  std::string path, description, plugin_version;
  absl::Duration default_ttl, max_ttl;
  std::vector<std::string> options;
  int kv_version = 0;
  bool local = false, seal_wrap = false, external_entropy = false, force_no_cache = false;
  inv.flags().String("path", &path, "Where to mount the engine (default: TYPE).");
  inv.flags().String("description", &description, "Human-readable description of the mount.");
  inv.flags().String("plugin-version", &plugin_version, "Catalog version of the plugin to run.");
  inv.flags().Duration("default-lease-ttl", &default_ttl, "Default lease TTL for this mount.");
  inv.flags().Duration("max-lease-ttl", &max_ttl, "Maximum lease TTL for this mount.");
  inv.flags().List("options", &options, /*split_commas=*/false,
                   "Engine option as k=v; repeatable.");
  inv.flags().Int("version", &kv_version, "The kv engine's version (same as -options=version=N).");
  inv.flags().Bool("local", &local, "Do not replicate the mount.");
  inv.flags().Bool("seal-wrap", &seal_wrap, "Seal-wrap the mount's critical values.");
  inv.flags().Bool("external-entropy-access", &external_entropy,
                   "Give the engine access to the external entropy source.");
  inv.flags().Bool("force-no-cache", &force_no_cache, "Turn caching off for this mount.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(1, 1)) return *code;
  const std::string type = SanitizePath(inv.args()[0]);
  if (type.empty()) return inv.LocalError("The secrets engine TYPE must not be empty");
  const std::string mount = WithTrailingSlash(SanitizePath(path.empty() ? type : path));

  json options_json;
  if (auto code = OptionsObject(inv, options, &options_json)) return *code;
  if (kv_version > 0) options_json["version"] = absl::StrCat(kv_version);
  json config = json::object();
  if (std::string d = DurationForApi(default_ttl); !d.empty()) config["default_lease_ttl"] = d;
  if (std::string d = DurationForApi(max_ttl); !d.empty()) config["max_lease_ttl"] = d;
  if (force_no_cache) config["force_no_cache"] = true;
  if (!plugin_version.empty()) config["plugin_version"] = plugin_version;
  json body = {{"type", type},           {"description", description},
               {"config", config},       {"local", local},
               {"seal_wrap", seal_wrap}, {"external_entropy_access", external_entropy}};
  if (!options_json.empty()) body["options"] = options_json;

  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply =
      client->Call({"POST", absl::StrCat("sys/mounts/", SanitizePath(mount)), {}, body});
  if (!reply.ok()) return inv.RemoteError("Error enabling", reply.status());
  inv.Print(absl::StrCat("Success! Enabled the ", type, " secrets engine at: ", mount));
  return kExitOk;
}

int RunSecretsDisable(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark secrets disable [options] PATH\n\n"
                 "  Unmounts the secrets engine at PATH and deletes all of its data.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(1, 1)) return *code;
  const std::string path = SanitizePath(inv.args()[0]);
  if (path.empty()) return inv.LocalError("The PATH to disable must not be empty");
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply =
      client->Call({"DELETE", absl::StrCat("sys/mounts/", path), {}, {}});
  if (!reply.ok()) {
    return inv.RemoteError(absl::StrCat("Error disabling secrets engine at ", path, "/"),
                           reply.status());
  }
  inv.Print(absl::StrCat("Success! Disabled the secrets engine (if it existed) at: ", path, "/"));
  return kExitOk;
}

int RunSecretsList(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark secrets list [options]\n\n"
                 "  Lists the mounted secrets engines.");
  bool detailed = false;
  inv.flags().Bool("detailed", &detailed, "Print TTLs, options, UUIDs and plugin versions too.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(0, 0)) return *code;
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply = client->Call({"GET", "sys/mounts", {}, {}});
  if (!reply.ok()) return inv.RemoteError("Error listing secrets engines", reply.status());

  // Mounts are under "data"; old servers put them only at the top level, keyed "path/".
  json mounts = json::object();
  if (reply->has_value()) {
    const json& top = **reply;
    if (auto data = top.find("data"); data != top.end() && data->is_object()) {
      mounts = *data;
    } else if (top.is_object()) {
      for (auto it = top.begin(); it != top.end(); ++it) {
        if (!it.key().empty() && it.key().back() == '/' && it->is_object()) mounts[it.key()] = *it;
      }
    }
  }
  if (inv.json_format()) {
    inv.PrintJson(mounts);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (auto it = mounts.begin(); it != mounts.end(); ++it) {  // Sorted by path.
    const json& m = *it;
    if (!detailed) {
      rows.push_back({it.key(), StringField(m, "type"), StringField(m, "accessor"),
                      StringField(m, "description")});
      continue;
    }
    const json config = m.contains("config") ? m["config"] : json::object();
    auto ttl = [&](const char* key) {
      const int64_t s = IntField(config, key);
      return s == 0 ? std::string("system") : HumanDuration(s);
    };
    rows.push_back(
        {it.key(), StringField(m, "type"), StringField(m, "accessor"), ttl("default_lease_ttl"),
         ttl("max_lease_ttl"), BoolField(config, "force_no_cache") ? "true" : "false",
         BoolField(m, "local") ? "local" : "replicated",
         BoolField(m, "seal_wrap") ? "true" : "false",
         m.contains("options") && !m["options"].is_null() ? GoValue(m["options"]) : "",
         StringField(m, "description"), StringField(m, "uuid"), StringField(m, "plugin_version"),
         StringField(m, "running_plugin_version"), StringField(m, "running_sha256")});
  }
  if (!detailed) {
    inv.Print(Table({"Path", "Type", "Accessor", "Description"}, rows));
  } else {
    inv.Print(Table({"Path", "Plugin", "Accessor", "Default TTL", "Max TTL", "Force No Cache",
                     "Replication", "Seal Wrap", "Options", "Description", "UUID", "Version",
                     "Running Version", "Running SHA256"},
                    rows));
  }
  return kExitOk;
}

int RunSecretsTune(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark secrets tune [options] PATH\n\n"
                 "  Changes the settings of the secrets engine mounted at PATH. Only the flags\n"
                 "  given are sent.");
  std::string description, plugin_version;
  absl::Duration default_ttl, max_ttl;
  std::vector<std::string> options;
  int kv_version = 0;
  inv.flags().String("description", &description, "New description of the mount.");
  inv.flags().String("plugin-version", &plugin_version,
                     "Catalog version of the plugin to run after the next reload.");
  inv.flags().Duration("default-lease-ttl", &default_ttl,
                       "Default lease TTL; a negative value means the system default.");
  inv.flags().Duration("max-lease-ttl", &max_ttl,
                       "Maximum lease TTL; a negative value means the system default.");
  inv.flags().List("options", &options, /*split_commas=*/false,
                   "Engine option as k=v; repeatable.");
  inv.flags().Int("version", &kv_version, "The kv engine's version (same as -options=version=N).");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(1, 1)) return *code;
  const std::string path = SanitizePath(inv.args()[0]);
  if (path.empty()) return inv.LocalError("The PATH to tune must not be empty");

  json body = json::object();
  if (inv.flags().WasSet("description")) body["description"] = description;
  if (inv.flags().WasSet("plugin-version")) body["plugin_version"] = plugin_version;
  if (std::string d = DurationForApi(default_ttl); !d.empty()) body["default_lease_ttl"] = d;
  if (std::string d = DurationForApi(max_ttl); !d.empty()) body["max_lease_ttl"] = d;
  json options_json;
  if (auto code = OptionsObject(inv, options, &options_json)) return *code;
  if (kv_version > 0) options_json["version"] = absl::StrCat(kv_version);
  if (!options_json.empty()) body["options"] = options_json;

  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply =
      client->Call({"POST", absl::StrCat("sys/mounts/", path, "/tune"), {}, body});
  if (!reply.ok()) {
    return inv.RemoteError(absl::StrCat("Error tuning secrets engine ", path, "/"), reply.status());
  }
  inv.Print(absl::StrCat("Success! Tuned the secrets engine at: ", path, "/"));
  return kExitOk;
}

}  // namespace bulwark::cli
