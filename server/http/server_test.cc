// The HTTP transport over real loopback sockets (127.0.0.1, port 0), driven by a raw-socket
// client (OpenSSL on top for TLS) so that every byte on the wire is the test's choice. Waits are
// for events (a response, EOF); the only timeouts are hang guards. Deadline tests check only
// that the server closed the connection, and that it did not close before the deadline.
#include "server/http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/tls_certs.h"

namespace bulwark::http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::StartsWith;
using SteadyClock = std::chrono::steady_clock;

// How long a test waits for something that should happen before calling it hung.
constexpr absl::Duration kHangGuard = absl::Seconds(30);

struct RawResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // Names lower-cased.
  std::string body;

  std::string Header(absl::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) return value;
    }
    return "";
  }
};

// A blocking client socket with send and receive timeouts of kHangGuard, optionally with TLS.
class TestClient {
 public:
  enum class Read { kData, kEof, kTimeout };

  // Connects to 127.0.0.1:port; for TLS, also completes the handshake with `tls`.
  static absl::StatusOr<std::unique_ptr<TestClient>> Connect(int port, SSL_CTX* tls = nullptr) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError("socket");
    auto client = std::unique_ptr<TestClient>(new TestClient(fd));
    timeval guard{};
    guard.tv_sec = absl::ToInt64Seconds(kHangGuard);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &guard, sizeof(guard));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      return absl::UnavailableError(absl::StrCat("connect: ", strerror(errno)));
    }
    if (tls != nullptr) {
      client->ssl_ = SSL_new(tls);
      SSL_set_fd(client->ssl_, fd);
      SSL_set_tlsext_host_name(client->ssl_, "localhost");
      SSL_set1_host(client->ssl_, "localhost");
      if (SSL_connect(client->ssl_) != 1) {
        char reason[256];
        ERR_error_string_n(ERR_get_error(), reason, sizeof(reason));
        ERR_clear_error();
        return absl::UnavailableError(absl::StrCat("TLS handshake: ", reason));
      }
    }
    return client;
  }

  ~TestClient() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    close(fd_);
  }

  int fd() const { return fd_; }
  SSL* ssl() const { return ssl_; }

  bool Send(absl::string_view data) {
    while (!data.empty()) {
      const int n = ssl_ != nullptr
                        ? SSL_write(ssl_, data.data(), static_cast<int>(data.size()))
                        : static_cast<int>(send(fd_, data.data(), data.size(), MSG_NOSIGNAL));
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads one response (no 1xx); `head` for the answer to a HEAD request (no body).
  absl::StatusOr<RawResponse> ReadResponse(bool head = false) {
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      const Read r = ReadMore();
      if (r != Read::kData) return Failure(r, "the response header");
    }
    const std::string header = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    std::vector<std::string> lines = absl::StrSplit(header, "\r\n");
    RawResponse response;
    std::vector<std::string> status_line = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
    if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &response.status)) {
      return absl::DataLossError(absl::StrCat("bad status line: ", lines[0]));
    }
    size_t content_length = 0;
    for (size_t i = 1; i < lines.size(); ++i) {
      const size_t colon = lines[i].find(':');
      if (colon == std::string::npos) return absl::DataLossError("bad header line");
      std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
      std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
      if (name == "content-length" && !absl::SimpleAtoi(value, &content_length)) {
        return absl::DataLossError("bad Content-Length");
      }
      response.headers.emplace_back(std::move(name), std::move(value));
    }
    if (head || response.status == 204 || response.status == 304) return response;
    while (buffer_.size() < content_length) {
      const Read r = ReadMore();
      if (r != Read::kData) return Failure(r, "the response body");
    }
    response.body = buffer_.substr(0, content_length);
    buffer_.erase(0, content_length);
    return response;
  }

  // Waits until the server closes the connection (EOF or reset), dropping whatever arrives.
  // False if the hang guard ran out first.
  bool WaitForEof(size_t* received = nullptr) {
    for (;;) {
      if (received != nullptr) *received += buffer_.size();
      buffer_.clear();
      const Read r = ReadMore();
      if (r == Read::kEof) return true;
      if (r == Read::kTimeout) return false;
    }
  }

  // Whether the server has closed the connection (or sent something) within `wait`.
  bool ReadableWithin(absl::Duration wait) {
    pollfd p{fd_, POLLIN, 0};
    return poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(wait))) > 0;
  }

  const std::string& pending() const { return buffer_; }

 private:
  explicit TestClient(int fd) : fd_(fd) {}

  static absl::Status Failure(Read r, absl::string_view what) {
    return r == Read::kEof ? absl::UnavailableError(absl::StrCat("EOF before ", what))
                           : absl::DeadlineExceededError(absl::StrCat("hang guard: ", what));
  }

  Read ReadMore() {
    char chunk[16384];
    if (ssl_ != nullptr) {
      const int n = SSL_read(ssl_, chunk, sizeof(chunk));
      if (n > 0) {
        buffer_.append(chunk, static_cast<size_t>(n));
        return Read::kData;
      }
      const int error = SSL_get_error(ssl_, n);
      ERR_clear_error();
      if (error == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return Read::kTimeout;
      }
      return Read::kEof;
    }
    const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      return Read::kData;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Read::kTimeout;
    return Read::kEof;  // 0, or a reset.
  }

  const int fd_;
  SSL* ssl_ = nullptr;
  std::string buffer_;
};

std::string Get(absl::string_view target) {
  return absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: test\r\n\r\n");
}

