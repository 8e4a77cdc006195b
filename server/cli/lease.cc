// `lease renew|revoke|lookup`: the lease manager (sys/leases/...), as Vault's CLI drives it.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/cli/command.h"

namespace bulwark::cli {

using nlohmann::json;

int RunLeaseRenew(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark lease renew [options] ID\n\n"
                 "  Renews the lease ID, asking for -increment more (default: its own TTL).");
  absl::Duration increment = absl::ZeroDuration();
  inv.flags().Duration("increment", &increment, "How much longer the lease should live.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(1, 1)) return *code;
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  json body = {{"lease_id", inv.args()[0]}};
  if (increment > absl::ZeroDuration()) body["increment"] = absl::ToInt64Seconds(increment);
  absl::StatusOr<std::optional<json>> reply = client->Call({"PUT", "sys/leases/renew", {}, body});
  if (!reply.ok()) return inv.RemoteError("Error renewing lease", reply.status());
  if (!reply->has_value()) {
    return inv.RemoteError("Error renewing lease",
                           absl::InternalError("the server sent an empty reply"));
  }
  return PrintSecret(inv, **reply, "");
}

int RunLeaseRevoke(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark lease revoke [options] ID\n\n"
                 "  Revokes the lease ID now, or with -prefix every lease under it.");
  bool prefix = false;
  inv.flags().Bool("prefix", &prefix, "Treat ID as a prefix: revoke every lease under it.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(1, 1)) return *code;
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  const std::string& id = inv.args()[0];
  ApiRequest request{"PUT", "sys/leases/revoke", {}, json{{"lease_id", id}}};
  if (prefix) request = {"PUT", absl::StrCat("sys/leases/revoke-prefix/", id), {}, json::object()};
  absl::StatusOr<std::optional<json>> reply = client->Call(request);
  if (!reply.ok()) return inv.RemoteError("Error revoking lease", reply.status());
  inv.Print("All revocation operations queued successfully!");
  return kExitOk;
}

int RunLeaseLookup(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark lease lookup [options] ID\n\n"
                 "  Prints the lease ID's issue and expiry times, TTL and renewability.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(1, 1)) return *code;
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply =
      client->Call({"PUT", "sys/leases/lookup", {}, json{{"lease_id", inv.args()[0]}}});
  if (!reply.ok()) return inv.RemoteError("Error looking up lease", reply.status());
  if (!reply->has_value()) {
    return inv.RemoteError("Error looking up lease",
                           absl::InternalError("the server sent an empty reply"));
  }
  return PrintSecret(inv, **reply, "");
}

}  // namespace bulwark::cli
