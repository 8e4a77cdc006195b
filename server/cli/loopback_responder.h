// A tiny HTTP/1.1 responder on 127.0.0.1 for the CLI's tests: it answers each request with the
// next canned reply and records what the client sent. One connection at a time, "Connection:
// close" on every reply; just enough HTTP for libcurl, and no server code under test.
#ifndef BULWARK_SERVER_CLI_LOOPBACK_RESPONDER_H_
#define BULWARK_SERVER_CLI_LOOPBACK_RESPONDER_H_

#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace bulwark::cli {

class LoopbackResponder {
 public:
  struct Request {
    std::string method;
    std::string target;                          // As sent: "/v1/sys/init?x=1".
    std::map<std::string, std::string> headers;  // Names lower-cased.
    std::string body;
    bool has_header(const std::string& name) const { return headers.count(name) > 0; }
  };
  struct Reply {
    int status = 200;
    std::string body;
  };

  // Binds 127.0.0.1:0 and starts serving. CHECK-fails when it cannot bind.
  LoopbackResponder();
  ~LoopbackResponder();  // Stops accepting and joins the thread.

  // "http://127.0.0.1:<port>".
  std::string address() const { return address_; }
  // Replies are used in order; with none left a request gets 500 {"errors":["no canned reply"]}.
  void Enqueue(int status, std::string body);
  std::vector<Request> requests() const;

 private:
  void Serve();
  void Handle(int fd);

  int listen_fd_ = -1;
  std::string address_;
  mutable std::mutex mu_;
  std::deque<Reply> replies_ ABSL_GUARDED_BY(mu_);
  std::vector<Request> requests_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace bulwark::cli

#endif  // BULWARK_SERVER_CLI_LOOPBACK_RESPONDER_H_
