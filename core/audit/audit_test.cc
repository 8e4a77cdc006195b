// The audit broker on the simulated Env: hashing, the entry shape, the table behind the barrier
// (restored at unseal, forgotten at seal) and the fail-closed rule.
#include "core/audit/audit.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "base/crypto/hmac.h"
#include "base/crypto/sha256.h"
#include "base/env/sim/sim_env.h"
#include "base/log/log.h"
#include "base/storage/in_memory_storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::audit {
namespace {

constexpr uint64_t kSeed = 17;

class AuditBrokerTest : public ::testing::Test {
 protected:
  AuditBrokerTest() : sim_(kSeed), broker_(sim_.env(), barrier_, log_) {
    std::printf("seed: %llu\n", static_cast<unsigned long long>(kSeed));
    EXPECT_TRUE(sim_.env().fs.CreateDir("/log").ok());
  }

  std::vector<Json> Lines(const std::string& path) {
    std::vector<Json> out;
    absl::StatusOr<std::string> text = sim_.fs().ReadFile(path);
    EXPECT_TRUE(text.ok()) << text.status();
    for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
      out.push_back(Json::parse(line));
    }
    return out;
  }

  AuditRecord Record(const Json& data) {
    AuditRecord r;
    r.time = sim_.clock().WallNow();
    r.request_id = "req-1";
    r.operation = "update";
    r.path = "secret/app";
    r.remote_address = "127.0.0.1:5000";
    r.data = &data;
    r.client_token = "hvs.ROOTTOKENSECRET";
    r.accessor = "ACCESSORVALUE";
    r.display_name = "root";
    r.policies = {"root"};
    return r;
  }

  sim::SimEnv sim_;
  InMemoryStorage barrier_;
  MemoryLogSink log_;
  AuditBroker broker_;
};

TEST(HashTest, HashStringIsHmacSha256UnderTheSalt) {
  EXPECT_EQ(HashString("Jefe", "what do ya want for nothing?"),
            "hmac-sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HashTest, EveryNestedStringIsHashedAndNothingElse) {
  Json v = Json::parse(R"({"password":"hunter2","n":3,"ok":true,"none":null,
      "list":["a",{"deep":["b"]}],"obj":{"k":{"k2":"c"}}})");
  HashStrings("salt", v);
  EXPECT_EQ(v["password"], HashString("salt", "hunter2"));
  EXPECT_EQ(v["n"], 3);
  EXPECT_EQ(v["ok"], true);
  EXPECT_TRUE(v["none"].is_null());
  EXPECT_EQ(v["list"][0], HashString("salt", "a"));
  EXPECT_EQ(v["list"][1]["deep"][0], HashString("salt", "b"));
  EXPECT_EQ(v["obj"]["k"]["k2"], HashString("salt", "c"));
  const std::string dumped = v.dump();
  for (const char* secret : {"hunter2", "\"a\"", "\"b\"", "\"c\""}) {
    EXPECT_FALSE(absl::StrContains(dumped, secret)) << secret;
  }
  // A bare string, and nesting far deeper than any request may have.
  Json s = "x";
  HashStrings("salt", s);
  EXPECT_EQ(s, HashString("salt", "x"));
  Json deep = "bottom";
  for (int i = 0; i < 10000; ++i) deep = Json::array({std::move(deep)});
  HashStrings("salt", deep);
}

TEST_F(AuditBrokerTest, RequestAndResponseEntriesHaveVaultsShapeAndNoSecrets) {
  ASSERT_TRUE(broker_.Enable("file", "file", "", {{"file_path", "/log/audit.log"}}).ok());
  EXPECT_TRUE(broker_.enabled());
  const Json data = {{"password", "hunter2"}, {"nested", {{"api_key", "AKIA-SECRET"}}}};
  AuditRecord r = Record(data);
  ASSERT_TRUE(broker_.LogRequest(r).ok());
  const Json body = Json::parse(R"({"request_id":"x","lease_id":"","data":{"value":"s3cr3t"},
      "auth":{"client_token":"hvs.CHILDTOKEN"},"wrap_info":null,"warnings":null})");
  r.status_code = 200;
  r.response = &body;
  ASSERT_TRUE(broker_.LogResponse(r).ok());

  std::vector<Json> lines = Lines("/log/audit.log");
  ASSERT_EQ(lines.size(), 2u);
  const Json& req = lines[0];
  EXPECT_EQ(req["type"], "request");
  EXPECT_EQ(req["request"]["id"], "req-1");
  EXPECT_EQ(req["request"]["operation"], "update");
  EXPECT_EQ(req["request"]["path"], "secret/app");
  EXPECT_EQ(req["request"]["remote_address"], "127.0.0.1:5000");
  EXPECT_EQ(req["auth"]["display_name"], "root");
  const std::string token_hash = *broker_.Hash("file/", "hvs.ROOTTOKENSECRET");
  EXPECT_EQ(req["auth"]["client_token"], token_hash);
  EXPECT_EQ(req["auth"]["accessor"], *broker_.Hash("file", "ACCESSORVALUE"));
  EXPECT_EQ(req["request"]["data"]["password"], *broker_.Hash("file", "hunter2"));
  EXPECT_EQ(req["request"]["data"]["nested"]["api_key"], *broker_.Hash("file", "AKIA-SECRET"));
  const Json& resp = lines[1];
  EXPECT_EQ(resp["type"], "response");
  EXPECT_EQ(resp["response"]["status_code"], 200);
  EXPECT_EQ(resp["response"]["data"]["value"], *broker_.Hash("file", "s3cr3t"));
  EXPECT_EQ(resp["response"]["auth"]["client_token"], *broker_.Hash("file", "hvs.CHILDTOKEN"));
  const std::string text = *sim_.fs().ReadFile("/log/audit.log");
  for (const char* secret :
       {"hunter2", "AKIA-SECRET", "ROOTTOKENSECRET", "ACCESSORVALUE", "s3cr3t", "CHILDTOKEN"}) {
    EXPECT_FALSE(absl::StrContains(text, secret)) << secret;
  }
}

