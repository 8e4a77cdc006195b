// Tests of the logging seam: level names, record formatting (one line, escaped), the memory sink
// limit, and hclog JSON / text / raw line parsing with hostile input.
#include "base/log/log.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/log/hclog_line.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(LogLevelTest, NamesAndParsing) {
  EXPECT_EQ(LogLevelName(LogLevel::kWarn), "WARN");
  EXPECT_EQ(ParseLogLevel("TRACE"), LogLevel::kTrace);
  EXPECT_EQ(ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(ParseLogLevel("Info"), LogLevel::kInfo);
  EXPECT_EQ(ParseLogLevel("warning"), LogLevel::kWarn);
  EXPECT_EQ(ParseLogLevel("error"), LogLevel::kError);
  EXPECT_EQ(ParseLogLevel("fatal"), std::nullopt);
  EXPECT_EQ(ParseLogLevel(""), std::nullopt);
}

TEST(FormatLogRecordTest, OneEscapedLine) {
  LogRecord record;
  record.level = LogLevel::kWarn;
  record.time = absl::FromUnixMillis(1767225600123);
  record.source = "plugin:kv[12]";
  record.message = "two\nlines";
  record.fields = {{"k", "v"}, {"spaced", "a b"}, {"empty", ""}, {"nl", "x\ny"}};
  EXPECT_EQ(FormatLogRecord(record),
            "2026-01-01T00:00:00.123Z WARN  plugin:kv[12]: two\\nlines k=v spaced=\"a b\" "
            "empty=\"\" nl=\"x\\ny\"");
}

TEST(StderrLogSinkTest, FiltersByLevelAndWritesLines) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    StderrLogSink sink(LogLevel::kInfo, file);
    LogRecord record;
    record.source = "s";
    record.level = LogLevel::kDebug;
    record.message = "hidden";
    sink.Write(record);
    record.level = LogLevel::kError;
    record.message = "shown";
    sink.Write(record);
  }
  std::rewind(file);
  char buffer[256] = {};
  const size_t n = std::fread(buffer, 1, sizeof(buffer) - 1, file);
  std::fclose(file);
  const std::string text(buffer, n);
  EXPECT_EQ(text.find("hidden"), std::string::npos);
  EXPECT_NE(text.find("ERROR s: shown\n"), std::string::npos) << text;
}

TEST(MemoryLogSinkTest, KeepsAtMostTheLimit) {
  MemoryLogSink sink(2);
  for (int i = 0; i < 5; ++i) {
    LogRecord record;
    record.message = absl::StrCat(i);
    sink.Write(record);
  }
  ASSERT_EQ(sink.records().size(), 2u);
  EXPECT_EQ(sink.records()[1].message, "1");
  EXPECT_EQ(sink.dropped(), 3u);
  sink.Clear();
  EXPECT_TRUE(sink.records().empty());
}

TEST(HclogLineTest, JsonLine) {
  const HclogLine line =
      ParseHclogLine(R"({"@level":"debug","@message":"mounting","@module":"kv","@timestamp":)"
                     R"("2024-01-01T00:00:00.000000Z","path":"secret/","n":3,"ok":true})");
  EXPECT_EQ(line.format, HclogFormat::kJson);
  EXPECT_EQ(line.level, LogLevel::kDebug);
  EXPECT_EQ(line.message, "mounting");
  EXPECT_THAT(line.fields,
              ElementsAre(Pair("module", "kv"), Pair("timestamp", "2024-01-01T00:00:00.000000Z"),
                          Pair("n", "3"), Pair("ok", "true"), Pair("path", "secret/")));
}

TEST(HclogLineTest, JsonWithoutKnownLevelIsRaw) {
  for (const char* text : {R"({"@message":"x"})", R"({"@level":"loud","@message":"x"})",
                           R"({"@level":3})", R"({"@level":"info")", R"(["@level","info"])"}) {
    const HclogLine line = ParseHclogLine(text, LogLevel::kDebug);
    EXPECT_EQ(line.format, HclogFormat::kRaw) << text;
    EXPECT_EQ(line.level, LogLevel::kDebug) << text;
    EXPECT_EQ(line.message, text);
  }
}

TEST(HclogLineTest, JsonLimits) {
  // Deep nesting is refused before parsing, so it cannot exhaust the stack.
  std::string deep = R"({"@level":"info","x":)";
  deep += std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(ParseHclogLine(deep).format, HclogFormat::kRaw);
  // Brackets inside strings do not count.
  const std::string brackets =
      absl::StrCat(R"({"@level":"info","@message":")", std::string(1000, '['), R"("})");
  EXPECT_EQ(ParseHclogLine(brackets).format, HclogFormat::kJson);

  std::string many = R"({"@level":"warn")";
  for (size_t i = 0; i < kHclogFieldsMax + 10; ++i)
    absl::StrAppend(&many, ",\"k", 1000 + i, "\":1");
  many += "}";
  const HclogLine parsed = ParseHclogLine(many);
  ASSERT_EQ(parsed.fields.size(), kHclogFieldsMax + 1);
  EXPECT_EQ(parsed.fields.back(), std::make_pair(std::string("fields_dropped"), std::string("10")));

  const std::string big =
      absl::StrCat(R"({"@level":"info","v":")", std::string(5000, 'a'), R"("})");
  const HclogLine cut = ParseHclogLine(big);
  ASSERT_EQ(cut.fields.size(), 1u);
  EXPECT_EQ(cut.fields[0].second,
            absl::StrCat(std::string(kHclogFieldValueBytesMax, 'a'), "...(5000 bytes)"));

  // Invalid UTF-8 in a non-string value is replaced rather than thrown on.
  const HclogLine utf = ParseHclogLine("{\"@level\":\"info\",\"v\":[\"\xff\"]}");
  EXPECT_EQ(utf.format, HclogFormat::kRaw);  // nlohmann rejects invalid UTF-8 while parsing.
}

TEST(HclogLineTest, TextLines) {
  HclogLine line = ParseHclogLine("[WARN]  low disk");
  EXPECT_EQ(line.format, HclogFormat::kText);
  EXPECT_EQ(line.level, LogLevel::kWarn);
  EXPECT_EQ(line.message, "low disk");
  EXPECT_TRUE(line.fields.empty());

  line = ParseHclogLine("2024-01-01T00:00:00.000Z [INFO]  kv: started: version=1");
  EXPECT_EQ(line.format, HclogFormat::kText);
  EXPECT_EQ(line.level, LogLevel::kInfo);
  EXPECT_EQ(line.message, "kv: started: version=1");
  EXPECT_THAT(line.fields, ElementsAre(Pair("timestamp", "2024-01-01T00:00:00.000Z")));

  line = ParseHclogLine("2024-01-01T00:00:00.000+0100 [ERROR] boom");
  EXPECT_EQ(line.level, LogLevel::kError);
  EXPECT_EQ(line.message, "boom");

  line = ParseHclogLine("[TRACE]x");
  EXPECT_EQ(line.level, LogLevel::kTrace);
  EXPECT_EQ(line.message, "x");
}

TEST(HclogLineTest, RawLines) {
  for (const char* text : {"hello", "", "[NOTICE] x", "12 apples [INFO] x", "2024-01-01T00:00:00Z",
                           " [INFO] leading space"}) {
    const HclogLine line = ParseHclogLine(text, LogLevel::kInfo);
    EXPECT_EQ(line.format, HclogFormat::kRaw) << text;
    EXPECT_EQ(line.level, LogLevel::kInfo);
    EXPECT_EQ(line.message, text);
  }
}

}  // namespace
}  // namespace bulwark
