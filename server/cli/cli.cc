// The command table and the process entry point of bulwark's CLI (see cli.h).
#include "server/cli/cli.h"

#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "server/cli/command.h"

namespace bulwark::cli {
namespace {

struct CommandEntry {
  const char* name;  // One or two words: "read", "operator init".
  const char* synopsis;
  int (*run)(const Io& io, const std::vector<std::string>& args);
};

constexpr CommandEntry kCommands[] = {
    {"read", "Read data from a path", RunRead},
    {"write", "Write data to a path", RunWrite},
    {"list", "List the keys under a path", RunList},
    {"delete", "Delete data at a path", RunDelete},
    {"status", "Print the seal and HA status", RunStatus},
    {"operator init", "Initialize a server", RunOperatorInit},
    {"operator unseal", "Give the server one unseal key share", RunOperatorUnseal},
    {"operator seal", "Seal the server", RunOperatorSeal},
    {"operator step-down", "Make the active node give up leadership", RunOperatorStepDown},
    {"plugin register", "Add a plugin to the catalog", RunPluginRegister},
    {"plugin list", "List the catalog's plugins", RunPluginList},
    {"plugin info", "Print a catalog entry", RunPluginInfo},
    {"plugin deregister", "Remove a plugin from the catalog", RunPluginDeregister},
    {"plugin reload", "Restart a plugin's processes", RunPluginReload},
    {"secrets enable", "Mount a secrets engine", RunSecretsEnable},
    {"secrets disable", "Unmount a secrets engine", RunSecretsDisable},
    {"secrets list", "List the mounted secrets engines", RunSecretsList},
    {"secrets tune", "Change a mount's settings", RunSecretsTune},
    {"token lookup", "Print a token's properties", RunTokenLookup},
    {"token create", "Create a token", RunTokenCreate},
    {"lease renew", "Renew a lease", RunLeaseRenew},
    {"lease revoke", "Revoke a lease (or every lease under a prefix)", RunLeaseRevoke},
    {"lease lookup", "Print a lease's properties", RunLeaseLookup},
};

// The commands whose name starts with `group ` (all of them for ""), one per line.
std::string CommandList(const std::string& group) {
  std::string out;
  const std::string prefix = group.empty() ? "" : group + " ";
  for (const CommandEntry& c : kCommands) {
    const std::string name = c.name;
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string shown = name.substr(prefix.size());
    absl::StrAppend(&out, "    ", shown,
                    std::string(shown.size() < 20 ? 20 - shown.size() : 1, ' '), c.synopsis, "\n");
  }
  return out;
}

bool IsHelpFlag(const std::string& arg) { return arg == "-h" || arg == "-help" || arg == "--help"; }

// Reads a line from the terminal on stdin with echo off.
std::optional<std::string> ReadHiddenLine() {
  termios saved{};
  const bool restore = tcgetattr(STDIN_FILENO, &saved) == 0;
  if (restore) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  const bool got = static_cast<bool>(std::getline(std::cin, line));
  if (restore) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
  if (!got) return std::nullopt;
  return line;
}

}  // namespace

int Run(const std::vector<std::string>& args, const Io& io) {
  const std::string usage =
      "Usage: bulwark <command> [options] [args]\n\n"
      "  bulwark server [-dev] [-config=FILE] runs the server; the other commands are a\n"
      "  client of its Vault-compatible API, configured by VAULT_ADDR, VAULT_TOKEN (else\n"
      "  ~/.vault-token) and VAULT_CACERT, or by -address and -ca-cert.\n\n"
      "Commands:\n";
  if (args.empty() || IsHelpFlag(args[0])) {
    (args.empty() ? *io.err : *io.out) << usage << "    server              Run the server\n"
                                       << CommandList("");
    return args.empty() ? kExitUnknownCommand : kExitOk;
  }
  if (args.size() >= 2) {
    const std::string two = args[0] + " " + args[1];
    for (const CommandEntry& c : kCommands) {
      if (two == c.name) return c.run(io, std::vector<std::string>(args.begin() + 2, args.end()));
    }
  }
  for (const CommandEntry& c : kCommands) {
    if (args[0] == c.name) return c.run(io, std::vector<std::string>(args.begin() + 1, args.end()));
  }
  const std::string group_list = CommandList(args[0]);
  if (!group_list.empty()) {
    // A group named without (or with an unknown) subcommand: list its subcommands.
    const bool help = args.size() >= 2 && IsHelpFlag(args[1]);
    std::ostream& os = help ? *io.out : *io.err;
    if (args.size() >= 2 && !help) os << "Unknown subcommand \"" << args[1] << "\".\n\n";
    os << "Usage: bulwark " << args[0] << " <subcommand> [options] [args]\n\nSubcommands:\n"
       << group_list;
    return help ? kExitOk : kExitLocalError;
  }
  *io.err << "Unknown command \"" << args[0] << "\".\n\n" << usage << CommandList("");
  return kExitUnknownCommand;
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  Io io;
  io.getenv = [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
  io.in = &std::cin;
  io.out = &std::cout;
  io.err = &std::cerr;
  if (isatty(STDIN_FILENO)) io.read_secret_line = ReadHiddenLine;
  const int code = Run(args, io);
  std::cout.flush();
  std::cerr.flush();
  return code;
}

}  // namespace bulwark::cli
