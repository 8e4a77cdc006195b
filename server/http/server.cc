#include "server/http/server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status/check.h"
#include "base/status/quote.h"
#include "base/status/status_macros.h"
#include "server/http/request_reading.h"
#include "server/http/target.h"

namespace bulwark::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;
using TlsStream = beast::ssl_stream<tcp::socket>;

// Timeouts longer than this count as this long, so that deadlines cannot overflow.
constexpr absl::Duration kTimeoutMax = absl::Hours(24 * 365);
// After a response that ends a connection, request bytes still arriving are read and dropped
// for up to this long (and at most kLingerBytesMax) before the socket closes: closing with
// unread input makes the kernel send a reset, which can destroy the response before the client
// has read it (the 413 a client gets while it is still sending its body).
constexpr absl::Duration kLingerTimeout = absl::Seconds(1);
constexpr size_t kLingerBytesMax = 256 << 10;
// The accept loop's pause after an accept error (out of descriptors) before it tries again.
constexpr absl::Duration kAcceptRetryDelay = absl::Milliseconds(100);
constexpr absl::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

SteadyClock::time_point After(SteadyClock::time_point start, absl::Duration timeout) {
  return start + std::chrono::duration_cast<SteadyClock::duration>(
                     absl::ToChronoNanoseconds(std::min(timeout, kTimeoutMax)));
}

absl::string_view View(beast::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string FormatEndpoint(const tcp::endpoint& endpoint) {
  const asio::ip::address address = endpoint.address();
  return address.is_v6() ? absl::StrCat("[", address.to_string(), "]:", endpoint.port())
                         : absl::StrCat(address.to_string(), ":", endpoint.port());
}

// Vault's error body, {"errors":["<message>"]}.
std::string ErrorBody(absl::string_view message) {
  std::string out = "{\"errors\":[\"";
  for (const char c : message) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7f) {
      absl::StrAppendFormat(&out, "\\u%04x", u);
    } else {
      out.push_back(c);
    }
  }
  out += "\"]}";
  return out;
}

Response ErrorResponse(int status, absl::string_view message) {
  Response response;
  response.status = status;
  response.body = ErrorBody(message);
  return response;
}

bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
}

bool HasLineBreakOrNul(absl::string_view text) {
  return text.find_first_of(absl::string_view("\r\n\0", 3)) != absl::string_view::npos;
}

// Why the transport cannot send `response` as it is, or nullopt when it can.
std::optional<std::string> ResponseProblem(const Response& response) {
  if (response.status < 200 || response.status > 599) {
    return absl::StrCat("status ", response.status, " is not a final HTTP status (200-599)");
  }
  if (HasLineBreakOrNul(response.content_type)) return "the content type has CR, LF or NUL in it";
  for (const auto& [name, value] : response.headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), IsTokenChar)) {
      return absl::StrCat("header name ", QuoteForError(name), " is not an HTTP token");
    }
    if (absl::EqualsIgnoreCase(name, "content-length") ||
        absl::EqualsIgnoreCase(name, "transfer-encoding") ||
        absl::EqualsIgnoreCase(name, "connection")) {
      return absl::StrCat("header ", QuoteForError(name), " is the transport's to set");
    }
    if (HasLineBreakOrNul(value)) {
      return absl::StrCat("header ", QuoteForError(name), " has CR, LF or NUL in its value");
    }
  }
  return std::nullopt;
}

// A connection as the server and the Responders see it. Each Post* queues work on the
// connection's strand; callers must know that the io_context is alive (see ReplyHub).
class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  virtual void PostStart() = 0;
  virtual void PostResponse(Response response) = 0;
  // Stop after the request in progress, if the handler holds one; close at once otherwise.
  virtual void PostDrain() = 0;
  virtual void PostClose() = 0;
};

// Shared by the server and every Responder it has handed out, so a Responder can outlive the
// server: counts requests awaiting an answer (max_in_flight) and forwards answers to their
// connections only while the server's io_context is alive (open_).
class ReplyHub {
 public:
  explicit ReplyHub(int max_in_flight) : max_in_flight_(max_in_flight) {}

