// bulwark's host (PluginClient + GrpcPluginTransport on the real Env) driving real plugin
// processes: the Go go-plugin v1.0.1 example plugin and the C++ SDK kv plugin, with AutoMTLS on
// and off — launch, handshake, broker storage calls, requests, plugin logs, shutdown, cleanup.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/env/posix/posix_env.h"
#include "base/log/log.h"
#include "base/storage/in_memory_storage.h"
#include "core/lifecycle/host_services.h"
#include "core/rpc/grpc_transport.h"
#include "core/rpc/plugin_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/vault/backend.pb.h"

namespace bulwark::rpc {
namespace {

using ::testing::HasSubstr;

struct Case {
  const char* name;
  const char* runfile;
  bool automtls;
};

std::string Runfile(absl::string_view rel) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/bulwark/", rel);
}

class HostInteropTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bwhostXXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    runtime_dir_ = tmpl;
  }
  void TearDown() override { rmdir(runtime_dir_.c_str()); }

  // Runs `method` and waits for its reply.
  absl::StatusOr<std::string> Call(PluginConnection& conn, absl::string_view method,
                                   const google::protobuf::Message& request) {
    std::optional<absl::StatusOr<std::string>> result;
    CallOptions opts;
    opts.multiplex_id = "mountA0001";
    opts.timeout = absl::Seconds(10);
    conn.Call(method, request.SerializeAsString(), opts,
              [&](absl::StatusOr<std::string> r) { result = std::move(r); });
    EXPECT_TRUE(posix_.loop().RunUntil([&] { return result.has_value(); }, absl::Seconds(20)));
    return result.value_or(absl::DeadlineExceededError("test wait"));
  }

  pb::HandleRequestReply Request(PluginConnection& conn, absl::string_view op,
                                 absl::string_view path, absl::string_view data = "") {
    pb::HandleRequestArgs args;
    args.mutable_request()->set_operation(std::string(op));
    args.mutable_request()->set_path(std::string(path));
    args.mutable_request()->set_data(std::string(data));
    absl::StatusOr<std::string> bytes = Call(conn, "/pb.Backend/HandleRequest", args);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    pb::HandleRequestReply reply;
    EXPECT_TRUE(reply.ParseFromString(bytes.value_or("")));
    return reply;
  }

  PosixEnv posix_;
  GrpcPluginTransport transport_{posix_.loop()};
  MemoryLogSink log_;
  std::string runtime_dir_;
};

TEST_P(HostInteropTest, LaunchCallStorageShutdown) {
  const Case& c = GetParam();
  const std::string path = Runfile(c.runfile);
  absl::StatusOr<std::unique_ptr<ExecutableFile>> exe = posix_.fs().OpenForExec(path);
  ASSERT_TRUE(exe.ok()) << exe.status();

  PluginLaunchOptions o;
  o.plugin_name = c.name;
  o.executable = exe->get();
  o.argv = {path};
  o.entry_env = {"PLUGIN_SECRET_SETTING=do-not-log-me"};
  if (c.automtls) {
    // Vault's variables. Without AutoMTLS Vault would use its legacy unwrap-token TLS, which
    // bulwark does not implement: the plaintext case is a plain go-plugin host.
    protocol::VaultPluginEnv vault;
    vault.vault_version = "1.16.0";
    o.vault = vault;
  }
  o.automtls = c.automtls;
  o.runtime_dir = runtime_dir_;
  o.log_sink = &log_;
  std::optional<absl::Status> started;
  std::unique_ptr<PluginClient> client = PluginClient::Start(posix_.env(), transport_, std::move(o),
                                                             [&](absl::Status s) { started = s; });
  ASSERT_TRUE(posix_.loop().RunUntil([&] { return started.has_value(); }, absl::Seconds(30)));
  ASSERT_TRUE(started->ok()) << *started;
  EXPECT_EQ(client->app_version(), 5);
  EXPECT_EQ(client->handshake()->server_cert_der.empty(), !c.automtls);
  PluginConnection& conn = client->connection();

  // The host's storage for this instance, offered over the broker.
  InMemoryStorage storage;
  lifecycle::StorageHostServices host(storage, "logical/mount-a/", lifecycle::SystemViewInfo{});
  absl::StatusOr<uint32_t> broker = conn.OfferHostServices(&host);
  ASSERT_TRUE(broker.ok()) << broker.status();
  pb::SetupArgs setup;
  setup.set_broker_id(*broker);
  setup.set_backenduuid("0b1a2c3d-0000-4000-8000-000000000001");
  (*setup.mutable_config())["plugin_name"] = c.name;
  absl::StatusOr<std::string> reply = Call(conn, "/pb.Backend/Setup", setup);
  ASSERT_TRUE(reply.ok()) << reply.status();
  pb::SetupReply setup_reply;
  ASSERT_TRUE(setup_reply.ParseFromString(*reply));
  ASSERT_EQ(setup_reply.err(), "");
  ASSERT_TRUE(Call(conn, "/pb.Backend/Initialize", pb::InitializeArgs()).ok());

  // A write goes through the plugin into the host's storage, under the mount's prefix.
  pb::HandleRequestReply w = Request(conn, "update", "db/creds", R"({"password":"hunter2"})");
  EXPECT_FALSE(w.has_err()) << w.err().err_msg();
  EXPECT_GT(host.calls(), 0u);
  absl::StatusOr<std::vector<std::string>> keys = storage.List("logical/mount-a/");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 1u);
  pb::HandleRequestReply r = Request(conn, "read", "db/creds");
  ASSERT_FALSE(r.has_err()) << r.err().err_msg();
  EXPECT_THAT(r.response().data(), HasSubstr("hunter2"));
  pb::HandleRequestReply bad = Request(conn, "frobnicate", "db/creds");
  EXPECT_TRUE(bad.has_err());

  // Shutdown ends the process cleanly and removes its directory.
  const std::string launch_dir = client->launch_dir();
  bool stopped = false;
  client->Shutdown(absl::Seconds(2), [&] { stopped = true; });
  ASSERT_TRUE(posix_.loop().RunUntil([&] { return stopped; }, absl::Seconds(10)));
  ASSERT_TRUE(client->exit_status().has_value());
  EXPECT_FALSE(client->exit_status()->signaled) << client->exit_status()->ToString();
  struct stat st;
  EXPECT_NE(stat(launch_dir.c_str(), &st), 0) << launch_dir << " still exists";

  // The plugin's own log lines reached the host's log under its name; no secret did.
  bool saw_plugin_line = false;
  for (const LogRecord& rec : log_.records()) {
    const std::string line = FormatLogRecord(rec);
    saw_plugin_line = saw_plugin_line || absl::StrContains(rec.source, c.name);
    EXPECT_THAT(line, ::testing::Not(HasSubstr("hunter2")));
    EXPECT_THAT(line, ::testing::Not(HasSubstr("do-not-log-me")));
  }
  EXPECT_TRUE(saw_plugin_line);
}

INSTANTIATE_TEST_SUITE_P(Plugins, HostInteropTest,
                         ::testing::Values(Case{"go-kv", "examples/goplugin/plugin", true},
                                           Case{"go-kv", "examples/goplugin/plugin", false},
                                           Case{"cpp-kv", "examples/kv/kv_plugin", true},
                                           Case{"cpp-kv", "examples/kv/kv_plugin", false}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return absl::StrCat(info.param.runfile[9] == 'g' ? "Go" : "Cpp",
                                               info.param.automtls ? "AutoMtls" : "Plaintext");
                         });

}  // namespace
}  // namespace bulwark::rpc