std::string Post(absl::string_view target, absl::string_view body) {
  return absl::StrCat("POST ", target, " HTTP/1.1\r\nHost: test\r\nContent-Length: ", body.size(),
                      "\r\n\r\n", body);
}

// Answers every request at once with 200 and "<method> <path>", and remembers the requests.
// (std::mutex, not absl::Mutex, in this file: ThreadSanitizer cannot see Debian's abseil.)
class Recorder {
 public:
  Handler handler() {
    return [this](Request request, Responder responder) {
      Response response;
      response.body = absl::StrCat(request.method, " ", request.path);
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(std::move(request));
      }
      std::move(responder)(std::move(response));
    };
  }

  std::vector<Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  std::mutex mu_;
  std::vector<Request> requests_;
};

// Keeps every Responder it is given until the test answers.
class Holder {
 public:
  Handler handler() {
    return [this](Request, Responder responder) {
      std::lock_guard<std::mutex> lock(mu_);
      responders_.push_back(std::move(responder));
      changed_.notify_all();
    };
  }

  // Waits until `n` requests are held; false if the hang guard ran out.
  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, absl::ToChronoSeconds(kHangGuard),
                             [this, n] { return responders_.size() >= n; });
  }

  Responder Take(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(responders_[i]);
  }

  void AnswerAll(int status) {
    std::vector<Responder> responders;
    {
      std::lock_guard<std::mutex> lock(mu_);
      responders.swap(responders_);
    }
    for (Responder& responder : responders) {
      if (responder) {
        Response response;
        response.status = status;
        std::move(responder)(std::move(response));
      }
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<Responder> responders_;
};

ServerOptions LocalOptions() {
  ServerOptions options;
  options.address = "127.0.0.1:0";
  return options;
}

std::unique_ptr<Server> StartOrDie(ServerOptions options, Handler handler) {
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(std::move(options), std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

std::unique_ptr<TestClient> ConnectOrDie(int port, SSL_CTX* tls = nullptr) {
  absl::StatusOr<std::unique_ptr<TestClient>> client = TestClient::Connect(port, tls);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

// A server started with `options` and one plain client connected to it; `client` is null when
// either failed (the failure is already reported).
std::pair<std::unique_ptr<Server>, std::unique_ptr<TestClient>> StartAndConnect(
    ServerOptions options, Handler handler) {
  std::unique_ptr<Server> server = StartOrDie(std::move(options), std::move(handler));
  if (server == nullptr) return {};
  std::unique_ptr<TestClient> client = ConnectOrDie(server->port());
  return {std::move(server), std::move(client)};
}

RawResponse RoundTrip(TestClient& client, absl::string_view request) {
  EXPECT_TRUE(client.Send(request));
  absl::StatusOr<RawResponse> response = client.ReadResponse();
  EXPECT_TRUE(response.ok()) << response.status();
  return response.ok() ? *std::move(response) : RawResponse{};
}

double SecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

TEST(ServerTest, RoundTrip) {
  Recorder recorder;
  std::unique_ptr<Server> server = StartOrDie(LocalOptions(), recorder.handler());
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->address(), StartsWith("127.0.0.1:"));
  EXPECT_NE(server->port(), 0);
  EXPECT_EQ(server->address(), absl::StrCat("127.0.0.1:", server->port()));

  std::unique_ptr<TestClient> client = ConnectOrDie(server->port());
  ASSERT_NE(client, nullptr);
  const RawResponse response =
      RoundTrip(*client,
                "PUT /v1/sys/unseal HTTP/1.1\r\nHost: test\r\nX-Vault-Token: t0k\r\n"
                "Content-Length: 13\r\n\r\n{\"key\":\"abc\"}");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "PUT /v1/sys/unseal");
  EXPECT_EQ(response.Header("content-type"), "application/json");
  EXPECT_EQ(response.Header("cache-control"), "no-store");
  EXPECT_EQ(response.Header("content-length"), "18");

  const std::vector<Request> requests = recorder.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "PUT");
  EXPECT_EQ(requests[0].path, "/v1/sys/unseal");
  EXPECT_EQ(requests[0].body, "{\"key\":\"abc\"}");
  EXPECT_THAT(requests[0].headers, ElementsAre(Pair("host", "test"), Pair("x-vault-token", "t0k"),
                                               Pair("content-length", "13")));
  EXPECT_EQ(requests[0].Header("X-Vault-Token"), "t0k");
  EXPECT_THAT(requests[0].remote_address, StartsWith("127.0.0.1:"));
}

TEST(ServerTest, HandlerHeadersStatusAndContentTypeAreSent) {
  std::unique_ptr<Server> server = StartOrDie(LocalOptions(), [](Request, Responder responder) {
    Response response;
    response.status = 307;
    response.content_type = "text/plain; version=0.0.4";
    response.headers = {{"Location", "https://active:8200/v1/x"}, {"Cache-Control", "max-age=1"}};
    response.body = "moved";
    std::move(responder)(std::move(response));
  });
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TestClient> client = ConnectOrDie(server->port());
  ASSERT_NE(client, nullptr);
  const RawResponse response = RoundTrip(*client, Get("/v1/x"));
  EXPECT_EQ(response.status, 307);
  EXPECT_EQ(response.body, "moved");
  EXPECT_EQ(response.Header("content-type"), "text/plain; version=0.0.4");
  EXPECT_EQ(response.Header("location"), "https://active:8200/v1/x");
  EXPECT_EQ(response.Header("cache-control"), "max-age=1");
}

TEST(ServerTest, NoContentHasNoBodyAndHeadHasOnlyTheLength) {
  std::unique_ptr<Server> server =
      StartOrDie(LocalOptions(), [](Request request, Responder responder) {
        Response response;
        if (request.path == "/204") {
          response.status = 204;
        } else {
          response.body = "{\"initialized\":true}";
        }
        std::move(responder)(std::move(response));
      });
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TestClient> client = ConnectOrDie(server->port());
  ASSERT_NE(client, nullptr);
  const RawResponse no_content = RoundTrip(*client, Get("/204"));
  EXPECT_EQ(no_content.status, 204);
  EXPECT_EQ(no_content.Header("content-length"), "");
  ASSERT_TRUE(client->Send("HEAD /v1/sys/health HTTP/1.1\r\nHost: test\r\n\r\n"));
  absl::StatusOr<RawResponse> head = client->ReadResponse(/*head=*/true);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("content-length"), "20");
  // Nothing follows the HEAD answer's header: the next answer is read intact.
  const RawResponse after = RoundTrip(*client, Get("/after"));
  EXPECT_EQ(after.body, "{\"initialized\":true}");
  EXPECT_TRUE(client->pending().empty());
}