  // Takes an in-flight slot; false when all max_in_flight are taken or the hub is closed.
  bool TryAcquire() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!open_ || in_flight_ >= max_in_flight_) return false;
    ++in_flight_;
    return true;
  }

  // Releases a slot and delivers `response` to the connection if it and the server still live.
  void Complete(const std::weak_ptr<ConnectionBase>& connection, Response response) {
    std::shared_ptr<ConnectionBase> alive;  // Released after the lock below.
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
    if (!open_) return;
    alive = connection.lock();
    if (alive != nullptr) alive->PostResponse(std::move(response));
  }

  // Called before the server's io_context goes away; later answers are dropped.
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }

 private:
  const int max_in_flight_;
  // std::mutex rather than absl::Mutex here and below: ThreadSanitizer sees its synchronisation
  // (Debian's abseil is not instrumented; docs/sanitizers.md).
  std::mutex mu_;
  bool open_ ABSL_GUARDED_BY(mu_) = true;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

// What a Responder holds: the answer for one request, sent once, or a 500 if it never is.
class PendingReply {
 public:
  PendingReply(std::shared_ptr<ReplyHub> hub, std::weak_ptr<ConnectionBase> connection)
      : hub_(std::move(hub)), connection_(std::move(connection)) {}
  PendingReply(PendingReply&&) = default;  // Leaves the source without a hub: it sends nothing.
  PendingReply& operator=(PendingReply&&) = delete;
  PendingReply(const PendingReply&) = delete;
  PendingReply& operator=(const PendingReply&) = delete;

  ~PendingReply() {
    if (hub_ != nullptr) {
      hub_->Complete(connection_,
                     ErrorResponse(500, "internal error: the request was dropped unanswered"));
    }
  }

  void Send(Response response) {
    const std::shared_ptr<ReplyHub> hub = std::move(hub_);
    hub->Complete(connection_, std::move(response));
  }

 private:
  std::shared_ptr<ReplyHub> hub_;
  std::weak_ptr<ConnectionBase> connection_;
};

// The listener, the I/O threads and the set of open connections. Server::Impl is this class.
class ServerCore {
 public:
  ServerCore(ServerOptions options, Handler handler, std::optional<asio::ssl::context> tls);
  ~ServerCore();

  absl::Status Listen(const tcp::endpoint& endpoint);
  void StartThreads();
  tcp::endpoint bound() const { return bound_; }
  void StopAccepting();
  void Shutdown(absl::Duration grace);

  // For connections, on their strands.
  const ServerOptions& options() const { return options_; }
  const Handler& handler() const { return handler_; }
  const std::shared_ptr<ReplyHub>& hub() const { return hub_; }
  bool draining() const { return draining_.load(std::memory_order_acquire); }
  void Unregister(uint64_t id);

 private:
  void Accept();
  void OnAccept(const ErrorCode& ec, tcp::socket socket);
  void Refuse(tcp::socket& socket);

  const ServerOptions options_;
  const Handler handler_;
  const std::string refusal_;  // The raw 503 for connections beyond max_connections.
  // Declared before the io_context, destroyed after it: streams in handlers the io_context
  // destroys still use it.
  std::optional<asio::ssl::context> tls_;
  const std::shared_ptr<ReplyHub> hub_;
  asio::io_context io_context_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  tcp::acceptor acceptor_;           // On its own strand, with accept_retry_.
  asio::steady_timer accept_retry_;  // Paces the accept loop after an accept error.
  tcp::endpoint bound_;
  std::vector<std::thread> threads_;
  std::atomic<bool> accepting_{false};
  std::atomic<bool> draining_{false};

  std::mutex mu_;
  std::condition_variable connection_closed_;
  // Open connections. Declared after the io_context, destroyed before it.
  std::map<uint64_t, std::shared_ptr<ConnectionBase>> connections_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;

