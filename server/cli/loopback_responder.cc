// The loopback responder for the CLI's tests (see loopback_responder.h).
#include "server/cli/loopback_responder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status/check.h"

namespace bulwark::cli {
namespace {

constexpr size_t kRequestBytesMax = 8 << 20;

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

void WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += n;
  }
}

}  // namespace

LoopbackResponder::LoopbackResponder() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(listen_fd_ >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  CHECK(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  CHECK(listen(listen_fd_, 16) == 0);
  socklen_t len = sizeof addr;
  CHECK(getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  address_ = absl::StrCat("http://127.0.0.1:", ntohs(addr.sin_port));
  thread_ = std::thread([this] { Serve(); });
}

LoopbackResponder::~LoopbackResponder() {
  shutdown(listen_fd_, SHUT_RDWR);  // Wakes the blocked accept().
  thread_.join();
  close(listen_fd_);
}

void LoopbackResponder::Enqueue(int status, std::string body) {
  std::lock_guard<std::mutex> lock(mu_);
  replies_.push_back({status, std::move(body)});
}

std::vector<LoopbackResponder::Request> LoopbackResponder::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

void LoopbackResponder::Serve() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;  // Shut down.
    // A hang guard only: the client under test sends its request at once.
    timeval timeout{30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    Handle(fd);
    close(fd);
  }
}

void LoopbackResponder::Handle(int fd) {
  std::string data;
  char buf[16 << 10];
  size_t header_end = std::string::npos;
  size_t content_length = 0;
  Request request;
  for (;;) {
    if (header_end == std::string::npos) {
      header_end = data.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        std::vector<std::string> lines = absl::StrSplit(data.substr(0, header_end), "\r\n");
        std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
        if (first.size() != 3) return;
        request.method = first[0];
        request.target = first[1];
        for (size_t i = 1; i < lines.size(); ++i) {
          size_t colon = lines[i].find(':');
          if (colon == std::string::npos) return;
          std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
          request.headers[name] =
              std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
        }
        if (auto it = request.headers.find("content-length"); it != request.headers.end()) {
          if (!absl::SimpleAtoi(it->second, &content_length)) return;
        }
      }
    }
    if (header_end != std::string::npos && data.size() >= header_end + 4 + content_length) break;
    if (data.size() > kRequestBytesMax) return;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    data.append(buf, n);
    if (data[0] < 'A' || data[0] > 'Z') return;  // Not HTTP (a TLS hello, say): hang up.
  }
  request.body = data.substr(header_end + 4, content_length);
  Reply reply{500, R"({"errors":["no canned reply"]})"};
  {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(request);
    if (!replies_.empty()) {
      reply = std::move(replies_.front());
      replies_.pop_front();
    }
  }
  WriteAll(fd, absl::StrCat("HTTP/1.1 ", reply.status, " ", Reason(reply.status),
                            "\r\nContent-Type: application/json\r\nContent-Length: ",
                            reply.body.size(), "\r\nConnection: close\r\n\r\n", reply.body));
}

}  // namespace bulwark::cli
