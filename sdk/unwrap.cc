// The unwrap request with libcurl, and the reply turned into PEM for gRPC.
//
// libcurl is loaded with dlopen when a plugin first unwraps, not linked: it and the ~27 libraries
// it needs (GnuTLS, Kerberos, LDAP, libssh2, nghttp2, ...) would otherwise be loaded and
// relocated at every plugin start, although only Vault's legacy TLS bootstrap (no AutoMTLS)
// uses it (docs/performance.md, "Start-up cut and idle private memory").
#include "sdk/unwrap.h"

#include <curl/curl.h>
#include <dlfcn.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/json/json_depth.h"
#include "base/status/quote.h"
#include "base/status/status_macros.h"
#include "protocol/tls_certs.h"
#include "protocol/wrapping_token.h"

namespace bulwark::sdk {
namespace {

constexpr absl::string_view kUnwrapPath = "/v1/sys/wrapping/unwrap";

// libcurl's ABI 4 soname (Debian libcurl4 / libcurl4-openssl-dev).
constexpr char kCurlLibrary[] = "libcurl.so.4";

// The libcurl functions the unwrap calls, resolved from the library loaded at run time. The
// types are libcurl's own declarations (decltype of the header's functions).
struct CurlApi {
  decltype(&curl_global_init) global_init = nullptr;
  decltype(&curl_easy_init) easy_init = nullptr;
  decltype(&curl_easy_cleanup) easy_cleanup = nullptr;
  decltype(&curl_easy_setopt) easy_setopt = nullptr;
  decltype(&curl_easy_perform) easy_perform = nullptr;
  decltype(&curl_easy_strerror) easy_strerror = nullptr;
  decltype(&curl_easy_getinfo) easy_getinfo = nullptr;
  decltype(&curl_slist_append) slist_append = nullptr;
  decltype(&curl_slist_free_all) slist_free_all = nullptr;
};

template <typename Fn>
bool Resolve(void* library, const char* name, Fn* fn) {
  *fn = reinterpret_cast<Fn>(::dlsym(library, name));
  return *fn != nullptr;
}

// Loads libcurl and initialises it, once per process; the library stays loaded.
absl::StatusOr<const CurlApi*> LoadCurl() {
  static const absl::StatusOr<const CurlApi*>* const loaded =
      new absl::StatusOr<const CurlApi*>([]() -> absl::StatusOr<const CurlApi*> {
        void* library = ::dlopen(kCurlLibrary, RTLD_NOW | RTLD_LOCAL);
        if (library == nullptr) {
          const char* why = ::dlerror();
          return absl::FailedPreconditionError(absl::StrCat(
              "unwrap: cannot load ", kCurlLibrary, " (", why != nullptr ? why : "unknown error",
              "); Vault's legacy TLS bootstrap needs libcurl installed (Debian libcurl4)"));
        }
        auto* api = new CurlApi();
        if (!Resolve(library, "curl_global_init", &api->global_init) ||
            !Resolve(library, "curl_easy_init", &api->easy_init) ||
            !Resolve(library, "curl_easy_cleanup", &api->easy_cleanup) ||
            !Resolve(library, "curl_easy_setopt", &api->easy_setopt) ||
            !Resolve(library, "curl_easy_perform", &api->easy_perform) ||
            !Resolve(library, "curl_easy_strerror", &api->easy_strerror) ||
            !Resolve(library, "curl_easy_getinfo", &api->easy_getinfo) ||
            !Resolve(library, "curl_slist_append", &api->slist_append) ||
            !Resolve(library, "curl_slist_free_all", &api->slist_free_all)) {
          delete api;
          return absl::FailedPreconditionError(
              absl::StrCat("unwrap: ", kCurlLibrary, " lacks a libcurl function the unwrap uses"));
        }
        if (api->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
          delete api;
          return absl::InternalError("unwrap: curl_global_init failed");
        }
        return api;
      }());
  return *loaded;
}

struct ReplyBuffer {
  std::string body;
  bool overflow = false;
};

size_t Append(char* data, size_t size, size_t count, void* user) {
  auto* reply = static_cast<ReplyBuffer*>(user);
  const size_t n = size * count;
  if (reply->body.size() + n > kUnwrapReplyBytesMax) {
    reply->overflow = true;
    return 0;  // Makes libcurl stop with CURLE_WRITE_ERROR.
  }
  reply->body.append(data, n);
  return n;
}

void Wipe(std::string& s) {
  volatile char* p = s.data();
  for (size_t i = 0; i < s.size(); ++i) p[i] = 0;
}

std::string Get(const EnvLookup& env, absl::string_view name) {
  std::optional<std::string> value = env(name);
  return value.value_or("");
}

// Vault's first error message from a {"errors":[...]} body, quoted and cut; "" when none.
std::string ErrorText(const std::string& body) {
  if (FindJsonNestingBeyond(body, 8).has_value()) return "";
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return "";
  auto errors = j.find("errors");
  if (errors == j.end() || !errors->is_array() || errors->empty() || !(*errors)[0].is_string()) {
    return "";
  }
  return QuoteForError((*errors)[0].get<std::string>(), 200);
}

}  // namespace

absl::StatusOr<PluginTls> UnwrapPluginTls(absl::string_view token, const EnvLookup& env,
                                          absl::Duration timeout) {
  absl::StatusOr<protocol::WrappingClaims> claims = protocol::ParseWrappingJwtUnverified(token);
  if (!claims.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("VAULT_UNWRAP_TOKEN: ", claims.status().message()));
  }
  std::string addr = claims->addr;
  while (absl::EndsWith(addr, "/")) addr.pop_back();
  const std::string lower = absl::AsciiStrToLower(addr);
  if ((!absl::StartsWith(lower, "http://") && !absl::StartsWith(lower, "https://")) ||
      addr.find_first_of(" \t\r\n") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("could not validate addr claim ",
                                                   QuoteForError(addr, 200),
                                                   ": an http:// or https:// URL is required"));
  }
  const std::string url = absl::StrCat(addr, kUnwrapPath);

  ASSIGN_OR_RETURN(const CurlApi* api, LoadCurl());
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(api->easy_init(), api->easy_cleanup);
  if (curl == nullptr) return absl::InternalError("unwrap: curl_easy_init failed");
  CURL* h = curl.get();
  api->easy_setopt(h, CURLOPT_URL, url.c_str());
  api->easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
  api->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  api->easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  api->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  api->easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  api->easy_setopt(
      h, CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(absl::ToInt64Milliseconds(std::min(timeout, kUnwrapConnectTimeout))));
  api->easy_setopt(h, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  // Go's client uses no proxy for loopback addresses either.
  api->easy_setopt(h, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
  const std::string ca_cert = Get(env, "VAULT_CACERT");
  const std::string ca_path = Get(env, "VAULT_CAPATH");
  const std::string client_cert = Get(env, "VAULT_CLIENT_CERT");
  const std::string client_key = Get(env, "VAULT_CLIENT_KEY");
  if (!ca_cert.empty()) api->easy_setopt(h, CURLOPT_CAINFO, ca_cert.c_str());
  if (!ca_path.empty()) api->easy_setopt(h, CURLOPT_CAPATH, ca_path.c_str());
  if (!client_cert.empty() && !client_key.empty()) {
    api->easy_setopt(h, CURLOPT_SSLCERT, client_cert.c_str());
    api->easy_setopt(h, CURLOPT_SSLKEY, client_key.c_str());
  }
  bool skip_verify = false;
  if (const std::string skip = Get(env, "VAULT_SKIP_VERIFY"); !skip.empty()) {
    skip_verify = absl::SimpleAtob(skip, &skip_verify) && skip_verify;
  }
  if (skip_verify) {
    api->easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    api->easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  // Vault's Go client: the wrapping token as the client token, and SetJSONBody(nil) = "null".
  static constexpr char kBody[] = "null";
  api->easy_setopt(h, CURLOPT_POSTFIELDS, kBody);
  api->easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(sizeof(kBody) - 1));
  std::string token_header = absl::StrCat("X-Vault-Token: ", token);
  struct curl_slist* headers = api->slist_append(nullptr, token_header.c_str());
  Wipe(token_header);  // libcurl keeps its own copy.
  struct curl_slist* more =
      headers == nullptr ? nullptr : api->slist_append(headers, "X-Vault-Request: true");
  std::unique_ptr<struct curl_slist, decltype(&curl_slist_free_all)> header_guard(
      more != nullptr ? more : headers, api->slist_free_all);
  if (more == nullptr) return absl::InternalError("unwrap: curl_slist_append failed");
  api->easy_setopt(h, CURLOPT_HTTPHEADER, more);
  ReplyBuffer reply;
  api->easy_setopt(h, CURLOPT_WRITEFUNCTION, Append);
  api->easy_setopt(h, CURLOPT_WRITEDATA, &reply);
  char error[CURL_ERROR_SIZE] = {0};
  api->easy_setopt(h, CURLOPT_ERRORBUFFER, error);

  const CURLcode rc = api->easy_perform(h);
  if (rc != CURLE_OK) {
    const std::string reason = error[0] != '\0' ? error : api->easy_strerror(rc);
    if (reply.overflow) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unwrap at ", addr, ": the reply is larger than ", kUnwrapReplyBytesMax, " bytes"));
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      return absl::DeadlineExceededError(absl::StrCat("unwrap at ", addr, ": no answer within ",
                                                      absl::FormatDuration(timeout), ": ", reason));
    }
    return absl::UnavailableError(absl::StrCat("unwrap at ", addr, " failed: ", reason,
                                               " (is the host's api_addr reachable from the "
                                               "plugin, and its certificate trusted?)"));
  }
  long status = 0;
  api->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    const std::string text = ErrorText(reply.body);
    const std::string message =
        absl::StrCat("unwrap at ", addr, " answered HTTP ", status, text.empty() ? "" : ": ", text);
    if (status == 400 || status == 403) return absl::PermissionDeniedError(message);
    return absl::InternalError(message);
  }
  absl::StatusOr<protocol::PluginTlsMaterial> material = protocol::DecodePluginTlsReply(reply.body);
  Wipe(reply.body);
  if (!material.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unwrap at ", addr, ": ", material.status().message()));
  }
  PluginTls out;
  out.addr = addr;
  absl::StatusOr<std::string> cert_pem = protocol::CertDerToPem(material->cert_der);
  absl::StatusOr<protocol::CertInfo> info = protocol::ParseCertDer(material->cert_der);
  absl::StatusOr<std::string> key_pem = protocol::EcPrivateKeyDerToPem(material->key_der.view());
  if (!cert_pem.ok() || !info.ok() || !key_pem.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unwrap at ", addr,
                     ": the wrapped ServerCert and ServerKey are not a certificate and an "
                     "EC private key"));
  }
  if (absl::Status match = protocol::CheckKeyMatchesCert(*cert_pem, *key_pem); !match.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unwrap at ", addr, ": the wrapped ServerKey does not belong to ServerCert"));
  }
  if (info->common_name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unwrap at ", addr, ": the wrapped certificate has no common name"));
  }
  out.cert_pem = *std::move(cert_pem);
  out.key_pem = *std::move(key_pem);
  out.server_name = info->common_name;
  return out;
}

}  // namespace bulwark::sdk