  std::mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

// One HTTP/1.1 connection over a plain socket or a TLS stream. Everything runs on the
// connection's strand; a request is read whole (header, then body) before the handler sees it,
// and the next one is read only after the answer is written, so a connection has at most one
// request in flight. Lifetime: the server's registry holds it until Close; pending operations
// and deadline waits hold it until they complete; Responders hold only a weak pointer.
template <typename Stream>
class Connection final : public ConnectionBase,
                         public std::enable_shared_from_this<Connection<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  Connection(ServerCore& server, uint64_t id, Stream stream, std::string remote_address,
             SteadyClock::time_point accepted)
      : server_(server),
        options_(server.options()),
        id_(id),
        stream_(std::move(stream)),
        timer_(stream_.get_executor()),
        buffer_(ReadBufferBytes(options_.max_header_bytes)),
        remote_address_(std::move(remote_address)),
        request_start_(accepted) {}

  void PostStart() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->Start(); });
  }
  void PostResponse(Response response) override {
    asio::post(stream_.get_executor(),
               [self = this->shared_from_this(), response = std::move(response)]() mutable {
                 self->OnResponse(std::move(response));
               });
  }
  void PostDrain() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->Drain(); });
  }
  void PostClose() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->Close(); });
  }

 private:
  enum class State { kStarting, kIdle, kReading, kAwaitingHandler, kWriting, kLingering, kClosed };

  tcp::socket& socket() { return beast::get_lowest_layer(stream_); }

  void Start() {
    if (state_ == State::kClosed) return;
    if (server_.draining()) return Close();
    // The first request's header deadline runs from accept and covers the TLS handshake.
    SetDeadline(HeaderDeadline());
    if constexpr (kTls) {
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](const ErrorCode& ec) {
                                if (self->state_ == State::kClosed) return;
                                if (ec) return self->Close();
                                self->ReadHeader();
                              });
    } else {
      ReadHeader();
    }
  }

  SteadyClock::time_point HeaderDeadline() const {
    return After(request_start_, std::min(options_.read_header_timeout, options_.read_timeout));
  }

  // After an answer on a connection that stays open: wait (idle_timeout) for the next request.
  void ReadNext() {
    if (draining_ || server_.draining()) return Linger();
    if (buffer_.size() > 0) {  // Pipelined: the next request has begun.
      request_start_ = SteadyClock::now();
      return ReadHeader();
    }
    state_ = State::kIdle;
    SetDeadline(After(SteadyClock::now(), options_.idle_timeout));
    stream_.async_read_some(buffer_.prepare(kReadChunkBytes),
                            [self = this->shared_from_this()](const ErrorCode& ec, size_t bytes) {
                              if (self->state_ == State::kClosed) return;
                              if (ec) return self->Close();
                              self->buffer_.commit(bytes);
                              self->request_start_ = SteadyClock::now();
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    state_ = State::kReading;
    version_ = 11;
    LimitParser(parser_.emplace(), options_.max_header_bytes, options_.max_request_bytes);
    SetDeadline(HeaderDeadline());
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](const ErrorCode& ec, size_t bytes) {
                               self->OnHeader(ec, bytes);
                             });
  }

  void OnHeader(const ErrorCode& ec, size_t header_bytes) {
    if (state_ == State::kClosed) return;
    if (ec) return FailRead(ec, /*reading_header=*/true);
    if (HeaderTooLarge(header_bytes, options_.max_header_bytes)) {
      return FailRead(bhttp::make_error_code(bhttp::error::header_limit), true);
    }
    version_ = parser_->get().version();
    SetDeadline(After(request_start_, options_.read_timeout));
    if (parser_->is_done()) return Dispatch();
    if (version_ >= 11 &&
        absl::EqualsIgnoreCase(View(parser_->get()[bhttp::field::expect]), "100-continue")) {
      asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = this->shared_from_this()](const ErrorCode& ec, size_t) {
                          if (self->state_ == State::kClosed) return;
                          if (ec) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](const ErrorCode& ec, size_t) {
                        if (self->state_ == State::kClosed) return;
                        if (ec) return self->FailRead(ec, /*reading_header=*/false);
                        self->Dispatch();
                      });
  }

  // A read that failed gets its answer; a closed, reset or timed-out connection just closes.
  void FailRead(const ErrorCode& ec, bool reading_header) {
    switch (StatusForReadError(ec, reading_header)) {
      case 431:
        return Fail(431, absl::StrCat("request header fields too large: the limit is ",
                                      options_.max_header_bytes, " bytes"));
      case 413:
        return Fail(413, absl::StrCat("http: request body too large: the limit is ",
                                      options_.max_request_bytes, " bytes"));
      case 400:
        return Fail(400, absl::StrCat("malformed HTTP request: ", ec.message()));
      default:
        return Close();
    }
  }

  // Answers before the request was read whole, so the connection cannot continue.
  void Fail(int status, absl::string_view message) {
    keep_alive_ = false;
    Write(ErrorResponse(status, message));
  }

  void Dispatch() {
    bhttp::request<bhttp::string_body> request = parser_->release();
    parser_.reset();
    keep_alive_ = request.keep_alive();
    head_ = request.method() == bhttp::verb::head;
    const absl::string_view method = View(request.method_string());
    if (std::any_of(method.begin(), method.end(), absl::ascii_islower)) {
      return Write(ErrorResponse(405, absl::StrCat("unsupported method ", QuoteForError(method),
                                                   ": methods are upper case")));
    }
    absl::StatusOr<Target> target = ParseTarget(View(request.target()));
    if (!target.ok()) return Write(ErrorResponse(400, target.status().message()));
    if (!server_.hub()->TryAcquire()) {
      return Write(ErrorResponse(
          503, absl::StrCat("server busy: ", options_.max_in_flight,
                            " requests are already waiting for an answer; retry later")));
    }

    Request out;
    out.method = std::string(method);
    out.path = std::move(target->path);
    out.query = std::move(target->query);
    for (const auto& field : request) {
      out.headers.emplace_back(absl::AsciiStrToLower(View(field.name_string())),
                               std::string(View(field.value())));
    }
    out.body = std::move(request.body());
    out.remote_address = remote_address_;

    state_ = State::kAwaitingHandler;
    CancelDeadline();  // The handler's time is the API layer's to bound.
    Responder responder = [reply = PendingReply(server_.hub(), this->weak_from_this())](
                              Response response) mutable { reply.Send(std::move(response)); };
    server_.handler()(std::move(out), std::move(responder));
  }

  void OnResponse(Response response) {
    if (state_ != State::kAwaitingHandler) return;  // Closed meanwhile.
    Write(std::move(response));
  }

  void Write(Response response) {
    if (std::optional<std::string> problem = ResponseProblem(response)) {
      response = ErrorResponse(500, absl::StrCat("internal error: ", *problem));
    }
    keep_alive_ = keep_alive_ && !draining_ && !server_.draining();
    bhttp::response<bhttp::string_body>& out = response_.emplace();
    out.version(version_);
    out.result(static_cast<unsigned>(response.status));
    if (!response.content_type.empty()) out.set(bhttp::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) out.insert(name, value);
    if (out.find(bhttp::field::cache_control) == out.end()) {
      out.set(bhttp::field::cache_control, "no-store");
    }
    out.keep_alive(keep_alive_);
    if (response.status != 204 && response.status != 304) {  // Those two carry no body.
      out.content_length(response.body.size());
      if (!head_) out.body() = std::move(response.body);
    }
    head_ = false;

    state_ = State::kWriting;
    SetDeadline(After(SteadyClock::now(), options_.write_timeout));
    bhttp::async_write(stream_, out,
                       [self = this->shared_from_this()](const ErrorCode& ec, size_t) {
                         if (self->state_ == State::kClosed) return;
                         self->response_.reset();
                         if (ec) return self->Close();
                         if (!self->keep_alive_) return self->Linger();
                         self->ReadNext();
                       });
  }

  // Ends the connection after a response: no more output, unread input drained (bounded).
  void Linger() {
    state_ = State::kLingering;
    ErrorCode ignored;
    socket().shutdown(tcp::socket::shutdown_send, ignored);
    buffer_.consume(buffer_.size());
    SetDeadline(After(SteadyClock::now(), kLingerTimeout));
    LingerRead(0);
  }

  void LingerRead(size_t dropped) {
    socket().async_read_some(
        buffer_.prepare(kReadChunkBytes),
        [self = this->shared_from_this(), dropped](const ErrorCode& ec, size_t bytes) {
          if (self->state_ == State::kClosed) return;
          if (ec || dropped + bytes >= kLingerBytesMax) return self->Close();
          self->LingerRead(dropped + bytes);
        });
  }

  void Drain() {
    draining_ = true;
    switch (state_) {
      case State::kStarting:
      case State::kIdle:
      case State::kReading:
        Close();
        break;
      case State::kAwaitingHandler:  // Answered with "Connection: close", then closed.
      case State::kWriting:
      case State::kLingering:
      case State::kClosed:
        break;
    }
  }

  // Closes at once. Pending operations complete with errors and find the state kClosed.
  void Close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    CancelDeadline();
    ErrorCode ignored;
    socket().close(ignored);
    server_.Unregister(id_);
  }

  // One deadline at a time; reaching it closes the connection.
  void SetDeadline(SteadyClock::time_point deadline) {
    const uint64_t generation = ++deadline_generation_;
    timer_.expires_at(deadline);
    timer_.async_wait([self = this->shared_from_this(), generation](const ErrorCode& ec) {
      if (ec || generation != self->deadline_generation_) return;
      self->Close();
    });
  }

  void CancelDeadline() {
    ++deadline_generation_;
    timer_.cancel();
  }

  ServerCore& server_;
  const ServerOptions& options_;
  const uint64_t id_;
  Stream stream_;
  asio::steady_timer timer_;
  uint64_t deadline_generation_ = 0;
  beast::flat_buffer buffer_;  // Bounded: a header block and one read's worth.
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::string_body>> response_;  // While it is being written.
  const std::string remote_address_;
  SteadyClock::time_point request_start_;
  State state_ = State::kStarting;
  unsigned version_ = 11;    // HTTP version of the request being answered (10 or 11).
  bool keep_alive_ = false;  // Whether the connection continues after this answer.
  bool head_ = false;        // A HEAD request: the answer has headers only.
  bool draining_ = false;
};

