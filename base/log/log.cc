// Log levels, record formatting and the two basic sinks (see log.h).
#include "base/log/log.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace bulwark {

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return "TRACE";
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarn:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?????";
}

std::optional<LogLevel> ParseLogLevel(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "trace") return LogLevel::kTrace;
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warn" || lower == "warning") return LogLevel::kWarn;
  if (lower == "error") return LogLevel::kError;
  return std::nullopt;
}

namespace {

// A field value as it appears after "key=": bare when it is a non-empty run of characters that
// need no escaping and no quoting, otherwise quoted and C-escaped.
void AppendValue(std::string& out, absl::string_view value) {
  bool bare = !value.empty();
  for (char c : value) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '"' || c == '\\' || c == '=') {
      bare = false;
      break;
    }
  }
  if (bare) {
    out.append(value.data(), value.size());
  } else {
    absl::StrAppend(&out, "\"", absl::CHexEscape(value), "\"");
  }
}

}  // namespace

std::string FormatLogRecord(const LogRecord& record) {
  std::string out = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", record.time, absl::UTCTimeZone());
  const absl::string_view level = LogLevelName(record.level);
  absl::StrAppend(&out, " ", level, std::string(6 - level.size(), ' '),
                  absl::CHexEscape(record.source), ": ", absl::CHexEscape(record.message));
  for (const auto& [key, value] : record.fields) {
    absl::StrAppend(&out, " ", absl::CHexEscape(key), "=");
    AppendValue(out, value);
  }
  return out;
}

StderrLogSink::StderrLogSink(LogLevel min_level, std::FILE* stream)
    : min_level_(min_level), stream_(stream) {}

void StderrLogSink::Write(const LogRecord& record) {
  if (record.level < min_level_) return;
  std::string line = FormatLogRecord(record);
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(mu_);
  std::fwrite(line.data(), 1, line.size(), stream_);
  std::fflush(stream_);
}

MemoryLogSink::MemoryLogSink(size_t records_max) : records_max_(records_max) {}

void MemoryLogSink::Write(const LogRecord& record) {
  std::lock_guard<std::mutex> lock(mu_);
  if (records_.size() >= records_max_) {
    ++dropped_;
    return;
  }
  records_.push_back(record);
}

std::vector<LogRecord> MemoryLogSink::records() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_;
}

size_t MemoryLogSink::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

void MemoryLogSink::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  records_.clear();
  dropped_ = 0;
}

}  // namespace bulwark
