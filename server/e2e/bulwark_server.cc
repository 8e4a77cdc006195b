// The `bulwark server` child of the end-to-end tests (see bulwark_server.h).
#include "server/e2e/bulwark_server.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/crypto/sha256.h"
#include "base/status/check.h"

namespace bulwark::e2e {
namespace {

// What `bulwark server` prints: Vault's dev banner lines, then a line saying it serves.
constexpr char kAddressLine[] = "Api Address: ";
constexpr char kUnsealKeyLine[] = "Unseal Key: ";
constexpr char kReadyLine[] = "server started";

std::string After(const std::string& line, const std::string& marker) {
  return std::string(absl::StripAsciiWhitespace(line.substr(line.find(marker) + marker.size())));
}

}  // namespace

std::string BulwarkBinary() { return Runfile("bulwark/server/bulwark"); }

std::vector<std::string> ChildEnv(const std::string& home, const std::vector<std::string>& extra) {
  const std::string home_dir = absl::StrCat(TestTmpDir(), "/", home);
  mkdir(home_dir.c_str(), 0700);
  const char* path = std::getenv("PATH");
  std::vector<std::string> env = {absl::StrCat("PATH=", path != nullptr ? path : "/usr/bin:/bin"),
                                  absl::StrCat("HOME=", home_dir)};
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

RunningServer StartServer(const std::vector<std::string>& args,
                          const std::vector<std::string>& extra_env) {
  std::vector<std::string> argv = {BulwarkBinary(), "server"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunningServer server;
  server.process = std::make_unique<ServerProcess>(argv, ChildEnv("server-home", extra_env));
  std::optional<std::string> address = server.process->WaitForLine(kAddressLine);
  if (!address.has_value()) return server;
  if (!server.process->WaitForLine(kReadyLine).has_value()) return server;
  server.address = After(*address, kAddressLine);
  if (std::optional<std::string> key =
          server.process->WaitForLine(kUnsealKeyLine, absl::ZeroDuration())) {
    server.unseal_key = After(*key, kUnsealKeyLine);
  }
  return server;
}

std::string InstallPlugin(const std::string& runfile, const std::string& dir,
                          const std::string& name) {
  mkdir(dir.c_str(), 0755);
  std::ifstream in(Runfile(runfile), std::ios::binary);
  CHECK(in.good()) << "cannot read " << runfile;
  std::stringstream bytes;
  bytes << in.rdbuf();
  const std::string path = absl::StrCat(dir, "/", name);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes.str();
    CHECK(out.good()) << "cannot write " << path;
  }
  CHECK(chmod(path.c_str(), 0755) == 0);
  return crypto::HexEncode(crypto::Sha256::Hash(bytes.str()));
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<int> ChildPids(int parent) {
  std::vector<int> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = readdir(proc)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    // /proc/<pid>/stat: "pid (comm) state ppid ...", comm may hold spaces and parentheses.
    const std::string stat = ReadWholeFile(absl::StrCat("/proc/", pid, "/stat"));
    const size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 2 > stat.size()) continue;
    std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
    int ppid = 0;
    if (fields.size() < 2 || fields[0] == "Z" || !absl::SimpleAtoi(fields[1], &ppid) ||
        ppid != parent) {
      continue;
    }
    out.push_back(pid);
  }
  closedir(proc);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> ChildEnvValues(int parent, const std::string& name) {
  std::vector<std::string> out;
  const std::string prefix = name + "=";
  for (int pid : ChildPids(parent)) {
    for (absl::string_view var :
         absl::StrSplit(ReadWholeFile(absl::StrCat("/proc/", pid, "/environ")), '\0')) {
      if (absl::ConsumePrefix(&var, prefix)) out.emplace_back(var);
    }
  }
  return out;
}

}  // namespace bulwark::e2e
