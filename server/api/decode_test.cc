// Routing, methods, data and the endpoint bodies, without a core.
#include "server/api/decode.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::api {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

http::Request Req(std::string method, std::string path, std::string body = "",
                  std::vector<std::pair<std::string, std::string>> query = {},
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.body = std::move(body);
  r.query = std::move(query);
  r.headers = std::move(headers);
  return r;
}

int StatusOf(const absl::StatusOr<ApiRequest>& r) { return HttpStatusFor(r.status()); }

TEST(DecodeTest, RoutesTheLeaseEndpoints) {
  struct Case {
    const char* method;
    const char* path;
    Route route;
    const char* param;
  };
  const Case cases[] = {
      {"PUT", "/v1/sys/leases/renew", Route::kSysLeasesRenew, ""},
      {"PUT", "/v1/sys/leases/renew/database/creds/ro/abc", Route::kSysLeasesRenew,
       "database/creds/ro/abc"},
      {"PUT", "/v1/sys/renew", Route::kSysLeasesRenew, ""},
      {"PUT", "/v1/sys/leases/revoke", Route::kSysLeasesRevoke, ""},
      {"POST", "/v1/sys/revoke/database/creds/ro/abc", Route::kSysLeasesRevoke,
       "database/creds/ro/abc"},
      {"PUT", "/v1/sys/leases/revoke-prefix/database/creds/", Route::kSysLeasesRevokePrefix,
       "database/creds/"},
      {"PUT", "/v1/sys/leases/lookup", Route::kSysLeasesLookup, ""},
      {"LIST", "/v1/sys/leases/lookup/database/", Route::kSysLeasesLookup, "database/"},
      {"PUT", "/v1/sys/leases/revokeall", Route::kSysUnknown, ""},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ApiRequest> r = DecodeRequest(Req(c.method, c.path));
    ASSERT_TRUE(r.ok()) << c.path << ": " << r.status();
    EXPECT_EQ(r->route, c.route) << c.path;
    EXPECT_EQ(r->param, c.param) << c.path;
  }
  // Renew and revoke are writes; lookup is a write or a list.
  EXPECT_EQ(StatusOf(DecodeRequest(Req("GET", "/v1/sys/leases/renew"))), 405);
  EXPECT_EQ(StatusOf(DecodeRequest(Req("GET", "/v1/sys/leases/lookup"))), 405);
}

TEST(DecodeTest, RoutesSysEndpointsAndLogicalPaths) {
  struct Case {
    std::string method, path;
    Route route;
    std::string param;
  } cases[] = {
      {"GET", "/v1/sys/init", Route::kSysInit, ""},
      {"PUT", "/v1/sys/unseal", Route::kSysUnseal, ""},
      {"GET", "/v1/sys/seal-status", Route::kSysSealStatus, ""},
      {"HEAD", "/v1/sys/health", Route::kSysHealth, ""},
      {"GET", "/v1/sys/mounts", Route::kSysMounts, ""},
      {"POST", "/v1/sys/mounts/team/kv", Route::kSysMount, "team/kv"},
      {"POST", "/v1/sys/mounts/kv/tune", Route::kSysMountTune, "kv"},
      {"POST", "/v1/sys/mounts/tune", Route::kSysMount, "tune"},
      {"GET", "/v1/sys/plugins/catalog", Route::kSysCatalog, ""},
      {"LIST", "/v1/sys/plugins/catalog/secret", Route::kSysCatalogType, ""},
      {"PUT", "/v1/sys/plugins/catalog/database/pg", Route::kSysCatalogEntry, "pg"},
      {"GET", "/v1/sys/plugins/catalog/mysql", Route::kSysCatalogLegacy, "mysql"},
      {"PUT", "/v1/sys/plugins/reload/backend", Route::kSysPluginsReload, ""},
      {"GET", "/v1/sys/metrics", Route::kSysMetrics, ""},
      {"GET", "/v1/sys/nothing", Route::kSysUnknown, ""},
      {"GET", "/v1/auth/token/lookup-self", Route::kTokenLookupSelf, ""},
      {"POST", "/v1/auth/token/create", Route::kTokenCreate, ""},
      {"GET", "/v1/auth/token/roles", Route::kTokenUnknown, ""},
      {"GET", "/v1/secret/foo", Route::kLogical, ""},
      {"GET", "/v1/system/foo", Route::kLogical, ""},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ApiRequest> r = DecodeRequest(Req(c.method, c.path));
    ASSERT_TRUE(r.ok()) << c.method << " " << c.path << ": " << r.status();
    EXPECT_EQ(r->route, c.route) << c.path;
    EXPECT_EQ(r->param, c.param) << c.path;
  }
  absl::StatusOr<ApiRequest> entry =
      DecodeRequest(Req("GET", "/v1/sys/plugins/catalog/database/pg"));
  EXPECT_EQ(entry->plugin_type, catalog::PluginType::kDatabase);
}

