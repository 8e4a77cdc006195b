// What every CLI command shares: its flags (the HTTP and output flags plus its own), the client
// built from flags and environment, the output format, and the exit codes. Internal to
// //server/cli.
#ifndef BULWARK_SERVER_CLI_COMMAND_H_
#define BULWARK_SERVER_CLI_COMMAND_H_

#include <cstddef>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/cli/cli.h"
#include "server/cli/client.h"
#include "server/cli/flags.h"

namespace bulwark::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitLocalError = 1;
inline constexpr int kExitRemoteError = 2;
inline constexpr int kExitUnknownCommand = 127;

inline constexpr char kDefaultAddress[] = "https://127.0.0.1:8200";

// The token a command sends: VAULT_TOKEN when set and not empty, else the contents of
// ~/.vault-token (surrounding whitespace removed) when that file exists, else "" (none). An
// error when the file exists but cannot be read; the message never holds the token.
absl::StatusOr<std::string> ResolveToken(const Io& io);

// One run of one command.
class Invocation {
 public:
  // `usage` is the help text's first paragraph ("Usage: bulwark read [options] PATH ...").
  Invocation(const Io& io, std::string usage);

  FlagSet& flags() { return flags_; }

  // Parses the arguments after the command's name. Returns an exit code when the command must
  // stop here: 0 after -help (help printed), 1 after a bad flag or -format (error printed).
  std::optional<int> Parse(const std::vector<std::string>& args);
  const std::vector<std::string>& args() const { return args_; }
  // 1 with Vault's message ("Not enough arguments (expected 1, got 0)") when the number of
  // arguments is outside [min, max].
  std::optional<int> CheckArgCount(size_t min, size_t max);

  bool json_format() const { return format_ == "json"; }

  // The client from -address / VAULT_ADDR, the token, and the TLS flags; built on first use.
  // nullptr after printing the error (the command then exits 2, as Vault's does).
  const Client* client();

  // Prints "<context>: <message>" to stderr; returns 2.
  int RemoteError(absl::string_view context, const absl::Status& status);
  // Prints `message` to stderr; returns 1.
  int LocalError(absl::string_view message);
  // Prints `text` and a newline to stdout unless `text` is empty.
  void Print(absl::string_view text);
  // Prints `value` as indented JSON.
  void PrintJson(const nlohmann::json& value);

  std::ostream& out() { return *io_.out; }
  std::ostream& err() { return *io_.err; }
  const Io& io() const { return io_; }

 private:
  const Io& io_;
  std::string usage_;
  FlagSet flags_;
  std::vector<std::string> args_;
  std::string address_, ca_cert_, ca_path_, format_;
  bool tls_skip_verify_ = false;
  std::optional<Client> client_;
};

// "secret/" and " /secret/ " -> "secret": surrounding spaces and slashes removed.
std::string SanitizePath(absl::string_view path);
// Non-empty paths get one trailing slash.
std::string WithTrailingSlash(absl::string_view path);
// A duration flag as Vault's API takes it ("1h30m"); "" when zero, "system" when negative.
std::string DurationForApi(absl::Duration d);

// Prints the seal status `seal_status` (from sys/seal-status) with the HA fields of sys/leader,
// as `vault status` does. Returns 0 when unsealed, 2 when sealed, 1 when sys/leader failed.
int PrintSealStatus(Invocation& inv, const nlohmann::json& seal_status);

// Prints a response envelope: -format=json as JSON, else warnings to stderr and SecretTable;
// with a non-empty `field` only that field (of data, or a token field of auth). Returns 0, or 1
// when the field is missing.
int PrintSecret(Invocation& inv, const nlohmann::json& secret, const std::string& field);

// The commands, each given the arguments after its name.
int RunStatus(const Io& io, const std::vector<std::string>& args);
int RunOperatorInit(const Io& io, const std::vector<std::string>& args);
int RunOperatorUnseal(const Io& io, const std::vector<std::string>& args);
int RunOperatorSeal(const Io& io, const std::vector<std::string>& args);
int RunOperatorStepDown(const Io& io, const std::vector<std::string>& args);
int RunPluginRegister(const Io& io, const std::vector<std::string>& args);
int RunPluginList(const Io& io, const std::vector<std::string>& args);
int RunPluginInfo(const Io& io, const std::vector<std::string>& args);
int RunPluginDeregister(const Io& io, const std::vector<std::string>& args);
int RunPluginReload(const Io& io, const std::vector<std::string>& args);
int RunSecretsEnable(const Io& io, const std::vector<std::string>& args);
int RunSecretsDisable(const Io& io, const std::vector<std::string>& args);
int RunSecretsList(const Io& io, const std::vector<std::string>& args);
int RunSecretsTune(const Io& io, const std::vector<std::string>& args);
int RunRead(const Io& io, const std::vector<std::string>& args);
int RunWrite(const Io& io, const std::vector<std::string>& args);
int RunList(const Io& io, const std::vector<std::string>& args);
int RunDelete(const Io& io, const std::vector<std::string>& args);
int RunTokenLookup(const Io& io, const std::vector<std::string>& args);
int RunTokenCreate(const Io& io, const std::vector<std::string>& args);
int RunLeaseRenew(const Io& io, const std::vector<std::string>& args);
int RunLeaseRevoke(const Io& io, const std::vector<std::string>& args);
int RunLeaseLookup(const Io& io, const std::vector<std::string>& args);

}  // namespace bulwark::cli

#endif  // BULWARK_SERVER_CLI_COMMAND_H_