TEST(ServerTest, KeepAliveServesSeveralRequestsInOrder) {
  Recorder recorder;
  auto [server, client] = StartAndConnect(LocalOptions(), recorder.handler());
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 3; ++i) {
    const RawResponse response = RoundTrip(*client, Get(absl::StrCat("/v1/seq/", i)));
    EXPECT_EQ(response.body, absl::StrCat("GET /v1/seq/", i));
    EXPECT_EQ(response.Header("connection"), "");
  }
  // Pipelined: three requests in one write, answered in order.
  ASSERT_TRUE(client->Send(Get("/p/1") + Post("/p/2", "body") + Get("/p/3")));
  for (const char* expected : {"GET /p/1", "POST /p/2", "GET /p/3"}) {
    absl::StatusOr<RawResponse> response = client->ReadResponse();
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->body, expected);
  }
  EXPECT_EQ(recorder.requests().size(), 6u);
}

TEST(ServerTest, SeveralIoThreadsServeConcurrentClients) {
  ServerOptions options = LocalOptions();
  options.io_threads = 3;
  Recorder recorder;
  std::unique_ptr<Server> server = StartOrDie(options, recorder.handler());
  ASSERT_NE(server, nullptr);
  constexpr int kClients = 6;
  constexpr int kRequests = 20;
  std::vector<std::thread> clients;
  std::vector<int> served(kClients, 0);
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      absl::StatusOr<std::unique_ptr<TestClient>> client = TestClient::Connect(server->port());
      if (!client.ok()) return;
      for (int i = 0; i < kRequests; ++i) {
        const std::string path = absl::StrCat("/v1/c", c, "/", i);
        if (!(*client)->Send(Post(path, "x"))) return;
        absl::StatusOr<RawResponse> response = (*client)->ReadResponse();
        if (!response.ok() || response->body != "POST " + path) return;
        ++served[c];
      }
    });
  }
  for (std::thread& client : clients) client.join();
  for (int c = 0; c < kClients; ++c) EXPECT_EQ(served[c], kRequests) << "client " << c;
  EXPECT_EQ(recorder.requests().size(), static_cast<size_t>(kClients * kRequests));
}