ServerCore::ServerCore(ServerOptions options, Handler handler,
                       std::optional<asio::ssl::context> tls)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      refusal_([this] {
        const std::string body =
            ErrorBody(absl::StrCat("too many connections: the server holds at most ",
                                   options_.max_connections, "; retry later"));
        return absl::StrCat(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\nContent-Length: ",
            body.size(), "\r\n\r\n", body);
      }()),
      tls_(std::move(tls)),
      hub_(std::make_shared<ReplyHub>(options_.max_in_flight)),
      acceptor_(asio::make_strand(io_context_)),
      accept_retry_(acceptor_.get_executor()) {}

ServerCore::~ServerCore() { Shutdown(absl::ZeroDuration()); }

absl::Status ServerCore::Listen(const tcp::endpoint& endpoint) {
  ErrorCode ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) bound_ = acceptor_.local_endpoint(ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("listen on ", FormatEndpoint(endpoint), ": ", ec.message()));
  }
  return absl::OkStatus();
}

void ServerCore::StartThreads() {
  accepting_.store(true);
  work_.emplace(asio::make_work_guard(io_context_));
  asio::post(acceptor_.get_executor(), [this] { Accept(); });
  for (int i = 0; i < options_.io_threads; ++i) {
    threads_.emplace_back([this] { io_context_.run(); });
  }
}

