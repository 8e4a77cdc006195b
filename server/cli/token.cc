// `token lookup|create`: the token store (auth/token/...).
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/cli/command.h"
#include "server/cli/kv_args.h"

namespace bulwark::cli {

using nlohmann::json;

int RunTokenLookup(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark token lookup [options] [TOKEN | ACCESSOR]\n\n"
                 "  Prints a token's properties: the caller's own token without an argument.");
  bool accessor = false;
  inv.flags().Bool("accessor", &accessor, "The argument is an accessor, not a token.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(accessor ? 1 : 0, 1)) return *code;
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  ApiRequest request{"GET", "auth/token/lookup-self", {}, {}};
  if (accessor) {
    request = {"POST", "auth/token/lookup-accessor", {}, json{{"accessor", inv.args()[0]}}};
  } else if (!inv.args().empty()) {
    // In the body, not the URL: the URL appears in error messages.
    request = {"POST", "auth/token/lookup", {}, json{{"token", inv.args()[0]}}};
  }
  absl::StatusOr<std::optional<json>> reply = client->Call(request);
  if (!reply.ok()) return inv.RemoteError("Error looking up token", reply.status());
  if (!reply->has_value()) {
    return inv.RemoteError("Error looking up token",
                           absl::InternalError("the server sent an empty reply"));
  }
  return PrintSecret(inv, **reply, "");
}

int RunTokenCreate(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark token create [options]\n\n"
                 "  Creates a token, a child of the caller's unless -orphan.");
  std::string id, display_name, type, field;
  absl::Duration ttl, explicit_max_ttl, period;
  bool renewable = true, orphan = false, no_default_policy = false;
  int use_limit = 0;
  std::vector<std::string> policies, metadata;
  inv.flags().String("id", &id, "The new token's value (default: generated).");
  inv.flags().String("display-name", &display_name, "Name shown for the token.");
  inv.flags().String("type", &type, "\"service\" or \"batch\".");
  inv.flags().String("field", &field, "Print only this field (e.g. token).");
  inv.flags().Duration("ttl", &ttl, "Initial TTL.");
  inv.flags().Duration("explicit-max-ttl", &explicit_max_ttl, "Hard limit on the TTL.");
  inv.flags().Duration("period", &period, "Renewal period of a periodic token.");
  inv.flags().Bool("renewable", &renewable, "Whether the token can be renewed (default true).");
  inv.flags().Bool("orphan", &orphan, "Create the token without a parent.");
  inv.flags().Bool("no-default-policy", &no_default_policy, "Leave out the default policy.");
  inv.flags().Int("use-limit", &use_limit, "Number of uses (0: unlimited).");
  inv.flags().List("policy", &policies, /*split_commas=*/true,
                   "Policy to attach; comma-separated; repeatable.");
  inv.flags().List("metadata", &metadata, /*split_commas=*/false,
                   "Metadata k=v to attach; repeatable.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(0, 0)) return *code;

  json body = json::object();
  // Vault's CLI always sends renewable; sending it only when given keeps a server that does not
  // take it (bulwark) from warning on every create. Vault's default is true either way.
  if (inv.flags().WasSet("renewable")) body["renewable"] = renewable;
  if (!id.empty()) body["id"] = id;
  if (!display_name.empty()) body["display_name"] = display_name;
  if (!type.empty()) body["type"] = type;
  if (!policies.empty()) body["policies"] = policies;
  if (orphan) body["no_parent"] = true;
  if (no_default_policy) body["no_default_policy"] = true;
  if (use_limit != 0) body["num_uses"] = use_limit;
  if (std::string d = DurationForApi(ttl); !d.empty()) body["ttl"] = d;
  if (std::string d = DurationForApi(explicit_max_ttl); !d.empty()) body["explicit_max_ttl"] = d;
  if (std::string d = DurationForApi(period); !d.empty()) body["period"] = d;
  if (!metadata.empty()) {
    std::istringstream no_stdin;
    absl::StatusOr<json> meta = ParseKeyValueArgs(metadata, no_stdin);
    if (!meta.ok())
      return inv.LocalError(absl::StrCat("Invalid -metadata: ", meta.status().message()));
    body["meta"] = *meta;
  }
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply = client->Call({"POST", "auth/token/create", {}, body});
  if (!reply.ok()) return inv.RemoteError("Error creating token", reply.status());
  if (!reply->has_value()) {
    return inv.RemoteError("Error creating token",
                           absl::InternalError("the server sent an empty reply"));
  }
  return PrintSecret(inv, **reply, field);
}

}  // namespace bulwark::cli
