// libFuzzer target over the API's request decoding: routing, method mapping, query and body
// data, and every endpoint body decoder. The input is an HTTP-like request:
//
//   METHOD SP PATH[?QUERY] LF (NAME: VALUE LF)* LF BODY
//
// Invariants checked on every input: nothing crashes or throws; a decoded request's data is a
// JSON object that dumps; every refusal is a 4xx status whose message does not contain the
// request's token (when the token occurs nowhere else in the input).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "server/api/decode.h"

namespace bulwark::fuzz {
namespace {

void Fail(const char* what, absl::string_view detail) {
  std::fprintf(stderr, "api_request_fuzzer: %s: %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

http::Request Parse(absl::string_view input) {
  http::Request r;
  const size_t line_end = input.find('\n');
  absl::string_view line = input.substr(0, line_end);
  input.remove_prefix(line_end == absl::string_view::npos ? input.size() : line_end + 1);
  const size_t space = line.find(' ');
  r.method = std::string(line.substr(0, space));
  absl::string_view target = space == absl::string_view::npos ? "" : line.substr(space + 1);
  const size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != absl::string_view::npos) {
    for (absl::string_view pair : absl::StrSplit(target.substr(q + 1), '&', absl::SkipEmpty())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
      r.query.push_back(std::move(kv));
    }
  }
  while (!input.empty()) {
    const size_t end = input.find('\n');
    absl::string_view header = input.substr(0, end);
    input.remove_prefix(end == absl::string_view::npos ? input.size() : end + 1);
    if (header.empty()) break;
    const size_t colon = header.find(':');
    if (colon == absl::string_view::npos) continue;
    r.headers.emplace_back(
        absl::AsciiStrToLower(header.substr(0, colon)),
        std::string(absl::StripLeadingAsciiWhitespace(header.substr(colon + 1))));
  }
  r.body = std::string(input);
  return r;
}

void CheckRefusal(const absl::Status& s, absl::string_view token, absl::string_view input) {
  const int code = api::HttpStatusFor(s);
  if (code < 400 || code > 499) Fail("a refusal that is not 4xx", s.ToString());
  // The token may legitimately appear in an error only if the client also put it elsewhere (or
  // if it is so short that a fixed message holds it by chance).
  if (token.size() >= 16 && absl::StrContains(s.message(), token)) {
    const size_t first = input.find(token);
    if (first != absl::string_view::npos &&
        input.find(token, first + 1) == absl::string_view::npos) {
      Fail("an error echoes the token", s.message());
    }
  }
}

// Runs the body decoder of the request's endpoint, as the Api would.
absl::Status DecodeBodyOf(const api::ApiRequest& r) {
  using api::Route;
  switch (r.route) {
    case Route::kSysInit:
      return api::DecodeInit(r.data).status();
    case Route::kSysUnseal:
      return api::DecodeUnseal(r.data).status();
    case Route::kSysHealth:
      return api::DecodeHealthQuery(r.data).status();
    case Route::kSysMount:
      return api::DecodeMountEnable(r.param, r.data).status();
    case Route::kSysMountTune:
      return api::DecodeMountTune(r.data).status();
    case Route::kSysCatalogEntry:
      return api::DecodePluginRegister(r.plugin_type, r.param, r.data).status();
    case Route::kSysPluginsReload:
      return api::DecodeReload(r.data).status();
    case Route::kTokenCreate:
      return api::DecodeTokenCreate(r.data).status();
    default:
      return absl::OkStatus();
  }
}

}  // namespace

std::vector<std::string> SeedInputs() {
  return {
      "GET /v1/sys/init\n\n",
      "PUT /v1/sys/init\ncontent-type: application/json\n\n"
      "{\"secret_shares\":3,\"secret_threshold\":2}",
      "PUT /v1/sys/unseal\n\n{\"key\":\"" + std::string(66, 'a') + "\"}",
      "PUT /v1/sys/unseal\n\n{\"Reset\":true}",
      "GET /v1/sys/health?standbyok=true&sealedcode=299&uninitcode=204\n\n",
      "HEAD /v1/sys/health\n\n",
      "GET /v1/sys/seal-status\n\n",
      "POST /v1/sys/mounts/secret\nx-vault-token: hvs.abcdefghijklmnopqrstuvwx\n\n"
      "{\"type\":\"kv\",\"config\":{\"plugin_version\":\"v1.2.3\"},\"options\":{\"version\":\"1\"}"
      "}",
      "POST /v1/sys/mounts/secret/tune\nx-vault-token: "
      "hvs.0123456789abcdefghijklmn\n\n{\"description\":\"d\"}",
      "PUT /v1/sys/plugins/catalog/secret/my-plugin\nx-vault-token: "
      "hvs.0123456789abcdefghijklmn\n\n"
      "{\"sha256\":\"" +
          std::string(64, 'f') +
          "\",\"command\":\"my-plugin --x\",\"env\":[\"A=1\"],\"version\":\"v1.0.0\"}",
      "LIST /v1/sys/plugins/catalog/database\nauthorization: Bearer tok\n\n",
      "PUT /v1/sys/plugins/reload/backend\n\n{\"mounts\":\"a/,sys/auth/b\",\"scope\":\"global\"}",
      "POST /v1/auth/token/create\nx-vault-token: hvs.0123456789abcdefghijklmn\n\n"
      "{\"ttl\":\"1h\",\"meta\":{\"k\":\"v\"},\"display_name\":\"ci\",\"policies\":[\"root\"]}",
      "GET /v1/secret/foo?list=true&x=1&x=2\n\n",
      "LIST /v1/secret/\n\n",
      "POST /v1/secret/foo\ncontent-type: application/x-www-form-urlencoded\n\na=b+c&d=%41",
      "PATCH /v1/secret/foo\ncontent-type: application/merge-patch+json\n\n{\"a\":null}",
      "DELETE /v1/secret/a/../b\n\n",
      "GET /v1/sys/metrics?format=prometheus\naccept: application/openmetrics-text\n\n",
  };
}

}  // namespace bulwark::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulwark;  // NOLINT: a fuzz entry point.
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const http::Request request = fuzz::Parse(input);
  const std::string token(request.Header("x-vault-token").value_or(""));
  absl::StatusOr<api::ApiRequest> decoded = api::DecodeRequest(request);
  if (!decoded.ok()) {
    fuzz::CheckRefusal(decoded.status(), token, input);
    return 0;
  }
  if (!decoded->data.is_object()) fuzz::Fail("data is not an object", api::Dump(decoded->data));
  (void)api::Dump(decoded->data);
  if (decoded->operation == api::Operation::kList && !absl::EndsWith(decoded->path, "/")) {
    fuzz::Fail("a list path without its trailing slash", decoded->path);
  }
  const absl::Status body = fuzz::DecodeBodyOf(*decoded);
  if (!body.ok()) fuzz::CheckRefusal(body, token, input);
  return 0;
}
