// The CLI end to end against a canned loopback responder: what each command sends (method, path,
// X-Vault-Token, JSON body), what it prints, and its exit code. No server is needed.
#include "server/cli/cli.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/cli/command.h"
#include "server/cli/loopback_responder.h"

namespace bulwark::cli {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kToken[] = "hvs.CliTestToken0123456789";

struct Result {
  int code = -1;
  std::string out, err;
};

class CliTest : public ::testing::Test {
 protected:
  CliTest() {
    const char* tmp = std::getenv("TEST_TMPDIR");
    home_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/home-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    mkdir(home_.c_str(), 0700);
    std::remove((home_ + "/.vault-token").c_str());
    env_ = {{"VAULT_ADDR", server_.address()}, {"VAULT_TOKEN", kToken}, {"HOME", home_}};
  }

  Result Cli(const std::vector<std::string>& args) {
    std::istringstream in(stdin_);
    std::ostringstream out, err;
    Io io;
    io.getenv = [this](const std::string& name) -> std::optional<std::string> {
      auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
    io.in = &in;
    io.out = &out;
    io.err = &err;
    Result r;
    r.code = cli::Run(args, io);
    r.out = out.str();
    r.err = err.str();
    return r;
  }

  // The one request the command sent.
  LoopbackResponder::Request Only() {
    std::vector<LoopbackResponder::Request> all = server_.requests();
    EXPECT_EQ(all.size(), 1u);
    return all.empty() ? LoopbackResponder::Request{} : all[0];
  }

  static json Body(const LoopbackResponder::Request& r) { return json::parse(r.body); }

  LoopbackResponder server_;
  std::map<std::string, std::string> env_;
  std::string home_;
  std::string stdin_;
};

// --- Token resolution, address, headers -----------------------------------------------------

TEST_F(CliTest, SendsVaultTokenFromTheEnvironmentAndTheVaultRequestHeader) {
  server_.Enqueue(204, "");
  Result r = Cli({"delete", "secret/foo"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto req = Only();
  EXPECT_EQ(req.method, "DELETE");
  EXPECT_EQ(req.target, "/v1/secret/foo");
  EXPECT_EQ(req.headers["x-vault-token"], kToken);
  EXPECT_EQ(req.headers["x-vault-request"], "true");
  EXPECT_EQ(r.out, "Success! Data deleted (if it existed) at: secret/foo\n");
}

TEST_F(CliTest, TokenFileIsUsedOnlyWhenVaultTokenIsUnsetOrEmpty) {
  std::ofstream(home_ + "/.vault-token") << "  hvs.FromFile \n";
  server_.Enqueue(204, "");
  server_.Enqueue(204, "");
  server_.Enqueue(204, "");
  EXPECT_EQ(Cli({"delete", "a"}).code, 0);  // VAULT_TOKEN wins over the file.
  env_["VAULT_TOKEN"] = "";
  EXPECT_EQ(Cli({"delete", "b"}).code, 0);
  env_.erase("VAULT_TOKEN");
  EXPECT_EQ(Cli({"delete", "c"}).code, 0);
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].headers["x-vault-token"], kToken);
  EXPECT_EQ(reqs[1].headers["x-vault-token"], "hvs.FromFile");
  EXPECT_EQ(reqs[2].headers["x-vault-token"], "hvs.FromFile");
}

TEST_F(CliTest, NoTokenAnywhereSendsNoTokenHeader) {
  env_.erase("VAULT_TOKEN");
  server_.Enqueue(403, R"({"errors":["1 error occurred:\n\t* permission denied\n\n"]})");
  Result r = Cli({"read", "secret/foo"});
  EXPECT_EQ(r.code, 2);
  EXPECT_FALSE(Only().has_header("x-vault-token"));
  EXPECT_THAT(r.err, HasSubstr("Error reading secret/foo: Error making API request."));
  EXPECT_THAT(r.err, HasSubstr("URL: GET " + server_.address() + "/v1/secret/foo"));
  EXPECT_THAT(r.err, HasSubstr("Code: 403. Errors:"));
  EXPECT_THAT(r.err, HasSubstr("* 1 error occurred:\n\t* permission denied"));
}

TEST_F(CliTest, ApiErrorsNeverEchoTheToken) {
  server_.Enqueue(403, R"({"errors":["permission denied"]})");
  server_.Enqueue(400, R"({"errors":["invalid request"]})");
  Result read = Cli({"read", "secret/foo"});
  Result lookup = Cli({"token", "lookup", "hvs.SomeOtherToken"});
  for (const Result& r : {read, lookup}) {
    EXPECT_EQ(r.code, 2);
    EXPECT_THAT(r.err + r.out, Not(HasSubstr(kToken)));
    EXPECT_THAT(r.err + r.out, Not(HasSubstr("hvs.SomeOtherToken")));
  }
}

TEST_F(CliTest, ATokenWithAControlCharacterIsRefusedUnsentAndUnechoed) {
  env_["VAULT_TOKEN"] = "hvs.Bad\nToken";
  Result r = Cli({"read", "secret/foo"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("control character"));
  EXPECT_THAT(r.err, Not(HasSubstr("hvs.Bad")));
  EXPECT_THAT(server_.requests(), IsEmpty());
}

TEST_F(CliTest, AddressFlagBeatsVaultAddrAndTheDefaultIsVaultsHttpsLoopback) {
  env_["VAULT_ADDR"] = "http://127.0.0.1:1";
  server_.Enqueue(204, "");
  EXPECT_EQ(Cli({"delete", "-address=" + server_.address(), "x"}).code, 0);
  EXPECT_EQ(server_.requests().size(), 1u);

  env_.erase("VAULT_ADDR");
  Io io;
  io.getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  std::ostringstream sink;
  io.out = io.err = &sink;
  Invocation inv(io, "usage");
  ASSERT_FALSE(inv.Parse({}).has_value());
  ASSERT_NE(inv.client(), nullptr);
  EXPECT_EQ(inv.client()->options().address, "https://127.0.0.1:8200");
}

TEST_F(CliTest, BadAddressAndUnreadableCaCertAreClientErrors) {
  env_["VAULT_ADDR"] = "127.0.0.1:8200";
  Result r = Cli({"read", "secret/foo"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("must start with http:// or https://"));
  env_["VAULT_ADDR"] = server_.address();
  env_["VAULT_CACERT"] = "/nonexistent/ca.pem";
  r = Cli({"read", "secret/foo"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("\"/nonexistent/ca.pem\" cannot be read"));
  EXPECT_THAT(server_.requests(), IsEmpty());
}

TEST_F(CliTest, TlsToAPlainHttpServerFailsAsARemoteError) {
  env_["VAULT_ADDR"] = "https://" + server_.address().substr(strlen("http://"));
  Result r = Cli({"read", "secret/foo"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("Error reading secret/foo: GET https://127.0.0.1:"));
}

// --- Local errors: exit 1, nothing sent -----------------------------------------------------

TEST_F(CliTest, LocalErrorsExitOneAndSendNothing) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"read", "-bogus", "secret/x"}, "flag provided but not defined: -bogus"},
      {{"read"}, "Not enough arguments (expected at least 1, got 0)"},
      {{"secrets", "disable", "a", "b"}, "Too many arguments (expected 1, got 2)"},
      {{"status", "-format=yaml"}, "Invalid output format: yaml"},
      {{"write", "secret/x"}, "Must supply data or use -force"},
      {{"write", "secret/x", "novalue"}, "data argument 1 is not key=value"},
      {{"plugin", "register", "secret", "p"}, "SHA256 is required"},
      {{"plugin", "register", "-sha256=ab", "widget", "p"}, "Invalid plugin type \"widget\""},
      {{"plugin", "reload"}, "Must specify exactly one of -plugin or -mounts"},
      {{"operator", "init", "-key-shares=x"}, "invalid value \"x\" for flag -key-shares"},
      {{"operator", "bogus"}, "Unknown subcommand \"bogus\""},
      {{"token", "create", "-ttl=soon"}, "invalid value \"soon\" for flag -ttl"},
  };
  for (const Case& c : cases) {
    Result r = Cli(c.args);
    EXPECT_EQ(r.code, 1) << c.args[0] << " " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message));
  }
  EXPECT_THAT(server_.requests(), IsEmpty());
}

