// `status` and `operator init|unseal|seal|step-down`: the seal lifecycle (sys/init, sys/unseal,
// sys/seal, sys/seal-status, sys/step-down).
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/cli/command.h"
#include "server/cli/output.h"

namespace bulwark::cli {

using nlohmann::json;

int RunStatus(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark status [options]\n\n"
                 "  Prints whether the server is initialized and sealed, and its HA state.\n"
                 "  Exit code: 0 unsealed, 1 error, 2 sealed.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(0, 0)) return *code;
  const Client* client = inv.client();
  if (client == nullptr) return kExitLocalError;
  absl::StatusOr<std::optional<json>> seal = client->Call({"GET", "sys/seal-status", {}, {}});
  if (!seal.ok() || !seal->has_value()) {
    inv.RemoteError(
        "Error checking seal status",
        seal.ok() ? absl::InternalError("the server sent no seal status") : seal.status());
    return kExitLocalError;  // `status` reserves 2 for "sealed".
  }
  return PrintSealStatus(inv, **seal);
}

int RunOperatorInit(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark operator init [options]\n\n"
                 "  Initializes a new server: makes the root key, splits its unseal key into\n"
                 "  -key-shares shares of which -key-threshold unseal it, and prints them with\n"
                 "  the initial root token.");
  int shares = 5, threshold = 3;
  bool status_only = false;
  inv.flags().Int("key-shares", &shares, "Number of unseal key shares to make (default 5).");
  inv.flags().Int("key-threshold", &threshold,
                  "Number of shares needed to unseal (default 3); at most -key-shares.");
  inv.flags().Bool("status", &status_only,
                   "Only report whether the server is initialized: exit 0 if it is, 2 if not.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(0, 0)) return *code;
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;

  if (status_only) {
    absl::StatusOr<std::optional<json>> reply = client->Call({"GET", "sys/init", {}, {}});
    if (!reply.ok()) return inv.RemoteError("Error checking init status", reply.status());
    const bool initialized = reply->has_value() && BoolField(**reply, "initialized");
    inv.Print(initialized ? "Vault is initialized" : "Vault is not initialized");
    return initialized ? kExitOk : kExitRemoteError;
  }

  absl::StatusOr<std::optional<json>> reply = client->Call(
      {"PUT", "sys/init", {}, json{{"secret_shares", shares}, {"secret_threshold", threshold}}});
  if (!reply.ok()) return inv.RemoteError("Error initializing", reply.status());
  if (!reply->has_value()) {
    return inv.RemoteError("Error initializing", absl::InternalError("the server sent no keys"));
  }
  const json& init = **reply;
  const json keys_b64 = init.contains("keys_base64") ? init["keys_base64"] : json::array();
  const json keys_hex = init.contains("keys") ? init["keys"] : json::array();
  const std::string root_token = StringField(init, "root_token");
  if (inv.json_format()) {
    inv.PrintJson({{"unseal_keys_b64", keys_b64},
                   {"unseal_keys_hex", keys_hex},
                   {"unseal_shares", keys_b64.size()},
                   {"unseal_threshold", threshold},
                   {"recovery_keys_b64", json::array()},
                   {"recovery_keys_hex", json::array()},
                   {"recovery_keys_shares", 0},
                   {"recovery_keys_threshold", 0},
                   {"root_token", root_token}});
    return kExitOk;
  }
  std::string text;
  for (size_t i = 0; i < keys_b64.size(); ++i) {
    absl::StrAppend(&text, "Unseal Key ", i + 1, ": ", GoValue(keys_b64[i]), "\n");
  }
  absl::StrAppend(
      &text, "\nInitial Root Token: ", root_token, "\n\n", "Vault initialized with ",
      keys_b64.size(), " key shares and a key threshold of ", threshold, ".\n",
      "Keep the key shares above apart and safe: after every seal or restart the server needs ",
      threshold, " of\nthem to unseal, and no one, the server included, can make them again.");
  inv.Print(text);
  return kExitOk;
}

int RunOperatorUnseal(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark operator unseal [options] [KEY]\n\n"
                 "  Gives the server one unseal key share. Without KEY the share is read from\n"
                 "  stdin (a prompt is printed; the key is not echoed on a terminal).");
  bool reset = false;
  inv.flags().Bool("reset", &reset, "Discard the key shares given so far.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(0, 1)) return *code;
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;

  json body;
  if (reset) {
    body = {{"reset", true}};
  } else {
    std::string key;
    if (!inv.args().empty()) {
      key = inv.args()[0];
    } else {
      // The prompt goes to stderr so that stdout stays the command's output (-format=json).
      inv.err() << "Unseal Key (will be hidden): " << std::flush;
      if (io.read_secret_line) {
        key = io.read_secret_line().value_or("");
        inv.err() << "\n";
      } else {
        std::getline(*io.in, key);
      }
    }
    key = std::string(absl::StripAsciiWhitespace(key));
    if (key.empty()) return inv.LocalError("Error unsealing: no unseal key was given");
    body = {{"key", key}};
  }
  absl::StatusOr<std::optional<json>> reply = client->Call({"PUT", "sys/unseal", {}, body});
  if (!reply.ok()) return inv.RemoteError("Error unsealing", reply.status());
  if (!reply->has_value()) {
    return inv.RemoteError("Error unsealing", absl::InternalError("the server sent no status"));
  }
  const int code = PrintSealStatus(inv, **reply);
  return code == kExitLocalError ? kExitRemoteError : kExitOk;
}

int RunOperatorSeal(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark operator seal [options]\n\n"
                 "  Seals the server: it forgets its keys and serves nothing but status until\n"
                 "  unsealed again. Needs a root token.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(0, 0)) return *code;
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply = client->Call({"PUT", "sys/seal", {}, {}});
  if (!reply.ok()) return inv.RemoteError("Error sealing", reply.status());
  inv.Print("Success! Vault is sealed.");
  return kExitOk;
}

int RunOperatorStepDown(const Io& io, const std::vector<std::string>& args) {
  Invocation inv(io,
                 "Usage: bulwark operator step-down [options]\n\n"
                 "  Asks the active node to give up leadership so that a standby takes over.");
  if (auto code = inv.Parse(args)) return *code;
  if (auto code = inv.CheckArgCount(0, 0)) return *code;
  const Client* client = inv.client();
  if (client == nullptr) return kExitRemoteError;
  absl::StatusOr<std::optional<json>> reply = client->Call({"PUT", "sys/step-down", {}, {}});
  if (!reply.ok()) return inv.RemoteError("Error stepping down", reply.status());
  inv.Print(absl::StrCat("Success! Stepped down: ", client->options().address));
  return kExitOk;
}

}  // namespace bulwark::cli