TEST(ServerTest, ConnectionCloseIsHonoured) {
  Recorder recorder;
  auto [server, client] = StartAndConnect(LocalOptions(), recorder.handler());
  ASSERT_NE(client, nullptr);
  const RawResponse response =
      RoundTrip(*client, "GET /a HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.Header("connection"), "close");
  EXPECT_TRUE(client->WaitForEof());
}

TEST(ServerTest, ListMethodAndQueryAreDecoded) {
  Recorder recorder;
  auto [server, client] = StartAndConnect(LocalOptions(), recorder.handler());
  ASSERT_NE(client, nullptr);
  const RawResponse response = RoundTrip(
      *client, "LIST /v1/secret/a%20b/?list=true&x=%2Fy&z=a+b&flag HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "LIST /v1/secret/a b/");
  const std::vector<Request> requests = recorder.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "LIST");
  EXPECT_THAT(requests[0].query, ElementsAre(Pair("list", "true"), Pair("x", "/y"),
                                             Pair("z", "a b"), Pair("flag", "")));
  EXPECT_EQ(requests[0].Query("x"), "/y");
}

TEST(ServerTest, ChunkedBodyIsDelivered) {
  Recorder recorder;
  auto [server, client] = StartAndConnect(LocalOptions(), recorder.handler());
  ASSERT_NE(client, nullptr);
  const RawResponse response =
      RoundTrip(*client,
                "POST /v1/kv/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  EXPECT_EQ(response.status, 200);
  ASSERT_EQ(recorder.requests().size(), 1u);
  EXPECT_EQ(recorder.requests()[0].body, "hello world");
}

TEST(ServerTest, ExpectContinueGetsAnInterimAnswer) {
  Recorder recorder;
  auto [server, client] = StartAndConnect(LocalOptions(), recorder.handler());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Send(
      "PUT /v1/kv/x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  absl::StatusOr<RawResponse> interim = client->ReadResponse(/*head=*/true);
  ASSERT_TRUE(interim.ok()) << interim.status();
  EXPECT_EQ(interim->status, 100);
  const RawResponse response = RoundTrip(*client, "data");
  EXPECT_EQ(response.status, 200);
  ASSERT_EQ(recorder.requests().size(), 1u);
  EXPECT_EQ(recorder.requests()[0].body, "data");
}

TEST(ServerTest, BadTargetsAre400NamingTheProblemAndTheConnectionGoesOn) {
  Recorder recorder;
  auto [server, client] = StartAndConnect(LocalOptions(), recorder.handler());
  ASSERT_NE(client, nullptr);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/v1/secret/%zz", "bad percent-encoding at byte 11"},
      {"/v1/secret/%00", "NUL byte (%00)"},
      {"/v1/secret/%0d%0a", "control character (%0D)"},
      {"/v1/../sys/seal", "\\\"..\\\" segment"},
      {"/v1/%2e%2e/sys/seal", "\\\"..\\\" segment"},
      {"/v1/./sys", "\\\".\\\" segment"},
      {"v1/sys/seal", "not an absolute path"},
      {"*", "not an absolute path"},
      {"/v1/x?k=%g0", "bad percent-encoding"},
  };
  for (const auto& [target, problem] : cases) {
    const RawResponse response = RoundTrip(*client, Get(target));
    EXPECT_EQ(response.status, 400) << target;
    EXPECT_THAT(response.body, StartsWith("{\"errors\":[\"invalid request target: ")) << target;
    EXPECT_THAT(response.body, HasSubstr(problem)) << target;
    EXPECT_EQ(response.Header("content-type"), "application/json");
  }
  EXPECT_EQ(RoundTrip(*client, Get("/v1/ok")).status, 200);
  ASSERT_EQ(recorder.requests().size(), 1u);
  EXPECT_EQ(recorder.requests()[0].path, "/v1/ok");
}

TEST(ServerTest, MalformedRequestIs400AndCloses) {
  Recorder recorder;
  std::unique_ptr<Server> server = StartOrDie(LocalOptions(), recorder.handler());
  ASSERT_NE(server, nullptr);
  for (const char* request :
       {"GET /a\x01z HTTP/1.1\r\nHost: t\r\n\r\n", "GET /a HTTP/9.9x\r\nHost: t\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
        "Content-Length: 2\r\n\r\nab",
        "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n"}) {
    std::unique_ptr<TestClient> client = ConnectOrDie(server->port());
    ASSERT_NE(client, nullptr);
    const RawResponse response = RoundTrip(*client, request);
    EXPECT_EQ(response.status, 400) << request;
    EXPECT_THAT(response.body, HasSubstr("malformed HTTP request: ")) << request;
    EXPECT_EQ(response.Header("connection"), "close");
    EXPECT_TRUE(client->WaitForEof());
  }
  EXPECT_TRUE(recorder.requests().empty());
}

TEST(ServerTest, LowerCaseMethodIs405) {
  Recorder recorder;
  auto [server, client] = StartAndConnect(LocalOptions(), recorder.handler());
  ASSERT_NE(client, nullptr);
  const RawResponse response = RoundTrip(*client, "get /v1/sys/health HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(response.status, 405);
  EXPECT_THAT(response.body, HasSubstr("unsupported method \\\"get\\\""));
  EXPECT_EQ(RoundTrip(*client, Get("/v1/ok")).status, 200);
  EXPECT_EQ(recorder.requests().size(), 1u);
}

TEST(ServerTest, BodyLimitIsExactForContentLength) {
  Recorder recorder;
  ServerOptions options = LocalOptions();
  options.max_request_bytes = 32;
  auto [server, client] = StartAndConnect(options, recorder.handler());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(RoundTrip(*client, Post("/v1/at-limit", std::string(32, 'a'))).status, 200);

  // One byte more, announced: refused before the client sends any of the body.
  ASSERT_TRUE(client->Send("POST /v1/over HTTP/1.1\r\nHost: t\r\nContent-Length: 33\r\n\r\n"));
  absl::StatusOr<RawResponse> response = client->ReadResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(response->body,
            "{\"errors\":[\"http: request body too large: the limit is 32 bytes\"]}");
  EXPECT_EQ(response->Header("connection"), "close");
  EXPECT_TRUE(client->WaitForEof());
  ASSERT_EQ(recorder.requests().size(), 1u);
  EXPECT_EQ(recorder.requests()[0].body, std::string(32, 'a'));
}

TEST(ServerTest, BodyLimitIsExactForChunkedBodies) {
  Recorder recorder;
  ServerOptions options = LocalOptions();
  options.max_request_bytes = 32;
  std::unique_ptr<Server> server = StartOrDie(options, recorder.handler());
  ASSERT_NE(server, nullptr);
  auto chunked = [](int chunks_of_16, int extra) {
    std::string request = "POST /v1/c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < chunks_of_16; ++i)
      absl::StrAppend(&request, "10\r\n", std::string(16, 'c'), "\r\n");
    if (extra > 0)
      absl::StrAppend(&request, absl::Hex(extra), "\r\n", std::string(extra, 'x'), "\r\n");
    return request + "0\r\n\r\n";
  };
  std::unique_ptr<TestClient> client = ConnectOrDie(server->port());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(RoundTrip(*client, chunked(2, 0)).status, 200);
  const RawResponse over = RoundTrip(*client, chunked(2, 1));
  EXPECT_EQ(over.status, 413);
  EXPECT_THAT(over.body, HasSubstr("request body too large"));
  EXPECT_TRUE(client->WaitForEof());
  EXPECT_EQ(recorder.requests().size(), 1u);
}

// "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: ...\r\n\r\n", exactly `size` bytes long.
std::string HeaderBlockOfSize(size_t size) {
  const std::string head = "GET /v1/h HTTP/1.1\r\nHost: t\r\nX-Pad: ";
  const std::string tail = "\r\n\r\n";
  return head + std::string(size - head.size() - tail.size(), 'p') + tail;
}

TEST(ServerTest, HeaderLimitIsExact) {
  Recorder recorder;
  ServerOptions options = LocalOptions();
  options.max_header_bytes = 1024;
  auto [server, client] = StartAndConnect(options, recorder.handler());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(RoundTrip(*client, HeaderBlockOfSize(1024)).status, 200);
  const RawResponse over = RoundTrip(*client, HeaderBlockOfSize(1025));
  EXPECT_EQ(over.status, 431);
  EXPECT_EQ(over.body,
            "{\"errors\":[\"request header fields too large: the limit is 1024 bytes\"]}");
  EXPECT_TRUE(client->WaitForEof());
  EXPECT_EQ(recorder.requests().size(), 1u);
}

// At the largest limit allowed, one field can take nearly the whole block (Beast would throw
// for a field of 64 KiB or more; the limit keeps every field below that).
TEST(ServerTest, OneHugeFieldFillsTheLargestHeaderLimit) {
  Recorder recorder;
  ServerOptions options = LocalOptions();
  options.max_header_bytes = 64 << 10;
  auto [server, client] = StartAndConnect(options, recorder.handler());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(RoundTrip(*client, HeaderBlockOfSize(64 << 10)).status, 200);
  EXPECT_EQ(RoundTrip(*client, HeaderBlockOfSize((64 << 10) + 1)).status, 431);
  EXPECT_TRUE(client->WaitForEof());
  ASSERT_EQ(recorder.requests().size(), 1u);
  EXPECT_EQ(recorder.requests()[0].Header("x-pad")->size(), (64u << 10) - 40);

  options.max_header_bytes = (64 << 10) + 1;
  EXPECT_THAT(Server::Start(options, recorder.handler()).status().message(),
              HasSubstr("max_header_bytes must be between 1 and 65536"));
}

TEST(ServerTest, HeaderThatNeverEndsIs431) {
  Recorder recorder;
  ServerOptions options = LocalOptions();
  options.max_header_bytes = 1024;
  auto [server, client] = StartAndConnect(options, recorder.handler());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Send("GET / HTTP/1.1\r\nX-Long: " + std::string(4000, 'l')));
  absl::StatusOr<RawResponse> response = client->ReadResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 431);
  EXPECT_TRUE(client->WaitForEof());
}

TEST(ServerTest, HalfAHeaderIsClosedAtReadHeaderTimeout) {
  ServerOptions options = LocalOptions();
  options.read_header_timeout = absl::Milliseconds(200);
  Recorder recorder;
  std::unique_ptr<Server> server = StartOrDie(options, recorder.handler());
  ASSERT_NE(server, nullptr);
  const SteadyClock::time_point start = SteadyClock::now();
  std::unique_ptr<TestClient> client = ConnectOrDie(server->port());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Send("GET /v1/sys/health HTTP/1.1\r\nHost: t\r\n"));
  EXPECT_TRUE(client->WaitForEof());
  EXPECT_GE(SecondsSince(start), 0.2);
  EXPECT_TRUE(recorder.requests().empty());
}