TEST(DecodeTest, MethodsMapToOperationsAndListGetsATrailingSlash) {
  EXPECT_EQ(DecodeRequest(Req("GET", "/v1/secret/a"))->operation, Operation::kRead);
  EXPECT_EQ(DecodeRequest(Req("POST", "/v1/secret/a"))->operation, Operation::kUpdate);
  EXPECT_EQ(DecodeRequest(Req("PUT", "/v1/secret/a"))->operation, Operation::kUpdate);
  EXPECT_EQ(DecodeRequest(Req("DELETE", "/v1/secret/a"))->operation, Operation::kDelete);
  absl::StatusOr<ApiRequest> list = DecodeRequest(Req("LIST", "/v1/secret"));
  EXPECT_EQ(list->operation, Operation::kList);
  EXPECT_EQ(list->path, "secret/");
  for (const char* yes : {"true", "1", "t", "TRUE"}) {
    absl::StatusOr<ApiRequest> q = DecodeRequest(Req("GET", "/v1/secret/a", "", {{"list", yes}}));
    EXPECT_EQ(q->operation, Operation::kList) << yes;
    EXPECT_EQ(q->path, "secret/a/");
    EXPECT_TRUE(q->data.empty());  // "list" is not data.
  }
  EXPECT_EQ(DecodeRequest(Req("GET", "/v1/secret/a", "", {{"list", "false"}}))->operation,
            Operation::kRead);
  absl::StatusOr<ApiRequest> bad = DecodeRequest(Req("GET", "/v1/secret/a", "", {{"list", "yes"}}));
  EXPECT_EQ(StatusOf(bad), 400);
}

TEST(DecodeTest, WrongMethodsAre405) {
  EXPECT_EQ(StatusOf(DecodeRequest(Req("GET", "/v1/sys/seal"))), 405);
  EXPECT_EQ(StatusOf(DecodeRequest(Req("POST", "/v1/sys/seal-status"))), 405);
  EXPECT_EQ(StatusOf(DecodeRequest(Req("LIST", "/v1/sys/plugins/catalog"))), 405);
  EXPECT_EQ(StatusOf(DecodeRequest(Req("HEAD", "/v1/secret/a"))), 405);
  EXPECT_EQ(StatusOf(DecodeRequest(Req("BREW", "/v1/secret/a"))), 405);
  EXPECT_EQ(StatusOf(DecodeRequest(Req("DELETE", "/v1/sys/init"))), 405);
}

TEST(DecodeTest, BadPathsAre404Or400) {
  EXPECT_EQ(StatusOf(DecodeRequest(Req("GET", "/v2/secret/a"))), 404);
  EXPECT_EQ(StatusOf(DecodeRequest(Req("GET", "/v1/"))), 404);
  EXPECT_EQ(StatusOf(DecodeRequest(Req("GET", "/"))), 404);
  EXPECT_EQ(DecodeRequest(Req("GET", "/v2/x")).status().message(), "");
  for (const char* p : {"/v1/secret/../sys/seal", "/v1/secret/./a", "/v1//secret", "/v1/a//b",
                        "/v1/secret/a\nb", "/v1/secret/\x7f"}) {
    absl::StatusOr<ApiRequest> r = DecodeRequest(Req("GET", p));
    EXPECT_EQ(StatusOf(r), 400) << p;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("invalid request path")) << p;
  }
}

