#include "base/json/fast_json.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/json/json_depth.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

using ::testing::Optional;

constexpr size_t kDepth = 64;

// Same value and the same nlohmann types all the way down (operator== says 1 == 1.0 and
// 0u == 0, which a backend calling is_number_unsigned() would see differently).
void ExpectSameTree(const nlohmann::json& got, const nlohmann::json& want, const std::string& at) {
  ASSERT_EQ(got.type(), want.type()) << "at " << at;
  if (want.is_object()) {
    ASSERT_EQ(got.size(), want.size()) << "at " << at;
    for (const auto& [key, item] : want.items()) {
      ASSERT_TRUE(got.contains(key)) << "at " << at << " missing " << key;
      ExpectSameTree(got.at(key), item, absl::StrCat(at, "/", key));
    }
  } else if (want.is_array()) {
    ASSERT_EQ(got.size(), want.size()) << "at " << at;
    for (size_t i = 0; i < want.size(); ++i) {
      ExpectSameTree(got.at(i), want.at(i), absl::StrCat(at, "/", i));
    }
  } else {
    EXPECT_EQ(got.dump(), want.dump()) << "at " << at;
  }
}

std::string NlohmannDump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

TEST(ParseJsonFastTest, ReadsWhatNlohmannReads) {
  const std::vector<std::string> texts = {
      R"({"value":"xxxx"})",
      R"({})",
      R"([])",
      "null",
      "true",
      R"("just a string")",
      R"({"a":1,"b":-2,"c":1.5,"d":1e3,"e":18446744073709551615,"f":9223372036854775807})",
      R"({"neg":-9223372036854775808,"small":1E-300,"zero":0,"zero_float":0.0})",
      R"({"dup":1,"dup":"second"})",
      R"({"nested":{"list":[1,[2,[3,{"x":null}]],"s",true,false]}})",
      " \t\r\n{ \"spaced\" : [ 1 , 2 ] } \n",
      R"({"escapes":"q\" b\\ s\/ \b\f\n\r\t"})",
      "{\"utf8\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"}",
      R"({"k":"a","K":"b","":"empty key"})",
  };
  for (const std::string& text : texts) {
    SCOPED_TRACE(text);
    const std::optional<nlohmann::json> fast = ParseJsonFast(text, kDepth);
    ASSERT_TRUE(fast.has_value());
    ExpectSameTree(*fast, nlohmann::json::parse(text), "");
  }
}

TEST(ParseJsonFastTest, LeavesWhatItCannotReadExactlyToNlohmann) {
  // Not JSON: nlohmann gives the caller its error.
  for (const std::string text :
       {"", "{", R"({"a":})", "[1,]", R"({"a":1}x)", "{'a':1}", "nul", "\"\xff\"", "01"}) {
    SCOPED_TRACE(text);
    EXPECT_EQ(ParseJsonFast(text, kDepth), std::nullopt);
  }
  // JSON that simdjson would read differently from nlohmann (or not at all).
  for (const std::string text : {R"({"a":"\u00e9"})", R"({"a":"\ud800"})", R"({"a":-0})",
                                 R"({"a":123456789012345678901234567890})"}) {
    SCOPED_TRACE(text);
    EXPECT_EQ(ParseJsonFast(text, kDepth), std::nullopt);
  }
}

TEST(ParseJsonFastTest, ReadsLargeDocumentsWithAParserOfTheirOwn) {
  const std::string big(3 << 20, 'x');
  const std::string text = absl::StrCat(R"({"value":")", big, R"("})");
  EXPECT_THAT(ParseJsonFast(text, kDepth), Optional(nlohmann::json{{"value", big}}));
  // And the thread's parser still works after.
  EXPECT_THAT(ParseJsonFast(R"({"a":1})", kDepth), Optional(nlohmann::json{{"a", 1}}));
}

// The same bound as FindJsonNestingBeyond: depth_max levels parse, one more does not.
TEST(ParseJsonFastTest, RefusesWhatNestsDeeperThanTheBound) {
  for (const size_t depth_max : {size_t{1}, size_t{2}, size_t{5}, size_t{256}}) {
    for (const size_t levels : {depth_max - 1, depth_max, depth_max + 1}) {
      if (levels == 0) continue;
      std::string text;
      for (size_t i = 0; i < levels; ++i) text += i % 2 == 0 ? "[" : R"({"k":)";
      text += "1";
      for (size_t i = levels; i > 0; --i) text += (i - 1) % 2 == 0 ? "]" : "}";
      SCOPED_TRACE(absl::StrCat(levels, " levels, bound ", depth_max));
      const bool within = !FindJsonNestingBeyond(text, depth_max).has_value();
      EXPECT_EQ(within, levels <= depth_max);
      const std::optional<nlohmann::json> fast = ParseJsonFast(text, depth_max);
      EXPECT_EQ(fast.has_value(), within);
      if (fast.has_value()) {
        EXPECT_EQ(*fast, nlohmann::json::parse(text));
      }
    }
  }
}