void ServerCore::Accept() {
  acceptor_.async_accept(
      asio::make_strand(io_context_),
      [this](const ErrorCode& ec, tcp::socket socket) { OnAccept(ec, std::move(socket)); });
}

void ServerCore::OnAccept(const ErrorCode& ec, tcp::socket socket) {
  if (!accepting_.load()) return;  // The socket, if any, closes with it.
  if (ec) {
    if (ec == asio::error::operation_aborted) return;
    // Out of descriptors, most likely: try again shortly rather than spin.
    accept_retry_.expires_after(absl::ToChronoMilliseconds(kAcceptRetryDelay));
    accept_retry_.async_wait([this](const ErrorCode& wait_ec) {
      if (!wait_ec && accepting_.load()) Accept();
    });
    return;
  }
  ErrorCode peer_ec;
  const tcp::endpoint peer = socket.remote_endpoint(peer_ec);
  if (!peer_ec) {
    uint64_t id = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (connections_.size() < static_cast<size_t>(options_.max_connections)) id = next_id_++;
    }
    if (id == 0) {
      Refuse(socket);
    } else {
      // Only this strand adds connections, so the count checked above still holds.
      std::shared_ptr<ConnectionBase> connection;
      if (tls_.has_value()) {
        connection =
            std::make_shared<Connection<TlsStream>>(*this, id, TlsStream(std::move(socket), *tls_),
                                                    FormatEndpoint(peer), SteadyClock::now());
      } else {
        connection = std::make_shared<Connection<tcp::socket>>(
            *this, id, std::move(socket), FormatEndpoint(peer), SteadyClock::now());
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        connections_.emplace(id, connection);
      }
      connection->PostStart();
    }
  }
  Accept();
}

