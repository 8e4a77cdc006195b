// The logging seam: structured records and the sinks they go to. Core code never writes to
// stderr itself; it hands LogRecords to a LogSink the composition root chose.
#ifndef BULWARK_BASE_LOG_LOG_H_
#define BULWARK_BASE_LOG_LOG_H_

#include <cstddef>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace bulwark {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };

// "TRACE", "DEBUG", "INFO", "WARN", "ERROR".
absl::string_view LogLevelName(LogLevel level);

// Parses a level as hclog spells it (hclog.LevelFromString): "trace", "debug", "info", "warn"
// or "warning", "error", in any letter case. nullopt for anything else.
std::optional<LogLevel> ParseLogLevel(absl::string_view name);

// One log event. Never put secrets (request data, env values, tokens, keys) in any field.
struct LogRecord {
  LogLevel level = LogLevel::kInfo;
  absl::Time time;     // When the host received or made the record (Clock::WallNow).
  std::string source;  // Who speaks, e.g. "plugin:kv[1234]".
  std::string message;
  std::vector<std::pair<std::string, std::string>> fields;  // In the order they were added.
};

// Formats `record` as one line without a trailing '\n':
//   2026-01-01T00:00:00.000Z INFO  plugin:kv[1234]: message key=value other="a b"
// Control characters, quotes and non-ASCII bytes in the message, the source and field keys and
// values are C-escaped, so a record can never forge a second line.
std::string FormatLogRecord(const LogRecord& record);

// Where records go. Implementations are thread-safe: a sink may be shared by components on
// different threads (the event loop and, in production, gRPC's threads).
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Write(const LogRecord& record) = 0;
};

// Writes records at or above `min_level` to a stdio stream (stderr by default), one line each,
// formatted by FormatLogRecord, with one fwrite per record so concurrent records never
// interleave within a line.
class StderrLogSink final : public LogSink {
 public:
  explicit StderrLogSink(LogLevel min_level = LogLevel::kInfo, std::FILE* stream = stderr);
  void Write(const LogRecord& record) override;

 private:
  const LogLevel min_level_;
  std::FILE* const stream_;
  std::mutex mu_;
};

// Most records a MemoryLogSink keeps by default; later ones are counted, not stored.
inline constexpr size_t kMemoryLogSinkRecordsDefaultMax = 100000;

// Keeps records in memory, for tests. Thread-safe.
class MemoryLogSink final : public LogSink {
 public:
  explicit MemoryLogSink(size_t records_max = kMemoryLogSinkRecordsDefaultMax);
  void Write(const LogRecord& record) override;

  // A copy of the records kept so far, in the order they were written.
  std::vector<LogRecord> records() const;
  // Records not kept because records_max was reached.
  size_t dropped() const;
  void Clear();

 private:
  const size_t records_max_;
  mutable std::mutex mu_;
  std::vector<LogRecord> records_;  // Guarded by mu_.
  size_t dropped_ = 0;              // Guarded by mu_.
};

}  // namespace bulwark

#endif  // BULWARK_BASE_LOG_LOG_H_
