// Fast paths for the JSON that crosses the plugin boundary (request and response data): a
// simdjson parse into nlohmann::json, and a compact writer, each giving exactly what nlohmann's
// own parse and dump(-1, ' ', false, replace) give. nlohmann's parser and serializer handle one
// byte at a time (~100 MB/s); these move long strings at memory speed. See
// docs/performance.md, "Transport: completion queues and opaque payloads (issue 16)".
#ifndef BULWARK_BASE_JSON_FAST_JSON_H_
#define BULWARK_BASE_JSON_FAST_JSON_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace bulwark {

// Parses `text` (one JSON document) with simdjson and builds the same nlohmann::json that
// nlohmann::json::parse(text) builds: non-negative integers unsigned, negative ones signed,
// other numbers double, the last of duplicate keys kept. Returns nullopt when the text is not
// JSON, and also for the few inputs whose nlohmann reading simdjson cannot reproduce exactly
// (\u escapes, "-0", integers beyond 64 bits), and when arrays and objects nest more than
// `depth_max` deep: the caller then runs its depth check (json_depth.h) and nlohmann's parser,
// which also give the error message. So a document this returns was no deeper than depth_max,
// and nothing here recursed deeper than that.
std::optional<nlohmann::json> ParseJsonFast(absl::string_view text, size_t depth_max);

// Appends `value` as compact JSON, byte for byte what
// value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) returns: strings that
// are not UTF-8 get U+FFFD for their bad bytes, nothing else is escaped beyond '"', '\' and the
// control characters.
void AppendJsonCompact(const nlohmann::json& value, std::string* out);
std::string DumpJsonCompact(const nlohmann::json& value);

}  // namespace bulwark

#endif  // BULWARK_BASE_JSON_FAST_JSON_H_
