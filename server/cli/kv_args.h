// The data arguments of `write`, `read`, `delete` and `-options`-style flags, read as Vault's CLI
// reads them (its kv-builder): "k=v"; "k=@file" takes the file's bytes; "k=-" takes all of stdin;
// "k=\@x" is the literal "@x"; "-" alone merges a JSON object from stdin and "@file" alone one
// from a file; a key given twice becomes a list of its values.
#ifndef BULWARK_SERVER_CLI_KV_ARGS_H_
#define BULWARK_SERVER_CLI_KV_ARGS_H_

#include <cstddef>
#include <istream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace bulwark::cli {

// The most bytes read from stdin or one file: Vault's default max_request_size.
inline constexpr size_t kDataBytesMax = 32 << 20;

// Returns a JSON object. InvalidArgument naming the argument's position (never its text, which
// may be a secret) or the file; stdin may be used only once.
absl::StatusOr<nlohmann::json> ParseKeyValueArgs(const std::vector<std::string>& args,
                                                 std::istream& stdin_stream);

}  // namespace bulwark::cli

#endif  // BULWARK_SERVER_CLI_KV_ARGS_H_
