// The API layer driven with Request values over a real Node (simulated Env, in-memory storage,
// the built-in kv engine in-process): Vault's endpoints, envelopes, status codes, the state
// matrix and tokens, with no sockets.
#include "server/api/api.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/crypto/sha256.h"
#include "base/env/sim/sim_env.h"
#include "base/log/log.h"
#include "base/status/check.h"
#include "base/storage/in_memory_storage.h"
#include "core/ha/forwarding.h"
#include "core/lifecycle/builtin_runner.h"
#include "examples/kv/kv_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sdk/dispatcher.h"

namespace bulwark::api {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kSeed = 29;
constexpr absl::string_view kPluginContents = "#!bulwark-sim plugin\n";

struct Reply {
  int status = 0;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Json json;  // Parsed body (null when empty or not JSON).

  std::string Header(absl::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (absl::EqualsIgnoreCase(k, name)) return v;
    }
    return "";
  }
};

class ApiTest : public ::testing::Test {
 protected:
  // `tweak` adjusts the node's options (and may prepare the simulated file system first).
  explicit ApiTest(std::function<void(sim::SimEnv&, node::NodeOptions&)> tweak = nullptr)
      : sim_(kSeed) {
    std::printf("seed: %llu\n", static_cast<unsigned long long>(kSeed));
    CHECK_OK(sim_.fs().CreateDir("/plugins", 0755));
    CHECK_OK(sim_.fs().SyncDir("/"));
    CHECK_OK(sim_.fs().WriteFileDurably("/plugins/p", kPluginContents, 0755));
    lifecycle::BuiltinBackend kv;
    kv.factory = sdk::InProcessBackend(examples::kv::KvBackendFactory());
    builtins_ = std::make_unique<lifecycle::BuiltinRunnerFactory>(
        sim_.loop(), std::map<std::string, lifecycle::BuiltinBackend>{{"kv", kv}});
    node::NodeOptions options;
    options.catalog.plugin_directory = "/plugins";
    options.catalog.builtins = {
        catalog::BuiltinPlugin{catalog::PluginType::kSecret, "kv", "v0.1.0+builtin"}};
    if (tweak != nullptr) tweak(sim_, options);
    absl::StatusOr<std::unique_ptr<node::Node>> node =
        node::Node::Open(sim_.env(), physical_, *builtins_, metrics_, log_, options);
    CHECK_OK(node.status());
    node_ = *std::move(node);
    ApiOptions api_options;
    api_options.cluster_id = "cluster-1";
    api_ = std::make_unique<Api>(sim_.env(), *node_, metrics_, log_, api_options);
  }

  // `target` is "METHOD /v1/path?query"; headers are "name: value".
  Reply Do(absl::string_view target, absl::string_view body = "",
           std::vector<std::string> headers = {}) {
    http::Request r;
    std::pair<std::string, std::string> mt = absl::StrSplit(target, absl::MaxSplits(' ', 1));
    r.method = mt.first;
    std::pair<std::string, std::string> pq = absl::StrSplit(mt.second, absl::MaxSplits('?', 1));
    r.path = pq.first;
    for (absl::string_view kv : absl::StrSplit(pq.second, '&', absl::SkipEmpty())) {
      r.query.push_back(absl::StrSplit(kv, absl::MaxSplits('=', 1)));
    }
    for (const std::string& h : headers) {
      std::pair<std::string, std::string> nv = absl::StrSplit(h, absl::MaxSplits(": ", 1));
      r.headers.emplace_back(absl::AsciiStrToLower(nv.first), nv.second);
    }
    r.body = std::string(body);
    std::optional<http::Response> out;
    api_->Handle(std::move(r), [&out](http::Response resp) { out = std::move(resp); });
    if (stop_at_answer_) {
      sim_.loop().RunUntil([&] { return out.has_value(); }, absl::Seconds(1));
    } else {
      sim_.loop().RunUntilIdle();
    }
    CHECK(out.has_value()) << "no answer to " << target;
    Reply reply{out->status, out->content_type, out->headers, out->body, nullptr};
    reply.json = Json::parse(out->body, nullptr, false);
    if (reply.json.is_discarded()) reply.json = nullptr;
    return reply;
  }

  Reply Auth(absl::string_view target, absl::string_view body = "") {
    return Do(target, body, {"X-Vault-Token: " + root_});
  }

  // Initialises with `shares`/`threshold` and unseals with the first `threshold` keys.
  void InitAndUnseal(int shares = 1, int threshold = 1) {
    Reply init = Do("PUT /v1/sys/init", absl::StrCat("{\"secret_shares\":", shares,
                                                     ",\"secret_threshold\":", threshold, "}"));
    ASSERT_EQ(init.status, 200) << init.body;
    root_ = init.json["root_token"].get<std::string>();
    for (int i = 0; i < threshold; ++i) {
      keys_.push_back(init.json["keys"][i].get<std::string>());
      Reply u = Do("PUT /v1/sys/unseal", absl::StrCat("{\"key\":\"", keys_.back(), "\"}"));
      ASSERT_EQ(u.status, 200) << u.body;
    }
  }

  void MountKv(absl::string_view path = "secret") {
    Reply r = Auth(absl::StrCat("POST /v1/sys/mounts/", path), R"({"type":"kv"})");
    ASSERT_EQ(r.status, 204) << r.body;
  }

  static Json Errors(std::vector<std::string> messages) { return Json{{"errors", messages}}; }

  // Hands the API a kv write as the root token without running the loop; the answer lands in
  // `*out` once the loop has run it. For tests that hold a request in flight.
  void PostKvWrite(absl::string_view path, std::optional<http::Response>* out) {
    http::Request w;
    w.method = "PUT";
    w.path = std::string(path);
    w.headers = {{"x-vault-token", root_}};
    w.body = R"({"a":"b"})";
    api_->Handle(std::move(w), [out](http::Response resp) { *out = std::move(resp); });
  }

  sim::SimEnv sim_;
  InMemoryStorage physical_;
  std::unique_ptr<lifecycle::BuiltinRunnerFactory> builtins_;
  metrics::Registry metrics_;
  MemoryLogSink log_;
  std::unique_ptr<node::Node> node_;
  std::unique_ptr<Api> api_;
  std::string root_;
  std::vector<std::string> keys_;
  // Run the loop only until each answer instead of until idle, which would move simulated time
  // through every pending timer (the wrapped responses' expiry among them).
  bool stop_at_answer_ = false;
};

TEST_F(ApiTest, UninitialisedServerAnswersTheStateMatrix) {
  EXPECT_EQ(Do("GET /v1/sys/init").json, Json({{"initialized", false}}));
  Reply status = Do("GET /v1/sys/seal-status");
  EXPECT_EQ(status.status, 200);
  EXPECT_EQ(status.json["type"], "shamir");
  EXPECT_EQ(status.json["initialized"], false);
  EXPECT_EQ(status.json["sealed"], true);
  EXPECT_EQ(status.json["t"], 0);
  EXPECT_EQ(status.json["n"], 0);
  EXPECT_EQ(status.json["progress"], 0);
  EXPECT_EQ(status.json["nonce"], "");
  EXPECT_FALSE(status.json.contains("cluster_name"));
  Reply health = Do("GET /v1/sys/health");
  EXPECT_EQ(health.status, 501);
  EXPECT_EQ(health.json["initialized"], false);
  EXPECT_EQ(health.json["sealed"], true);
  EXPECT_EQ(Do("GET /v1/sys/health?uninitcode=299").status, 299);
  Reply head = Do("HEAD /v1/sys/health");
  EXPECT_EQ(head.status, 501);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(Do("GET /v1/sys/leader").json["ha_enabled"], false);
  EXPECT_EQ(Do("PUT /v1/sys/seal").status, 204);  // A no-op while sealed.
  for (const char* target :
       {"PUT /v1/sys/step-down", "GET /v1/sys/mounts", "GET /v1/secret/foo", "GET /v1/sys/metrics",
        "GET /v1/auth/token/lookup-self", "GET /v1/sys/plugins/catalog"}) {
    Reply r = Do(target, "", {"X-Vault-Token: whatever"});
    EXPECT_EQ(r.status, 503) << target;
    EXPECT_EQ(r.json, Errors({"Vault is sealed"})) << target;
  }
  Reply unseal = Do("PUT /v1/sys/unseal", R"({"key":"00112233445566778899aabbccddeeff"})");
  EXPECT_EQ(unseal.status, 400);
  EXPECT_EQ(unseal.json, Errors({"Vault is not initialized"}));
}