TEST_F(AuditBrokerTest, EnableRefusesBadInputWithClearErrors) {
  auto code = [&](absl::string_view path, absl::string_view type,
                  std::map<std::string, std::string> opts) {
    return broker_.Enable(path, type, "", opts);
  };
  EXPECT_THAT(code("", "file", {{"file_path", "/log/a"}}).message(),
              ::testing::HasSubstr("path is empty"));
  EXPECT_THAT(code("a/../b", "file", {{"file_path", "/log/a"}}).message(),
              ::testing::HasSubstr("segment"));
  EXPECT_THAT(code("s", "socket", {{"file_path", "/log/a"}}).message(),
              ::testing::HasSubstr("unknown audit device type"));
  EXPECT_THAT(code("f", "file", {}).message(), ::testing::HasSubstr("file_path is required"));
  EXPECT_THAT(code("f", "file", {{"file_path", "rel"}}).message(),
              ::testing::HasSubstr("absolute"));
  EXPECT_THAT(code("f", "file", {{"file_path", "/log/a"}, {"log_raw", "true"}}).message(),
              ::testing::HasSubstr("log_raw is refused"));
  EXPECT_THAT(code("f", "file", {{"file_path", "/log/a"}, {"colour", "x"}}).message(),
              ::testing::HasSubstr("unknown option"));
  const absl::Status unopenable = code("f", "file", {{"file_path", "/log"}});
  EXPECT_EQ(unopenable.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(unopenable.message(), ::testing::HasSubstr("unable to open /log"));
  EXPECT_FALSE(broker_.enabled());
  EXPECT_FALSE((*barrier_.Get(kTableKey)).has_value());
  ASSERT_TRUE(code("f", "file", {{"file_path", "/log/a"}}).ok());
  EXPECT_THAT(code("f/", "file", {{"file_path", "/log/b"}}).message(),
              ::testing::HasSubstr("path already in use"));
  EXPECT_EQ(broker_.Hash("nope", "x").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AuditBrokerTest, TableAndSaltAreRestoredAtUnsealAndForgottenAtSeal) {
  ASSERT_TRUE(broker_.Enable("file", "file", "main log", {{"file_path", "/log/audit.log"}}).ok());
  const std::string before = *broker_.Hash("file", "hunter2");
  // The table is behind the barrier and carries no secret in clear besides the salt.
  const std::string stored = **barrier_.Get(kTableKey);
  EXPECT_TRUE(absl::StrContains(stored, "/log/audit.log"));

  broker_.Unload();  // Seal.
  EXPECT_FALSE(broker_.enabled());
  EXPECT_EQ(broker_.Hash("file", "hunter2").status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(broker_.Load().ok());  // Unseal.
  ASSERT_EQ(broker_.List().size(), 1u);
  EXPECT_EQ(broker_.List()[0].path, "file/");
  EXPECT_EQ(broker_.List()[0].description, "main log");
  EXPECT_EQ(broker_.List()[0].options.at("file_path"), "/log/audit.log");
  EXPECT_EQ(*broker_.Hash("file", "hunter2"), before);  // Same salt.
  const Json data = {{"k", "v"}};
  ASSERT_TRUE(broker_.LogRequest(Record(data)).ok());
  EXPECT_EQ(Lines("/log/audit.log").size(), 1u);

  // A second device gets its own salt.
  ASSERT_TRUE(broker_.Enable("second", "file", "", {{"file_path", "/log/b.log"}}).ok());
  EXPECT_NE(*broker_.Hash("second", "hunter2"), before);

  ASSERT_TRUE(broker_.Disable("file").ok());
  ASSERT_TRUE(broker_.Load().ok());
  ASSERT_EQ(broker_.List().size(), 1u);
  EXPECT_EQ(broker_.List()[0].path, "second/");
  EXPECT_EQ(broker_.Disable("file").code(), absl::StatusCode::kNotFound);
}

TEST_F(AuditBrokerTest, CorruptTableIsAClearError) {
  ASSERT_TRUE(barrier_.Put(kTableKey, "{not json").ok());
  const absl::Status s = broker_.Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), ::testing::HasSubstr("audit table"));
  // Fail-closed: an unreadable table means nothing can be audited, so nothing may run.
  EXPECT_TRUE(broker_.enabled());
  const Json data = {{"k", "v"}};
  EXPECT_EQ(broker_.LogRequest(Record(data)).code(), absl::StatusCode::kInternal);
  broker_.Unload();
  EXPECT_FALSE(broker_.enabled());
}

TEST_F(AuditBrokerTest, FailsClosedWhenNoDeviceCanWrite) {
  ASSERT_TRUE(broker_.Enable("file", "file", "", {{"file_path", "/log/audit.log"}}).ok());
  // After a restart the file's place is taken by a directory: the device cannot open it.
  broker_.Unload();
  ASSERT_TRUE(sim_.fs().Remove("/log/audit.log").ok());
  ASSERT_TRUE(sim_.env().fs.CreateDir("/log/audit.log").ok());
  ASSERT_TRUE(broker_.Load().ok());
  EXPECT_TRUE(broker_.enabled());
  const Json data = {{"password", "hunter2"}};
  const absl::Status s = broker_.LogRequest(Record(data));
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(s.message(), ::testing::HasSubstr("no audit device could record the request"));
  EXPECT_THAT(s.message(), ::testing::HasSubstr("file/"));
  EXPECT_FALSE(absl::StrContains(s.message(), "hunter2"));
  EXPECT_EQ(broker_.LogResponse(Record(data)).code(), absl::StatusCode::kInternal);

  // One working device is enough.
  ASSERT_TRUE(broker_.Enable("good", "file", "", {{"file_path", "/log/good.log"}}).ok());
  EXPECT_TRUE(broker_.LogRequest(Record(data)).ok());
  // The directory goes away: the failed device reopens its file on the next write.
  ASSERT_TRUE(sim_.fs().RemoveDir("/log/audit.log").ok());
  EXPECT_TRUE(broker_.LogRequest(Record(data)).ok());
  EXPECT_EQ(Lines("/log/audit.log").size(), 1u);
  EXPECT_EQ(Lines("/log/good.log").size(), 2u);
}

TEST_F(AuditBrokerTest, EntriesAreValidJsonWhateverTheInputBytes) {
  ASSERT_TRUE(broker_.Enable("file", "file", "", {{"file_path", "/log/audit.log"}}).ok());
  Json data = {{"k\"ey\n", {1, 2.5, true, nullptr, "s"}}};
  AuditRecord r = Record(data);
  r.path = std::string("secret/\"q\"\\\x01\xff\xc3\xa9");
  r.error = "bad \"thing\"";
  ASSERT_TRUE(broker_.LogRequest(r).ok());
  const Json weird_body = Json::parse(R"([{"a":["b"]}, 3])");
  r.response = &weird_body;
  ASSERT_TRUE(broker_.LogResponse(r).ok());
  std::vector<Json> lines = Lines("/log/audit.log");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["request"]["path"], "secret/\"q\"\\\x01\u00ff\u00c3\u00a9");
  EXPECT_EQ(lines[0]["error"], "bad \"thing\"");
  const Json& d = lines[0]["request"]["data"]["k\"ey\n"];
  EXPECT_EQ(d[0], 1);
  EXPECT_EQ(d[1], 2.5);
  EXPECT_EQ(d[2], true);
  EXPECT_TRUE(d[3].is_null());
  EXPECT_EQ(d[4], *broker_.Hash("file", "s"));
  EXPECT_EQ(lines[1]["response"]["data"][0]["a"][0], *broker_.Hash("file", "b"));
  EXPECT_EQ(lines[1]["response"]["data"][1], 3);
}

TEST_F(AuditBrokerTest, NoDevicesMeansNothingIsWritten) {
  const Json data = {{"k", "v"}};
  EXPECT_FALSE(broker_.enabled());
  EXPECT_TRUE(broker_.LogRequest(Record(data)).ok());
  EXPECT_TRUE(broker_.List().empty());
}

}  // namespace
}  // namespace bulwark::audit
