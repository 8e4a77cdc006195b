// A LogSink that writes hclog JSON lines, the format go-plugin hosts parse from a plugin's
// stderr and re-log at the line's level:
//   {"@level":"info","@message":"...","@module":"kv","@timestamp":"2026-01-02T03:04:05.000006Z"}
#ifndef BULWARK_SDK_HCLOG_SINK_H_
#define BULWARK_SDK_HCLOG_SINK_H_

#include <functional>
#include <mutex>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/log/log.h"

namespace bulwark::sdk {

// Formats `record` as one hclog JSON line without the trailing '\n'. `now` is used as the
// timestamp (UTC, microseconds, the layout go-plugin's host parses:
// "2006-01-02T15:04:05.000000Z07:00"); record.time is ignored. Fields become top-level keys
// with string values; a field named like an hclog key ("@level", ...) is dropped so it cannot
// forge one. Bytes that are not UTF-8 are replaced with U+FFFD.
std::string FormatHclogJson(const LogRecord& record, absl::string_view module, absl::Time now);

// Writes records at or above `min_level` to file descriptor `fd` (stderr in a plugin), one
// write(2) per line so concurrent records never interleave. Thread-safe. Write errors are
// ignored: a plugin whose host stopped reading stderr must keep serving.
class HclogJsonSink final : public LogSink {
 public:
  HclogJsonSink(int fd, std::string module, LogLevel min_level,
                std::function<absl::Time()> now = absl::Now);
  void Write(const LogRecord& record) override;

 private:
  const int fd_;
  const std::string module_;
  const LogLevel min_level_;
  const std::function<absl::Time()> now_;
  std::mutex mu_;
};

}  // namespace bulwark::sdk

#endif  // BULWARK_SDK_HCLOG_SINK_H_
