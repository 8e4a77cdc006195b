// Table and JSON output for the CLI (see output.h).
#include "server/cli/output.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace bulwark::cli {
namespace {

using nlohmann::json;

// Display width: UTF-8 code points (continuation bytes do not count).
size_t Width(absl::string_view s) {
  return std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; });
}

// Go's strconv.Quote for the ASCII a token or policy name holds; other bytes as \x escapes.
std::string GoQuote(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      absl::StrAppend(&out, "\\", std::string(1, c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      absl::StrAppend(&out, "\\x", std::string(1, kHex[c >> 4]), std::string(1, kHex[c & 15]));
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// The value of field `key` for a table cell: durations humanised when they are whole seconds.
std::string Cell(const std::string& key, const json& value) {
  if (LooksLikeDuration(key) && value.is_number_integer()) {
    return HumanDuration(value.get<int64_t>());
  }
  return GoValue(value);
}

std::vector<std::vector<std::string>> SortedFieldRows(const json& object) {
  std::vector<std::vector<std::string>> rows;
  if (!object.is_object()) return rows;
  for (auto it = object.begin(); it != object.end(); ++it) {  // nlohmann::json sorts its keys.
    rows.push_back({it.key(), Cell(it.key(), it.value())});
  }
  return rows;
}

}  // namespace

std::string GoValue(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "<nil>";
    case json::value_t::string:
      return value.get<std::string>();
    case json::value_t::array: {
      std::vector<std::string> parts;
      for (const json& v : value) parts.push_back(GoValue(v));
      return absl::StrCat("[", absl::StrJoin(parts, " "), "]");
    }
    case json::value_t::object: {
      std::vector<std::string> parts;
      for (auto it = value.begin(); it != value.end(); ++it) {
        parts.push_back(absl::StrCat(it.key(), ":", GoValue(it.value())));
      }
      return absl::StrCat("map[", absl::StrJoin(parts, " "), "]");
    }
    default:
      return value.dump();
  }
}

std::string GoQuotedList(const json& list) {
  std::vector<std::string> parts;
  if (list.is_array()) {
    for (const json& v : list)
      parts.push_back(v.is_string() ? GoQuote(v.get<std::string>()) : GoValue(v));
  }
  return absl::StrCat("[", absl::StrJoin(parts, " "), "]");
}

std::string HumanDuration(int64_t seconds) {
  if (seconds == 0) return "0s";
  std::string sign = seconds < 0 ? "-" : "";
  uint64_t s = seconds < 0 ? -static_cast<uint64_t>(seconds) : seconds;
  const uint64_t h = s / 3600, m = s / 60 % 60, sec = s % 60;
  // Go's time.Duration.String(), then the "0m"/"0s" tails dropped as Vault does.
  std::string out = sign;
  if (h > 0) absl::StrAppend(&out, h, "h");
  if (h > 0 || m > 0) absl::StrAppend(&out, m, "m");
  absl::StrAppend(&out, sec, "s");
  if (absl::EndsWith(out, "m0s")) out.resize(out.size() - 2);
  if (size_t at = out.find("h0m"); at != std::string::npos) out.erase(at + 1, 2);
  return out;
}

bool LooksLikeDuration(absl::string_view k) {
  return k == "period" || absl::EndsWith(k, "_period") || k == "ttl" || absl::EndsWith(k, "_ttl") ||
         k == "duration" || absl::EndsWith(k, "_duration") || k == "lease_max" || k == "ttl_max";
}

std::string Columns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    std::vector<std::string> trimmed;
    for (const std::string& cell : row) {
      std::string t(absl::StripAsciiWhitespace(cell));
      trimmed.push_back(t.empty() ? "n/a" : t);
      if (widths.size() < trimmed.size()) widths.push_back(0);
      widths[trimmed.size() - 1] = std::max(widths[trimmed.size() - 1], Width(trimmed.back()));
    }
    cells.push_back(std::move(trimmed));
  }
  std::vector<std::string> lines;
  for (const auto& row : cells) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - Width(row[i]) + 4, ' ');
    }
    lines.push_back(std::move(line));
  }
  return absl::StrJoin(lines, "\n");
}

