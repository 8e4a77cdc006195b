// One HTTP request and its response as the server's layers pass them: the transport
// (server/http/server.h) parses bytes into a Request and writes a Response back; the API layer
// (server/api/) maps a Request to the core and builds the Response. Plain values, no I/O, so the
// API is testable without sockets and the transport without a core.
#ifndef BULWARK_SERVER_HTTP_MESSAGE_H_
#define BULWARK_SERVER_HTTP_MESSAGE_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"

namespace bulwark::http {

struct Request {
  std::string method;  // As sent, upper case: "GET", "PUT", "LIST", ...
  std::string path;    // Percent-decoded, without the query: "/v1/secret/foo".
  // Query parameters in order, percent-decoded ("?list=true" -> {"list", "true"}).
  std::vector<std::pair<std::string, std::string>> query;
  // Header fields in order; names lower-cased.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote_address;  // "127.0.0.1:53412", for logs.

  // The first header / query value with this name (header names compare case-insensitively).
  std::optional<absl::string_view> Header(absl::string_view name) const;
  std::optional<absl::string_view> Query(absl::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // Extra fields (Location, ...).
  std::string body;
};

// Completes one request. Call it exactly once, from any thread.
using Responder = absl::AnyInvocable<void(Response) &&>;

}  // namespace bulwark::http

#endif  // BULWARK_SERVER_HTTP_MESSAGE_H_
