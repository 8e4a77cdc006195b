// hclog JSON formatting and the stderr sink.
#include "sdk/hclog_sink.h"

#include <errno.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace bulwark::sdk {

std::string FormatHclogJson(const LogRecord& record, absl::string_view module, absl::Time now) {
  // nlohmann's object keeps keys sorted; "@level" < "@message" < "@module" < "@timestamp" <
  // any field key, which is also the order hclog writes them in.
  nlohmann::json line = nlohmann::json::object();
  line["@level"] = absl::AsciiStrToLower(LogLevelName(record.level));
  line["@message"] = record.message;
  line["@module"] = std::string(module);
  line["@timestamp"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", now, absl::UTCTimeZone());
  for (const auto& [key, value] : record.fields) {
    if (key.empty() || absl::StartsWith(key, "@")) continue;
    line[key] = value;
  }
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

HclogJsonSink::HclogJsonSink(int fd, std::string module, LogLevel min_level,
                             std::function<absl::Time()> now)
    : fd_(fd), module_(std::move(module)), min_level_(min_level), now_(std::move(now)) {}

void HclogJsonSink::Write(const LogRecord& record) {
  if (record.level < min_level_) return;
  std::string line = FormatHclogJson(record, module_, now_());
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(mu_);
  size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    written += static_cast<size_t>(n);
  }
}

}  // namespace bulwark::sdk