// A connection beyond max_connections: on plain HTTP it gets a 503 written without waiting
// (a fresh socket's send buffer takes it whole), on TLS nothing; then it is closed.
void ServerCore::Refuse(tcp::socket& socket) {
  ErrorCode ignored;
  if (!tls_.has_value()) {
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(refusal_), ignored);
    socket.shutdown(tcp::socket::shutdown_send, ignored);
  }
  socket.close(ignored);
}

void ServerCore::Unregister(uint64_t id) {
  std::shared_ptr<ConnectionBase> connection;  // Released after the lock.
  std::lock_guard<std::mutex> lock(mu_);
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  connection = std::move(it->second);
  connections_.erase(it);
  if (connections_.empty()) connection_closed_.notify_all();
}

void ServerCore::StopAccepting() {
  accepting_.store(false);
  asio::post(acceptor_.get_executor(), [this] {
    ErrorCode ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
  });
}

void ServerCore::Shutdown(absl::Duration grace) {
  std::lock_guard<std::mutex> once(shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  for (const std::thread& thread : threads_) {
    CHECK(thread.get_id() != std::this_thread::get_id())
        << "Server::Shutdown called on one of its own I/O threads";
  }
  StopAccepting();
  draining_.store(true, std::memory_order_release);
  {
    std::unique_lock<std::mutex> lock(mu_);
    for (const auto& [id, connection] : connections_) connection->PostDrain();
    connection_closed_.wait_until(lock, After(SteadyClock::now(), grace),
                                  [this] { return connections_.empty(); });
  }
  hub_->Close();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, connection] : connections_) connection->PostClose();
  }
  // With the acceptor and every connection closed, the threads run out of work and return.
  work_.reset();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  std::map<uint64_t, std::shared_ptr<ConnectionBase>> left;  // Only if the threads never ran.
  std::lock_guard<std::mutex> lock(mu_);
  left.swap(connections_);
}