TEST(ServerTest, SilentConnectionIsClosedAtReadHeaderTimeout) {
  ServerOptions options = LocalOptions();
  options.read_header_timeout = absl::Milliseconds(200);
  Recorder recorder;
  auto [server, client] = StartAndConnect(options, recorder.handler());
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(client->WaitForEof());
}

// A client that keeps sending header bytes never gets more than read_header_timeout: the
// deadline is set when the request starts, not moved by each byte. Pacing comes from waiting
// for the server's close; on a slow machine the gaps only grow, which the server closes sooner.
TEST(ServerTest, TricklingHeaderDoesNotExtendTheDeadline) {
  ServerOptions options = LocalOptions();
  options.read_header_timeout = absl::Milliseconds(200);
  Recorder recorder;
  auto [server, client] = StartAndConnect(options, recorder.handler());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Send("GET / HTTP/1.1\r\nX-Slow: "));
  const SteadyClock::time_point start = SteadyClock::now();
  bool closed = false;
  while (!closed && SecondsSince(start) < absl::ToDoubleSeconds(kHangGuard)) {
    if (client->ReadableWithin(absl::Milliseconds(20))) {
      closed = client->WaitForEof();
    } else {
      client->Send("s");  // May fail once the server has closed; the next poll sees it.
    }
  }
  EXPECT_TRUE(closed);
}

TEST(ServerTest, SlowBodyIsClosedAtReadTimeout) {
  ServerOptions options = LocalOptions();
  options.read_header_timeout = absl::Milliseconds(100);
  options.read_timeout = absl::Milliseconds(300);
  Recorder recorder;
  std::unique_ptr<Server> server = StartOrDie(options, recorder.handler());
  ASSERT_NE(server, nullptr);
  const SteadyClock::time_point start = SteadyClock::now();
  std::unique_ptr<TestClient> client = ConnectOrDie(server->port());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Send("POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"));
  EXPECT_TRUE(client->WaitForEof());
  EXPECT_GE(SecondsSince(start), 0.3);
  EXPECT_TRUE(recorder.requests().empty());
}

TEST(ServerTest, IdleKeepAliveConnectionIsClosedAtIdleTimeout) {
  ServerOptions options = LocalOptions();
  options.idle_timeout = absl::Milliseconds(200);
  Recorder recorder;
  auto [server, client] = StartAndConnect(options, recorder.handler());
  ASSERT_NE(client, nullptr);
  const SteadyClock::time_point start = SteadyClock::now();
  EXPECT_EQ(RoundTrip(*client, Get("/v1/a")).status, 200);
  EXPECT_TRUE(client->WaitForEof());
  EXPECT_GE(SecondsSince(start), 0.2);
}