TEST(DecodeTest, QueryAndBodyBecomeData) {
  absl::StatusOr<ApiRequest> q =
      DecodeRequest(Req("GET", "/v1/secret/a", "", {{"x", "1"}, {"y", "2"}, {"y", "3"}}));
  EXPECT_EQ(q->data, Json({{"x", "1"}, {"y", {"2", "3"}}}));
  absl::StatusOr<ApiRequest> body =
      DecodeRequest(Req("PUT", "/v1/secret/a", R"({"k":[1,{"n":null}]})"));
  EXPECT_EQ(body->data, Json::parse(R"({"k":[1,{"n":null}]})"));
  EXPECT_TRUE(DecodeRequest(Req("PUT", "/v1/secret/a", " \n"))->data.empty());
  EXPECT_TRUE(DecodeRequest(Req("PUT", "/v1/secret/a", "null"))->data.empty());
  absl::StatusOr<ApiRequest> form =
      DecodeRequest(Req("POST", "/v1/secret/a", "a=b+c&d=%41%2f&d=2", {},
                        {{"content-type", "application/x-www-form-urlencoded; charset=utf-8"}}));
  EXPECT_EQ(form->data, Json({{"a", "b c"}, {"d", {"A/", "2"}}}));
  // A JSON body sent with the form content type is still JSON (Vault's rule).
  absl::StatusOr<ApiRequest> json_form =
      DecodeRequest(Req("POST", "/v1/secret/a", "{\"a\":1}", {},
                        {{"content-type", "application/x-www-form-urlencoded"}}));
  EXPECT_EQ(json_form->data, Json({{"a", 1}}));
}

TEST(DecodeTest, MalformedJsonIs400NamingTheProblemWithoutEchoingTheBody) {
  absl::StatusOr<ApiRequest> r =
      DecodeRequest(Req("PUT", "/v1/secret/a", "{\"password\": hunter2}"));
  EXPECT_EQ(StatusOf(r), 400);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("error parsing JSON"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("column"));
  EXPECT_THAT(std::string(r.status().message()), Not(HasSubstr("hunter2")));
  EXPECT_THAT(std::string(DecodeRequest(Req("PUT", "/v1/secret/a", "[1]")).status().message()),
              HasSubstr("must be a JSON object"));
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  absl::StatusOr<ApiRequest> nested =
      DecodeRequest(Req("PUT", "/v1/secret/a", "{\"a\":" + deep + "}"));
  EXPECT_EQ(StatusOf(nested), 400);
  EXPECT_THAT(std::string(nested.status().message()), HasSubstr("nested deeper than 64"));
}

TEST(DecodeTest, PatchNeedsMergePatchJson) {
  EXPECT_EQ(StatusOf(DecodeRequest(Req("PATCH", "/v1/secret/a", "{}"))), 415);
  absl::StatusOr<ApiRequest> ok = DecodeRequest(
      Req("PATCH", "/v1/secret/a", "{}", {}, {{"content-type", "application/merge-patch+json"}}));
  EXPECT_EQ(ok->operation, Operation::kPatch);
}

TEST(DecodeTest, TokenFromHeaderOrBearer) {
  EXPECT_EQ(DecodeRequest(Req("GET", "/v1/a/b", "", {}, {{"x-vault-token", "t1"}}))->token, "t1");
  EXPECT_EQ(DecodeRequest(Req("GET", "/v1/a/b", "", {}, {{"authorization", "Bearer t2"}}))->token,
            "t2");
  EXPECT_EQ(DecodeRequest(Req("GET", "/v1/a/b", "", {},
                              {{"authorization", "Bearer t2"}, {"x-vault-token", "t1"}}))
                ->token,
            "t1");
  EXPECT_EQ(DecodeRequest(Req("GET", "/v1/a/b", "", {}, {{"authorization", "Basic abc"}}))->token,
            "");
}

TEST(DecodeTest, ResponseWrappingIsRefused) {
  EXPECT_EQ(StatusOf(DecodeRequest(Req("GET", "/v1/a/b", "", {}, {{"x-vault-wrap-ttl", "60"}}))),
            400);
}