TEST_F(CliTest, UnknownCommandIs127AndHelpIsZero) {
  Result r = Cli({"frobnicate"});
  EXPECT_EQ(r.code, 127);
  EXPECT_THAT(r.err, HasSubstr("Unknown command \"frobnicate\""));
  r = Cli({"read", "-help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("Usage: bulwark read"));
  EXPECT_THAT(r.out, HasSubstr("-address=<string>"));
  r = Cli({"secrets", "-h"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("enable"));
  EXPECT_EQ(Cli({}).code, 127);
  EXPECT_THAT(server_.requests(), IsEmpty());
}

// --- read / write / list / delete -----------------------------------------------------------

TEST_F(CliTest, WriteSendsKeyValuePairsAsAJsonBodyWithPut) {
  server_.Enqueue(204, "");
  Result r = Cli({"write", "secret/foo", "user=alice", "password=s3cret"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Success! Data written to: secret/foo\n");
  auto req = Only();
  EXPECT_EQ(req.method, "PUT");
  EXPECT_EQ(req.target, "/v1/secret/foo");
  EXPECT_EQ(req.headers["content-type"], "application/json");
  EXPECT_EQ(Body(req), json({{"user", "alice"}, {"password", "s3cret"}}));
}

TEST_F(CliTest, WriteReadsAJsonObjectFromStdin) {
  stdin_ = R"({"n": 1, "list": ["a"]})";
  server_.Enqueue(200, R"({"data":{"version":1},"lease_duration":0})");
  Result r = Cli({"write", "secret/foo", "-"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Body(Only()), json::parse(stdin_));
  EXPECT_EQ(r.out, "Key        Value\n---        -----\nversion    1\n");
}

TEST_F(CliTest, WriteForceSendsAnEmptyObject) {
  server_.Enqueue(204, "");
  EXPECT_EQ(Cli({"write", "-f", "sys/rotate"}).code, 0);
  EXPECT_EQ(Body(Only()), json::object());
}

TEST_F(CliTest, ReadPrintsATableJsonOrOneField) {
  const std::string reply =
      R"({"request_id":"r1","lease_id":"","renewable":false,"lease_duration":2764800,)"
      R"("data":{"password":"s3cret","user":"alice"},"wrap_info":null,"warnings":null,"auth":null})";
  server_.Enqueue(200, reply);
  server_.Enqueue(200, reply);
  server_.Enqueue(200, reply);
  Result table = Cli({"read", "secret/foo"});
  EXPECT_EQ(table.code, 0) << table.err;
  EXPECT_EQ(table.out,
            "Key                 Value\n"
            "---                 -----\n"
            "refresh_interval    768h\n"
            "password            s3cret\n"
            "user                alice\n");
  Result as_json = Cli({"read", "-format=json", "secret/foo"});
  EXPECT_EQ(as_json.code, 0);
  EXPECT_EQ(json::parse(as_json.out), json::parse(reply));
  EXPECT_THAT(as_json.out, HasSubstr("\n  \"data\": {\n"));
  Result field = Cli({"read", "-field=user", "secret/foo"});
  EXPECT_EQ(field.code, 0);
  EXPECT_EQ(field.out, "alice");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, "/v1/secret/foo");
  EXPECT_FALSE(reqs[0].has_header("content-type"));
}

TEST_F(CliTest, ReadOfAMissingPathIsExitTwoWithNoValueFound) {
  server_.Enqueue(404, R"({"errors":[]})");
  Result r = Cli({"read", "secret/missing"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "No value found at secret/missing\n");
  server_.Enqueue(200, R"({"data":{"a":"b"}})");
  r = Cli({"read", "-field=nope", "secret/foo"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("Field \"nope\" not present in secret"));
}

TEST_F(CliTest, ReadPassesKeyValuePairsAsQueryParameters) {
  server_.Enqueue(200, R"({"data":{}})");
  EXPECT_EQ(Cli({"read", "/pki/cert/x y/", "b=2", "a=1 2"}).code, 0);
  EXPECT_EQ(Only().target, "/v1/pki/cert/x%20y?a=1+2&b=2");
}

TEST_F(CliTest, ListUsesTheListVerbWithATrailingSlashAndSortsKeys) {
  server_.Enqueue(200, R"({"data":{"keys":["zed","alpha/","mid"]}})");
  server_.Enqueue(200, R"({"data":{"keys":["b","a"]}})");
  server_.Enqueue(404, R"({"errors":[]})");
  Result r = Cli({"list", "secret"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Keys\n----\nalpha/\nmid\nzed\n");
  Result j = Cli({"list", "-format=json", "secret/"});
  EXPECT_EQ(json::parse(j.out), json::parse(R"(["b","a"])"));
  Result missing = Cli({"list", "empty"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_EQ(missing.err, "No value found at empty/\n");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].method, "LIST");
  EXPECT_EQ(reqs[0].target, "/v1/secret/");
  EXPECT_EQ(reqs[1].target, "/v1/secret/");
}

TEST_F(CliTest, RawErrorBodiesAndUnreachableServers) {
  server_.Enqueue(502, "upstream broke");
  Result r = Cli({"write", "secret/x", "a=b"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("Code: 502. Raw Message:\n\nupstream broke"));
  env_["VAULT_ADDR"] = "http://127.0.0.1:1";
  r = Cli({"write", "secret/x", "a=b"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err,
              HasSubstr("Error writing data to secret/x: PUT http://127.0.0.1:1/v1/secret/x"));
}

// --- operator and status --------------------------------------------------------------------

const char kSealedStatus[] =
    R"({"type":"shamir","initialized":true,"sealed":true,"t":3,"n":5,"progress":1,)"
    R"("nonce":"n-1","version":"0.1.0","build_date":"2026-01-01T00:00:00Z","migration":false,)"
    R"("recovery_seal":false,"storage_type":"file"})";
const char kUnsealedStatus[] =
    R"({"type":"shamir","initialized":true,"sealed":false,"t":1,"n":1,"progress":0,)"
    R"("nonce":"","version":"0.1.0","build_date":"2026-01-01T00:00:00Z","migration":false,)"
    R"("cluster_name":"bulwark","cluster_id":"c-1","recovery_seal":false,"storage_type":"inmem"})";
const char kNoHaLeader[] =
    R"({"ha_enabled":false,"is_self":false,"active_time":"0001-01-01T00:00:00Z",)"
    R"("leader_address":"","leader_cluster_address":""})";

TEST_F(CliTest, StatusIsZeroUnsealedTwoSealedOneUnreachable) {
  server_.Enqueue(200, kUnsealedStatus);
  server_.Enqueue(200, kNoHaLeader);
  Result up = Cli({"status"});
  EXPECT_EQ(up.code, 0) << up.err;
  EXPECT_EQ(up.out,
            "Key             Value\n"
            "---             -----\n"
            "Seal Type       shamir\n"
            "Initialized     true\n"
            "Sealed          false\n"
            "Total Shares    1\n"
            "Threshold       1\n"
            "Version         0.1.0\n"
            "Build Date      2026-01-01T00:00:00Z\n"
            "Storage Type    inmem\n"
            "Cluster Name    bulwark\n"
            "Cluster ID      c-1\n"
            "HA Enabled      false\n");

  server_.Enqueue(200, kSealedStatus);
  server_.Enqueue(503, R"({"errors":["Vault is sealed"]})");
  Result sealed = Cli({"status"});
  EXPECT_EQ(sealed.code, 2);
  EXPECT_THAT(sealed.out, HasSubstr("Sealed             true\n"));
  EXPECT_THAT(sealed.out, HasSubstr("Unseal Progress    1/3\n"));
  EXPECT_THAT(sealed.out, HasSubstr("HA Enabled         true\n"));

  server_.Enqueue(200, kSealedStatus);
  server_.Enqueue(200, kNoHaLeader);
  Result j = Cli({"status", "-format=json"});
  EXPECT_EQ(j.code, 2);
  EXPECT_EQ(json::parse(j.out)["sealed"], true);
  EXPECT_EQ(json::parse(j.out)["ha_enabled"], false);

  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 6u);
  EXPECT_EQ(reqs[0].target, "/v1/sys/seal-status");
  EXPECT_EQ(reqs[1].target, "/v1/sys/leader");

  env_["VAULT_ADDR"] = "http://127.0.0.1:1";
  Result down = Cli({"status"});
  EXPECT_EQ(down.code, 1);
  EXPECT_THAT(down.err, HasSubstr("Error checking seal status: GET http://127.0.0.1:1/v1/sys/"));
}

TEST_F(CliTest, OperatorInitSendsSharesAndPrintsKeysAndRootToken) {
  const std::string reply =
      R"({"keys":["aa","bb"],"keys_base64":["qg==","uw=="],"root_token":"hvs.Root"})";
  server_.Enqueue(200, reply);
  server_.Enqueue(200, reply);
  Result r = Cli({"operator", "init", "-key-shares=2", "-key-threshold=2"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Unseal Key 1: qg==\nUnseal Key 2: uw==\n\nInitial Root Token: "
                               "hvs.Root\n\nVault initialized with 2 key shares and a key "
                               "threshold of 2."));
  Result j = Cli({"operator", "init", "-key-shares=2", "-key-threshold=2", "-format=json"});
  EXPECT_EQ(j.code, 0);
  json out = json::parse(j.out);
  EXPECT_EQ(out["unseal_keys_b64"], json::parse(R"(["qg==","uw=="])"));
  EXPECT_EQ(out["unseal_keys_hex"], json::parse(R"(["aa","bb"])"));
  EXPECT_EQ(out["unseal_threshold"], 2);
  EXPECT_EQ(out["root_token"], "hvs.Root");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].target, "/v1/sys/init");
  EXPECT_EQ(Body(reqs[0]), json({{"secret_shares", 2}, {"secret_threshold", 2}}));
}

TEST_F(CliTest, OperatorInitStatusAndAlreadyInitialized) {
  server_.Enqueue(200, R"({"initialized":false})");
  Result r = Cli({"operator", "init", "-status"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "Vault is not initialized\n");
  server_.Enqueue(400, R"({"errors":["Vault is already initialized"]})");
  r = Cli({"operator", "init"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("Error initializing: Error making API request."));
  EXPECT_THAT(r.err, HasSubstr("* Vault is already initialized"));
}

TEST_F(CliTest, OperatorUnsealTakesTheKeyFromArgsOrStdin) {
  server_.Enqueue(200, kSealedStatus);
  server_.Enqueue(503, R"({"errors":["Vault is sealed"]})");
  Result r = Cli({"operator", "unseal", "a2V5MQ=="});
  EXPECT_EQ(r.code, 0) << r.err;  // Still sealed is not an error for unseal.
  EXPECT_THAT(r.out, HasSubstr("Unseal Progress    1/3"));
  stdin_ = "  a2V5Mg==\n";
  server_.Enqueue(200, kUnsealedStatus);
  server_.Enqueue(200, kNoHaLeader);
  r = Cli({"operator", "unseal"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("Unseal Key (will be hidden): "));
  server_.Enqueue(200, kSealedStatus);
  server_.Enqueue(200, kNoHaLeader);
  EXPECT_EQ(Cli({"operator", "unseal", "-reset"}).code, 0);
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 6u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].target, "/v1/sys/unseal");
  EXPECT_EQ(Body(reqs[0]), json({{"key", "a2V5MQ=="}}));
  EXPECT_EQ(Body(reqs[2]), json({{"key", "a2V5Mg=="}}));
  EXPECT_EQ(Body(reqs[4]), json({{"reset", true}}));
}

TEST_F(CliTest, OperatorSealAndStepDownPutWithAnEmptyBody) {
  server_.Enqueue(204, "");
  server_.Enqueue(204, "");
  Result seal = Cli({"operator", "seal"});
  EXPECT_EQ(seal.code, 0) << seal.err;
  EXPECT_EQ(seal.out, "Success! Vault is sealed.\n");
  Result down = Cli({"operator", "step-down"});
  EXPECT_EQ(down.code, 0) << down.err;
  EXPECT_EQ(down.out, "Success! Stepped down: " + server_.address() + "\n");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].target, "/v1/sys/seal");
  EXPECT_EQ(reqs[0].headers["content-length"], "0");
  EXPECT_EQ(reqs[1].target, "/v1/sys/step-down");
  server_.Enqueue(503, R"({"errors":["Vault is sealed"]})");
  Result sealed = Cli({"operator", "step-down"});
  EXPECT_EQ(sealed.code, 2);
  EXPECT_THAT(sealed.err, HasSubstr("Error stepping down: "));
  EXPECT_THAT(sealed.err, HasSubstr("Code: 503. Errors:\n\n* Vault is sealed"));
}

// --- lease ----------------------------------------------------------------------------------

TEST_F(CliTest, LeaseRenewRevokeLookupSendVaultsRequests) {
  server_.Enqueue(200, R"({"lease_id":"database/creds/ro/abc","renewable":true,
      "lease_duration":1800,"data":null})");
  Result r = Cli({"lease", "renew", "-increment=30m", "database/creds/ro/abc"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto req = server_.requests().back();
  EXPECT_EQ(req.method, "PUT");
  EXPECT_EQ(req.target, "/v1/sys/leases/renew");
  EXPECT_EQ(Body(req), json::parse(R"({"lease_id":"database/creds/ro/abc","increment":1800})"));

  server_.Enqueue(204, "");
  r = Cli({"lease", "revoke", "database/creds/ro/abc"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "All revocation operations queued successfully!\n");
  req = server_.requests().back();
  EXPECT_EQ(req.target, "/v1/sys/leases/revoke");
  EXPECT_EQ(Body(req), json::parse(R"({"lease_id":"database/creds/ro/abc"})"));

  server_.Enqueue(204, "");
  r = Cli({"lease", "revoke", "-prefix", "database/creds/"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server_.requests().back().target, "/v1/sys/leases/revoke-prefix/database/creds/");

  server_.Enqueue(400, R"({"errors":["lease not found: \"x\""]})");
  r = Cli({"lease", "lookup", "x"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("lease not found"));
  EXPECT_EQ(server_.requests().back().target, "/v1/sys/leases/lookup");
  EXPECT_EQ(Cli({"lease", "renew"}).code, 1);  // Not enough arguments.
}

// --- plugin ---------------------------------------------------------------------------------

TEST_F(CliTest, PluginRegisterSendsTheCatalogEntry) {
  server_.Enqueue(204, "");
  Result r = Cli({"plugin", "register", "-sha256=abc123", "-command=kv-plugin", "-args=--a,--b",
                  "-env=K=V", "-env=X=Y", "-version=v1.2.3", "secret", "my-kv"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Success! Registered plugin: my-kv\n");
  auto req = Only();
  EXPECT_EQ(req.method, "PUT");
  EXPECT_EQ(req.target, "/v1/sys/plugins/catalog/secret/my-kv");
  EXPECT_EQ(Body(req), json::parse(R"({"type":"secret","command":"kv-plugin","args":["--a","--b"],
      "sha256":"abc123","env":["K=V","X=Y"],"version":"v1.2.3"})"));
}

TEST_F(CliTest, PluginRegisterCommandDefaultsToTheName) {
  server_.Enqueue(204, "");
  EXPECT_EQ(Cli({"plugin", "register", "-sha256=ab", "database", "pg"}).code, 0);
  EXPECT_EQ(Body(Only()),
            json::parse(R"({"type":"database","command":"pg","args":[],"sha256":"ab"})"));
}

TEST_F(CliTest, PluginRegisterSendsTheSignatureFileAndRefusesAMissingOne) {
  const std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/kv.sig");
  const std::string armored =
      "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << armored;
  }
  server_.Enqueue(204, "");
  Result r =
      Cli({"plugin", "register", "-sha256=ab", absl::StrCat("-signature=", path), "secret", "kv"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Body(Only())["signature"], armored);
  r = Cli({"plugin", "register", "-sha256=ab", "-signature=/nonexistent/kv.sig", "secret", "kv"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot read the signature file /nonexistent/kv.sig"));
}

TEST_F(CliTest, PluginRegisterSendsLimitsUnderTheApiFieldNames) {
  server_.Enqueue(204, "");
  Result r = Cli({"plugin", "register", "-sha256=ab", "-memory-bytes=67108864", "-pids=32",
                  "-cpu-weight=50", "-open-files=256", "secret", "kv"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Body(server_.requests().back())["limits"],
            json::parse(R"({"memory_bytes":67108864,"pids":32,"cpu_weight":50,"open_files":256})"));
  // Only the limits given are sent; none, no "limits" at all.
  server_.Enqueue(204, "");
  EXPECT_EQ(Cli({"plugin", "register", "-sha256=ab", "-pids=8", "secret", "kv"}).code, 0);
  EXPECT_EQ(Body(server_.requests().back())["limits"], json::parse(R"({"pids":8})"));
  server_.Enqueue(204, "");
  EXPECT_EQ(Cli({"plugin", "register", "-sha256=ab", "secret", "kv"}).code, 0);
  EXPECT_FALSE(Body(server_.requests().back()).contains("limits"));
  // Not a number: refused before anything is sent.
  r = Cli({"plugin", "register", "-sha256=ab", "-memory-bytes=64MiB", "secret", "kv"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("-memory-bytes must be a whole number, got \"64MiB\""));
}

TEST_F(CliTest, PluginListInfoDeregisterReload) {
  server_.Enqueue(200, R"({"data":{"secret":["kv","my-kv"],"auth":["token"],"detailed":[
      {"type":"auth","name":"token","version":"v0.1.0+builtin","builtin":true},
      {"type":"secret","name":"kv","version":"v0.1.0+builtin","builtin":true},
      {"type":"secret","name":"my-kv","version":"v1.2.3","builtin":false}]}})");
  Result list = Cli({"plugin", "list", "secret"});
  EXPECT_EQ(list.code, 0) << list.err;
  EXPECT_EQ(list.out,
            "Name     Type      Version\n"
            "----     ----      -------\n"
            "kv       secret    v0.1.0+builtin\n"
            "my-kv    secret    v1.2.3\n");

  server_.Enqueue(200, R"({"data":{"name":"my-kv","command":"kv-plugin","args":[],)"
                       R"("sha256":"abc123","builtin":false,"version":"v1.2.3"}})");
  Result info = Cli({"plugin", "info", "-version=v1.2.3", "secret", "my-kv"});
  EXPECT_EQ(info.code, 0) << info.err;
  EXPECT_EQ(info.out,
            "Key        Value\n"
            "---        -----\n"
            "args       []\n"
            "builtin    false\n"
            "command    kv-plugin\n"
            "name       my-kv\n"
            "sha256     abc123\n"
            "version    v1.2.3\n");
  server_.Enqueue(404, R"({"errors":[]})");
  Result missing = Cli({"plugin", "info", "secret", "nope"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_EQ(missing.err, "No value found for plugin \"nope\"\n");

  server_.Enqueue(204, "");
  Result dereg = Cli({"plugin", "deregister", "-version=v1.2.3", "secret", "my-kv"});
  EXPECT_EQ(dereg.code, 0) << dereg.err;
  EXPECT_EQ(dereg.out, "Success! Deregistered plugin (if it was registered): my-kv\n");

  server_.Enqueue(200, R"({"data":{"reload_id":"r"}})");
  server_.Enqueue(200, R"({"data":{"reload_id":"r"}})");
  EXPECT_EQ(Cli({"plugin", "reload", "-plugin=my-kv"}).out, "Success! Reloaded plugin: my-kv\n");
  EXPECT_EQ(Cli({"plugin", "reload", "-mounts=a,b/"}).out, "Success! Reloaded mounts: [a b/]\n");

  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 6u);
  EXPECT_EQ(reqs[0].target, "/v1/sys/plugins/catalog");
  EXPECT_EQ(reqs[1].target, "/v1/sys/plugins/catalog/secret/my-kv?version=v1.2.3");
  EXPECT_EQ(reqs[3].method, "DELETE");
  EXPECT_EQ(reqs[3].target, "/v1/sys/plugins/catalog/secret/my-kv?version=v1.2.3");
  EXPECT_EQ(reqs[4].method, "PUT");
  EXPECT_EQ(reqs[4].target, "/v1/sys/plugins/reload/backend");
  EXPECT_EQ(Body(reqs[4]), json({{"plugin", "my-kv"}}));
  EXPECT_EQ(Body(reqs[5]), json::parse(R"({"mounts":["a","b/"]})"));
}

// --- secrets --------------------------------------------------------------------------------

TEST_F(CliTest, SecretsEnableSendsTypePathAndConfig) {
  server_.Enqueue(204, "");
  Result r = Cli({"secrets", "enable", "-path=team/kv/", "-description=Team secrets",
                  "-plugin-version=v1.2.3", "-default-lease-ttl=1h", "-max-lease-ttl=7200",
                  "-options=foo=bar", "-version=2", "my-kv"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Success! Enabled the my-kv secrets engine at: team/kv/\n");
  auto req = Only();
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/v1/sys/mounts/team/kv");
  EXPECT_EQ(Body(req), json::parse(R"({"type":"my-kv","description":"Team secrets",
      "config":{"default_lease_ttl":"1h","max_lease_ttl":"2h","plugin_version":"v1.2.3"},
      "local":false,"seal_wrap":false,"external_entropy_access":false,
      "options":{"foo":"bar","version":"2"}})"));
}

TEST_F(CliTest, SecretsEnableDefaultsThePathToTheTypeAndReportsErrors) {
  server_.Enqueue(400, R"({"errors":["path is already in use at kv/"]})");
  Result r = Cli({"secrets", "enable", "kv"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("Error enabling: Error making API request."));
  EXPECT_THAT(r.err, HasSubstr("* path is already in use at kv/"));
  EXPECT_EQ(Only().target, "/v1/sys/mounts/kv");
}

TEST_F(CliTest, SecretsListDisableTune) {
  server_.Enqueue(200, R"({"secret/":{"type":"kv","description":"key/value secret storage",
      "accessor":"kv_1"},"data":{"secret/":{"type":"kv","description":"key/value secret storage",
      "accessor":"kv_1","config":{"default_lease_ttl":0,"max_lease_ttl":0}},
      "sys/":{"type":"system","description":"","accessor":"system_2"}}})");
  Result list = Cli({"secrets", "list"});
  EXPECT_EQ(list.code, 0) << list.err;
  EXPECT_EQ(list.out,
            "Path       Type      Accessor    Description\n"
            "----       ----      --------    -----------\n"
            "secret/    kv        kv_1        key/value secret storage\n"
            "sys/       system    system_2    n/a\n");
  server_.Enqueue(204, "");
  Result disable = Cli({"secrets", "disable", "team/kv/"});
  EXPECT_EQ(disable.code, 0) << disable.err;
  EXPECT_EQ(disable.out, "Success! Disabled the secrets engine (if it existed) at: team/kv/\n");
  server_.Enqueue(204, "");
  Result tune = Cli({"secrets", "tune", "-max-lease-ttl=2h", "-description=", "team/kv"});
  EXPECT_EQ(tune.code, 0) << tune.err;
  EXPECT_EQ(tune.out, "Success! Tuned the secrets engine at: team/kv/\n");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].target, "/v1/sys/mounts");
  EXPECT_EQ(reqs[1].method, "DELETE");
  EXPECT_EQ(reqs[1].target, "/v1/sys/mounts/team/kv");
  EXPECT_EQ(reqs[2].method, "POST");
  EXPECT_EQ(reqs[2].target, "/v1/sys/mounts/team/kv/tune");
  EXPECT_EQ(Body(reqs[2]), json::parse(R"({"max_lease_ttl":"2h","description":""})"));
}

TEST_F(CliTest, SecretsListDetailedShowsTtlsReplicationAndOptions) {
  server_.Enqueue(200, R"({"data":{"kv/":{"type":"kv","accessor":"kv_1","local":true,
      "seal_wrap":false,"options":{"version":"1"},"description":"d","uuid":"u-1",
      "plugin_version":"","config":{"default_lease_ttl":3600,"max_lease_ttl":0}},
      "sys/":{"type":"system","accessor":"system","options":null,"config":{}}}})");
  Result r = Cli({"secrets", "list", "-detailed"});
  EXPECT_EQ(r.code, 0) << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
  ASSERT_GE(lines.size(), 4u) << r.out;
  EXPECT_THAT(lines[0],
              ::testing::StartsWith("Path    Plugin    Accessor    Default TTL    Max TTL"));
  EXPECT_THAT(lines[2], ::testing::MatchesRegex(
                            "kv/ +kv +kv_1 +1h +system +false +local +false +map\\[version:1\\] +d "
                            "+u-1 +n/a +n/a +n/a"));
  EXPECT_THAT(lines[3], ::testing::MatchesRegex(
                            "sys/ +system +system +system +system +false +replicated +false +n/a "
                            "+n/a +n/a +n/a +n/a +n/a"));
}

// --- token ----------------------------------------------------------------------------------

TEST_F(CliTest, TokenLookupSelfOrAGivenTokenInTheBody) {
  const std::string reply = R"({"data":{"id":"hvs.Other","policies":["root"],"ttl":0,)"
                            R"("creation_ttl":3600,"expire_time":null,"display_name":"root"}})";
  server_.Enqueue(200, reply);
  server_.Enqueue(200, reply);
  Result self = Cli({"token", "lookup"});
  EXPECT_EQ(self.code, 0) << self.err;
  EXPECT_EQ(self.out,
            "Key             Value\n"
            "---             -----\n"
            "creation_ttl    1h\n"
            "display_name    root\n"
            "expire_time     <nil>\n"
            "id              hvs.Other\n"
            "policies        [root]\n"
            "ttl             0s\n");
  EXPECT_EQ(Cli({"token", "lookup", "hvs.Other"}).code, 0);
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, "/v1/auth/token/lookup-self");
  EXPECT_EQ(reqs[1].method, "POST");
  EXPECT_EQ(reqs[1].target, "/v1/auth/token/lookup");
  EXPECT_EQ(Body(reqs[1]), json({{"token", "hvs.Other"}}));
}

TEST_F(CliTest, TokenCreateSendsTheRequestAndPrintsTheToken) {
  const std::string reply = R"({"auth":{"client_token":"hvs.New","accessor":"acc1",)"
                            R"("policies":["a","b"],"token_policies":["a","b"],)"
                            R"("lease_duration":3600,"renewable":true}})";
  server_.Enqueue(200, reply);
  server_.Enqueue(200, reply);
  Result r = Cli({"token", "create", "-policy=a,b", "-ttl=1h", "-display-name=ci",
                  "-metadata=team=x", "-orphan", "-renewable"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Key                  Value\n"
            "---                  -----\n"
            "token                hvs.New\n"
            "token_accessor       acc1\n"
            "token_duration       1h\n"
            "token_renewable      true\n"
            "token_policies       [\"a\" \"b\"]\n"
            "identity_policies    []\n"
            "policies             [\"a\" \"b\"]\n");
  Result field = Cli({"token", "create", "-field=token"});
  EXPECT_EQ(field.out, "hvs.New");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/v1/auth/token/create");
  EXPECT_EQ(Body(reqs[0]), json::parse(R"({"renewable":true,"policies":["a","b"],"ttl":"1h",
      "display_name":"ci","meta":{"team":"x"},"no_parent":true})"));
  EXPECT_EQ(Body(reqs[1]), json::object());
}

}  // namespace
}  // namespace bulwark::cli