// A client that stops reading holds a response write no longer than write_timeout. Shutdown
// with a grace far beyond it returns once that connection is gone, which only the write
// deadline can bring about (a connection that is writing is let finish); the client then finds
// the response cut short.
TEST(ServerTest, StalledReaderIsClosedAtWriteTimeout) {
  ServerOptions options = LocalOptions();
  options.write_timeout = absl::Milliseconds(200);
  constexpr size_t kBodyBytes = 32 << 20;  // Far beyond what loopback socket buffers hold.
  std::mutex mu;
  std::condition_variable answered_cv;
  bool answered = false;
  std::unique_ptr<Server> server = StartOrDie(options, [&](Request, Responder responder) {
    Response response;
    response.body = std::string(kBodyBytes, 'w');
    std::move(responder)(std::move(response));  // Queued on the connection before any drain.
    std::lock_guard<std::mutex> lock(mu);
    answered = true;
    answered_cv.notify_all();
  });
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TestClient> client = ConnectOrDie(server->port());
  ASSERT_NE(client, nullptr);
  const int small_buffer = 16 << 10;
  setsockopt(client->fd(), SOL_SOCKET, SO_RCVBUF, &small_buffer, sizeof(small_buffer));
  const SteadyClock::time_point start = SteadyClock::now();
  ASSERT_TRUE(client->Send(Get("/v1/big")));
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(
        answered_cv.wait_for(lock, absl::ToChronoSeconds(kHangGuard), [&] { return answered; }));
  }
  server->Shutdown(kHangGuard);
  EXPECT_LT(SecondsSince(start),
            absl::ToDoubleSeconds(kHangGuard));  // Not the grace: the deadline.
  EXPECT_GE(SecondsSince(start), 0.2);
  size_t received = 0;
  EXPECT_TRUE(client->WaitForEof(&received));
  EXPECT_LT(received, kBodyBytes);
}

TEST(ServerTest, ConnectionsBeyondTheCapAreRefusedWith503) {
  ServerOptions options = LocalOptions();
  options.max_connections = 2;
  Recorder recorder;
  std::unique_ptr<Server> server = StartOrDie(options, recorder.handler());
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TestClient> first = ConnectOrDie(server->port());
  std::unique_ptr<TestClient> second = ConnectOrDie(server->port());
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  // An answer on each proves both are accepted and counted.
  EXPECT_EQ(RoundTrip(*first, Get("/1")).status, 200);
  EXPECT_EQ(RoundTrip(*second, Get("/2")).status, 200);

  std::unique_ptr<TestClient> third = ConnectOrDie(server->port());
  ASSERT_NE(third, nullptr);
  absl::StatusOr<RawResponse> refused = third->ReadResponse();
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->status, 503);
  EXPECT_THAT(refused->body, HasSubstr("too many connections: the server holds at most 2"));
  EXPECT_TRUE(third->WaitForEof());

  // Once one closes, a new connection gets in (after the server has seen the close).
  first.reset();
  const SteadyClock::time_point start = SteadyClock::now();
  int status = 0;
  while (status != 200 && SecondsSince(start) < absl::ToDoubleSeconds(kHangGuard)) {
    std::unique_ptr<TestClient> next = ConnectOrDie(server->port());
    ASSERT_NE(next, nullptr);
    ASSERT_TRUE(next->Send(Get("/3")));
    absl::StatusOr<RawResponse> response = next->ReadResponse();
    ASSERT_TRUE(response.ok()) << response.status();
    status = response->status;
    ASSERT_TRUE(status == 200 || status == 503) << status;
  }
  EXPECT_EQ(status, 200);
}

TEST(ServerTest, RequestsBeyondMaxInFlightGet503WhileTheHandlerHoldsThem) {
  ServerOptions options = LocalOptions();
  options.max_in_flight = 2;
  Holder holder;
  std::unique_ptr<Server> server = StartOrDie(options, holder.handler());
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TestClient> a = ConnectOrDie(server->port());
  std::unique_ptr<TestClient> b = ConnectOrDie(server->port());
  std::unique_ptr<TestClient> c = ConnectOrDie(server->port());
  ASSERT_TRUE(a != nullptr && b != nullptr && c != nullptr);
  ASSERT_TRUE(a->Send(Get("/hold/a")));
  ASSERT_TRUE(b->Send(Get("/hold/b")));
  ASSERT_TRUE(holder.WaitFor(2));

  const RawResponse busy = RoundTrip(*c, Get("/hold/c"));
  EXPECT_EQ(busy.status, 503);
  EXPECT_EQ(busy.body,
            "{\"errors\":[\"server busy: 2 requests are already waiting for an answer; "
            "retry later\"]}");
  EXPECT_EQ(busy.Header("connection"), "");  // The connection stays open.

  holder.AnswerAll(200);
  for (TestClient* client : {a.get(), b.get()}) {
    absl::StatusOr<RawResponse> response = client->ReadResponse();
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200);
  }
  // Slots are free again; the same connection that got the 503 is served.
  ASSERT_TRUE(c->Send(Get("/hold/c2")));
  ASSERT_TRUE(holder.WaitFor(1));
  holder.AnswerAll(201);
  absl::StatusOr<RawResponse> served = c->ReadResponse();
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_EQ(served->status, 201);
}