TEST_F(ApiTest, InitValidatesAndReturnsKeysAndARootTokenOnce) {
  EXPECT_EQ(Do("PUT /v1/sys/init", "{}").json,
            Errors({"invalid seal configuration: shares must be at least one"}));
  EXPECT_EQ(Do("PUT /v1/sys/init", R"({"secret_shares":3,"secret_threshold":1})").status, 400);
  Reply bad_json = Do("PUT /v1/sys/init", "{\"secret_shares\":");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_THAT(bad_json.json["errors"][0].get<std::string>(), HasSubstr("error parsing JSON"));

  Reply init = Do("PUT /v1/sys/init", R"({"secret_shares":3,"secret_threshold":2})");
  ASSERT_EQ(init.status, 200) << init.body;
  ASSERT_EQ(init.json["keys"].size(), 3u);
  ASSERT_EQ(init.json["keys_base64"].size(), 3u);
  EXPECT_EQ(init.json["keys"][0].get<std::string>().size(), 66u);
  const std::string root = init.json["root_token"].get<std::string>();
  EXPECT_TRUE(absl::StartsWith(root, "hvs.")) << root;
  EXPECT_EQ(root.size(), 28u);
  EXPECT_EQ(init.Header("Cache-Control"), "no-store");
  EXPECT_EQ(init.body.back(), '\n');
  EXPECT_EQ(Do("PUT /v1/sys/init", R"({"secret_shares":1,"secret_threshold":1})").json,
            Errors({"Vault is already initialized"}));
  Reply status = Do("GET /v1/sys/seal-status");
  EXPECT_EQ(status.json["sealed"], true);
  EXPECT_EQ(status.json["t"], 2);
  EXPECT_EQ(status.json["n"], 3);
  EXPECT_EQ(Do("GET /v1/sys/health").status, 503);
  EXPECT_EQ(Do("GET /v1/sys/health?sealedcode=200").status, 200);
}

