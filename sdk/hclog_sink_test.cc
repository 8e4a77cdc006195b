// The hclog JSON lines a plugin writes: exact keys, go-plugin's timestamp layout, and that the
// host-side parser (base/log) reads them back at the right level.
#include "sdk/hclog_sink.h"

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>

#include "base/log/hclog_line.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::sdk {
namespace {

LogRecord Record(LogLevel level, std::string message,
                 std::vector<std::pair<std::string, std::string>> fields = {}) {
  LogRecord record;
  record.level = level;
  record.message = std::move(message);
  record.fields = std::move(fields);
  return record;
}

TEST(FormatHclogJsonTest, ExactLine) {
  const absl::Time t = absl::FromUnixMicros(1767323045000006);  // 2026-01-02T03:04:05.000006Z
  EXPECT_EQ(FormatHclogJson(Record(LogLevel::kWarn, "hello \"x\"", {{"id", "m1"}}), "kv", t),
            R"({"@level":"warn","@message":"hello \"x\"","@module":"kv",)"
            R"("@timestamp":"2026-01-02T03:04:05.000006Z","id":"m1"})");
}

TEST(FormatHclogJsonTest, FieldsCannotForgeHclogKeysOrLines) {
  const std::string line = FormatHclogJson(
      Record(LogLevel::kInfo, "a\nb", {{"@level", "error"}, {"", "x"}, {"k", "bad\xff"}}), "m",
      absl::UnixEpoch());
  EXPECT_EQ(line.find('\n'), std::string::npos);
  nlohmann::json parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["@level"], "info");
  EXPECT_EQ(parsed["@message"], "a\nb");
  EXPECT_EQ(parsed["k"], "bad\xEF\xBF\xBD");
  EXPECT_EQ(parsed.size(), 5u);
}

TEST(FormatHclogJsonTest, HostParserReadsItBack) {
  for (LogLevel level :
       {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    HclogLine parsed = ParseHclogLine(
        FormatHclogJson(Record(level, "msg", {{"k", "v"}}), "kv", absl::Now()), LogLevel::kInfo);
    EXPECT_EQ(parsed.format, HclogFormat::kJson);
    EXPECT_EQ(parsed.level, level);
    EXPECT_EQ(parsed.message, "msg");
  }
}

TEST(HclogJsonSinkTest, WritesWholeLinesAtOrAboveTheLevel) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  {
    HclogJsonSink sink(fds[1], "kv", LogLevel::kInfo, [] { return absl::UnixEpoch(); });
    sink.Write(Record(LogLevel::kDebug, "dropped"));
    sink.Write(Record(LogLevel::kError, "kept"));
  }
  ::close(fds[1]);
  std::string out;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buffer, sizeof(buffer))) > 0) out.append(buffer, n);
  ::close(fds[0]);
  EXPECT_EQ(out, R"({"@level":"error","@message":"kept","@module":"kv",)"
                 R"("@timestamp":"1970-01-01T00:00:00.000000Z"})"
                 "\n");
}

}  // namespace
}  // namespace bulwark::sdk