TEST(ServerTest, ResponderCanBeCalledFromAnotherThread) {
  std::vector<std::thread> threads;
  std::mutex mu;
  std::unique_ptr<Server> server =
      StartOrDie(LocalOptions(), [&](Request request, Responder responder) {
        std::lock_guard<std::mutex> lock(mu);
        threads.emplace_back(
            [request = std::move(request), responder = std::move(responder)]() mutable {
              Response response;
              response.body = "from another thread: " + request.path;
              std::move(responder)(std::move(response));
            });
      });
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TestClient> client = ConnectOrDie(server->port());
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 3; ++i) {
    const RawResponse response = RoundTrip(*client, Get(absl::StrCat("/t/", i)));
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, absl::StrCat("from another thread: /t/", i));
  }
  std::lock_guard<std::mutex> lock(mu);
  for (std::thread& thread : threads) thread.join();
}

TEST(ServerTest, DroppedResponderAnswers500) {
  std::vector<std::thread> threads;
  std::mutex mu;
  std::unique_ptr<Server> server =
      StartOrDie(LocalOptions(), [&](Request request, Responder responder) {
        if (request.path == "/drop-here") return;  // Destroyed on the I/O thread.
        std::lock_guard<std::mutex> lock(mu);
        threads.emplace_back([responder = std::move(responder)] {});  // ... on another thread.
      });
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TestClient> client = ConnectOrDie(server->port());
  ASSERT_NE(client, nullptr);
  for (const char* path : {"/drop-here", "/drop-elsewhere"}) {
    const RawResponse response = RoundTrip(*client, Get(path));
    EXPECT_EQ(response.status, 500) << path;
    EXPECT_EQ(response.body,
              "{\"errors\":[\"internal error: the request was dropped unanswered\"]}");
  }
  std::lock_guard<std::mutex> lock(mu);
  for (std::thread& thread : threads) thread.join();
}

TEST(ServerTest, ResponseTheTransportCannotSendBecomes500) {
  std::unique_ptr<Server> server =
      StartOrDie(LocalOptions(), [](Request request, Responder responder) {
        Response response;
        if (request.path == "/crlf") response.headers = {{"X-Evil", "a\r\nSet-Cookie: x=1"}};
        if (request.path == "/status") response.status = 42;
        if (request.path == "/length") response.headers = {{"Content-Length", "1"}};
        if (request.path == "/huge") response.headers = {{"X-Huge", std::string(70000, 'h')}};
        std::move(responder)(std::move(response));
      });
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TestClient> client = ConnectOrDie(server->port());
  ASSERT_NE(client, nullptr);
  for (const char* path : {"/crlf", "/status", "/length", "/huge"}) {
    const RawResponse response = RoundTrip(*client, Get(path));
    EXPECT_EQ(response.status, 500) << path;
    EXPECT_THAT(response.body, HasSubstr("internal error: ")) << path;
    EXPECT_EQ(response.Header("set-cookie"), "");
  }
}

TEST(ServerTest, ShutdownWaitsForTheRequestInFlightThenCloses) {
  Holder holder;
  std::unique_ptr<Server> server = StartOrDie(LocalOptions(), holder.handler());
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  std::unique_ptr<TestClient> busy = ConnectOrDie(port);
  std::unique_ptr<TestClient> idle = ConnectOrDie(port);
  ASSERT_TRUE(busy != nullptr && idle != nullptr);
  EXPECT_TRUE(busy->Send(Get("/v1/slow")));
  ASSERT_TRUE(holder.WaitFor(1));

  std::thread shutdown([&] { server->Shutdown(kHangGuard); });
  // The idle connection is closed and the listener stops accepting while the request is held.
  EXPECT_TRUE(idle->WaitForEof());
  const SteadyClock::time_point start = SteadyClock::now();
  bool refused = false;
  while (!refused && SecondsSince(start) < absl::ToDoubleSeconds(kHangGuard)) {
    refused = !TestClient::Connect(port).ok();
  }
  EXPECT_TRUE(refused);

  holder.AnswerAll(200);
  absl::StatusOr<RawResponse> response = busy->ReadResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->Header("connection"), "close");
  EXPECT_TRUE(busy->WaitForEof());
  busy.reset();  // Ends the server's linger on that connection at once.
  shutdown.join();
}

TEST(ServerTest, ShutdownGraceEndsAndALateResponderDoesNothing) {
  Holder holder;
  auto [server, client] = StartAndConnect(LocalOptions(), holder.handler());
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(client->Send(Get("/v1/never")));
  ASSERT_TRUE(holder.WaitFor(1));
  server->Shutdown(absl::ZeroDuration());
  EXPECT_TRUE(client->WaitForEof());
  server.reset();
  Responder late = holder.Take(0);
  std::move(late)(Response{});  // The server is gone: dropped, no crash.
}

TEST(ServerTest, StartRefusesBadOptions) {
  auto start_error = [](ServerOptions options) {
    return Server::Start(std::move(options), [](Request, Responder) {}).status();
  };
  ServerOptions options = LocalOptions();
  options.address = "localhost";
  EXPECT_THAT(start_error(options).message(), HasSubstr("is not host:port"));
  options.address = "example.com:80";
  EXPECT_THAT(start_error(options).message(), HasSubstr("numeric IP address"));
  options.address = "127.0.0.1:70000";
  EXPECT_THAT(start_error(options).message(), HasSubstr("port must be 0-65535"));
  options = LocalOptions();
  options.read_header_timeout = absl::ZeroDuration();
  EXPECT_THAT(start_error(options).message(), HasSubstr("read_header_timeout must be positive"));
  options = LocalOptions();
  options.max_in_flight = 0;
  EXPECT_THAT(start_error(options).message(), HasSubstr("max_in_flight must be at least 1"));
  options = LocalOptions();
  options.tls_cert_file = "/nonexistent/cert.pem";
  EXPECT_THAT(start_error(options).message(), HasSubstr("go together"));
  options.tls_key_file = "/nonexistent/key.pem";
  const absl::Status missing = start_error(options);
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.message(), HasSubstr("tls_cert_file \"/nonexistent/cert.pem\""));

  Recorder recorder;
  std::unique_ptr<Server> first = StartOrDie(LocalOptions(), recorder.handler());
  ASSERT_NE(first, nullptr);
  options = LocalOptions();
  options.address = first->address();
  const absl::Status in_use = start_error(options);
  EXPECT_EQ(in_use.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(in_use.message(), HasSubstr(absl::StrCat("listen on ", first->address())));
}

