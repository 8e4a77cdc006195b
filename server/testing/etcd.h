// A real etcd (Debian's etcd-server) for tests: one member on two free loopback ports, its data
// directory under $TEST_TMPDIR, started by the constructor and killed by the destructor (etcd is
// installed by tools/setup).
#ifndef BULWARK_SERVER_TESTING_ETCD_H_
#define BULWARK_SERVER_TESTING_ETCD_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/testing/process.h"

namespace bulwark::server_testing {

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
int FreeLoopbackPort();

class EtcdProcess {
 public:
  // Starts etcd and waits until it serves clients (its "ready to serve client requests" line);
  // CHECK-fails when it cannot be found, started or never becomes ready. `name` keeps the data
  // directories of several instances in one test apart.
  explicit EtcdProcess(absl::string_view name = "etcd");
  ~EtcdProcess();

  // "http://127.0.0.1:<port>", and the bare "127.0.0.1:<port>".
  std::string client_url() const { return "http://" + endpoint_; }
  const std::string& endpoint() const { return endpoint_; }
  const std::string& data_dir() const { return data_dir_; }

  // Runs etcdctl (API v3) against this etcd with `args`.
  ProcessResult Etcdctl(const std::vector<std::string>& args) const;

  ServerProcess& process() { return *process_; }

 private:
  std::string endpoint_;
  std::string data_dir_;
  std::unique_ptr<ServerProcess> process_;
};

}  // namespace bulwark::server_testing

#endif  // BULWARK_SERVER_TESTING_ETCD_H_