TEST_F(ApiTest, UnsealCountsProgressResetsAndAcceptsHexOrBase64) {
  Reply init = Do("PUT /v1/sys/init", R"({"secret_shares":3,"secret_threshold":2})");
  ASSERT_EQ(init.status, 200);
  const std::string hex0 = init.json["keys"][0].get<std::string>();
  const std::string b64_1 = init.json["keys_base64"][1].get<std::string>();
  const std::string hex2 = init.json["keys"][2].get<std::string>();

  Reply first = Do("PUT /v1/sys/unseal", absl::StrCat(R"({"key":")", hex0, R"("})"));
  EXPECT_EQ(first.json["progress"], 1);
  EXPECT_EQ(first.json["sealed"], true);
  const std::string nonce = first.json["nonce"].get<std::string>();
  EXPECT_EQ(nonce.size(), 36u);
  // The same share again does not count.
  EXPECT_EQ(Do("PUT /v1/sys/unseal", absl::StrCat(R"({"key":")", hex0, R"("})")).json["progress"],
            1);
  Reply reset = Do("PUT /v1/sys/unseal", R"({"reset":true})");
  EXPECT_EQ(reset.json["progress"], 0);
  EXPECT_EQ(reset.json["nonce"], "");
  EXPECT_EQ(Do("PUT /v1/sys/unseal", "{}").json,
            Errors({"'key' must be specified in request body as JSON, or 'reset' set to true"}));
  EXPECT_EQ(Do("PUT /v1/sys/unseal", R"({"key":"%%%"})").json,
            Errors({"'key' must be a valid hex or base64 string"}));

  EXPECT_EQ(Do("PUT /v1/sys/unseal", absl::StrCat(R"({"key":")", b64_1, R"("})")).json["progress"],
            1);
  Reply open = Do("PUT /v1/sys/unseal", absl::StrCat(R"({"Key":")", hex2, R"("})"));
  EXPECT_EQ(open.json["sealed"], false);
  EXPECT_EQ(open.json["progress"], 0);
  EXPECT_EQ(open.json["cluster_name"], "bulwark-cluster");
  EXPECT_EQ(open.json["cluster_id"], "cluster-1");
  // Unsealed: another share is a no-op, a reset is refused.
  EXPECT_EQ(Do("PUT /v1/sys/unseal", absl::StrCat(R"({"key":")", hex0, R"("})")).status, 200);
  EXPECT_EQ(Do("PUT /v1/sys/unseal", R"({"reset":true})").json, Errors({"vault is unsealed"}));
  Reply health = Do("GET /v1/sys/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.json["standby"], false);
  EXPECT_EQ(health.json["replication_dr_mode"], "disabled");
  EXPECT_EQ(health.json["cluster_id"], "cluster-1");
  EXPECT_EQ(health.json["server_time_utc"], absl::ToUnixSeconds(sim_.clock().WallNow()));
  EXPECT_EQ(Do("GET /v1/sys/health?activecode=299").status, 299);
  EXPECT_EQ(Do("GET /v1/sys/health?standbyok=perhaps").json, Errors({}));
}

TEST_F(ApiTest, AWrongShareIs400AndStartsOver) {
  Reply init = Do("PUT /v1/sys/init", R"({"secret_shares":2,"secret_threshold":2})");
  std::string wrong = init.json["keys"][0].get<std::string>();
  wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
  ASSERT_EQ(Do("PUT /v1/sys/unseal", absl::StrCat(R"({"key":")", wrong, R"("})")).status, 200);
  Reply second = Do("PUT /v1/sys/unseal",
                    absl::StrCat(R"({"key":")", init.json["keys"][1].get<std::string>(), R"("})"));
  EXPECT_EQ(second.status, 400) << second.body;
  EXPECT_EQ(Do("GET /v1/sys/seal-status").json["progress"], 0);
}

TEST_F(ApiTest, TokensAreRequiredAndWorkFromEitherHeader) {
  InitAndUnseal();
  EXPECT_EQ(Do("GET /v1/sys/mounts").json, Errors({"permission denied"}));
  EXPECT_EQ(Do("GET /v1/sys/mounts").status, 403);
  EXPECT_EQ(Do("GET /v1/sys/mounts", "", {"X-Vault-Token: hvs.bogus"}).status, 403);
  EXPECT_EQ(Do("GET /v1/sys/mounts", "", {"Authorization: Bearer " + root_}).status, 200);
  EXPECT_EQ(Do("GET /v1/secret/x").status, 403);  // Token before routing.
  EXPECT_EQ(Do("PUT /v1/sys/seal").status, 403);
  EXPECT_EQ(Do("PUT /v1/sys/step-down").status, 403);
  EXPECT_EQ(Do("GET /v1/sys/metrics").status, 403);
  EXPECT_EQ(Auth("GET /v1/sys/nonexistent").json, Errors({"unsupported path"}));
  EXPECT_EQ(Auth("GET /v1/sys/nonexistent").status, 404);

  Reply self = Auth("GET /v1/auth/token/lookup-self");
  ASSERT_EQ(self.status, 200) << self.body;
  EXPECT_EQ(self.json["data"]["id"], root_);
  EXPECT_EQ(self.json["data"]["policies"], Json({"root"}));
  EXPECT_EQ(self.json["data"]["display_name"], "root");
  EXPECT_EQ(self.json["data"]["path"], "auth/token/root");
  EXPECT_EQ(self.json["data"]["expire_time"], nullptr);
  EXPECT_EQ(self.json["data"]["ttl"], 0);
  EXPECT_EQ(self.json["data"]["orphan"], true);
  EXPECT_EQ(self.json["auth"], nullptr);
  for (const char* key : {"request_id", "lease_id", "renewable", "lease_duration", "data",
                          "wrap_info", "warnings", "auth"}) {
    EXPECT_TRUE(self.json.contains(key)) << key;
  }
}

TEST_F(ApiTest, ChildTokensAreCreatedLookedUpAndRevoked) {
  InitAndUnseal();
  Reply created = Auth("POST /v1/auth/token/create",
                       R"({"ttl":"1h","display_name":"ci","meta":{"team":"a"},"renewable":true})");
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string child = created.json["auth"]["client_token"].get<std::string>();
  EXPECT_TRUE(absl::StartsWith(child, "hvs."));
  EXPECT_EQ(created.json["auth"]["lease_duration"], 3600);
  EXPECT_EQ(created.json["auth"]["policies"], Json({"root"}));
  EXPECT_EQ(created.json["auth"]["metadata"], Json({{"team", "a"}}));
  EXPECT_EQ(created.json["data"], nullptr);
  EXPECT_THAT(created.json["warnings"][0].get<std::string>(), HasSubstr("renewable"));

  Reply self = Do("GET /v1/auth/token/lookup-self", "", {"X-Vault-Token: " + child});
  ASSERT_EQ(self.status, 200);
  EXPECT_EQ(self.json["data"]["display_name"], "token-ci");
  EXPECT_EQ(self.json["data"]["ttl"], 3600);
  EXPECT_EQ(self.json["data"]["meta"], Json({{"team", "a"}}));
  EXPECT_EQ(self.json["data"]["orphan"], false);
  // A child may create grandchildren and read mounts: no policies, every token is all-powerful.
  EXPECT_EQ(Do("GET /v1/sys/mounts", "", {"X-Vault-Token: " + child}).status, 200);
  EXPECT_EQ(Auth("POST /v1/auth/token/create", R"({"policies":["default"]})").status, 400);
  Reply custom = Auth("POST /v1/auth/token/create", R"({"id":"my-token"})");
  EXPECT_EQ(custom.json["auth"]["client_token"], "my-token");
  EXPECT_EQ(Auth("POST /v1/auth/token/create", R"({"id":"my-token"})").status, 400);

  EXPECT_EQ(Do("POST /v1/auth/token/revoke-self", "", {"X-Vault-Token: " + child}).status, 204);
  EXPECT_EQ(Do("GET /v1/auth/token/lookup-self", "", {"X-Vault-Token: " + child}).status, 403);
  EXPECT_EQ(Auth("GET /v1/auth/token/lookup-self").status, 200);
  // Expiry follows the Env's wall clock.
  Reply short_lived = Auth("POST /v1/auth/token/create", R"({"ttl":30})");
  const std::string t = short_lived.json["auth"]["client_token"].get<std::string>();
  sim_.clock().JumpWall(absl::Seconds(31));
  EXPECT_EQ(Do("GET /v1/auth/token/lookup-self", "", {"X-Vault-Token: " + t}).status, 403);
}

TEST_F(ApiTest, MountsAndTheBuiltInKvServeEveryOperation) {
  InitAndUnseal();
  MountKv();
  Reply mounts = Auth("GET /v1/sys/mounts");
  ASSERT_EQ(mounts.status, 200);
  EXPECT_EQ(mounts.json["data"]["secret/"]["type"], "kv");
  EXPECT_EQ(mounts.json["secret/"]["type"], "kv");  // Injected at the top level too.
  EXPECT_EQ(mounts.json["data"]["secret/"]["running_plugin_version"], "v0.1.0+builtin");
  EXPECT_EQ(mounts.json["data"]["sys/"]["type"], "system");
  EXPECT_EQ(Auth("GET /v1/sys/mounts/secret").json["type"], "kv");
  EXPECT_EQ(Auth("GET /v1/sys/mounts/nothing").json,
            Errors({"No secret engine mount at nothing/"}));
  Reply again = Auth("POST /v1/sys/mounts/secret", R"({"type":"kv"})");
  EXPECT_EQ(again.status, 400) << again.body;
  EXPECT_EQ(Auth("POST /v1/sys/mounts/other", R"({"type":"nope"})").status, 400);
  EXPECT_EQ(Auth("POST /v1/sys/mounts/other", R"({"type":"kv-v2"})").status, 400);

  EXPECT_EQ(Auth("PUT /v1/secret/foo", R"({"password":"hunter2"})").status, 204);
  EXPECT_EQ(Auth("POST /v1/secret/dir/bar", R"({"a":"b"})").status, 204);
  Reply read = Auth("GET /v1/secret/foo");
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(read.json["data"], Json({{"password", "hunter2"}}));
  EXPECT_EQ(read.json["lease_id"], "");
  Reply list = Auth("LIST /v1/secret");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(list.json["data"]["keys"], Json({"dir/", "foo"}));
  EXPECT_EQ(Auth("GET /v1/secret/?list=true").json["data"]["keys"], Json({"dir/", "foo"}));
  EXPECT_EQ(Auth("GET /v1/secret/dir?list=1").json["data"]["keys"], Json({"bar"}));
  EXPECT_EQ(Auth("GET /v1/secret/missing").json, Errors({}));
  EXPECT_EQ(Auth("GET /v1/secret/missing").status, 404);
  EXPECT_EQ(Auth("DELETE /v1/secret/foo").status, 204);
  EXPECT_EQ(Auth("GET /v1/secret/foo").status, 404);
  EXPECT_EQ(Auth("LIST /v1/secret/nothing").status, 404);
  EXPECT_EQ(Auth("GET /v1/secret/foo?list=maybe").status, 400);
  EXPECT_EQ(Auth("PATCH /v1/secret/foo", "{}").status, 415);
  Reply unsupported = Do("PATCH /v1/secret/dir/bar", "{}",
                         {"X-Vault-Token: " + root_, "Content-Type: application/merge-patch+json"});
  EXPECT_EQ(unsupported.status, 405) << unsupported.body;
  Reply nowhere = Auth("GET /v1/nowhere/x");
  EXPECT_EQ(nowhere.status, 404);
  EXPECT_THAT(nowhere.json["errors"][0].get<std::string>(), HasSubstr("no handler for route"));
  EXPECT_EQ(Auth("PUT /v1/secret/bad", "[1,2]").status, 400);

  EXPECT_EQ(Auth("POST /v1/sys/mounts/secret/tune", R"({"description":"team secrets"})").status,
            204);
  Reply tune = Auth("GET /v1/sys/mounts/secret/tune");
  EXPECT_EQ(tune.json["data"]["description"], "team secrets");
  EXPECT_EQ(tune.json["description"], "team secrets");
  EXPECT_EQ(Auth("DELETE /v1/sys/mounts/secret").status, 204);
  EXPECT_EQ(Auth("DELETE /v1/sys/mounts/secret").status, 204);  // Nothing there: still 204.
  EXPECT_EQ(Auth("GET /v1/secret/dir/bar").status, 404);
}

TEST_F(ApiTest, PluginCatalogRegistersReadsListsAndDeletes) {
  InitAndUnseal();
  const std::string sha = crypto::HexEncode(crypto::Sha256::Hash(kPluginContents));
  EXPECT_EQ(Auth("PUT /v1/sys/plugins/catalog/secret/p",
                 absl::StrCat(R"({"sha256":")", sha,
                              R"(","command":"p --x","env":["K=secret"],"version":"1.2.3"})"))
                .status,
            204);
  Reply entry = Auth("GET /v1/sys/plugins/catalog/secret/p?version=v1.2.3");
  ASSERT_EQ(entry.status, 200) << entry.body;
  EXPECT_EQ(entry.json["data"]["sha256"], sha);
  EXPECT_EQ(entry.json["data"]["command"], "p");
  EXPECT_EQ(entry.json["data"]["args"], Json({"--x"}));
  EXPECT_EQ(entry.json["data"]["builtin"], false);
  EXPECT_EQ(entry.json["data"]["version"], "v1.2.3");
  EXPECT_FALSE(entry.json["data"].contains("env"));
  EXPECT_THAT(entry.body, Not(HasSubstr("secret\"]")));
  EXPECT_EQ(Auth("GET /v1/sys/plugins/catalog/secret/p").status, 404);  // Only versioned.
  EXPECT_EQ(Auth("GET /v1/sys/plugins/catalog/secret/kv").json["data"]["builtin"], true);

  // "database" is the node's built-in database engine, listed as Vault lists its own.
  EXPECT_EQ(Auth("LIST /v1/sys/plugins/catalog/secret").json["data"]["keys"],
            Json({"database", "kv", "p"}));
  EXPECT_EQ(Auth("GET /v1/sys/plugins/catalog/secret?list=true").json["data"]["keys"],
            Json({"database", "kv", "p"}));
  EXPECT_EQ(Auth("LIST /v1/sys/plugins/catalog/auth").status, 404);
  Reply all = Auth("GET /v1/sys/plugins/catalog");
  EXPECT_EQ(all.json["data"]["secret"], Json({"database", "kv", "p"}));
  EXPECT_FALSE(all.json["data"].contains("auth"));
  EXPECT_EQ(all.json["data"]["detailed"].size(), 3u);
  EXPECT_EQ(Auth("LIST /v1/sys/plugins/catalog").status, 405);
  EXPECT_THAT(Auth("GET /v1/sys/plugins/catalog/p").json["warnings"][0].get<std::string>(),
              HasSubstr("Deprecated API endpoint"));

  EXPECT_EQ(Auth("PUT /v1/sys/plugins/catalog/secret/p", R"({"command":"p"})").json,
            Errors({"missing SHA-256 value"}));
  Reply mismatch =
      Auth("PUT /v1/sys/plugins/catalog/secret/q",
           absl::StrCat(R"({"sha256":")", std::string(64, '0'), R"(","command":"p"})"));
  EXPECT_EQ(mismatch.status, 400) << mismatch.body;
  Reply outside = Auth("PUT /v1/sys/plugins/catalog/secret/q",
                       absl::StrCat(R"({"sha256":")", sha, R"(","command":"../etc/x"})"));
  EXPECT_EQ(outside.status, 400) << outside.body;

  EXPECT_EQ(Auth("DELETE /v1/sys/plugins/catalog/secret/p?version=1.2.3").status, 204);
  EXPECT_EQ(Auth("GET /v1/sys/plugins/catalog/secret/p?version=1.2.3").status, 404);
  EXPECT_EQ(Auth("DELETE /v1/sys/plugins/catalog/secret/p?version=9.9.9").status,
            204);  // No such version: deleting nothing is fine.
  EXPECT_EQ(Auth("DELETE /v1/sys/plugins/catalog/secret/kv?version=v0.1.0+builtin").status, 400);
  EXPECT_EQ(Auth("DELETE /v1/sys/plugins/catalog/p").status, 400);  // No type.
}

