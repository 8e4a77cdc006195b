// `plugin register|list|info|deregister|reload`: the plugin catalog (sys/plugins/catalog) and
// reloads (sys/plugins/reload/backend).
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/cli/command.h"
#include "server/cli/output.h"

namespace bulwark::cli {
namespace {

using nlohmann::json;

constexpr size_t kSignatureFileBytesMax = 64 * 1024;

// Returns 1 after printing an error unless `type` is a catalog type.
std::optional<int> CheckPluginType(Invocation& inv, const std::string& type) {
  if (type == "auth" || type == "database" || type == "secret") return std::nullopt;
  return inv.LocalError(absl::StrCat("Invalid plugin type \"", type,
                                     "\": expected \"auth\", \"database\" or \"secret\""));
}

std::vector<std::pair<std::string, std::string>> VersionQuery(const std::string& version) {
  if (version.empty()) return {};
  return {{"version", version}};
}

}  // namespace

int RunPluginRegister(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark plugin register [options] TYPE NAME\n\n"
                 "  Adds a plugin artifact from the server's plugin directory to the catalog.\n"
                 "  TYPE is auth, database or secret; -sha256 is required. -signature gives\n"
                 "  the artifact's OpenSSH signature (ssh-keygen -Y sign -n bulwark-plugin).\n"
                 "  -memory-bytes, -pids, -cpu-weight and -open-files set the entry's resource\n"
                 "  limits (the catalog API's limits.memory_bytes, pids, cpu_weight, open_files).");
  std::string sha256, command, version, signature_file;
  // The catalog API's "limits" fields (docs/security.md, "Limits"), by their flag names.
  const std::vector<std::pair<std::string, std::string>> kLimitFlags = {
      {"memory-bytes", "memory_bytes"},
      {"pids", "pids"},
      {"cpu-weight", "cpu_weight"},
      {"open-files", "open_files"}};
  std::vector<std::string> limit_values(kLimitFlags.size());
  std::vector<std::string> plugin_args, env;
  inv.flags().String("sha256", &sha256, "SHA-256 of the plugin artifact, in hex. Required.");
  inv.flags().String("command", &command,
                     "File name of the artifact in the plugin directory (default: NAME).");
  inv.flags().List("args", &plugin_args, /*split_commas=*/true,
                   "Arguments for the plugin, comma-separated; repeatable.");
  inv.flags().List("env", &env, /*split_commas=*/false,
                   "KEY=VALUE set in the plugin's environment; repeatable.");
  inv.flags().String("version", &version, "Semantic version of the plugin.");
  inv.flags().String("signature", &signature_file,
                     "File holding the artifact's signature, as ssh-keygen -Y sign -n "
                     "bulwark-plugin wrote it (ARTIFACT.sig).");
  inv.flags().String("memory-bytes", &limit_values[0],
                     "Memory limit of each plugin process, in bytes (at least 1048576).");
  inv.flags().String("pids", &limit_values[1],
                     "Processes and threads each plugin process may have.");
  inv.flags().String("cpu-weight", &limit_values[2],
                     "Relative CPU share, 1 to 10000 (100 is the default weight).");
  inv.flags().String("open-files", &limit_values[3], "File descriptors per plugin process.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(2, 2)) return *code;
  const std::string& type = inv.args()[0];
  const std::string& name = inv.args()[1];
  if (auto code = CheckPluginType(inv, type)) return *code;
  if (sha256.empty()) {
    return inv.LocalError("SHA256 is required for all plugins, please provide -sha256");
  }
  json body = {{"type", type},
               {"command", command.empty() ? name : command},
               {"args", plugin_args},
               {"sha256", sha256}};
  if (!env.empty()) body["env"] = env;
  if (!version.empty()) body["version"] = version;
  json limits = json::object();
  for (size_t i = 0; i < kLimitFlags.size(); ++i) {
    if (limit_values[i].empty()) continue;
    uint64_t value = 0;
    if (!absl::SimpleAtoi(limit_values[i], &value)) {
      return inv.LocalError(absl::StrCat("-", kLimitFlags[i].first,
                                         " must be a whole number, got \"", limit_values[i], "\""));
    }
    limits[kLimitFlags[i].second] = value;  // Ranges are the server's to check.
  }
  if (!limits.empty()) body["limits"] = limits;
  if (!signature_file.empty()) {
    std::ifstream in(signature_file, std::ios::binary);
    if (!in.is_open()) {
      return inv.LocalError(absl::StrCat("cannot read the signature file ", signature_file, ": ",
                                         std::strerror(errno)));
    }
    // An armored signature is a few hundred bytes; the server refuses more than 64 KiB.
    std::string text(kSignatureFileBytesMax + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    if (text.size() > kSignatureFileBytesMax) {
      return inv.LocalError(absl::StrCat("the signature file ", signature_file, " is larger than ",
                                         kSignatureFileBytesMax, " bytes: not a signature"));
    }
    body["signature"] = text;
  }
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply =
      client->Call({"PUT", absl::StrCat("sys/plugins/catalog/", type, "/", name), {}, body});
  if (!reply.ok())
    return inv.RemoteError(absl::StrCat("Error registering plugin ", name), reply.status());
  inv.Print(absl::StrCat("Success! Registered plugin: ", name));
  return kExitOk;
}

int RunPluginList(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark plugin list [options] [TYPE]\n\n"
                 "  Lists the catalog's plugins, or only those of TYPE (auth, database, secret).");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(0, 1)) return *code;
  const std::string type = inv.args().empty() ? "" : inv.args()[0];
  if (!type.empty()) {
    if (auto code = CheckPluginType(inv, type)) return *code;
  }
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply = client->Call({"GET", "sys/plugins/catalog", {}, {}});
  if (!reply.ok()) return inv.RemoteError("Error listing available plugins", reply.status());
  const json data =
      reply->has_value() && (*reply)->contains("data") ? (**reply)["data"] : json::object();