// TLS: a P-256 certificate for "localhost", written where the server reads it.
class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<protocol::SelfSignedCert> cert =
        protocol::GenerateSelfSignedCert(protocol::KeyType::kP256, absl::Hours(1), absl::Now());
    ASSERT_TRUE(cert.ok()) << cert.status();
    const char* dir = std::getenv("TEST_TMPDIR");
    ASSERT_NE(dir, nullptr);
    cert_file_ = absl::StrCat(dir, "/server_cert.pem");
    key_file_ = absl::StrCat(dir, "/server_key.pem");
    std::ofstream(cert_file_) << cert->cert_pem;
    std::ofstream(key_file_) << cert->key_pem;
  }

  void TearDown() override {
    for (SSL_CTX* context : contexts_) SSL_CTX_free(context);
  }

  ServerOptions TlsOptions() {
    ServerOptions options = LocalOptions();
    options.tls_cert_file = cert_file_;
    options.tls_key_file = key_file_;
    return options;
  }

  // A client that trusts the server's certificate and speaks TLS versions min..max.
  SSL_CTX* Client(int min_version, int max_version) {
    SSL_CTX* context = SSL_CTX_new(TLS_client_method());
    contexts_.push_back(context);
    SSL_CTX_set_min_proto_version(context, min_version);
    SSL_CTX_set_max_proto_version(context, max_version);
    // Lets this client offer TLS 1.0/1.1 at all: refusing them must be the server's doing.
    SSL_CTX_set_cipher_list(context, "DEFAULT:@SECLEVEL=0");
    SSL_CTX_set_options(context, SSL_OP_IGNORE_UNEXPECTED_EOF);
    EXPECT_EQ(SSL_CTX_load_verify_locations(context, cert_file_.c_str(), nullptr), 1);
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nullptr);
    return context;
  }

  std::string cert_file_, key_file_;
  std::vector<SSL_CTX*> contexts_;
};

TEST_F(TlsTest, RoundTripOverTls) {
  Recorder recorder;
  std::unique_ptr<Server> server = StartOrDie(TlsOptions(), recorder.handler());
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TestClient> client =
      ConnectOrDie(server->port(), Client(TLS1_2_VERSION, TLS1_3_VERSION));
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(SSL_version(client->ssl()), TLS1_3_VERSION);
  for (int i = 0; i < 2; ++i) {  // Keep-alive over TLS.
    const RawResponse response = RoundTrip(*client, Get(absl::StrCat("/v1/tls/", i)));
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, absl::StrCat("GET /v1/tls/", i));
  }
}

TEST_F(TlsTest, Tls12IsAccepted) {
  Recorder recorder;
  std::unique_ptr<Server> server = StartOrDie(TlsOptions(), recorder.handler());
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TestClient> client =
      ConnectOrDie(server->port(), Client(TLS1_VERSION, TLS1_2_VERSION));
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(SSL_version(client->ssl()), TLS1_2_VERSION);
  EXPECT_EQ(RoundTrip(*client, Get("/v1/x")).status, 200);
}

TEST_F(TlsTest, Tls11ClientIsRefused) {
  Recorder recorder;
  std::unique_ptr<Server> server = StartOrDie(TlsOptions(), recorder.handler());
  ASSERT_NE(server, nullptr);
  for (int version : {TLS1_VERSION, TLS1_1_VERSION}) {
    absl::StatusOr<std::unique_ptr<TestClient>> client =
        TestClient::Connect(server->port(), Client(version, version));
    ASSERT_FALSE(client.ok()) << version;
    EXPECT_THAT(client.status().message(), HasSubstr("protocol version")) << version;
  }
  EXPECT_TRUE(recorder.requests().empty());
}

TEST_F(TlsTest, PlainHttpToATlsListenerIsClosed) {
  Recorder recorder;
  auto [server, client] = StartAndConnect(TlsOptions(), recorder.handler());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Send(Get("/v1/x")));
  EXPECT_TRUE(client->WaitForEof());
  EXPECT_TRUE(recorder.requests().empty());
}

TEST_F(TlsTest, KeyThatDoesNotMatchTheCertificateIsRefused) {
  absl::StatusOr<protocol::SelfSignedCert> other =
      protocol::GenerateSelfSignedCert(protocol::KeyType::kP256, absl::Hours(1), absl::Now());
  ASSERT_TRUE(other.ok()) << other.status();
  const std::string other_key = absl::StrCat(std::getenv("TEST_TMPDIR"), "/other_key.pem");
  std::ofstream(other_key) << other->key_pem;
  ServerOptions options = TlsOptions();
  options.tls_key_file = other_key;
  const absl::Status status = Server::Start(options, [](Request, Responder) {}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("does not match the certificate"));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("PRIVATE KEY")));
}

}  // namespace
}  // namespace bulwark::http