// A node whose catalog requires signatures, with alice's key (made by the real ssh-keygen)
// in the allowed-signers file.
class SignedApiTest : public ApiTest {
 protected:
  static std::string Tmp() { return absl::StrCat(std::getenv("TEST_TMPDIR"), "/api_signed"); }
  static std::string Run(const std::string& command) {
    EXPECT_EQ(std::system(absl::StrCat("set -e; cd ", Tmp(), "; ", command).c_str()), 0) << command;
    return "";
  }
  static std::string Read(const std::string& name) {
    std::ifstream in(absl::StrCat(Tmp(), "/", name), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static void SetUpTestSuite() {
    ASSERT_EQ(std::system(absl::StrCat("rm -rf ", Tmp(), " && mkdir -p ", Tmp()).c_str()), 0);
    Run("ssh-keygen -q -N '' -t ed25519 -C alice -f alice >/dev/null");
    std::ofstream(absl::StrCat(Tmp(), "/p"), std::ios::binary) << kPluginContents;
    Run("ssh-keygen -q -Y sign -n bulwark-plugin -f alice p 2>/dev/null");
  }
  SignedApiTest()
      : ApiTest([](sim::SimEnv& sim, node::NodeOptions& options) {
          const std::string pub = Read("alice.pub");
          CHECK_OK(sim.fs().CreateDir("/etc", 0755));
          CHECK_OK(sim.fs().WriteFileDurably(
              "/etc/allowed_signers",
              absl::StrCat("alice@example.com ", pub.substr(0, pub.rfind(' ')), "\n"), 0644));
          options.catalog.signature_policy = catalog::SignaturePolicy::kRequired;
          options.catalog.allowed_signers_file = "/etc/allowed_signers";
        }) {}
};

TEST_F(SignedApiTest, RegistrationTakesTheSignatureAndRefusesWithTheReason) {
  InitAndUnseal();
  const std::string sha = crypto::HexEncode(crypto::Sha256::Hash(kPluginContents));
  Json body = {{"sha256", sha}, {"command", "p"}, {"version", "1.0.0"}};
  Reply unsigned_reply = Auth("PUT /v1/sys/plugins/catalog/secret/p", body.dump());
  EXPECT_EQ(unsigned_reply.status, 400);
  EXPECT_THAT(unsigned_reply.body, HasSubstr("catalog.signature_required"));
  body["signature"] = "-----BEGIN SSH SIGNATURE-----\nnot base64!\n-----END SSH SIGNATURE-----";
  Reply malformed = Auth("PUT /v1/sys/plugins/catalog/secret/p", body.dump());
  EXPECT_EQ(malformed.status, 400);
  EXPECT_THAT(malformed.body, HasSubstr("signature.malformed"));
  body["signature"] = Read("p.sig");
  EXPECT_EQ(Auth("PUT /v1/sys/plugins/catalog/secret/p", body.dump()).status, 204);
  Reply entry = Auth("GET /v1/sys/plugins/catalog/secret/p?version=v1.0.0");
  ASSERT_EQ(entry.status, 200) << entry.body;
  EXPECT_EQ(entry.json["data"]["signer_principal"], "alice@example.com");
  EXPECT_THAT(entry.json["data"]["signer_fingerprint"].get<std::string>(),
              ::testing::StartsWith("SHA256:"));
  // The allowed-signers file vanishes: a server-side problem, 500, named.
  CHECK_OK(sim_.fs().Remove("/etc/allowed_signers"));
  Reply gone = Auth("PUT /v1/sys/plugins/catalog/secret/p", body.dump());
  EXPECT_EQ(gone.status, 500);
  EXPECT_THAT(gone.body, HasSubstr("catalog.allowed_signers_invalid"));
}

TEST_F(ApiTest, ReloadAnswersWithAReloadId) {
  InitAndUnseal();
  MountKv();
  Reply reload = Auth("PUT /v1/sys/plugins/reload/backend", R"({"plugin":"kv"})");
  ASSERT_EQ(reload.status, 200) << reload.body;
  EXPECT_EQ(reload.json["data"]["reload_id"], reload.json["request_id"]);
  EXPECT_EQ(Auth("PUT /v1/sys/plugins/reload/backend", R"({"mounts":["secret/"],"scope":"global"})")
                .status,
            202);
  EXPECT_EQ(Auth("PUT /v1/sys/plugins/reload/backend", "{}").json,
            Errors({"plugin or mounts must be provided"}));
  EXPECT_EQ(Auth("PUT /v1/sys/plugins/reload/backend", R"({"mounts":["nothing/"]})").status, 400);
  EXPECT_EQ(Auth("PUT /v1/secret/after-reload", R"({"a":"b"})").status, 204);
}

TEST_F(ApiTest, MetricsInPrometheusTextAndJson) {
  InitAndUnseal();
  Reply text = Auth("GET /v1/sys/metrics?format=prometheus");
  ASSERT_EQ(text.status, 200);
  EXPECT_EQ(text.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(text.body,
              HasSubstr("bulwark_api_requests_total{route=\"sys/init\",code=\"200\"} 1"));
  EXPECT_EQ(Do("GET /v1/sys/metrics", "",
               {"X-Vault-Token: " + root_, "Accept: application/openmetrics-text; version=1.0.0"})
                .content_type,
            "text/plain; version=0.0.4; charset=utf-8");
  Reply json = Auth("GET /v1/sys/metrics");
  ASSERT_EQ(json.status, 200);
  bool found = false;
  for (const Json& c : json.json["Counters"]) {
    found = found || (c["Name"] == "bulwark_api_requests_total" &&
                      c["Labels"] == Json({{"code", "200"}, {"route", "sys/unseal"}}));
  }
  EXPECT_TRUE(found) << json.body;
  EXPECT_TRUE(json.json["Samples"].is_array());
  Reply bad = Auth("GET /v1/sys/metrics?format=xml");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.content_type, "text/plain");
  EXPECT_EQ(bad.body, "metric response format \"xml\" unknown");
}

TEST_F(ApiTest, SealAndStepDown) {
  InitAndUnseal();
  MountKv();
  ASSERT_EQ(Auth("PUT /v1/secret/a", R"({"v":"1"})").status, 204);
  EXPECT_EQ(Auth("PUT /v1/sys/step-down").status, 204);
  // The lone node is active again and its plugins come back.
  EXPECT_EQ(Auth("GET /v1/secret/a").json["data"], Json({{"v", "1"}}));
  EXPECT_EQ(Do("GET /v1/sys/health").json["standby"], false);

  EXPECT_EQ(Auth("PUT /v1/sys/seal").status, 204);
  EXPECT_EQ(Do("GET /v1/sys/seal-status").json["sealed"], true);
  EXPECT_EQ(Auth("GET /v1/secret/a").json, Errors({"Vault is sealed"}));
  EXPECT_EQ(Auth("PUT /v1/sys/seal").status, 204);
  ASSERT_EQ(Do("PUT /v1/sys/unseal", absl::StrCat(R"({"key":")", keys_[0], R"("})")).status, 200);
  EXPECT_EQ(Auth("GET /v1/secret/a").json["data"], Json({{"v", "1"}}));
}

// An HA standby (ApiOptions::leader set, the node a standby): sys/health 429, sys/leader names
// the active node, the unauthenticated status endpoints answered here, everything else a 307 to
// the active node's address with the same path and query; sys/step-down on the active node
// answers 204 and then runs the step_down hook.
TEST_F(ApiTest, AnHaStandbyRedirectsToTheActiveNode) {
  LeaderStatus leader;
  leader.leader_address = "http://10.0.0.9:8200";
  leader.leader_cluster_address = "https://10.0.0.9:8201";
  int step_downs = 0;
  ApiOptions options;
  options.leader = [&]() -> absl::StatusOr<LeaderStatus> { return leader; };
  options.step_down = [&] { ++step_downs; };
  api_ = std::make_unique<Api>(sim_.env(), *node_, metrics_, log_, options);
  EXPECT_EQ(Do("GET /v1/sys/leader").status, 503);  // HA and sealed.
  EXPECT_EQ(Do("PUT /v1/sys/step-down").status, 503);
  InitAndUnseal();
  MountKv();
  ASSERT_EQ(Auth("PUT /v1/secret/a", R"({"v":"1"})").status, 204);
  bool down = false;
  node_->StepDown([&] { down = true; });
  sim_.loop().RunUntilIdle();
  ASSERT_TRUE(down);

  Reply health = Do("GET /v1/sys/health");
  EXPECT_EQ(health.status, 429);
  EXPECT_EQ(health.json["standby"], true);
  EXPECT_EQ(health.json["sealed"], false);
  EXPECT_EQ(Do("GET /v1/sys/health?standbyok=true").status, 200);
  Reply who = Do("GET /v1/sys/leader");
  EXPECT_EQ(who.status, 200);
  EXPECT_EQ(who.json["is_self"], false);
  EXPECT_EQ(who.json["leader_address"], "http://10.0.0.9:8200");
  EXPECT_EQ(who.json["active_time"], "0001-01-01T00:00:00Z");
  EXPECT_EQ(Do("GET /v1/sys/seal-status").status, 200);

  Reply write = Auth("PUT /v1/secret/a b", R"({"v":"2"})");
  EXPECT_EQ(write.status, 307);
  EXPECT_EQ(write.Header("Location"), "http://10.0.0.9:8200/v1/secret/a%20b");
  EXPECT_EQ(write.body, "");
  EXPECT_EQ(Do("GET /v1/secret/a?list=true&x=a&b").Header("Location"),
            "http://10.0.0.9:8200/v1/secret/a?list=true&x=a&b=");
  for (const char* target : {"PUT /v1/sys/step-down", "GET /v1/sys/metrics", "GET /v1/sys/mounts",
                             "GET /v1/auth/token/lookup-self", "PUT /v1/sys/wrapping/unwrap"}) {
    Reply r = Auth(target);
    EXPECT_EQ(r.status, 307) << target;
    EXPECT_THAT(r.Header("Location"), ::testing::StartsWith("http://10.0.0.9:8200/v1/")) << target;
  }
  EXPECT_EQ(Auth("PUT /v1/sys/seal").json,
            Errors({"vault cannot seal when in standby mode; please restart instead"}));
  EXPECT_EQ(step_downs, 0);

  leader.leader_address = "10.0.0.7:8200";  // No scheme: Vault's default, https.
  EXPECT_EQ(Auth("GET /v1/secret/a").Header("Location"), "https://10.0.0.7:8200/v1/secret/a");
  leader.leader_address = "";  // No active node known.
  Reply none = Auth("GET /v1/secret/a");
  EXPECT_EQ(none.status, 500);
  EXPECT_EQ(none.json, Errors({"local node not active but active cluster node not found"}));

  // Active again: served here; sys/step-down answers 204, then runs the hook.
  bool active = false;
  node_->BecomeActive([&](absl::Status s) { active = s.ok(); });
  sim_.loop().RunUntilIdle();
  ASSERT_TRUE(active);
  EXPECT_EQ(Auth("GET /v1/secret/a").json["data"], Json({{"v", "1"}}));
  EXPECT_EQ(Auth("PUT /v1/sys/step-down").status, 204);
  EXPECT_EQ(step_downs, 1);
}

// An HA standby with request forwarding (ApiOptions::forward): every request it does not
// answer itself goes to the active node's cluster address whole (method, path, query, headers
// with the token, body) and the active node's answer comes back; the HTTP-layer endpoints stay
// here; a request already forwarded once, one whose client asked for no forwarding, one while
// the active node advertised no cluster port, and a forward that was never sent are 307s; a
// forward sent without an answer is a 504 "outcome unknown".
TEST_F(ApiTest, AnHaStandbyForwardsToTheActiveNode) {
  LeaderStatus leader;
  leader.leader_address = "http://10.0.0.9:8200";
  leader.leader_cluster_address = "https://10.0.0.9:8201";
  std::vector<std::pair<std::string, http::Request>> sent;
  absl::Status fail = absl::OkStatus();
  ApiOptions options;
  options.leader = [&]() -> absl::StatusOr<LeaderStatus> { return leader; };
  options.forward = [&](const std::string& cluster_addr, const http::Request& request,
                        ApiOptions::ForwardDone done) {
    sent.emplace_back(cluster_addr, request);
    if (!fail.ok()) return std::move(done)(fail);
    http::Response answer;
    answer.status = 200;
    answer.headers = {{"Cache-Control", "no-store"}, {"X-Active", "yes"}};
    answer.body = R"({"data":{"from":"active"}})";
    std::move(done)(std::move(answer));
  };
  int forward_failures = 0;
  options.forward_failed = [&] { ++forward_failures; };
  api_ = std::make_unique<Api>(sim_.env(), *node_, metrics_, log_, options);
  InitAndUnseal();
  bool down = false;
  node_->StepDown([&] { down = true; });
  sim_.loop().RunUntilIdle();
  ASSERT_TRUE(down);
  metrics::Family* ha = metrics_.Counter("bulwark_ha_requests_total", "");

  Reply write = Auth("PUT /v1/secret/a b?x=1", R"({"v":"2"})");
  EXPECT_EQ(write.status, 200);
  EXPECT_EQ(write.json["data"]["from"], "active");
  EXPECT_EQ(write.Header("X-Active"), "yes");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first, "https://10.0.0.9:8201");
  const http::Request& r = sent[0].second;
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(r.path, "/v1/secret/a b");
  EXPECT_EQ(r.body, R"({"v":"2"})");
  EXPECT_EQ(r.Query("x"), "1");
  EXPECT_EQ(r.Header("x-vault-token"), root_);
  EXPECT_EQ(ha->Value({{"served", "forwarded"}}), 1);

  // Answered here, never forwarded.
  EXPECT_EQ(Do("GET /v1/sys/health").status, 429);
  EXPECT_EQ(Do("GET /v1/sys/leader").json["is_self"], false);
  EXPECT_EQ(sent.size(), 1u);

  // Redirected instead.
  EXPECT_EQ(
      Do("GET /v1/secret/a", "", {"X-Vault-Token: " + root_, "X-Vault-No-Request-Forwarding: 1"})
          .status,
      307);
  EXPECT_EQ(Do("GET /v1/secret/a", "",
               {"X-Vault-Token: " + root_, "X-Vault-Internal-No-Request-Forwarding: true"})
                .status,
            307);
  EXPECT_EQ(sent.size(), 1u);
  leader.leader_cluster_address = "";
  EXPECT_EQ(Auth("GET /v1/secret/a").status, 307);
  EXPECT_EQ(sent.size(), 1u);
  leader.leader_cluster_address = "https://10.0.0.9:8201";
  // A forward that provably never reached the active node (no connection): the client is
  // redirected and sends it again itself.
  fail = ha::NotSent(absl::UnavailableError(
      "cluster port 10.0.0.9:8201: forwarding GET /v1/secret/a: cannot connect"));
  Reply fallback = Auth("GET /v1/secret/a");
  EXPECT_EQ(fallback.status, 307);
  EXPECT_EQ(fallback.Header("Location"), "http://10.0.0.9:8200/v1/secret/a");
  EXPECT_EQ(sent.size(), 2u);
  EXPECT_EQ(ha->Value({{"served", "forwarded"}}), 1);
  EXPECT_EQ(ha->Value({{"served", "redirected"}}), 4);
  EXPECT_EQ(forward_failures, 1);
  // A forward that was sent and got no answer (the deadline passed, the stream broke): the active
  // node may have applied it, so no redirect (the client would apply it twice) but a 504 that
  // says so.
  for (absl::Status unknown :
       {absl::DeadlineExceededError("cluster port 10.0.0.9:8201: forwarding PUT /v1/secret/a: "
                                    "Deadline Exceeded"),
        absl::UnavailableError("cluster port 10.0.0.9:8201: forwarding PUT /v1/secret/a: "
                               "Socket closed")}) {
    fail = unknown;
    Reply outcome = Auth("PUT /v1/secret/a", R"({"v":"3"})");
    EXPECT_EQ(outcome.status, 504) << unknown;
    EXPECT_EQ(outcome.json, Errors({ha::kOutcomeUnknownText})) << unknown;
    EXPECT_EQ(outcome.Header("Location"), "");
  }
  EXPECT_EQ(sent.size(), 4u);
  EXPECT_EQ(ha->Value({{"served", "redirected"}}), 4);
  EXPECT_EQ(ha->Value({{"served", "outcome_unknown"}}), 2);
  EXPECT_EQ(forward_failures, 3);
  // The token never reaches the log.
  for (const LogRecord& record : log_.records()) {
    EXPECT_THAT(record.message, Not(HasSubstr(root_)));
    for (const auto& field : record.fields) EXPECT_THAT(field.second, Not(HasSubstr(root_)));
  }
}

TEST_F(ApiTest, PathAndMethodErrors) {
  EXPECT_EQ(Do("GET /v2/sys/init").status, 404);
  EXPECT_EQ(Do("GET /v2/sys/init").json, Errors({}));
  EXPECT_EQ(Do("GET /v1/sys/seal").status, 405);
  EXPECT_EQ(Do("BREW /v1/sys/init").status, 405);
  EXPECT_EQ(Do("GET /v1/secret/../sys/init").status, 400);
  EXPECT_EQ(Do("GET /v1/secret/x", "", {"X-Vault-Wrap-TTL: 60"}).status, 400);
  Reply ns = Do("GET /v1/sys/init", "", {"X-Vault-Namespace: team"});
  EXPECT_EQ(ns.Header("X-Vault-Namespace"), "team");
  EXPECT_EQ(Do("GET /v1/sys/init", "", {"X-Vault-Namespace: "}).Header("X-Vault-Namespace"), "");
}

TEST_F(ApiTest, ShutdownDrainsInFlightRequestsAndRefusesNewOnes) {
  InitAndUnseal();
  MountKv();
  // Two requests posted: the first is answered at once, the second reaches the node.
  std::optional<http::Response> late;
  http::Request r;
  r.method = "GET";
  r.path = "/v1/sys/seal-status";
  api_->Handle(r, [&](http::Response resp) { late = std::move(resp); });
  // One in flight: a write the loop has started but not finished.
  std::optional<http::Response> write;
  PostKvWrite("/v1/secret/inflight", &write);
  ASSERT_TRUE(sim_.loop().Step());  // Runs the first posted request: seal-status, answered.
  ASSERT_TRUE(late.has_value());
  ASSERT_TRUE(sim_.loop().Step());  // The write reaches the node.
  EXPECT_EQ(api_->in_flight(), 1u);
  bool drained = false;
  api_->BeginShutdown([&] { drained = true; });
  EXPECT_FALSE(drained);
  EXPECT_EQ(Do("GET /v1/sys/seal-status").json, Errors({"server is shutting down"}));
  sim_.loop().RunUntilIdle();
  ASSERT_TRUE(write.has_value());
  EXPECT_EQ(write->status, 204);
  EXPECT_TRUE(drained);
}

TEST_F(ApiTest, WhenDrainedWaitsForTheRequestsInFlightOnly) {
  InitAndUnseal();
  MountKv();
  bool idle = false;
  api_->WhenDrained(absl::Seconds(90), [&] { idle = true; });
  EXPECT_TRUE(idle);  // Nothing in flight: at once.
  std::optional<http::Response> write;
  PostKvWrite("/v1/secret/inflight", &write);
  ASSERT_TRUE(sim_.loop().Step());  // The write reaches the node.
  ASSERT_EQ(api_->in_flight(), 1u);
  bool drained = false;
  api_->WhenDrained(absl::Seconds(90), [&] { drained = true; });
  EXPECT_FALSE(drained);
  // A request that arrives later does not hold it up.
  std::optional<http::Response> later;
  PostKvWrite("/v1/secret/later", &later);
  ASSERT_TRUE(sim_.loop().RunUntil([&] { return write.has_value(); }, absl::Seconds(5)));
  EXPECT_EQ(write->status, 204);
  EXPECT_TRUE(drained);
  sim_.loop().RunUntilIdle();
  EXPECT_TRUE(later.has_value());
}

TEST_F(ApiTest, AnswersArrivingAfterTheApiIsGoneAre503) {
  InitAndUnseal();
  MountKv();
  std::optional<http::Response> write;
  PostKvWrite("/v1/secret/x", &write);
  ASSERT_TRUE(sim_.loop().Step());
  ASSERT_FALSE(write.has_value());
  api_.reset();
  sim_.loop().RunUntilIdle();
  ASSERT_TRUE(write.has_value());
  EXPECT_EQ(write->status, 503);
}

TEST_F(ApiTest, NoTokenKeyOrSecretValueReachesTheLog) {
  InitAndUnseal(3, 2);
  MountKv();
  ASSERT_EQ(Auth("PUT /v1/secret/foo", R"({"password":"hunter2-secret"})").status, 204);
  Reply created = Auth("POST /v1/auth/token/create", "{}");
  const std::string child = created.json["auth"]["client_token"].get<std::string>();
  Auth("PUT /v1/sys/seal");
  for (const LogRecord& record : log_.records()) {
    const std::string line = FormatLogRecord(record);
    EXPECT_THAT(line, Not(HasSubstr(root_)));
    EXPECT_THAT(line, Not(HasSubstr(child)));
    EXPECT_THAT(line, Not(HasSubstr("hunter2-secret")));
    for (const std::string& key : keys_) EXPECT_THAT(line, Not(HasSubstr(key)));
  }
  EXPECT_GT(log_.records().size(), 0u);
}

// ---- sys/wrapping/unwrap -------------------------------------------------------------------

constexpr char kWrapped[] = R"({"ServerCert":"Y2VydA==","ServerKey":"c2VjcmV0LWtleQ=="})";

std::string WrapForTest(node::Node& node, absl::Duration ttl = absl::Seconds(60)) {
  wrapping::WrapRequest r;
  r.data_json = crypto::SecureBuffer(std::string(kWrapped));
  r.ttl = ttl;
  r.creation_path = "sys/plugins/bootstrap/test";
  r.addr = "http://127.0.0.1:8200";
  absl::StatusOr<wrapping::WrapResult> wrapped = node.WrapResponse(std::move(r));
  CHECK_OK(wrapped.status());
  return wrapped->token;
}

size_t CountLogged(const MemoryLogSink& log, absl::string_view message) {
  size_t n = 0;
  for (const LogRecord& r : log.records()) n += r.message == message ? 1 : 0;
  return n;
}

TEST_F(ApiTest, UnwrapWithTheWrappingTokenAsClientTokenAnswersOnce) {
  InitAndUnseal();
  stop_at_answer_ = true;
  const std::string token = WrapForTest(*node_);
  // Vault's Go client (the plugin helper) sends the JWT as X-Vault-Token and a JSON null body.
  Reply r = Do("PUT /v1/sys/wrapping/unwrap", "null", {"X-Vault-Token: " + token});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.json["data"], Json::parse(kWrapped));
  EXPECT_EQ(r.json["lease_id"], "");
  EXPECT_EQ(r.Header("Cache-Control"), "no-store");
  EXPECT_EQ(r.body.back(), '\n');