  // One row per (type, name, version): from "detailed" when the server sends it, else from the
  // per-type name lists.
  json rows = json::array();
  if (auto detailed = data.find("detailed"); detailed != data.end() && detailed->is_array()) {
    for (const json& entry : *detailed) {
      if (type.empty() || StringField(entry, "type") == type) rows.push_back(entry);
    }
  } else {
    for (const char* t : {"auth", "database", "secret"}) {
      if (!type.empty() && type != t) continue;
      if (auto names = data.find(t); names != data.end() && names->is_array()) {
        for (const json& n : *names) rows.push_back({{"name", n}, {"type", t}, {"version", ""}});
      }
    }
  }
  if (inv.json_format()) {
    json out = json::object();
    for (const char* t : {"auth", "database", "secret"}) {
      if ((type.empty() || type == t) && data.contains(t)) out[t] = data[t];
    }
    out["detailed"] = rows;
    inv.PrintJson(out);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> table;
  for (const json& r : rows) {
    table.push_back({StringField(r, "name"), StringField(r, "type"), StringField(r, "version")});
  }
  inv.Print(Table({"Name", "Type", "Version"}, table));
  return kExitOk;
}

int RunPluginInfo(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark plugin info [options] TYPE NAME\n\n"
                 "  Prints a catalog entry: command, args, sha256, version, builtin.");
  std::string version;
  inv.flags().String("version", &version, "Which version of the plugin (default: unversioned).");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(2, 2)) return *code;
  const std::string& type = inv.args()[0];
  const std::string& name = inv.args()[1];
  if (auto code = CheckPluginType(inv, type)) return *code;
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply = client->Call(
      {"GET", absl::StrCat("sys/plugins/catalog/", type, "/", name), VersionQuery(version), {}},
      /*not_found_is_empty=*/true);
  if (!reply.ok())
    return inv.RemoteError(absl::StrCat("Error reading plugin named ", name), reply.status());
  if (!reply->has_value() || !(*reply)->contains("data")) {
    inv.err() << "No value found for plugin \"" << name << "\"\n";
    return kExitRemoteError;
  }
  const json& data = (**reply)["data"];
  if (inv.json_format()) {
    inv.PrintJson(data);
  } else {
    inv.Print(MapTable(data));
  }
  return kExitOk;
}

int RunPluginDeregister(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark plugin deregister [options] TYPE NAME\n\n"
                 "  Removes a plugin from the catalog. Mounts that use it keep running until\n"
                 "  reloaded.");
  std::string version;
  inv.flags().String("version", &version, "Which version of the plugin (default: unversioned).");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(2, 2)) return *code;
  const std::string& type = inv.args()[0];
  const std::string& name = inv.args()[1];
  if (auto code = CheckPluginType(inv, type)) return *code;
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply = client->Call(
      {"DELETE", absl::StrCat("sys/plugins/catalog/", type, "/", name), VersionQuery(version), {}});
  if (!reply.ok()) {
    return inv.RemoteError(absl::StrCat("Error deregistering plugin named ", name), reply.status());
  }
  inv.Print(absl::StrCat("Success! Deregistered plugin (if it was registered): ", name));
  return kExitOk;
}

int RunPluginReload(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark plugin reload [options] (-plugin=NAME | -mounts=PATH,...)\n\n"
                 "  Restarts the plugin processes behind every mount of a plugin, or behind the\n"
                 "  given mounts.");
  std::string plugin, scope;
  std::vector<std::string> mounts;
  inv.flags().String("plugin", &plugin, "Reload every mount of this plugin.");
  inv.flags().List("mounts", &mounts, /*split_commas=*/true,
                   "Reload these mounts (comma-separated; repeatable).");
  inv.flags().String("scope", &scope, "\"\" (this node) or \"global\".");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(0, 0)) return *code;
  if (plugin.empty() == mounts.empty()) {
    return inv.LocalError("Must specify exactly one of -plugin or -mounts");
  }
  if (!scope.empty() && scope != "global") {
    return inv.LocalError("Invalid reload scope \"" + scope + "\": expected \"global\" or none");
  }
  json body = json::object();
  if (!plugin.empty()) body["plugin"] = plugin;
  if (!mounts.empty()) body["mounts"] = mounts;
  if (!scope.empty()) body["scope"] = scope;
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply =
      client->Call({"PUT", "sys/plugins/reload/backend", {}, body});
  if (!reply.ok()) return inv.RemoteError("Error reloading plugin/mounts", reply.status());
  if (!plugin.empty()) {
    inv.Print(absl::StrCat("Success! Reloaded plugin: ", plugin));
  } else {
    inv.Print(absl::StrCat("Success! Reloaded mounts: [", absl::StrJoin(mounts, " "), "]"));
  }
  return kExitOk;
}

}  // namespace bulwark::cli
