#include "server/testing/etcd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "base/status/check.h"

namespace bulwark::server_testing {

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  CHECK(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  CHECK(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  close(fd);
  return ntohs(addr.sin_port);
}

EtcdProcess::EtcdProcess(absl::string_view name) {
  const std::string etcd = FindInPath("etcd");
  CHECK(!etcd.empty()) << "etcd is not in $PATH; run tools/setup (Debian's etcd-server)";
  data_dir_ = absl::StrCat(TestTmpDir(), "/", name, "-", getpid(), "-", FreeLoopbackPort());
  std::filesystem::create_directories(data_dir_);
  const int client_port = FreeLoopbackPort();
  int peer_port = FreeLoopbackPort();
  while (peer_port == client_port) peer_port = FreeLoopbackPort();
  endpoint_ = absl::StrCat("127.0.0.1:", client_port);
  const std::string peer = absl::StrCat("http://127.0.0.1:", peer_port);
  std::vector<std::string> argv = {
      etcd,
      "--name=" + std::string(name),
      "--data-dir=" + data_dir_ + "/data",
      "--listen-client-urls=" + client_url(),
      "--advertise-client-urls=" + client_url(),
      "--listen-peer-urls=" + peer,
      "--initial-advertise-peer-urls=" + peer,
      absl::StrCat("--initial-cluster=", name, "=", peer),
      // bulwark's Storage allows 4 MiB values; etcd's default request limit is 1.5 MiB.
      "--max-request-bytes=8388608",
  };
  // A clean environment: etcd reads ETCD_* variables as flags.
  std::vector<std::string> env = {"PATH=/usr/bin:/bin", "HOME=" + data_dir_};
  process_ = std::make_unique<ServerProcess>(argv, env);
  std::optional<std::string> ready =
      process_->WaitForLine("ready to serve client requests", absl::Seconds(60));
  CHECK(ready.has_value()) << "etcd did not become ready:\n" << process_->output();
}

EtcdProcess::~EtcdProcess() {
  process_->Stop(SIGKILL);
  std::error_code ignored;
  std::filesystem::remove_all(data_dir_, ignored);
}

ProcessResult EtcdProcess::Etcdctl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {FindInPath("etcdctl"), "--endpoints=" + endpoint_};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, {"ETCDCTL_API=3", "PATH=/usr/bin:/bin"});
}

}  // namespace bulwark::server_testing
