// `read`, `write`, `list`, `delete`: any API path, as the generic commands of Vault's CLI.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/cli/command.h"
#include "server/cli/kv_args.h"
#include "server/cli/output.h"

namespace bulwark::cli {
namespace {

using nlohmann::json;

// Query parameters from key=value data: one parameter per value of a list.
std::vector<std::pair<std::string, std::string>> QueryFromData(const json& data) {
  std::vector<std::pair<std::string, std::string>> query;
  for (auto it = data.begin(); it != data.end(); ++it) {
    if (it->is_array()) {
      for (const json& v : *it) query.emplace_back(it.key(), GoValue(v));
    } else {
      query.emplace_back(it.key(), GoValue(*it));
    }
  }
  return query;
}

// -field=NAME: the value of a data field, or of a token field of the auth section.
std::optional<json> FieldOf(const json& secret, const std::string& field) {
  if (auto data = secret.find("data"); data != secret.end() && data->is_object()) {
    if (auto it = data->find(field); it != data->end()) return *it;
  }
  auto auth = secret.find("auth");
  if (auth == secret.end() || !auth->is_object()) return std::nullopt;
  static const std::pair<const char*, const char*> kAuthFields[] = {
      {"token", "client_token"},
      {"token_accessor", "accessor"},
      {"token_duration", "lease_duration"},
      {"token_renewable", "renewable"},
      {"token_policies", "token_policies"},
      {"identity_policies", "identity_policies"},
      {"policies", "policies"}};
  for (const auto& [name, key] : kAuthFields) {
    if (field == name && auth->contains(key)) return (*auth)[key];
  }
  return std::nullopt;
}

}  // namespace

// Prints a response envelope in the chosen format, or only -field. Shared with `token`.
int PrintSecret(Invocation& inv, const json& secret, const std::string& field) {
  if (!field.empty()) {
    std::optional<json> value = FieldOf(secret, field);
    if (!value.has_value()) {
      return inv.LocalError(absl::StrCat("Field \"", field, "\" not present in secret"));
    }
    if (inv.json_format()) {
      inv.PrintJson(*value);
    } else {
      inv.out() << GoValue(*value);  // No newline, as Vault prints a raw field.
    }
    return kExitOk;
  }
  inv.err() << WarningsText(secret);
  if (inv.json_format()) {
    inv.PrintJson(secret);
  } else {
    inv.Print(SecretTable(secret));
  }
  return kExitOk;
}

int RunRead(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark read [options] PATH [KEY=VALUE ...]\n\n"
                 "  Reads from PATH (GET /v1/PATH); KEY=VALUE pairs become query parameters.");
  std::string field;
  inv.flags().String("field", &field, "Print only this field's value.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(1, SIZE_MAX)) return *code;
  const std::string path = SanitizePath(inv.args()[0]);
  absl::StatusOr<json> data =
      ParseKeyValueArgs(std::vector<std::string>(inv.args().begin() + 1, inv.args().end()), *io.in);
  if (!data.ok())
    return inv.LocalError(absl::StrCat("Failed to parse K=V data: ", data.status().message()));
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply =
      client->Call({"GET", path, QueryFromData(*data), {}}, /*not_found_is_empty=*/true);
  if (!reply.ok()) return inv.RemoteError(absl::StrCat("Error reading ", path), reply.status());
  if (!reply->has_value()) {
    inv.err() << "No value found at " << path << "\n";
    return kExitRemoteError;
  }
  return PrintSecret(inv, **reply, field);
}

int RunWrite(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark write [options] PATH [DATA K=V...]\n\n"
                 "  Writes data to PATH (PUT /v1/PATH). K=@file reads a value from a file,\n"
                 "  K=- from stdin; \"-\" alone reads a JSON object from stdin.");
  std::string field;
  bool force = false;
  inv.flags().String("field", &field, "Print only this field of the response.");
  inv.flags().Bool("force", &force, "Write even with no data.");
  inv.flags().Bool("f", &force, "Short for -force.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(1, SIZE_MAX)) return *code;
  const std::string path = SanitizePath(inv.args()[0]);
  const std::vector<std::string> data_args(inv.args().begin() + 1, inv.args().end());
  if (data_args.empty() && !force) return inv.LocalError("Must supply data or use -force");
  absl::StatusOr<json> data = ParseKeyValueArgs(data_args, *io.in);
  if (!data.ok())
    return inv.LocalError(absl::StrCat("Failed to parse K=V data: ", data.status().message()));
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply = client->Call({"PUT", path, {}, *data});
  if (!reply.ok()) {
    return inv.RemoteError(absl::StrCat("Error writing data to ", path), reply.status());
  }
  if (!reply->has_value()) {
    if (!inv.json_format()) inv.Print(absl::StrCat("Success! Data written to: ", path));
    return kExitOk;
  }
  return PrintSecret(inv, **reply, field);
}

int RunList(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark list [options] PATH\n\n"
                 "  Lists the keys under PATH (LIST /v1/PATH/). Keys ending in / hold more keys.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(1, 1)) return *code;
  const std::string path = WithTrailingSlash(SanitizePath(inv.args()[0]));
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply =
      client->Call({"LIST", path, {}, {}}, /*not_found_is_empty=*/true);
  if (!reply.ok()) return inv.RemoteError(absl::StrCat("Error listing ", path), reply.status());
  std::vector<std::string> keys;
  if (reply->has_value()) {
    const json& secret = **reply;
    auto data = secret.find("data");
    if (data != secret.end() && data->is_object()) {
      if (auto k = data->find("keys"); k != data->end() && k->is_array()) {
        for (const json& key : *k) keys.push_back(GoValue(key));
      }
    }
    inv.err() << WarningsText(secret);
  }
  if (keys.empty()) {
    inv.err() << "No value found at " << path << "\n";
    return kExitRemoteError;
  }
  if (inv.json_format()) {
    inv.PrintJson(keys);
  } else {
    inv.Print(KeysTable(keys));
  }
  return kExitOk;
}

int RunDelete(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark delete [options] PATH [KEY=VALUE ...]\n\n"
                 "  Deletes PATH (DELETE /v1/PATH); KEY=VALUE pairs become query parameters.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(1, SIZE_MAX)) return *code;
  const std::string path = SanitizePath(inv.args()[0]);
  absl::StatusOr<json> data =
      ParseKeyValueArgs(std::vector<std::string>(inv.args().begin() + 1, inv.args().end()), *io.in);
  if (!data.ok())
    return inv.LocalError(absl::StrCat("Failed to parse K=V data: ", data.status().message()));
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply =
      client->Call({"DELETE", path, QueryFromData(*data), {}});
  if (!reply.ok()) return inv.RemoteError(absl::StrCat("Error deleting ", path), reply.status());
  if (reply->has_value()) return PrintSecret(inv, **reply, "");
  inv.Print(absl::StrCat("Success! Data deleted (if it existed) at: ", path));
  return kExitOk;
}

}  // namespace bulwark::cli
