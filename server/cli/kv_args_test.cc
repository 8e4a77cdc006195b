// key=value data arguments as Vault's kv-builder reads them.
#include "server/cli/kv_args.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::cli {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

std::string TempFile(const std::string& name, const std::string& contents) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

TEST(KvArgsTest, PairsFilesStdinAndRepeats) {
  const std::string file = TempFile("value.txt", "from-file\n");
  std::istringstream in("from-stdin");
  auto data = ParseKeyValueArgs(
      {"a=1", "b=@" + file, "c=-", "d=x", "d=y", "d=z", "e=\\@lit", "f=a=b", "g="}, in);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(*data, json::parse(R"({"a": "1", "b": "from-file\n", "c": "from-stdin",
                                   "d": ["x", "y", "z"], "e": "@lit", "f": "a=b", "g": ""})"));
}

TEST(KvArgsTest, DashAloneMergesAJsonObjectFromStdin) {
  std::istringstream in(R"({"n": 1, "nested": {"k": true}})");
  auto data = ParseKeyValueArgs({"-", "extra=v"}, in);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(*data, json::parse(R"({"n": 1, "nested": {"k": true}, "extra": "v"})"));
  const std::string file = TempFile("obj.json", R"({"from": "file"})");
  std::istringstream none;
  data = ParseKeyValueArgs({"@" + file}, none);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(*data, json::parse(R"({"from": "file"})"));
}

TEST(KvArgsTest, ErrorsNameTheArgumentButNotItsText) {
  std::istringstream in("[1, 2]");
  auto s = ParseKeyValueArgs({"a=1", "hunter2"}, in).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("data argument 2 is not key=value"));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("hunter2")));
  EXPECT_THAT(std::string(ParseKeyValueArgs({"-"}, in).status().message()),
              HasSubstr("stdin does not hold a JSON object"));
  std::istringstream twice("x");
  EXPECT_THAT(std::string(ParseKeyValueArgs({"a=-", "b=-"}, twice).status().message()),
              HasSubstr("only once"));
  std::istringstream none;
  EXPECT_THAT(std::string(ParseKeyValueArgs({"a=@/nonexistent/file"}, none).status().message()),
              HasSubstr("cannot open file \"/nonexistent/file\""));
  EXPECT_THAT(std::string(ParseKeyValueArgs({"=v"}, none).status().message()),
              HasSubstr("empty key"));
}

}  // namespace
}  // namespace bulwark::cli