  // A replay: Vault's error and 400, and the reason in the log without the token.
  Reply replay = Do("POST /v1/sys/wrapping/unwrap", "", {"X-Vault-Token: " + token});
  EXPECT_EQ(replay.status, 400);
  EXPECT_EQ(replay.json, Errors({"wrapping token is not valid or does not exist"}));
  EXPECT_EQ(CountLogged(log_, "unwrapped a response-wrapping token; it is now spent"), 1u);
  EXPECT_EQ(CountLogged(log_, "refused to unwrap a response-wrapping token"), 1u);
  for (const LogRecord& record : log_.records()) {
    EXPECT_THAT(FormatLogRecord(record), Not(HasSubstr(token)));
    EXPECT_THAT(FormatLogRecord(record), Not(HasSubstr(token.substr(token.rfind('.') + 1))));
  }
}

TEST_F(ApiTest, UnwrapWithTheTokenInTheBodyNeedsAValidCallerToken) {
  InitAndUnseal();
  stop_at_answer_ = true;
  const std::string token = WrapForTest(*node_);
  const std::string body = Json{{"token", token}}.dump();
  Reply anonymous = Do("PUT /v1/sys/wrapping/unwrap", body);
  EXPECT_EQ(anonymous.status, 403);
  EXPECT_EQ(Do("PUT /v1/sys/wrapping/unwrap", body, {"X-Vault-Token: hvs.nope"}).status, 403);
  Reply r = Auth("PUT /v1/sys/wrapping/unwrap", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["data"], Json::parse(kWrapped));
  EXPECT_EQ(Auth("PUT /v1/sys/wrapping/unwrap", body).status, 400);
  EXPECT_EQ(Auth("PUT /v1/sys/wrapping/unwrap", R"({"token":""})").status, 400);
  EXPECT_EQ(Auth("PUT /v1/sys/wrapping/unwrap", R"({"token":5})").status, 400);
}

