// Reads the level, message and fields out of one line a plugin wrote, as go-plugin's host does
// for hclog output: hclog JSON lines, hclog text lines ("[LEVEL] msg", optionally after a
// timestamp), and anything else as raw text.
#ifndef BULWARK_BASE_LOG_HCLOG_LINE_H_
#define BULWARK_BASE_LOG_HCLOG_LINE_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "base/log/log.h"

namespace bulwark {

// Limits on what one JSON line may contribute: a plugin controls these bytes.
inline constexpr size_t kHclogFieldsMax = 64;             // Further keys are dropped (counted).
inline constexpr size_t kHclogFieldValueBytesMax = 1024;  // Longer values are cut.
inline constexpr size_t kHclogJsonDepthMax = 16;          // Deeper JSON is treated as raw text.

enum class HclogFormat { kJson, kText, kRaw };

struct HclogLine {
  HclogFormat format = HclogFormat::kRaw;
  LogLevel level = LogLevel::kInfo;
  std::string message;
  // JSON: every key but @level and @message, in key order, with the hclog meta keys renamed
  // ("@timestamp" -> "timestamp", "@module" -> "module", "@caller" -> "caller"); string values
  // as they are, other values as compact JSON. When keys were dropped, a last field
  // "fields_dropped" says how many. Text: "timestamp" when the line had one.
  std::vector<std::pair<std::string, std::string>> fields;
};

// Parses `line` (without its line break). Recognised forms:
//   JSON  an object whose "@level" is a string ParseLogLevel accepts; "@message" (a string, or
//         empty when absent) is the message. go-plugin's host also requires "@timestamp" to
//         parse; bulwark keeps such lines structured and passes the timestamp on as a field.
//   Text  "[TRACE]", "[DEBUG]", "[INFO]", "[WARN]" or "[ERROR]", optionally preceded by one
//         timestamp token (digits, 'T', 'Z', ':', '.', '+', '-') and spaces, as hclog's text
//         format writes "2024-01-01T00:00:00.000Z [INFO]  name: msg: k=v". The message is what
//         follows the bracket, leading spaces removed.
//   Raw   anything else: the whole line at `raw_level`.
// Never fails; never throws.
HclogLine ParseHclogLine(absl::string_view line, LogLevel raw_level = LogLevel::kInfo);

}  // namespace bulwark

#endif  // BULWARK_BASE_LOG_HCLOG_LINE_H_
