// How the CLI prints what the API returns, as Vault's CLI prints it: aligned "Key  Value" tables
// by default, indented JSON with -format=json. Pure functions of their input, so tests pin every
// byte.
#ifndef BULWARK_SERVER_CLI_OUTPUT_H_
#define BULWARK_SERVER_CLI_OUTPUT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace bulwark::cli {

// A JSON value as Go's "%v" prints what encoding/json decoded: strings bare, numbers as sent,
// null as "<nil>", arrays "[a b]", objects "map[k:v]" with sorted keys.
std::string GoValue(const nlohmann::json& value);

// A list of strings as Go's "%q" prints a []string: ["a" "b"]. Non-strings print with GoValue.
std::string GoQuotedList(const nlohmann::json& list);

// Whole seconds as Vault prints a TTL: 0 -> "0s", 90 -> "1m30s", 3600 -> "1h", 2764800 -> "768h".
std::string HumanDuration(int64_t seconds);

// Whether Vault's CLI prints the field `key` as a duration ("ttl", "*_ttl", "period", ...).
bool LooksLikeDuration(absl::string_view key);

// Rows as aligned columns (Vault's columnize): cells trimmed, an empty cell printed "n/a", every
// column but a row's last padded to the widest cell, four spaces between. No trailing newline.
std::string Columns(const std::vector<std::vector<std::string>>& rows);

// Columns under a header row and a row of dashes as long as each header.
std::string Table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& rows);

// A Vault response envelope (request_id, lease_*, auth, wrap_info, data) as `vault read` prints
// it: lease rows, token rows, then data keys sorted, under "Key  Value". "" when there is nothing.
std::string SecretTable(const nlohmann::json& secret);

// An object's fields, sorted, under "Key  Value" (durations humanised). "" when it is empty.
std::string MapTable(const nlohmann::json& object);

// "Keys", dashes, then the keys sorted.
std::string KeysTable(std::vector<std::string> keys);

// The envelope's warnings as Vault prints them to stderr, or "" when there are none.
std::string WarningsText(const nlohmann::json& secret);

// Fields of a JSON object that never throw: the default when `object` is not an object, lacks
// `key`, or holds another type there.
std::string StringField(const nlohmann::json& object, const char* key);
int64_t IntField(const nlohmann::json& object, const char* key);
bool BoolField(const nlohmann::json& object, const char* key, bool fallback = false);

// Two-space indented JSON (Go's json.MarshalIndent), invalid UTF-8 replaced. No trailing newline.
std::string PrettyJson(const nlohmann::json& value);

}  // namespace bulwark::cli

#endif  // BULWARK_SERVER_CLI_OUTPUT_H_
