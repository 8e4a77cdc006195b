// The CLI's HTTP client for Vault's API, over libcurl: one blocking request at a time, TLS
// verified against the system store or a given CA file, the token in X-Vault-Token, and
// non-2xx replies turned into Vault's "Error making API request." text.
#ifndef BULWARK_SERVER_CLI_CLIENT_H_
#define BULWARK_SERVER_CLI_CLIENT_H_

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace bulwark::cli {

// The largest reply body the client accepts; a larger one is an error, not a memory blow-up.
inline constexpr size_t kResponseBytesMax = 64 << 20;

struct ClientOptions {
  std::string address;  // "https://127.0.0.1:8200": scheme, host and port, optionally a path.
  std::string token;    // Sent as X-Vault-Token when not empty.
  std::string ca_cert;  // PEM file of CAs to verify the server with; empty = the system's.
  std::string ca_path;  // Directory of hashed CA certificates (c_rehash); empty = none.
  bool tls_skip_verify = false;
  // Hosts that bypass an http(s)_proxy from the environment; loopback always does (as in Go).
  std::string no_proxy;
  // Whole-request bound, a hang guard; Vault's client default.
  absl::Duration timeout = absl::Seconds(60);
};

struct ApiRequest {
  std::string method;  // "GET", "PUT", "LIST", ...
  std::string path;    // After "/v1/", e.g. "sys/seal-status"; percent-encoded when sent.
  std::vector<std::pair<std::string, std::string>> query;
  std::optional<nlohmann::json> body;  // Sent as JSON; PUT/POST without one send an empty body.
};

struct ApiReply {
  int status = 0;
  std::string body;
};

class Client {
 public:
  // InvalidArgument when the address is not http(s):// or the token holds a control character
  // (the message never includes the token); NotFound when ca_cert does not exist.
  static absl::StatusOr<Client> Create(ClientOptions options);

  // One round trip. Unavailable when no HTTP reply came (connection refused, TLS failure,
  // timeout), with curl's reason; any HTTP status is a reply.
  absl::StatusOr<ApiReply> Send(const ApiRequest& request) const;

  // Send, then: 2xx with a JSON body -> the body; 204 or an empty body -> nullopt. A non-2xx
  // reply is an error whose message is Vault's "Error making API request.\n\nURL: ...\nCode:
  // N. Errors:\n\n* ..." text, except that with `not_found_is_empty` a 404 is nullopt (as
  // Vault's client reads a missing secret).
  absl::StatusOr<std::optional<nlohmann::json>> Call(const ApiRequest& request,
                                                     bool not_found_is_empty = false) const;

  // The URL `request` goes to (no token in it), for messages.
  std::string Url(const ApiRequest& request) const;

  const ClientOptions& options() const { return options_; }

 private:
  explicit Client(ClientOptions options) : options_(std::move(options)) {}
  ClientOptions options_;
};

}  // namespace bulwark::cli

#endif  // BULWARK_SERVER_CLI_CLIENT_H_