std::string Table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::vector<std::string>> all = {header, {}};
  for (const std::string& h : header) all[1].push_back(std::string(Width(h), '-'));
  all.insert(all.end(), rows.begin(), rows.end());
  return Columns(all);
}

std::string SecretTable(const json& secret) {
  if (!secret.is_object()) return "";
  std::vector<std::vector<std::string>> rows;
  const int64_t lease_duration = IntField(secret, "lease_duration");
  if (lease_duration > 0) {
    if (std::string lease_id = StringField(secret, "lease_id"); !lease_id.empty()) {
      rows.push_back({"lease_id", lease_id});
      rows.push_back({"lease_duration", HumanDuration(lease_duration)});
      rows.push_back({"lease_renewable", GoValue(secret.value("renewable", json(false)))});
    } else {
      rows.push_back({"refresh_interval", HumanDuration(lease_duration)});
    }
  }
  if (auto auth = secret.find("auth"); auth != secret.end() && auth->is_object()) {
    const int64_t token_duration = IntField(*auth, "lease_duration");
    rows.push_back({"token", StringField(*auth, "client_token")});
    rows.push_back({"token_accessor", StringField(*auth, "accessor")});
    rows.push_back(
        {"token_duration", token_duration == 0 ? "\u221e" : HumanDuration(token_duration)});
    rows.push_back({"token_renewable", GoValue(auth->value("renewable", json(false)))});
    rows.push_back({"token_policies", GoQuotedList(auth->value("token_policies", json()))});
    rows.push_back({"identity_policies", GoQuotedList(auth->value("identity_policies", json()))});
    rows.push_back({"policies", GoQuotedList(auth->value("policies", json()))});
    if (auto meta = auth->find("metadata"); meta != auth->end() && meta->is_object()) {
      for (auto it = meta->begin(); it != meta->end(); ++it) {
        rows.push_back({absl::StrCat("token_meta_", it.key()), GoValue(it.value())});
      }
    }
  }
  if (auto wrap = secret.find("wrap_info"); wrap != secret.end() && wrap->is_object()) {
    rows.push_back({"wrapping_token:", StringField(*wrap, "token")});
    rows.push_back({"wrapping_accessor:", StringField(*wrap, "accessor")});
    rows.push_back({"wrapping_token_ttl:", HumanDuration(IntField(*wrap, "ttl"))});
    rows.push_back({"wrapping_token_creation_time:", StringField(*wrap, "creation_time")});
    rows.push_back({"wrapping_token_creation_path:", StringField(*wrap, "creation_path")});
  }
  if (auto data = secret.find("data"); data != secret.end()) {
    for (auto& row : SortedFieldRows(*data)) rows.push_back(std::move(row));
  }
  if (rows.empty()) return "";
  return Table({"Key", "Value"}, rows);
}

std::string MapTable(const json& object) {
  std::vector<std::vector<std::string>> rows = SortedFieldRows(object);
  if (rows.empty()) return "";
  return Table({"Key", "Value"}, rows);
}

std::string KeysTable(std::vector<std::string> keys) {
  std::sort(keys.begin(), keys.end());
  std::vector<std::vector<std::string>> rows;
  for (std::string& k : keys) rows.push_back({std::move(k)});
  return Table({"Keys"}, rows);
}

std::string WarningsText(const json& secret) {
  auto warnings = secret.is_object() ? secret.find("warnings") : secret.end();
  if (!secret.is_object() || warnings == secret.end() || !warnings->is_array() ||
      warnings->empty()) {
    return "";
  }
  std::string out = "WARNING! The following warnings were returned from Vault:\n\n";
  for (const json& w : *warnings) absl::StrAppend(&out, "  * ", GoValue(w), "\n\n");
  return out;
}

std::string StringField(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

int64_t IntField(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

bool BoolField(const json& object, const char* key, bool fallback) {
  auto it = object.find(key);
  return it != object.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

std::string PrettyJson(const json& value) {
  return value.dump(2, ' ', false, json::error_handler_t::replace);
}

}  // namespace bulwark::cli