TEST_F(ApiTest, UnwrapRefusesExpiredForgedAndOrdinaryTokensAlike) {
  InitAndUnseal();
  stop_at_answer_ = true;
  const std::string expired = WrapForTest(*node_, absl::Seconds(10));
  sim_.loop().RunUntilIdle();  // Simulated time runs past its expiry (and its timer).
  const std::string live = WrapForTest(*node_);
  std::string forged = live;
  forged[forged.size() - 2] = forged[forged.size() - 2] == 'A' ? 'B' : 'A';
  for (const std::string& bad : {expired, forged, root_, std::string("a.b.c"), std::string("")}) {
    Reply r = Do("PUT /v1/sys/wrapping/unwrap", "", {"X-Vault-Token: " + bad});
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.json, Errors({"wrapping token is not valid or does not exist"})) << bad;
  }
  // None of the refusals spent the live token.
  EXPECT_EQ(Do("PUT /v1/sys/wrapping/unwrap", "", {"X-Vault-Token: " + live}).status, 200);
  EXPECT_EQ(Do("GET /v1/sys/wrapping/unwrap", "", {"X-Vault-Token: " + live}).status, 405);
}

TEST_F(ApiTest, UnwrapWhileSealedIs503) {
  InitAndUnseal();
  stop_at_answer_ = true;
  const std::string token = WrapForTest(*node_);
  ASSERT_EQ(Auth("PUT /v1/sys/seal").status, 204);
  Reply r = Do("PUT /v1/sys/wrapping/unwrap", "", {"X-Vault-Token: " + token});
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.json, Errors({"Vault is sealed"}));
}