TEST(DumpJsonCompactTest, WritesWhatNlohmannWrites) {
  std::string every_byte;
  for (int c = 0; c < 256; ++c) every_byte.push_back(static_cast<char>(c));
  std::string control_run;
  for (int c = 0; c < 0x20; ++c) control_run.push_back(static_cast<char>(c));
  const std::vector<nlohmann::json> values = {
      nullptr,
      true,
      false,
      0,
      -1,
      uint64_t{18446744073709551615u},
      int64_t{-9223372036854775807 - 1},
      1.5,
      1.0,
      -0.0,
      1e300,
      0.1,
      std::numeric_limits<double>::infinity(),
      "",
      "plain",
      "q\" b\\ / \b\f\n\r\t \x7f",
      control_run,
      absl::StrCat(std::string(40, 'a'), "\"", std::string(17, 'b'), "\\", std::string(3, 'c')),
      "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80",
      every_byte,                   // Not UTF-8: nlohmann's replacement.
      "ok \xc3 then \xff\xfe bad",  // Truncated and invalid sequences.
      nlohmann::json::object(),
      nlohmann::json::array(),
      {{"b", 1}, {"a", {1, "two", nullptr}}, {"c", {{"d", {{"e", 2.5}}}}}},
      {{"bad key \xff", "v"}, {"\n", "control key"}},
      nlohmann::json::binary({1, 2, 3}),
  };
  for (const nlohmann::json& value : values) {
    SCOPED_TRACE(NlohmannDump(value));
    EXPECT_EQ(DumpJsonCompact(value), NlohmannDump(value));
  }
}

// Random documents: strings of random bytes (mostly ASCII, some control characters, quotes,
// backslashes and multi-byte or broken UTF-8) at random lengths around the 16-byte blocks.
nlohmann::json RandomValue(std::mt19937_64& rng, int depth) {
  const int kind = static_cast<int>(rng() % (depth > 3 ? 6 : 8));
  switch (kind) {
    case 0:
      return nullptr;
    case 1:
      return rng() % 2 == 0;
    case 2:
      return static_cast<int64_t>(rng());
    case 3:
      return static_cast<double>(static_cast<int64_t>(rng() % 2000000) - 1000000) / 1024.0;
    case 4:
    case 5: {
      static const std::vector<std::string> pieces = {"a",
                                                      "Z",
                                                      "0",
                                                      " ",
                                                      "\"",
                                                      "\\",
                                                      "\n",
                                                      "\x01",
                                                      "\x1f",
                                                      "\x7f",
                                                      "\xc3\xa9",
                                                      "\xe2\x82\xac",
                                                      "\xf0\x9f\x98\x80",
                                                      "\xff",
                                                      "\xc3",
                                                      "/"};
      std::string text;
      const size_t length = rng() % 70;
      for (size_t i = 0; i < length; ++i) {
        // ASCII most of the time, so that long clean runs cross the 16-byte blocks.
        text += rng() % 4 != 0 ? std::string(1, static_cast<char>('a' + rng() % 26))
                               : pieces[rng() % pieces.size()];
      }
      return text;
    }
    case 6: {
      nlohmann::json array = nlohmann::json::array();
      for (size_t n = rng() % 5; n > 0; --n) array.push_back(RandomValue(rng, depth + 1));
      return array;
    }
    default: {
      nlohmann::json object = nlohmann::json::object();
      for (size_t n = rng() % 5; n > 0; --n) {
        object[NlohmannDump(RandomValue(rng, 99))] = RandomValue(rng, depth + 1);
      }
      return object;
    }
  }
}

TEST(FastJsonTest, AgreesWithNlohmannOnRandomDocuments) {
  std::mt19937_64 rng(16);  // Fixed seed: the same documents every run.
  for (int i = 0; i < 3000; ++i) {
    const nlohmann::json value = RandomValue(rng, 0);
    const std::string want = NlohmannDump(value);
    ASSERT_EQ(DumpJsonCompact(value), want) << "document " << i;
    const std::optional<nlohmann::json> fast = ParseJsonFast(want, kDepth);
    if (fast.has_value()) ExpectSameTree(*fast, nlohmann::json::parse(want), "");
  }
}

}  // namespace
}  // namespace bulwark
