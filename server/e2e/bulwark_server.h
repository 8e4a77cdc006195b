// A `bulwark server` child for the end-to-end tests, and the environment the tests give it and
// the CLI. What the server prints when ready is matched here, in one place.
#ifndef BULWARK_SERVER_E2E_BULWARK_SERVER_H_
#define BULWARK_SERVER_E2E_BULWARK_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "server/testing/process.h"

namespace bulwark::e2e {

using server_testing::FindInPath;
using server_testing::ProcessResult;
using server_testing::Runfile;
using server_testing::RunProcess;
using server_testing::ServerProcess;
using server_testing::TestTmpDir;

// The server binary in the runfiles.
std::string BulwarkBinary();

// The environment for a child: PATH and HOME (a directory under $TEST_TMPDIR named `home`, which
// the caller may fill), plus `extra` ("NAME=value"). Nothing else of the test's environment, so a
// VAULT_TOKEN outside cannot leak in.
std::vector<std::string> ChildEnv(const std::string& home, const std::vector<std::string>& extra);

struct RunningServer {
  std::unique_ptr<ServerProcess> process;
  std::string address;     // "http://127.0.0.1:<port>", from the "Api Address:" line.
  std::string unseal_key;  // -dev only: from the "Unseal Key:" line ("" when not printed).
};

// Starts `bulwark server <args>` and waits for its API address and its ready line. On failure
// returns a server with an empty address; its output says why. `extra_env` ("NAME=value") is
// added to the server's environment (ChildEnv).
RunningServer StartServer(const std::vector<std::string>& args,
                          const std::vector<std::string>& extra_env = {});

// Copies `runfile` into `dir` as `name`, executable, and returns its SHA-256 in hex.
std::string InstallPlugin(const std::string& runfile, const std::string& dir,
                          const std::string& name);

// The whole file at `path` ("" when it cannot be read): /proc files and test outputs.
std::string ReadWholeFile(const std::string& path);

// The running (not zombie) child processes of `parent`, from /proc.
std::vector<int> ChildPids(int parent);

// The values of `name` in the environment of each child of `parent` that has it, by pid order.
std::vector<std::string> ChildEnvValues(int parent, const std::string& name);

}  // namespace bulwark::e2e

#endif  // BULWARK_SERVER_E2E_BULWARK_SERVER_H_