// ---- Audit
// ---------------------------------------------------------------------------------------

std::vector<Json> AuditLines(sim::SimEnv& sim, const std::string& path) {
  std::vector<Json> out;
  absl::StatusOr<std::string> text = sim.fs().ReadFile(path);
  CHECK_OK(text.status());
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    out.push_back(Json::parse(line));
  }
  return out;
}

// Initialised, unsealed, kv at secret/, a file audit device at file/ writing /log/a.log.
class ApiAuditTest : public ApiTest {
 protected:
  void UnsealedWithKvAndAuditFile() {
    InitAndUnseal();
    MountKv();
    CHECK_OK(sim_.env().fs.CreateDir("/log"));
    ASSERT_EQ(
        Auth("PUT /v1/sys/audit/file", R"({"type":"file","options":{"file_path":"/log/a.log"}})")
            .status,
        204);
  }
};

TEST_F(ApiTest, AuditDeviceEnableListHashDisable) {
  InitAndUnseal();
  CHECK_OK(sim_.env().fs.CreateDir("/log"));
  Reply enable = Auth("PUT /v1/sys/audit/file",
                      R"({"type":"file","description":"d","options":{"file_path":"/log/a.log"}})");
  ASSERT_EQ(enable.status, 204) << enable.body;
  Reply list = Auth("GET /v1/sys/audit");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.json["data"]["file/"]["type"], "file");
  EXPECT_EQ(list.json["data"]["file/"]["options"]["file_path"], "/log/a.log");
  EXPECT_EQ(list.json["file/"]["path"], "file/");
  EXPECT_THAT(list.body, Not(HasSubstr("salt")));

  Reply hash = Auth("PUT /v1/sys/audit-hash/file", R"({"input":"hunter2"})");
  ASSERT_EQ(hash.status, 200) << hash.body;
  EXPECT_EQ(hash.json["data"]["hash"], *node_->audit().Hash("file", "hunter2"));
  EXPECT_EQ(Auth("PUT /v1/sys/audit-hash/none", R"({"input":"x"})").json,
            Errors({"unknown audit backend"}));
  EXPECT_EQ(Auth("PUT /v1/sys/audit-hash/file", "{}").status, 400);

  EXPECT_EQ(
      Auth("PUT /v1/sys/audit/file", R"({"type":"file","options":{"file_path":"/log/b"}})").json,
      Errors({"path already in use"}));
  EXPECT_EQ(Auth("PUT /v1/sys/audit/x", R"({"options":{}})").status, 400);
  EXPECT_THAT(Auth("PUT /v1/sys/audit/x", R"({"type":"file","options":{"file_path":"/log"}})")
                  .json["errors"][0]
                  .get<std::string>(),
              HasSubstr("unable to open /log"));
  EXPECT_EQ(Do("PUT /v1/sys/audit/x", R"({"type":"file"})").status, 403);
  EXPECT_EQ(Auth("GET /v1/sys/audit/file").status, 405);

  ASSERT_EQ(Auth("DELETE /v1/sys/audit/file").status, 204);
  EXPECT_EQ(Auth("DELETE /v1/sys/audit/file").status, 204);  // Vault: 204 when absent too.
  EXPECT_TRUE(Auth("GET /v1/sys/audit").json["data"].empty());
}