absl::Status ValidateOptions(const ServerOptions& options) {
  auto positive = [](absl::Duration d, absl::string_view name) {
    return d > absl::ZeroDuration()
               ? absl::OkStatus()
               : absl::InvalidArgumentError(
                     absl::StrCat(name, " must be positive, not ", absl::FormatDuration(d)));
  };
  RETURN_IF_ERROR(positive(options.read_header_timeout, "read_header_timeout"));
  RETURN_IF_ERROR(positive(options.read_timeout, "read_timeout"));
  RETURN_IF_ERROR(positive(options.write_timeout, "write_timeout"));
  RETURN_IF_ERROR(positive(options.idle_timeout, "idle_timeout"));
  if (options.max_request_bytes == 0) {
    return absl::InvalidArgumentError("max_request_bytes must be positive");
  }
  if (options.max_header_bytes == 0 ||
      options.max_header_bytes > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_header_bytes must be between 1 and 4294967295, not ", options.max_header_bytes));
  }
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_connections must be at least 1, not ", options.max_connections));
  }
  if (options.max_in_flight < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_in_flight must be at least 1, not ", options.max_in_flight));
  }
  if (options.io_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("io_threads must be at least 1, not ", options.io_threads));
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert_file and tls_key_file go together: give both for TLS, or neither");
  }
  return absl::OkStatus();
}

absl::StatusOr<tcp::endpoint> ParseAddress(absl::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("address ", QuoteForError(address), " is not host:port"));
  }
  absl::string_view host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address ", QuoteForError(address), ": the port must be 0-65535"));
  }
  ErrorCode ec;
  const asio::ip::address ip = asio::ip::make_address(std::string(host), ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("address ", QuoteForError(address),
                                                   ": the host must be a numeric IP address"));
  }
  return tcp::endpoint(ip, static_cast<uint16_t>(port));
}

// A server context that speaks TLS 1.2 and 1.3 only.
absl::StatusOr<asio::ssl::context> MakeTlsContext(const std::string& cert_file,
                                                  const std::string& key_file) {
  asio::ssl::context context(asio::ssl::context::tls_server);
  context.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1 | asio::ssl::context::no_compression);
  if (SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION) != 1) {
    ERR_clear_error();
    return absl::InternalError("OpenSSL refused to set TLS 1.2 as the minimum version");
  }
  ErrorCode ec;
  context.use_certificate_chain_file(cert_file, ec);
  if (ec) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("tls_cert_file ", QuoteForError(cert_file), ": ", ec.message()));
  }
  context.use_private_key_file(key_file, asio::ssl::context::pem, ec);
  // OpenSSL checks the key against the certificate as it loads it.
  const bool mismatch =
      ec && ec.category() == asio::error::get_ssl_category() &&
      ERR_GET_LIB(static_cast<unsigned long>(ec.value())) == ERR_LIB_X509 &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
  if (mismatch || (!ec && SSL_CTX_check_private_key(context.native_handle()) != 1)) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("tls_key_file ", QuoteForError(key_file),
                                                   " does not match the certificate in ",
                                                   QuoteForError(cert_file)));
  }
  if (ec) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("tls_key_file ", QuoteForError(key_file), ": ", ec.message()));
  }
  return context;
}

}  // namespace

class Server::Impl : public ServerCore {
 public:
  using ServerCore::ServerCore;
};

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options, Handler handler) {
  RETURN_IF_ERROR(ValidateOptions(options));
  ASSIGN_OR_RETURN(const tcp::endpoint endpoint, ParseAddress(options.address));
  std::optional<asio::ssl::context> tls;
  if (!options.tls_cert_file.empty()) {
    ASSIGN_OR_RETURN(asio::ssl::context context,
                     MakeTlsContext(options.tls_cert_file, options.tls_key_file));
    tls.emplace(std::move(context));
  }
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler), std::move(tls));
  RETURN_IF_ERROR(impl->Listen(endpoint));
  impl->StartThreads();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { impl_->Shutdown(absl::ZeroDuration()); }

std::string Server::address() const { return FormatEndpoint(impl_->bound()); }

int Server::port() const { return impl_->bound().port(); }

void Server::StopAccepting() { impl_->StopAccepting(); }

void Server::Shutdown(absl::Duration grace) { impl_->Shutdown(grace); }

}  // namespace bulwark::http
