// What the HA benchmarks share (benchmarks/ha): an HTTP/1.1 client on one kept-alive loopback
// connection, a timer over a workload and its median and mean, the command line, and starting,
// initialising and unsealing `bulwark server`s on one etcd.
#ifndef BULWARK_BENCHMARKS_HA_HTTP_BENCH_H_
#define BULWARK_BENCHMARKS_HA_HTTP_BENCH_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "benchmarks/measure/record.h"
#include "server/testing/process.h"

namespace bulwark::ha_bench {

// HTTP/1.1 on one kept-alive loopback connection.
class Connection {
 public:
  explicit Connection(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      std::perror("connect");
      std::exit(1);
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~Connection() { close(fd_); }

  // Returns the status; `body` gets the response body.
  int Do(const std::string& method, const std::string& path, const std::string& token,
         const std::string& request_body, std::string* body = nullptr) {
    std::string request = absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if (!token.empty()) absl::StrAppend(&request, "X-Vault-Token: ", token, "\r\n");
    absl::StrAppend(&request, "Content-Length: ", request_body.size(), "\r\n\r\n", request_body);
    for (size_t sent = 0; sent < request.size();) {
      const ssize_t n = ::send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return 0;
      sent += static_cast<size_t>(n);
    }
    size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return 0;
    }
    const std::string head = buffer_.substr(0, header_end);
    int status = 0;
    if (head.size() < 12 || !absl::SimpleAtoi(head.substr(9, 3), &status)) return 0;
    size_t length = 0;
    for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
      if (absl::StartsWithIgnoreCase(line, "content-length:")) {
        (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(15)), &length);
      }
    }
    while (buffer_.size() < header_end + 4 + length) {
      if (!Fill()) return 0;
    }
    if (body != nullptr) *body = buffer_.substr(header_end + 4, length);
    buffer_.erase(0, header_end + 4 + length);
    return status;
  }

 private:
  bool Fill() {
    char buf[16384];
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }
  int fd_ = -1;
  std::string buffer_;
};

struct Stats {
  double median_us = 0, mean_us = 0;
};

inline Stats Summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  Stats s;
  s.median_us = us[us.size() / 2];
  double sum = 0;
  for (double u : us) sum += u;
  s.mean_us = sum / us.size();
  return s;
}

template <typename F>
std::vector<double> Time(int n, F f) {
  std::vector<double> us;
  us.reserve(n);
  for (int i = 0; i < n; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f(i);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  return us;
}

// The command line every HA benchmark takes: <bulwark binary> [--writes=N] [--rounds=R]
// [--value_bytes=B]; and a fresh directory under /tmp, set as $TEST_TMPDIR (where EtcdProcess
// keeps its data).
struct Args {
  std::string bulwark;  // Absolute path.
  int writes = 1000;
  int rounds = 5;
  int value_bytes = 100;
  std::string dir;
  std::string record;  // --record=FILE: also write the table as a record (WriteRecord).
};

inline Args ParseArgs(int argc, char** argv, const char* name, Args defaults) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <bulwark binary> [--writes=N] [--rounds=R] [--record=FILE]\n",
                 name);
    std::exit(1);
  }
  Args args = defaults;
  char resolved[PATH_MAX];
  args.bulwark = realpath(argv[1], resolved) != nullptr ? resolved : argv[1];
  for (int i = 2; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--writes=")) (void)absl::SimpleAtoi(a, &args.writes);
    if (absl::ConsumePrefix(&a, "--rounds=")) (void)absl::SimpleAtoi(a, &args.rounds);
    if (absl::ConsumePrefix(&a, "--value_bytes=")) (void)absl::SimpleAtoi(a, &args.value_bytes);
    if (absl::ConsumePrefix(&a, "--record=")) {
      // Relative to where `bazel run` was started.
      const char* wd = std::getenv("BUILD_WORKING_DIRECTORY");
      args.record =
          a.empty() || a[0] == '/' || wd == nullptr ? std::string(a) : absl::StrCat(wd, "/", a);
    }
  }
  char dir_template[] = "/tmp/bw-ha-bench-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  args.dir = dir_template;
  setenv("TEST_TMPDIR", args.dir.c_str(), 1);
  return args;
}

