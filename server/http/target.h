// The request target (the "/v1/secret/foo?list=true" of a request line) split into a
// percent-decoded path and an ordered, decoded query. A pure function, so the rules that keep
// hostile paths away from the router are tested and fuzzed without sockets.
#ifndef BULWARK_SERVER_HTTP_TARGET_H_
#define BULWARK_SERVER_HTTP_TARGET_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bulwark::http {

struct Target {
  std::string path;  // Decoded; starts with "/"; no "." or ".." segment; no control character.
  // In order of appearance; "+" decodes to a space; "a" alone gives {"a", ""}; empty pieces
  // ("a=1&&b=2") are skipped.
  std::vector<std::pair<std::string, std::string>> query;
};

// Parses an origin-form request target (RFC 9112 §3.2.1: absolute path, optional "?query").
// Every byte of `target` must be visible ASCII (0x21-0x7e) other than "#"; "%" must be followed
// by two hex digits; no decoded byte of path or query may be a control character (0x00-0x1f,
// 0x7f); no segment of the decoded path may be "." or ".." (so "%2e%2e" and "..%2f" are caught
// too). Decoding "%2f" yields "/", as Go's net/http does for Vault.
// Errors: InvalidArgument, naming the problem and its byte offset. The message never repeats
// the target, which may carry data a client considers secret.
absl::StatusOr<Target> ParseTarget(absl::string_view target);

}  // namespace bulwark::http

#endif  // BULWARK_SERVER_HTTP_TARGET_H_
