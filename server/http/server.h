// The server's HTTP/1.1 transport (Boost.Beast over Asio, TLS through OpenSSL): accepts
// connections on its own I/O threads, reads requests within fixed limits and deadlines, hands
// each well-formed one to a Handler as a Request, and writes the Response the handler's Responder
// delivers, from any thread. It never runs on, or blocks, the core's event loop.
// docs/decisions/0005-http-library.md says why Beast and what is and is not bounded here.
#ifndef BULWARK_SERVER_HTTP_SERVER_H_
#define BULWARK_SERVER_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/http/message.h"

namespace bulwark::http {

struct ServerOptions {
  std::string address = "127.0.0.1:8200";   // host:port; port 0 picks a free port
  std::string tls_cert_file, tls_key_file;  // both empty = plain HTTP (tls_disable); else
                                            // PEM files, served with TLS 1.2 or 1.3 only
  size_t max_request_bytes = 32 << 20;      // Vault's max_request_size default; beyond -> 413
  size_t max_header_bytes = 64 << 10;       // beyond -> 431; at most 64 KiB
  int max_connections = 1024;               // beyond: refused (503 + close)
  int max_in_flight = 256;  // handed to the handler, not yet answered; beyond -> 503
  absl::Duration read_header_timeout = absl::Seconds(10);
  absl::Duration read_timeout = absl::Seconds(30);  // whole request, body included
  absl::Duration write_timeout = absl::Seconds(30);
  absl::Duration idle_timeout = absl::Seconds(60);  // keep-alive between requests
  int io_threads = 1;
};

// Called on an I/O thread for every well-formed request (the transport has already answered
// 400/405/413/431/503 itself); must not block; may be called from several I/O threads at once.
// The Responder may be called on any thread, at most once; destroying it uncalled answers 500.
using Handler = std::function<void(Request, Responder)>;

// What the transport answers by itself, with Vault's error body {"errors":["..."]}:
//   400  malformed HTTP (Beast's parser), or a request target ParseTarget refuses
//        (server/http/target.h); the connection stays open when the request was read whole
//   405  a method that is not upper case (methods are case-sensitive; Request::method promises
//        upper case)
//   413  a body beyond max_request_bytes: an announced Content-Length is refused before any of
//        the body is read, a chunked body as soon as its chunks add up to more; then closes
//   431  a header block (request line, fields, blank line) beyond max_header_bytes; then closes
//   503  max_in_flight requests already await the handler's answer (the connection stays
//        open), or max_connections are open (the new connection gets the 503, on plain HTTP,
//        and is closed)
//   500  a Responder destroyed without being called, or a Response the transport cannot send
//        (status outside 200-599; a header with CR, LF or NUL in it, or longer than 32 KiB;
//        Content-Length, Transfer-Encoding or Connection, which are the transport's)
// Deadlines close the connection without an answer: read_header_timeout from the first byte of
// a request (from accept for the first request, TLS handshake included) to the end of its
// header; read_timeout from the same start to the end of its body; write_timeout for writing a
// response; idle_timeout between a response and the next request's first byte. A deadline is
// fixed when its phase begins: a client trickling bytes does not extend it. The time the handler
// takes is not bounded here (the API layer owns request deadlines); its count is, by
// max_in_flight. Every response carries "Cache-Control: no-store" unless the handler set one.
class Server {
 public:
  // Validates `options`, binds and listens, and starts options.io_threads I/O threads.
  // Errors: InvalidArgument naming the option that is wrong (address not "host:port" with a
  // numeric host, a limit or timeout not positive, max_header_bytes above 64 KiB, only one of
  // the TLS files, a file that is not
  // a PEM certificate or key, a key that does not match the certificate); Unavailable if the
  // address cannot be bound (in use, not local).
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options, Handler handler);

  // Shutdown(absl::ZeroDuration()).
  ~Server();

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound "host:port" ("127.0.0.1:41234", "[::1]:41234"), with the port the kernel chose.
  std::string address() const;
  int port() const;

  // Closes the listening socket; open connections carry on. Any thread; idempotent.
  void StopAccepting();

  // Stops accepting; closes idle connections and those still reading a request; lets requests
  // the handler holds be answered and written (each with "Connection: close") for up to
  // `grace`; then closes every connection, joins the I/O threads and returns. A Responder called
  // afterwards does nothing. Any thread but an I/O thread (it would wait for itself);
  // idempotent: a second call returns once the first has finished.
  void Shutdown(absl::Duration grace);

 private:
  class Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bulwark::http

#endif  // BULWARK_SERVER_HTTP_SERVER_H_
