// What the HA benchmarks share (benchmarks/ha): an HTTP/1.1 client on one kept-alive loopback
// connection, a timer over a workload and its median and mean.
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
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

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
};

inline Args ParseArgs(int argc, char** argv, const char* name, Args defaults) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <bulwark binary> [--writes=N] [--rounds=R]\n", name);
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

}  // namespace bulwark::ha_bench

#endif  // BULWARK_BENCHMARKS_HA_HTTP_BENCH_H_
