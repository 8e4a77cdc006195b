// libcurl client for Vault's API (see client.h).
#include "server/cli/client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status/quote.h"

namespace bulwark::cli {
namespace {

using nlohmann::json;

// The most bytes of a non-JSON error body quoted in a message.
constexpr size_t kRawErrorBytesMax = 4096;

bool IsPathByteKept(unsigned char c) {
  return absl::ascii_isalnum(c) ||
         absl::string_view("-._~/!$&'()*+,;=:@").find(c) != absl::string_view::npos;
}

std::string PercentEncode(absl::string_view s, bool query) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    const bool kept = query
                          ? (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
                          : IsPathByteKept(c);
    if (kept) {
      out += static_cast<char>(c);
    } else if (query && c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

size_t AppendBody(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  const size_t n = size * count;
  if (body->size() + n > kResponseBytesMax) return 0;  // curl then fails with a write error.
  body->append(data, n);
  return n;
}

absl::StatusCode CodeForHttpStatus(int status) {
  switch (status) {
    case 400:
      return absl::StatusCode::kInvalidArgument;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 503:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kUnknown;
  }
}

}  // namespace

absl::StatusOr<Client> Client::Create(ClientOptions options) {
  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (!absl::StartsWith(options.address, "http://") &&
      !absl::StartsWith(options.address, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("the Vault address ", QuoteForError(options.address),
                     " must start with http:// or https:// (set VAULT_ADDR or -address)"));
  }
  while (absl::EndsWith(options.address, "/")) options.address.pop_back();
  for (unsigned char c : options.token) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          "the Vault token holds a control character (a stray newline?); it was not sent");
    }
  }
  if (!options.ca_cert.empty() && access(options.ca_cert.c_str(), R_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("the CA certificate file ",
                                            QuoteForError(options.ca_cert),
                                            " cannot be read (VAULT_CACERT or -ca-cert)"));
  }
  return Client(std::move(options));
}

std::string Client::Url(const ApiRequest& request) const {
  std::string url = absl::StrCat(options_.address, "/v1/", PercentEncode(request.path, false));
  std::vector<std::pair<std::string, std::string>> query = request.query;
  // Go's url.Values.Encode orders by key.
  std::stable_sort(query.begin(), query.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < query.size(); ++i) {
    absl::StrAppend(&url, i == 0 ? "?" : "&", PercentEncode(query[i].first, true), "=",
                    PercentEncode(query[i].second, true));
  }
  return url;
}

absl::StatusOr<ApiReply> Client::Send(const ApiRequest& request) const {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* h = curl.get();
  const std::string url = Url(request);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  // A standby answers 307 to the active node; the method and body go along, as in Vault's client.
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
  curl_easy_setopt(h, CURLOPT_POSTREDIR, static_cast<long>(CURL_REDIR_POST_ALL));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options_.timeout)));
  curl_easy_setopt(h, CURLOPT_USERAGENT, "bulwark-cli");
  curl_easy_setopt(h, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  if (!options_.ca_cert.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_cert.c_str());
  if (!options_.ca_path.empty()) curl_easy_setopt(h, CURLOPT_CAPATH, options_.ca_path.c_str());
  if (options_.tls_skip_verify) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  const std::string no_proxy = absl::StrCat(options_.no_proxy, options_.no_proxy.empty() ? "" : ",",
                                            "localhost,127.0.0.1,::1");
  curl_easy_setopt(h, CURLOPT_NOPROXY, no_proxy.c_str());

  std::string body_text;
  const bool send_body = request.body.has_value() || request.method == "PUT" ||
                         request.method == "POST" || request.method == "PATCH";
  if (send_body) {
    if (request.body.has_value()) {
      body_text = request.body->dump(-1, ' ', false, json::error_handler_t::replace);
    }
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_text.size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body_text.data());
  }

  std::vector<std::string> header_lines = {"X-Vault-Request: true",
                                           "Expect:"};  // No 100-continue round trip.
  if (send_body) header_lines.push_back("Content-Type: application/json");
  if (!options_.token.empty())
    header_lines.push_back(absl::StrCat("X-Vault-Token: ", options_.token));
  struct curl_slist* headers = nullptr;
  for (const std::string& line : header_lines) {
    struct curl_slist* longer = curl_slist_append(headers, line.c_str());
    if (longer == nullptr) {
      curl_slist_free_all(headers);
      return absl::ResourceExhaustedError("out of memory building request headers");
    }
    headers = longer;
  }
  std::unique_ptr<struct curl_slist, decltype(&curl_slist_free_all)> header_guard(
      headers, curl_slist_free_all);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

  ApiReply reply;
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply.body);
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);

  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    std::string reason = error[0] != '\0' ? error : curl_easy_strerror(rc);
    if (rc == CURLE_WRITE_ERROR) {
      reason = absl::StrCat("the reply is larger than ", kResponseBytesMax >> 20, " MiB");
    }
    return absl::UnavailableError(absl::StrCat(request.method, " ", url, ": ", reason));
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  reply.status = static_cast<int>(status);
  return reply;
}

absl::StatusOr<std::optional<json>> Client::Call(const ApiRequest& request,
                                                 bool not_found_is_empty) const {
  absl::StatusOr<ApiReply> reply = Send(request);
  if (!reply.ok()) return reply.status();
  if (reply->status >= 200 && reply->status < 300) {
    if (absl::StripAsciiWhitespace(reply->body).empty()) return std::nullopt;
    json parsed = json::parse(reply->body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      return absl::InternalError(absl::StrCat("the reply to ", request.method, " ", Url(request),
                                              " (status ", reply->status, ") is not JSON"));
    }
    return parsed;
  }
  if (reply->status == 404 && not_found_is_empty) return std::nullopt;

  std::string text = absl::StrCat("Error making API request.\n\nURL: ", request.method, " ",
                                  Url(request), "\nCode: ", reply->status, ".");
  json parsed = json::parse(reply->body, nullptr, /*allow_exceptions=*/false);
  auto errors = parsed.is_object() ? parsed.find("errors") : parsed.end();
  if (parsed.is_object() && errors != parsed.end() && errors->is_array()) {
    std::vector<std::string> lines;
    for (const json& e : *errors) {
      lines.push_back(absl::StrCat("* ", e.is_string() ? e.get<std::string>() : e.dump()));
    }
    absl::StrAppend(&text, " Errors:\n\n", absl::StrJoin(lines, "\n"));
  } else {
    absl::StrAppend(&text, " Raw Message:\n\n", reply->body.substr(0, kRawErrorBytesMax));
  }
  return absl::Status(CodeForHttpStatus(reply->status), text);
}

}  // namespace bulwark::cli
