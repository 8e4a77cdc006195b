// bulwark's command-line client: the Vault CLI's commands, flags, environment, output and exit
// codes, over Vault's HTTP API. `bulwark server` runs the server; every other first argument
// comes here.
//
// Exit codes, as Vault's CLI: 0 success; 1 a local error (bad flags, wrong number of arguments,
// failed validation); 2 a remote error (the API refused, the server could not be reached, TLS
// failed), and for `status` a sealed server; 127 an unknown command.
#ifndef BULWARK_SERVER_CLI_CLI_H_
#define BULWARK_SERVER_CLI_CLI_H_

#include <functional>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace bulwark::cli {

// What a command may touch: its environment variables (VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT,
// VAULT_CAPATH, VAULT_SKIP_VERIFY, VAULT_FORMAT, HOME for ~/.vault-token, NO_PROXY) and its
// standard streams. Tests pass their own.
struct Io {
  std::function<std::optional<std::string>(const std::string& name)> getenv;
  std::istream* in = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  // Reads one line from a terminal without echoing it (for an unseal key); nullopt at EOF.
  // Unset when stdin is not a terminal: a line of `in` is read instead.
  std::function<std::optional<std::string>()> read_secret_line;
};

// Runs one command. `args` starts with the command's name: {"operator", "init", "-key-shares=1"}.
// Returns the exit code.
int Run(const std::vector<std::string>& args, const Io& io);

// Run over the real process: argv[1..], getenv, std::cin/cout/cerr.
int Main(int argc, char** argv);

}  // namespace bulwark::cli

#endif  // BULWARK_SERVER_CLI_CLI_H_