TEST_F(ApiAuditTest, AuditedRequestsAreHashedAndSurviveSealUnseal) {
  ASSERT_NO_FATAL_FAILURE(UnsealedWithKvAndAuditFile());
  ASSERT_EQ(Auth("PUT /v1/secret/app", R"({"password":"hunter2-SECRET"})").status, 204);
  Reply read = Auth("GET /v1/secret/app");
  ASSERT_EQ(read.status, 200);
  std::vector<Json> lines = AuditLines(sim_, "/log/a.log");
  // Request and response for the write and the read (the enable itself came before any
  // device, so it is not in the file).
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0]["type"], "request");
  EXPECT_EQ(lines[0]["request"]["path"], "secret/app");
  EXPECT_EQ(lines[0]["request"]["operation"], "update");
  EXPECT_EQ(lines[0]["request"]["data"]["password"],
            *node_->audit().Hash("file", "hunter2-SECRET"));
  EXPECT_EQ(lines[0]["auth"]["client_token"], *node_->audit().Hash("file", root_));
  EXPECT_EQ(lines[0]["auth"]["display_name"], "root");
  EXPECT_EQ(lines[1]["type"], "response");
  EXPECT_EQ(lines[1]["response"]["status_code"], 204);
  EXPECT_EQ(lines[3]["response"]["data"]["password"],
            *node_->audit().Hash("file", "hunter2-SECRET"));
  EXPECT_EQ(lines[2]["request"]["id"], lines[3]["request"]["id"]);
  std::string text = *sim_.fs().ReadFile("/log/a.log");
  EXPECT_THAT(text, Not(HasSubstr("hunter2")));
  EXPECT_THAT(text, Not(HasSubstr(root_)));

  // Seal: the broker forgets; unseal: the table and its salt come back from the barrier.
  const std::string before = *node_->audit().Hash("file", "x");
  ASSERT_EQ(Auth("PUT /v1/sys/seal").status, 204);
  EXPECT_FALSE(node_->audit().enabled());
  ASSERT_EQ(Do("PUT /v1/sys/unseal", absl::StrCat("{\"key\":\"", keys_[0], "\"}")).status, 200);
  EXPECT_TRUE(node_->audit().enabled());
  EXPECT_EQ(*node_->audit().Hash("file", "x"), before);
  ASSERT_EQ(Auth("GET /v1/secret/app").status, 200);
  text = *sim_.fs().ReadFile("/log/a.log");
  EXPECT_THAT(text, Not(HasSubstr("hunter2")));
  EXPECT_THAT(text, Not(HasSubstr(keys_[0])));
  EXPECT_GT(AuditLines(sim_, "/log/a.log").size(), lines.size());
}

TEST_F(ApiAuditTest, AuditFailsClosedAndTheRequestDoesNotRun) {
  ASSERT_NO_FATAL_FAILURE(UnsealedWithKvAndAuditFile());
  ASSERT_EQ(Auth("PUT /v1/secret/app", R"({"v":"1"})").status, 204);
  // The file's place is taken by a directory; the open file is dropped by a seal/unseal cycle.
  ASSERT_EQ(Auth("PUT /v1/sys/seal").status, 204);
  CHECK_OK(sim_.env().fs.Remove("/log/a.log"));
  CHECK_OK(sim_.env().fs.CreateDir("/log/a.log"));
  ASSERT_EQ(Do("PUT /v1/sys/unseal", absl::StrCat("{\"key\":\"", keys_[0], "\"}")).status, 200);

  Reply write = Auth("PUT /v1/secret/app", R"({"v":"2"})");
  EXPECT_EQ(write.status, 500);
  ASSERT_TRUE(write.json["errors"].is_array());
  const std::string error = write.json["errors"][0].get<std::string>();
  EXPECT_THAT(error, HasSubstr("no audit device could record the request"));
  EXPECT_THAT(error, HasSubstr("the request was not executed"));
  // Health and seal status are outside the audited core (Vault alike) and still answer.
  EXPECT_EQ(Do("GET /v1/sys/health").status, 200);
  // The directory goes away: the device writes again, and the refused write never ran.
  CHECK_OK(sim_.env().fs.RemoveDir("/log/a.log"));
  Reply read = Auth("GET /v1/secret/app");
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(read.json["data"]["v"], "1");
}

}  // namespace
}  // namespace bulwark::api
