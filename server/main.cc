// The bulwark binary: `bulwark server ...` runs the server (server.h); every other first argument
// is a CLI command (server/cli/cli.h), as with Vault's single binary.
#include <string>
#include <vector>

#include "server/cli/cli.h"
#include "server/server.h"

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "server") {
    return bulwark::server::ServerMain(std::vector<std::string>(argv + 2, argv + argc));
  }
  return bulwark::cli::Main(argc, argv);
}