TEST(DecodeTest, InitFollowsVaultsSealConfigRules) {
  auto msg = [](const char* body) {
    return std::string(DecodeInit(Json::parse(body)).status().message());
  };
  EXPECT_EQ(msg("{}"), "invalid seal configuration: shares must be at least one");
  EXPECT_EQ(msg(R"({"secret_shares":1})"),
            "invalid seal configuration: threshold must be at least one");
  EXPECT_EQ(msg(R"({"secret_shares":3,"secret_threshold":1})"),
            "invalid seal configuration: threshold must be greater than one for multiple shares");
  EXPECT_EQ(msg(R"({"secret_shares":256,"secret_threshold":2})"),
            "invalid seal configuration: shares must be less than 256");
  EXPECT_EQ(msg(R"({"secret_shares":2,"secret_threshold":3})"),
            "invalid seal configuration: threshold cannot be larger than shares");
  EXPECT_THAT(msg(R"({"secret_shares":"3","secret_threshold":2})"),
              HasSubstr("expected an integer"));
  EXPECT_THAT(msg(R"({"secret_shares":1,"secret_threshold":1,"pgp_keys":["k"]})"),
              HasSubstr("pgp_keys is not supported"));
  EXPECT_THAT(msg(R"({"secret_shares":1,"secret_threshold":1,"recovery_shares":2})"),
              HasSubstr("not applicable to seal type shamir"));
  absl::StatusOr<InitBody> ok = DecodeInit(
      Json::parse(R"({"secret_shares":5,"secret_threshold":3,"stored_shares":1,"pgp_keys":[]})"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->secret_shares, 5);
  EXPECT_EQ(ok->secret_threshold, 3);
}

TEST(DecodeTest, UnsealKeysAreHexThenBase64AndFieldNamesIgnoreCase) {
  const std::string share(33, '\x01');
  const std::string hex(66, '0');
  absl::StatusOr<UnsealBody> h = DecodeUnseal(Json{{"key", std::string(64, 'a') + "01"}});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->key.size(), 33u);
  absl::StatusOr<UnsealBody> b =
      DecodeUnseal(Json{{"Key", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"}});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->key, share);
  EXPECT_EQ(DecodeUnseal(Json{{"key", "!!"}}).status().message(),
            "'key' must be a valid hex or base64 string");
  EXPECT_EQ(DecodeUnseal(Json::object()).status().message(),
            "'key' must be specified in request body as JSON, or 'reset' set to true");
  EXPECT_TRUE(DecodeUnseal(Json{{"RESET", true}})->reset);
  EXPECT_EQ(HttpStatusFor(DecodeUnseal(Json{{"key", 5}}).status()), 400);
  EXPECT_THAT(std::string(DecodeUnseal(Json{{"key", hex}, {"migrate", true}}).status().message()),
              HasSubstr("migration"));
}

TEST(DecodeTest, MountEnableBody) {
  absl::StatusOr<mount::EnableRequest> r = DecodeMountEnable(
      "team/kv",
      Json::parse(R"({"type":"kv-v1","description":"d","config":{"plugin_version":"v1.0.0"},
                                 "mount_point":"ignored","options":{"version":"1"}})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->path, "team/kv");
  EXPECT_EQ(r->plugin_name, "kv");
  EXPECT_EQ(r->description, "d");
  EXPECT_EQ(r->plugin_version, "v1.0.0");
  EXPECT_EQ(
      DecodeMountEnable("x", Json::parse(R"({"type":"plugin","plugin_name":"p"})"))->plugin_name,
      "p");
  EXPECT_EQ(DecodeMountEnable("x", Json::object()).status().message(),
            "backend type must be specified as a string");
  EXPECT_THAT(
      std::string(DecodeMountEnable("x", Json::parse(R"({"type":"kv-v2"})")).status().message()),
      HasSubstr("version 2"));
  EXPECT_THAT(
      std::string(DecodeMountEnable("x", Json::parse(R"({"type":"kv","options":{"version":"2"}})"))
                      .status()
                      .message()),
      HasSubstr("version 2"));
  EXPECT_EQ(HttpStatusFor(
                DecodeMountEnable("x", Json::parse(R"({"type":"kv","local":"maybe"})")).status()),
            400);
}

TEST(DecodeTest, PluginRegisterBody) {
  const std::string sha(64, 'a');
  absl::StatusOr<catalog::RegisterRequest> r = DecodePluginRegister(
      catalog::PluginType::kSecret, "p",
      Json{{"sha256", sha}, {"command", "p --flag x"}, {"env", {"A=1"}}, {"version", "1.0.0"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->command, "p");
  EXPECT_EQ(r->args, (std::vector<std::string>{"--flag", "x"}));
  EXPECT_EQ(r->env, std::vector<std::string>{"A=1"});
  EXPECT_EQ(r->version, "1.0.0");
  EXPECT_EQ(r->signature, "");
  EXPECT_EQ(DecodePluginRegister(catalog::PluginType::kSecret, "p",
                                 Json{{"sha256", sha}, {"command", "p"}, {"signature", "SIG"}})
                ->signature,
            "SIG");
  EXPECT_EQ(DecodePluginRegister(catalog::PluginType::kSecret, "p",
                                 Json{{"sha256", sha}, {"command", "p"}, {"signature", 1}})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodePluginRegister(catalog::PluginType::kSecret, "p",
                                 Json{{"sha_256", sha}, {"command", "p"}})
                ->sha256,
            sha);
  EXPECT_EQ(DecodePluginRegister(catalog::PluginType::kSecret, "p", Json{{"command", "p"}})
                .status()
                .message(),
            "missing SHA-256 value");
  EXPECT_EQ(DecodePluginRegister(catalog::PluginType::kSecret, "p", Json{{"sha256", sha}})
                .status()
                .message(),
            "missing command value");
  EXPECT_EQ(DecodePluginRegister(catalog::PluginType::kSecret, "p",
                                 Json{{"sha256", sha}, {"command", "p a"}, {"args", {"b"}}})
                .status()
                .message(),
            "must not specify args in command and args field");
  EXPECT_EQ(DecodePluginRegister(catalog::PluginType::kSecret, "", Json{{"sha256", sha}})
                .status()
                .message(),
            "missing plugin name");
}

TEST(DecodeTest, ReloadBody) {
  absl::StatusOr<ReloadBody> m =
      DecodeReload(Json{{"mounts", "a/, sys/auth/b"}, {"scope", "global"}});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->mounts, (std::vector<std::string>{"a/", "auth/b"}));
  EXPECT_TRUE(m->global);
  EXPECT_EQ(DecodeReload(Json{{"plugin", "kv"}})->plugin, "kv");
  EXPECT_EQ(DecodeReload(Json::object()).status().message(), "plugin or mounts must be provided");
  EXPECT_EQ(DecodeReload(Json{{"plugin", "kv"}, {"mounts", {"a"}}}).status().message(),
            "plugin and mounts cannot be set at the same time");
  EXPECT_EQ(DecodeReload(Json{{"plugin", "kv"}, {"scope", "local"}}).status().message(),
            "reload scope must be omitted or 'global'");
}

TEST(DecodeTest, TokenCreateBodyRefusesWhatWouldRestrictAToken) {
  absl::StatusOr<TokenCreateBody> b = DecodeTokenCreate(
      Json{{"ttl", "1h"}, {"display_name", "ci"}, {"meta", {{"k", "v"}}}, {"renewable", true}});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->request.ttl, absl::Hours(1));
  EXPECT_EQ(b->request.meta.at("k"), "v");
  EXPECT_EQ(b->ignored, std::vector<std::string>{"renewable"});
  EXPECT_EQ(DecodeTokenCreate(Json{{"ttl", 90}})->request.ttl, absl::Seconds(90));
  EXPECT_EQ(DecodeTokenCreate(Json{{"ttl", "2d"}})->request.ttl, absl::Hours(48));
  EXPECT_TRUE(DecodeTokenCreate(Json{{"policies", {"root"}}}).ok());
  for (const Json& restricting :
       {Json{{"policies", {"default"}}}, Json{{"num_uses", 3}}, Json{{"period", "1h"}},
        Json{{"type", "batch"}}, Json{{"explicit_max_ttl", "5m"}}, Json{{"ttl", "soon"}},
        Json{{"ttl", -5}}, Json{{"meta", {{"k", 1}}}}}) {
    EXPECT_EQ(HttpStatusFor(DecodeTokenCreate(restricting).status()), 400) << restricting.dump();
  }
}

TEST(DecodeTest, HealthQuery) {
  absl::StatusOr<HealthQuery> q = DecodeHealthQuery(
      Json{{"standbyok", "true"}, {"sealedcode", "299"}, {"uninitcode", {"204", "x"}}});
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->standby_ok);
  EXPECT_EQ(q->sealed_code, 299);
  EXPECT_EQ(q->uninit_code, 204);
  EXPECT_EQ(q->active_code, 200);
  EXPECT_EQ(q->standby_code, 429);
  EXPECT_EQ(q->perf_standby_code, 473);
  EXPECT_EQ(q->dr_secondary_code, 472);
  for (const Json& bad : {Json{{"standbyok", "yes"}}, Json{{"activecode", "abc"}},
                          Json{{"activecode", "99"}}, Json{{"perfstandbyok", "2"}}}) {
    absl::Status s = DecodeHealthQuery(bad).status();
    EXPECT_EQ(HttpStatusFor(s), 400) << bad.dump();
    EXPECT_EQ(s.message(), "");
  }
}

TEST(DecodeTest, StatusMapping) {
  EXPECT_EQ(HttpStatusFor(absl::FailedPreconditionError("Vault is sealed")), 503);
  EXPECT_EQ(HttpStatusFor(absl::FailedPreconditionError("node is a standby; x")), 503);
  EXPECT_EQ(HttpStatusFor(absl::FailedPreconditionError("catalog.sha256_mismatch: x")), 400);
  EXPECT_EQ(HttpStatusFor(absl::NotFoundError("x")), 404);
  EXPECT_EQ(HttpStatusFor(absl::UnimplementedError("x")), 405);
  EXPECT_EQ(HttpStatusFor(absl::PermissionDeniedError("x")), 403);
  EXPECT_EQ(HttpStatusFor(absl::InternalError("x")), 500);
  EXPECT_EQ(HttpStatusFor(HttpError(415, "x")), 415);
}

TEST(DecodeTest, DumpNeverThrowsOnInvalidUtf8) {
  EXPECT_EQ(Dump(Json("a\xff")), "\"a\xEF\xBF\xBD\"");
}

TEST(DecodeTest, PluginRegisterTakesLimits) {
  const std::string sha(64, 'a');
  absl::StatusOr<catalog::RegisterRequest> r = DecodePluginRegister(
      catalog::PluginType::kSecret, "p",
      Json{{"sha256", sha},
           {"command", "p"},
           {"limits", {{"memory_bytes", 67108864}, {"pids", "32"}, {"cpu_weight", 100}}}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->limits.memory_bytes, 67108864u);
  EXPECT_EQ(r->limits.pids, 32u);
  EXPECT_EQ(r->limits.cpu_weight, 100u);
  EXPECT_FALSE(r->limits.open_files.has_value());
  auto refused = [&](Json limits) {
    return DecodePluginRegister(catalog::PluginType::kSecret, "p",
                                Json{{"sha256", sha}, {"command", "p"}, {"limits", limits}})
        .status();
  };
  EXPECT_EQ(HttpStatusFor(refused(Json{{"swap", 1}})), 400);
  EXPECT_THAT(std::string(refused(Json{{"swap", 1}}).message()),
              ::testing::HasSubstr("unknown limit"));
  EXPECT_THAT(std::string(refused(Json{{"pids", -1}}).message()),
              ::testing::HasSubstr("limits.pids must be a non-negative integer"));
  EXPECT_THAT(std::string(refused(Json{{"memory_bytes", 10}}).message()),
              ::testing::HasSubstr("limits.memory_bytes must be between"));
  EXPECT_EQ(HttpStatusFor(refused(Json(3))), 400);
}

}  // namespace
}  // namespace bulwark::api
