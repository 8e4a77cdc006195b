// hclog line parsing (see hclog_line.h). JSON goes through nlohmann/json in its non-throwing
// mode, after a cheap depth scan so that hostile nesting cannot exhaust the stack.
#include "base/log/hclog_line.h"

#include <nlohmann/json.hpp>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/json/json_depth.h"

namespace bulwark {

namespace {

std::string CutValue(std::string value) {
  if (value.size() > kHclogFieldValueBytesMax) {
    const size_t total = value.size();
    value.resize(kHclogFieldValueBytesMax);
    absl::StrAppend(&value, "...(", total, " bytes)");
  }
  return value;
}

std::string FieldName(const std::string& key) {
  if (key == "@timestamp") return "timestamp";
  if (key == "@module") return "module";
  if (key == "@caller") return "caller";
  return key;
}

std::optional<HclogLine> ParseJson(absl::string_view line) {
  absl::string_view trimmed = absl::StripAsciiWhitespace(line);
  if (trimmed.empty() || trimmed.front() != '{') return std::nullopt;
  if (FindJsonNestingBeyond(trimmed, kHclogJsonDepthMax).has_value()) return std::nullopt;
  const nlohmann::json doc = nlohmann::json::parse(trimmed.begin(), trimmed.end(), nullptr,
                                                   /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
  const auto level_it = doc.find("@level");
  if (level_it == doc.end() || !level_it->is_string()) return std::nullopt;
  const std::optional<LogLevel> level = ParseLogLevel(level_it->get<std::string>());
  if (!level.has_value()) return std::nullopt;

  HclogLine out;
  out.format = HclogFormat::kJson;
  out.level = *level;
  const auto message_it = doc.find("@message");
  if (message_it != doc.end()) {
    out.message = message_it->is_string()
                      ? message_it->get<std::string>()
                      : message_it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  size_t dropped = 0;
  // nlohmann::json objects are std::maps: keys come out sorted, so the output is deterministic.
  for (const auto& [key, value] : doc.items()) {
    if (key == "@level" || key == "@message") continue;
    if (out.fields.size() >= kHclogFieldsMax) {
      ++dropped;
      continue;
    }
    std::string text = value.is_string()
                           ? value.get<std::string>()
                           : value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out.fields.emplace_back(FieldName(key), CutValue(std::move(text)));
  }
  if (dropped > 0) out.fields.emplace_back("fields_dropped", absl::StrCat(dropped));
  return out;
}

bool IsTimestampChar(char c) {
  return absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == 'T' || c == 'Z' || c == ':' ||
         c == '.' || c == '+' || c == '-';
}

std::optional<HclogLine> ParseText(absl::string_view line) {
  absl::string_view rest = line;
  std::string timestamp;
  if (!rest.empty() && absl::ascii_isdigit(static_cast<unsigned char>(rest.front()))) {
    size_t end = 0;
    while (end < rest.size() && IsTimestampChar(rest[end])) ++end;
    if (end == rest.size() || rest[end] != ' ') return std::nullopt;
    timestamp = std::string(rest.substr(0, end));
    rest.remove_prefix(end);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  }
  static constexpr std::pair<absl::string_view, LogLevel> kPrefixes[] = {
      {"[TRACE]", LogLevel::kTrace}, {"[DEBUG]", LogLevel::kDebug}, {"[INFO]", LogLevel::kInfo},
      {"[WARN]", LogLevel::kWarn},   {"[ERROR]", LogLevel::kError},
  };
  for (const auto& [prefix, level] : kPrefixes) {
    if (!absl::ConsumePrefix(&rest, prefix)) continue;
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    HclogLine out;
    out.format = HclogFormat::kText;
    out.level = level;
    out.message = std::string(rest);
    if (!timestamp.empty()) out.fields.emplace_back("timestamp", std::move(timestamp));
    return out;
  }
  return std::nullopt;
}

}  // namespace

HclogLine ParseHclogLine(absl::string_view line, LogLevel raw_level) {
  if (std::optional<HclogLine> json = ParseJson(line)) return *std::move(json);
  if (std::optional<HclogLine> text = ParseText(line)) return *std::move(text);
  HclogLine raw;
  raw.format = HclogFormat::kRaw;
  raw.level = raw_level;
  raw.message = std::string(line);
  return raw;
}

}  // namespace bulwark