// With --record=FILE: the per-round rows a benchmark printed (round, workload, median and mean in
// microseconds) and its summary lines as notes, as a table record (benchmarks/measure/record.h)
// for docs/performance.md. Returns false (after saying why) when the file cannot be written.
inline bool WriteRecord(const Args& args, const char* benchmark,
                        const std::vector<std::vector<std::string>>& rows,
                        const std::vector<std::string>& notes) {
  if (args.record.empty()) return true;
  measure::TableRecord record;
  record.benchmark = benchmark;
  record.command = absl::StrCat("bazel run -c opt //benchmarks/ha:", benchmark,
                                " -- --writes=", args.writes, " --rounds=", args.rounds);
  record.columns = {"round", "workload", "median µs", "mean µs"};
  record.rows = rows;
  record.notes = notes;
  const absl::Status written = measure::WriteTableRecord(args.record, record);
  if (!written.ok()) std::fprintf(stderr, "%s: %s\n", benchmark, written.ToString().c_str());
  return written.ok();
}

// A row of WriteRecord's table.
inline std::vector<std::string> RecordRow(int round, const std::string& workload, double median_us,
                                          double mean_us) {
  return {absl::StrCat(round), workload, absl::StrFormat("%.1f", median_us),
          absl::StrFormat("%.1f", mean_us)};
}

[[noreturn]] inline void Die(const char* benchmark, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", benchmark, what.c_str());
  std::exit(1);
}

// A server configuration on storage "etcd" at `etcd_url` (path /bench/, ha_enabled), a plain
// HTTP listener on a free loopback port, warn logs; with `cluster`, a cluster port on a free one.
inline nlohmann::json EtcdServerConfig(const std::string& etcd_url, bool cluster) {
  nlohmann::json tcp = {{"address", "127.0.0.1:0"}, {"tls_disable", true}};
  if (cluster) tcp["cluster_address"] = "127.0.0.1:0";
  return {
      {"storage", {{"etcd", {{"address", etcd_url}, {"path", "/bench/"}, {"ha_enabled", true}}}}},
      {"listener", {{"tcp", tcp}}},
      {"log_level", "warn"},
  };
}

// One `bulwark server` of a benchmark, started with `config` (written to <dir>/<name>.json),
// and the port of its API once it has started.
struct Server {
  std::unique_ptr<server_testing::ServerProcess> process;
  int port = 0;
};

inline Server StartServer(const Args& args, const char* benchmark, const std::string& name,
                          const nlohmann::json& config) {
  const std::string path = absl::StrCat(args.dir, "/", name, ".json");
  std::ofstream(path) << config.dump();
  Server s;
  s.process = std::make_unique<server_testing::ServerProcess>(
      std::vector<std::string>{args.bulwark, "server", "-config=" + path},
      std::vector<std::string>{"PATH=/usr/bin:/bin", "TMPDIR=" + args.dir});
  std::optional<std::string> line = s.process->WaitForLine("Api Address: http://");
  if (!line || !s.process->WaitForLine("server started")) Die(benchmark, name + " did not start");
  (void)absl::SimpleAtoi(line->substr(line->rfind(':') + 1), &s.port);
  return s;
}

// The root token and the body of an unseal request.
struct Keys {
  std::string root;
  std::string unseal;
};

// Polls `path` (every 50 ms, for at most 30 s) until `done(status, body)`.
template <typename Done>
void WaitFor(Connection& c, const char* benchmark, const std::string& path, const char* what,
             Done done) {
  std::string body;
  for (int i = 0;; ++i) {
    const int status = c.Do("GET", path, "", "", &body);
    if (done(status, body)) return;
    if (i > 600) Die(benchmark, what);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Initialises the cluster through `c` (one key share), unseals that server and waits until it
// is the active node.
inline Keys InitAndActivate(Connection& c, const char* benchmark) {
  std::string body;
  if (c.Do("PUT", "/v1/sys/init", "", R"({"secret_shares":1,"secret_threshold":1})", &body) !=
      200) {
    Die(benchmark, "init: " + body);
  }
  const nlohmann::json init = nlohmann::json::parse(body);
  Keys keys;
  keys.root = init["root_token"].get<std::string>();
  keys.unseal = nlohmann::json{{"key", init["keys"][0].get<std::string>()}}.dump();
  c.Do("PUT", "/v1/sys/unseal", "", keys.unseal);
  WaitFor(c, benchmark, "/v1/sys/leader", "the first server never became active",
          [](int, const std::string& b) {
            return nlohmann::json::parse(b, nullptr, false).value("is_self", false);
          });
  return keys;
}

}  // namespace bulwark::ha_bench

#endif  // BULWARK_BENCHMARKS_HA_HTTP_BENCH_H_
