// Tests of PluginClient: in simulation (SimEnv with scripted plugin programs and a fake
// PluginTransport) for every launch error, timeouts, shutdown, crashes, logging and secrecy; and
// one posix test that runs a real misbehaving program to show the real path gives the same
// errors and leaves no process behind.
#include "core/rpc/plugin_client.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "base/env/posix/posix_env.h"
#include "base/env/sim/sim_env.h"
#include "base/log/log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/handshake.h"

namespace bulwark::rpc {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr uint64_t kSeed = 20260101;
constexpr absl::string_view kRuntimeDir = "/run/bw";
constexpr char kSecret[] = "s3cr3t-db-password-7f1c";
constexpr absl::string_view kFakeCertPem =
    "-----BEGIN CERTIFICATE-----\nRkFLRQ==\n-----END CERTIFICATE-----\n";

// ---------------------------------------------------------------------------------------------
// A simulated plugin world: scripted programs and a transport that reaches them by address.

class FakePluginProgram;

// What the next launched program does.
struct Behavior {
  // Before anything else, like go-plugin's Serve: when set, exit 1 with go-plugin's message
  // unless the environment has this cookie key with this value.
  std::optional<std::pair<std::string, std::string>> expected_cookie =
      std::make_pair(std::string(protocol::kVaultBackendCookieKey),
                     std::string(protocol::kVaultBackendCookieValue));
  std::vector<std::string> stderr_at_start;
  std::optional<int> exit_code_at_start;  // Exit right after stderr_at_start.
  bool silent = false;                    // Print nothing, run forever.
  std::optional<std::string> first_line;  // Print this instead of a handshake line.
  // Handshake details. The socket goes to $TMPDIR/plugin<pid> unless `address` is set.
  std::string network = "unix";
  std::optional<std::string> address;
  bool send_cert = true;  // When PLUGIN_CLIENT_CERT is set.
  std::vector<std::string> stderr_after_handshake;
  std::vector<std::string> stdout_after_handshake;
  bool obey_shutdown = true;  // Exit (removing its socket) when GRPCController.Shutdown comes.
};

struct World {
  sim::SimEnv* sim = nullptr;
  Behavior behavior;
  std::map<std::string, FakePluginProgram*> servers;  // Listening programs, by address.
  std::vector<std::vector<std::string>> envs;         // Environment of every launch.
};

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) absl::StrAppend(&out, line, "\n");
  return out;
}

class FakePluginProgram final : public sim::SimProgram {
 public:
  explicit FakePluginProgram(World& world) : world_(world), behavior_(world.behavior) {}
  ~FakePluginProgram() override {
    if (!address_.empty()) world_.servers.erase(address_);
  }

  void Start(sim::SimProcessContext& ctx) override {
    ctx_ = &ctx;
    world_.envs.push_back(ctx.env());
    if (behavior_.expected_cookie.has_value() &&
        ctx.GetEnv(behavior_.expected_cookie->first) != behavior_.expected_cookie->second) {
      ctx.Write(OutputStream::kStderr,
                "This binary is a plugin. These are not meant to be executed directly.\n"
                "Please execute the program that consumes these plugins, which will\n"
                "load any plugins automatically\n");
      ctx.Exit(1);
      return;
    }
    ctx.Write(OutputStream::kStderr, Join(behavior_.stderr_at_start));
    if (behavior_.exit_code_at_start.has_value()) {
      ctx.Exit(*behavior_.exit_code_at_start);
      return;
    }
    if (behavior_.silent) return;
    if (behavior_.first_line.has_value()) {
      ctx.Write(OutputStream::kStdout, *behavior_.first_line + "\n");
      return;
    }
    protocol::HandshakeLine hs;
    absl::StatusOr<protocol::NegotiatedVersion> version = protocol::NegotiateProtocolVersion(
        ctx.GetEnv("PLUGIN_PROTOCOL_VERSIONS").value_or(""), {3, 4, 5});
    hs.app_version = version.ok() ? version->version : 0;
    hs.network = behavior_.network;
    if (behavior_.address.has_value()) {
      address_ = *behavior_.address;
    } else {
      // go-plugin v1.0.1: ioutil.TempFile("", "plugin") in $TMPDIR, then listen there.
      address_ = JoinPath(ctx.GetEnv("TMPDIR").value_or("/tmp"), absl::StrCat("plugin", ctx.pid()));
      EXPECT_TRUE(world_.sim->fs().WriteFileDurably(address_, "").ok());
    }
    hs.address = address_;
    hs.protocol = "grpc";
    if (behavior_.send_cert && ctx.GetEnv("PLUGIN_CLIENT_CERT").has_value()) {
      hs.server_cert_der = std::string("\x30\x82\x01\x0a", 4) + std::string(80, 'C');
    }
    if (ctx.GetEnv("PLUGIN_MULTIPLEX_GRPC").has_value()) hs.multiplex_supported = true;
    world_.servers[address_] = this;
    ctx.Write(OutputStream::kStdout, protocol::FormatHandshakeLine(hs) + "\n");
    ctx.Write(OutputStream::kStderr, Join(behavior_.stderr_after_handshake));
    ctx.Write(OutputStream::kStdout, Join(behavior_.stdout_after_handshake));
  }

  // GRPCController.Shutdown: go-plugin stops the server, removes its socket and exits.
  bool obeys_shutdown() const { return behavior_.obey_shutdown; }
  void OnShutdownCall() {
    ctx_->Post([this] {
      world_.servers.erase(address_);
      (void)world_.sim->fs().Remove(address_);
      address_.clear();
      ctx_->Exit(0);
    });
  }

  sim::SimProcessContext& ctx() { return *ctx_; }

 private:
  World& world_;
  const Behavior behavior_;
  sim::SimProcessContext* ctx_ = nullptr;
  std::string address_;
};

struct CallRecord {
  std::string method;
  std::string request;
  absl::Duration timeout;
};

class FakeConnection final : public PluginConnection {
 public:
  // `stats` (closed, live) outlives the connection and tells a test what became of it.
  FakeConnection(World& world, Executor& executor, std::string address, int* stats)
      : world_(world), executor_(executor), address_(std::move(address)), stats_(stats) {
    ++stats_[1];
  }
  ~FakeConnection() override {
    Close();
    --stats_[1];
  }

  void Call(absl::string_view method, std::string request, const CallOptions& options,
            CallDone done) override {
    calls.push_back({std::string(method), request, options.timeout});
    if (closed) {
      executor_.Post([done = std::move(done)]() mutable {
        done(absl::UnavailableError("connection closed"));
      });
      return;
    }
    auto server = world_.servers.find(address_);
    if (method == protocol::kControllerShutdownMethod && server != world_.servers.end() &&
        server->second->obeys_shutdown()) {
      server->second->OnShutdownCall();
      executor_.Post([done = std::move(done)]() mutable { done(std::string()); });
      return;
    }
    // No answer: the call runs into its deadline unless the connection closes first.
    const uint64_t id = next_call_++;
    pending_[id].done = std::move(done);
    pending_[id].timer = executor_.PostAfter(options.timeout, [this, id] {
      CallDone d = std::move(pending_[id].done);
      pending_.erase(id);
      d(absl::DeadlineExceededError("deadline exceeded"));
    });
  }

  absl::StatusOr<uint32_t> OfferHostServices(HostServices*) override {
    return absl::UnimplementedError("fake");
  }
  void WithdrawHostServices(uint32_t) override {}

  void SetStdioHandler(absl::AnyInvocable<void(int, absl::string_view)> handler) override {
    stdio = std::move(handler);
  }

  void Close() override {
    if (closed) return;
    closed = true;
    ++stats_[0];
    for (auto& [id, call] : pending_) {
      executor_.Cancel(call.timer);
      executor_.Post([done = std::move(call.done)]() mutable {
        done(absl::CancelledError("connection closed"));
      });
    }
    pending_.clear();
  }

  std::vector<CallRecord> calls;
  bool closed = false;
  absl::AnyInvocable<void(int, absl::string_view)> stdio;

 private:
  struct Pending {
    CallDone done;
    TimerId timer = kNoTimer;
  };
  World& world_;
  Executor& executor_;
  std::string address_;
  int* stats_;
  uint64_t next_call_ = 1;
  std::map<uint64_t, Pending> pending_;
};

class FakeIdentity final : public ClientIdentity {
 public:
  const std::string& cert_pem() const override { return pem_; }

 private:
  std::string pem_ = std::string(kFakeCertPem);
};

// Connects to a listening fake program; fails like gRPC when nothing listens there.
class FakeTransport final : public PluginTransport {
 public:
  FakeTransport(World& world, Executor& executor) : world_(world), executor_(executor) {}

  absl::StatusOr<std::unique_ptr<ClientIdentity>> NewClientIdentity() override {
    ++identities;
    return std::unique_ptr<ClientIdentity>(new FakeIdentity());
  }

  absl::StatusOr<std::unique_ptr<ClientIdentity>> NewSharedIdentity(
      SharedTlsMaterial* material) override {
    ++shared_identities;
    material->cert_der = "shared-cert-der";
    material->key_der = crypto::SecureBuffer(std::string("shared-key-der"));
    material->server_name = "0f0e0d0c-aaaa-bbbb-cccc-0123456789ab";
    return std::unique_ptr<ClientIdentity>(new FakeIdentity());
  }

  void Connect(
      const PluginEndpoint& endpoint, const ClientIdentity* identity, absl::Duration timeout,
      absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<PluginConnection>>)> done) override {
    endpoints.push_back(endpoint);
    identity_given.push_back(identity != nullptr);
    timeouts.push_back(timeout);
    absl::StatusOr<std::unique_ptr<PluginConnection>> result;
    if (fail_with.has_value()) {
      result = *fail_with;
    } else if (world_.servers.count(endpoint.address) == 0) {
      result = absl::UnavailableError(absl::StrCat("nothing listens at ", endpoint.address));
    } else {
      auto connection =
          std::make_unique<FakeConnection>(world_, executor_, endpoint.address, connection_stats);
      last_connection = connection.get();
      result = std::unique_ptr<PluginConnection>(std::move(connection));
    }
    if (hold) {
      held = [done = std::move(done), result = std::move(result)]() mutable {
        done(std::move(result));
      };
      return;
    }
    executor_.Post([done = std::move(done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  }

  // When set, Connect keeps its answer in `held` until the test runs it.
  bool hold = false;
  absl::AnyInvocable<void()> held;

  std::optional<absl::Status> fail_with;
  std::vector<PluginEndpoint> endpoints;
  std::vector<bool> identity_given;
  std::vector<absl::Duration> timeouts;
  FakeConnection* last_connection = nullptr;
  int connection_stats[2] = {0, 0};  // Connections closed so far, connections alive now.
  int identities = 0;
  int shared_identities = 0;

 private:
  World& world_;
  Executor& executor_;
};

std::string Msg(const absl::Status& status) { return std::string(status.message()); }

std::optional<std::string> EnvValue(const std::vector<std::string>& env, absl::string_view key) {
  for (const std::string& entry : env) {
    if (absl::StartsWith(entry, absl::StrCat(key, "="))) return entry.substr(key.size() + 1);
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------

class PluginClientSimTest : public ::testing::Test {
 protected:
  PluginClientSimTest() : sim_(kSeed), transport_(world_, sim_.loop()) {
    std::cerr << "seed=" << kSeed << "\n";
    world_.sim = &sim_;
    sim_.launcher().RegisterProgram("fake-plugin",
                                    [this] { return std::make_unique<FakePluginProgram>(world_); });
    EXPECT_TRUE(sim_.fs().CreateDir("/run", 0755).ok());
    EXPECT_TRUE(sim_.fs().CreateDir(std::string(kRuntimeDir), 0700).ok());
    EXPECT_TRUE(sim_.fs().CreateDir("/plugins", 0755).ok());
    EXPECT_TRUE(sim_.fs()
                    .WriteFileDurably("/plugins/kv",
                                      sim::SimProcessLauncher::ExecutableContents("fake-plugin"),
                                      0755)
                    .ok());
  }

  PluginLaunchOptions Options() {
    auto exe = sim_.fs().OpenForExec("/plugins/kv");
    EXPECT_TRUE(exe.ok()) << exe.status();
    executable_ = std::move(*exe);
    PluginLaunchOptions options;
    options.plugin_name = "kv";
    options.executable = executable_.get();
    options.argv = {"kv", absl::StrCat("--token=", kSecret)};
    options.host_env = {"PATH=/usr/bin", "TMPDIR=/var/tmp", "HOME=/root"};
    options.entry_env = {absl::StrCat("DB_PASSWORD=", kSecret), "REGION=eu"};
    protocol::VaultPluginEnv vault;
    vault.vault_version = "1.16.0";
    options.vault = vault;
    options.runtime_dir = std::string(kRuntimeDir);
    options.log_sink = &sink_;
    return options;
  }

  void Start(PluginLaunchOptions options) {
    result_.reset();
    client_ = PluginClient::Start(sim_.env(), transport_, std::move(options),
                                  [this](absl::Status status) {
                                    // By the time an error is reported everything is cleaned up.
                                    if (!status.ok()) {
                                      EXPECT_EQ(sim_.launcher().live_count(), 0u);
                                      EXPECT_THAT(RuntimeDirEntries(), ::testing::IsEmpty());
                                    }
                                    result_ = status;
                                  });
    EXPECT_FALSE(result_.has_value()) << "done ran inside Start";
  }

  absl::Status RunToDone(absl::Duration limit = absl::Minutes(10)) {
    EXPECT_TRUE(sim_.loop().RunUntil([this] { return result_.has_value(); }, limit));
    return result_.value_or(absl::InternalError("start never finished"));
  }

  absl::Status StartAndWait(PluginLaunchOptions options) {
    Start(std::move(options));
    return RunToDone();
  }

  std::vector<std::string> RuntimeDirEntries() {
    auto names = sim_.fs().ListDir(kRuntimeDir);
    EXPECT_TRUE(names.ok()) << names.status();
    return names.ok() ? *names : std::vector<std::string>{};
  }

  void RunFor(absl::Duration d) {
    sim_.loop().RunUntil([] { return false; }, d);
  }

  // No timer is left: running every pending task does not move the clock.
  void ExpectNoTimersLeft() {
    const absl::Duration before = sim_.clock().MonotonicNow();
    sim_.loop().RunUntilIdle();
    EXPECT_EQ(sim_.clock().MonotonicNow(), before) << "a timer was left behind";
  }

  // Nothing is left of a launch: no process, no directory, no socket.
  void ExpectNothingLeft() {
    EXPECT_EQ(sim_.launcher().live_count(), 0u);
    EXPECT_THAT(RuntimeDirEntries(), ::testing::IsEmpty());
  }

  // No record or error text anywhere contains the secret.
  void ExpectNoSecret() {
    for (const LogRecord& record : sink_.records()) {
      const std::string line = FormatLogRecord(record);
      EXPECT_THAT(line, Not(HasSubstr(kSecret)));
    }
    if (result_.has_value()) {
      EXPECT_THAT(result_->ToString(), Not(HasSubstr(kSecret)));
    }
  }

  std::vector<LogRecord> RecordsWithMessage(absl::string_view text) {
    std::vector<LogRecord> out;
    for (const LogRecord& record : sink_.records()) {
      if (absl::StrContains(record.message, text)) out.push_back(record);
    }
    return out;
  }

  World world_;
  sim::SimEnv sim_;
  FakeTransport transport_;
  MemoryLogSink sink_;
  std::unique_ptr<ExecutableFile> executable_;
  std::unique_ptr<PluginClient> client_;
  std::optional<absl::Status> result_;
};

TEST_F(PluginClientSimTest, StartsConnectsAndSetsTheEnvironment) {
  PluginLaunchOptions options = Options();
  options.mlock = true;
  ASSERT_TRUE(StartAndWait(std::move(options)).ok()) << *result_;
  ASSERT_TRUE(client_->started());
  EXPECT_GT(client_->pid(), 0);
  EXPECT_EQ(client_->app_version(), 5);
  EXPECT_FALSE(client_->exited());
  ASSERT_TRUE(client_->handshake().has_value());
  EXPECT_EQ(client_->handshake()->multiplex_supported, std::nullopt);

  const std::string dir = client_->launch_dir();
  EXPECT_THAT(dir, StartsWith(absl::StrCat(kRuntimeDir, "/plugin-")));
  ASSERT_EQ(transport_.endpoints.size(), 1u);
  EXPECT_EQ(transport_.endpoints[0].network, "unix");
  EXPECT_EQ(transport_.endpoints[0].address, absl::StrCat(dir, "/plugin", client_->pid()));
  EXPECT_FALSE(transport_.endpoints[0].server_cert_der.empty());
  EXPECT_EQ(transport_.identity_given, std::vector<bool>{true});
  EXPECT_EQ(transport_.timeouts, std::vector<absl::Duration>{kDefaultConnectTimeout});

  ASSERT_EQ(world_.envs.size(), 1u);
  const std::vector<std::string>& env = world_.envs[0];
  EXPECT_EQ(EnvValue(env, protocol::kVaultBackendCookieKey),
            std::string(protocol::kVaultBackendCookieValue));
  EXPECT_EQ(EnvValue(env, "PLUGIN_PROTOCOL_VERSIONS"), "5");
  EXPECT_EQ(EnvValue(env, "PLUGIN_CLIENT_CERT"), std::string(kFakeCertPem));
  EXPECT_EQ(EnvValue(env, "TMPDIR"), dir);  // Not the host's /var/tmp.
  EXPECT_EQ(EnvValue(env, "PLUGIN_UNIX_SOCKET_DIR"), dir);
  EXPECT_EQ(EnvValue(env, "VAULT_PLUGIN_AUTOMTLS_ENABLED"), "true");
  EXPECT_EQ(EnvValue(env, "VAULT_PLUGIN_MLOCK_ENABLED"), "true");
  EXPECT_EQ(EnvValue(env, "VAULT_VERSION"), "1.16.0");
  EXPECT_EQ(EnvValue(env, "DB_PASSWORD"), std::string(kSecret));
  EXPECT_EQ(EnvValue(env, "PATH"), "/usr/bin");
  EXPECT_EQ(EnvValue(env, "PLUGIN_MULTIPLEX_GRPC"), std::nullopt);
  ExpectNoSecret();
}

TEST_F(PluginClientSimTest, WithoutAutoMtlsNoCertificateIsExchanged) {
  PluginLaunchOptions options = Options();
  options.automtls = false;
  options.vault->metadata_mode = true;  // Vault's non-AutoMTLS path without an unwrap token.
  ASSERT_TRUE(StartAndWait(std::move(options)).ok()) << *result_;
  EXPECT_EQ(transport_.identities, 0);
  EXPECT_EQ(transport_.identity_given, std::vector<bool>{false});
  EXPECT_TRUE(transport_.endpoints[0].server_cert_der.empty());
  const std::vector<std::string>& env = world_.envs[0];
  EXPECT_EQ(EnvValue(env, "PLUGIN_CLIENT_CERT"), std::nullopt);
  EXPECT_EQ(EnvValue(env, "VAULT_PLUGIN_AUTOMTLS_ENABLED"), "false");
  EXPECT_EQ(EnvValue(env, "VAULT_PLUGIN_MLOCK_ENABLED"), std::nullopt);
}

// Vault's legacy TLS: the shared material is wrapped, the token goes in VAULT_UNWRAP_TOKEN (and
// nowhere in the log), and the host connects trusting the shared certificate under its CN.
TEST_F(PluginClientSimTest, WithoutAutoMtlsTheSharedTlsMaterialIsWrappedForThePlugin) {
  constexpr char kToken[] = "eyJhbGciOiJFUzUxMiJ9.eyJ0eXBlIjoid3JhcHBpbmcifQ.c2lnbmF0dXJl";
  PluginLaunchOptions options = Options();
  options.automtls = false;
  std::vector<std::string> wrapped;
  options.wrap_tls = [&](const SharedTlsMaterial& material) -> absl::StatusOr<std::string> {
    wrapped.push_back(
        absl::StrCat(material.cert_der, "|", material.key_der.view(), "|", material.server_name));
    return std::string(kToken);
  };
  ASSERT_TRUE(StartAndWait(std::move(options)).ok()) << *result_;
  EXPECT_THAT(wrapped, ElementsAre("shared-cert-der|shared-key-der|"
                                   "0f0e0d0c-aaaa-bbbb-cccc-0123456789ab"));
  EXPECT_EQ(transport_.identities, 0);
  EXPECT_EQ(transport_.shared_identities, 1);
  EXPECT_EQ(transport_.identity_given, std::vector<bool>{true});
  EXPECT_EQ(transport_.endpoints[0].server_cert_der, "shared-cert-der");
  EXPECT_EQ(transport_.endpoints[0].tls_server_name, "0f0e0d0c-aaaa-bbbb-cccc-0123456789ab");
  const std::vector<std::string>& env = world_.envs[0];
  EXPECT_EQ(EnvValue(env, "VAULT_UNWRAP_TOKEN"), std::string(kToken));
  EXPECT_EQ(EnvValue(env, "VAULT_PLUGIN_AUTOMTLS_ENABLED"), "false");
  EXPECT_EQ(EnvValue(env, "VAULT_PLUGIN_METADATA_MODE"), "false");
  EXPECT_EQ(EnvValue(env, "PLUGIN_CLIENT_CERT"), std::nullopt);
  for (const LogRecord& record : sink_.records()) {
    EXPECT_THAT(FormatLogRecord(record), Not(HasSubstr(kToken)));
  }
}

TEST_F(PluginClientSimTest, AFailedWrapFailsTheStartBeforeAnyProcessRuns) {
  PluginLaunchOptions options = Options();
  options.automtls = false;
  options.wrap_tls = [](const SharedTlsMaterial&) -> absl::StatusOr<std::string> {
    return absl::FailedPreconditionError("Vault is sealed");
  };
  const absl::Status status = StartAndWait(std::move(options));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(status), HasSubstr("wrap the plugin's TLS certificate and key"));
  EXPECT_THAT(Msg(status), HasSubstr("Vault is sealed"));
  EXPECT_TRUE(world_.envs.empty());
  ExpectNothingLeft();
}

TEST_F(PluginClientSimTest, MultiplexingIsAskedForAndConfirmed) {
  PluginLaunchOptions options = Options();
  options.multiplex_grpc = true;
  ASSERT_TRUE(StartAndWait(std::move(options)).ok()) << *result_;
  EXPECT_EQ(EnvValue(world_.envs[0], "PLUGIN_MULTIPLEX_GRPC"), "true");
  EXPECT_EQ(client_->handshake()->multiplex_supported, true);
}

TEST_F(PluginClientSimTest, OutputBeforeTheHandshakeLine) {
  world_.behavior.first_line = "hello";
  world_.behavior.stderr_at_start = {"starting up"};
  const absl::Status status = StartAndWait(Options());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(),
            "plugin 'kv' printed \"hello\" before its handshake line; its last stderr lines: "
            "\"starting up\"");
  EXPECT_TRUE(client_->exited());
  EXPECT_FALSE(client_->started());
  ExpectNothingLeft();
  ExpectNoSecret();
}

TEST_F(PluginClientSimTest, OutputIsQuotedAndCut) {
  world_.behavior.first_line = std::string("\x1b[31mred\t") + std::string(300, 'x');
  const absl::Status status = StartAndWait(Options());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(status), HasSubstr("printed \"\\x1b[31mred\\t"));
  EXPECT_THAT(Msg(status), HasSubstr("\"...(309 bytes) before its handshake line"));
}

TEST_F(PluginClientSimTest, MalformedHandshakeLine) {
  world_.behavior.first_line = "1|5|unix";
  absl::Status status = StartAndWait(Options());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(status), StartsWith("plugin 'kv': plugin handshake: "));
  EXPECT_THAT(Msg(status), HasSubstr("\"1|5|unix\""));
  ExpectNothingLeft();

  // Well formed but a version the host did not offer.
  world_.behavior.first_line = "1|9|unix|/run/bw/x|grpc|";
  client_.reset();
  status = StartAndWait(Options());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(status), StartsWith("plugin 'kv': plugin handshake: "));
  ExpectNothingLeft();

  world_.behavior.first_line = "1|5|unix|/run/bw/x|netrpc|";
  client_.reset();
  status = StartAndWait(Options());
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  ExpectNothingLeft();
}

TEST_F(PluginClientSimTest, ExitBeforeTheHandshakeLine) {
  world_.behavior.stderr_at_start = {"loading config", "error: missing \"path\""};
  world_.behavior.exit_code_at_start = 3;
  const absl::Status status = StartAndWait(Options());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(),
            "plugin 'kv' exited with code 3 before its handshake line; its last stderr lines: "
            "\"loading config\" | \"error: missing \\\"path\\\"\"");
  ASSERT_TRUE(client_->exit_status().has_value());
  EXPECT_EQ(client_->exit_status()->code, 3);
  ExpectNothingLeft();
}

TEST_F(PluginClientSimTest, StderrTailKeepsTheLastLines) {
  for (int i = 0; i < 20; ++i) world_.behavior.stderr_at_start.push_back(absl::StrCat("l", i));
  world_.behavior.exit_code_at_start = 1;
  PluginLaunchOptions options = Options();
  options.stderr_tail_lines = 3;
  const absl::Status status = StartAndWait(std::move(options));
  EXPECT_THAT(Msg(status),
              HasSubstr("before its handshake line; its last stderr lines: \"l17\" | \"l18\" | "
                        "\"l19\""));
  EXPECT_EQ(client_->stderr_tail(), (std::vector<std::string>{"l17", "l18", "l19"}));
}

TEST_F(PluginClientSimTest, CrashBeforeTheHandshakeLine) {
  world_.behavior.silent = true;
  Start(Options());
  RunFor(absl::Seconds(1));
  ASSERT_TRUE(sim_.launcher().Crash(client_->pid(), SIGSEGV).ok());
  const absl::Status status = RunToDone();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(),
            "plugin 'kv' was killed by signal 11 (SIGSEGV) before its handshake line");
  ExpectNothingLeft();
}

TEST_F(PluginClientSimTest, WrongMagicCookie) {
  // A database plugin's cookie: the plugin refuses to run, as go-plugin's Serve does.
  world_.behavior.expected_cookie =
      std::make_pair(std::string("VAULT_DATABASE_PLUGIN"), std::string("926a0820-aea2"));
  const absl::Status status = StartAndWait(Options());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(status),
              StartsWith("plugin 'kv' exited with code 1 before its handshake line, saying it was "
                         "not started by a plugin host: the magic cookie VAULT_BACKEND_PLUGIN"));
  EXPECT_THAT(Msg(status), HasSubstr("\"This binary is a plugin."));
  EXPECT_THAT(Msg(status), Not(HasSubstr(std::string(protocol::kVaultBackendCookieValue))));
  ExpectNothingLeft();
}

TEST_F(PluginClientSimTest, NoHandshakeWithinTheStartTimeout) {
  world_.behavior.silent = true;
  const absl::Duration started_at = sim_.clock().MonotonicNow();
  const absl::Status status = StartAndWait(Options());
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(status.message(), "plugin 'kv' did not print its handshake line within 1m");
  EXPECT_EQ(sim_.clock().MonotonicNow() - started_at, absl::Minutes(1));
  ASSERT_TRUE(client_->exit_status().has_value());
  EXPECT_EQ(client_->exit_status()->signal, SIGKILL);
  ExpectNothingLeft();
  ExpectNoTimersLeft();
}

TEST_F(PluginClientSimTest, ShortStartTimeout) {
  world_.behavior.silent = true;
  PluginLaunchOptions options = Options();
  options.start_timeout = absl::Milliseconds(250);
  const absl::Duration started_at = sim_.clock().MonotonicNow();
  const absl::Status status = StartAndWait(std::move(options));
  EXPECT_EQ(status.message(), "plugin 'kv' did not print its handshake line within 250ms");
  EXPECT_EQ(sim_.clock().MonotonicNow() - started_at, absl::Milliseconds(250));
}

TEST_F(PluginClientSimTest, SocketOutsideTheLaunchDirectoryIsRefused) {
  for (const std::string& address : {std::string("/tmp/plugin1"), std::string("/run/bw/plugin1"),
                                     std::string("/run/bw/plugin-000000000000/../x")}) {
    world_.behavior.address = address;
    client_.reset();
    const absl::Status status = StartAndWait(Options());
    EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << address;
    EXPECT_THAT(Msg(status), HasSubstr("outside its launch directory")) << address;
    EXPECT_TRUE(transport_.endpoints.empty()) << "the host connected to " << address;
    ExpectNothingLeft();
  }
}

TEST_F(PluginClientSimTest, TcpOnlyOnLoopback) {
  world_.behavior.network = "tcp";
  world_.behavior.address = "10.1.2.3:1234";
  absl::Status status = StartAndWait(Options());
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Msg(status), HasSubstr("\"10.1.2.3:1234\", which is not on the loopback"));
  ExpectNothingLeft();

  world_.behavior.address = "127.0.0.1:10000";
  client_.reset();
  status = StartAndWait(Options());
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(transport_.endpoints.back().address, "127.0.0.1:10000");
}

TEST_F(PluginClientSimTest, ConnectFailureKillsAndCleansUp) {
  transport_.fail_with = absl::UnauthenticatedError("tls: bad certificate");
  world_.behavior.stderr_after_handshake = {"[ERROR] tls handshake failed"};
  const absl::Status status = StartAndWait(Options());
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(Msg(status), StartsWith("plugin 'kv': connect to unix:/run/bw/plugin-"));
  EXPECT_THAT(Msg(status), HasSubstr(": tls: bad certificate"));
  EXPECT_EQ(client_->exit_status()->signal, SIGKILL);
  ExpectNothingLeft();  // Socket file included: the killed plugin could not remove it.
  ExpectNoSecret();
}

TEST_F(PluginClientSimTest, ExitWhileConnecting) {
  transport_.hold = true;
  Start(Options());
  RunFor(absl::Seconds(1));
  ASSERT_NE(transport_.held, nullptr);
  ASSERT_TRUE(sim_.launcher().Crash(client_->pid(), SIGABRT).ok());
  const absl::Status status = RunToDone();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(),
            "plugin 'kv' was killed by signal 6 (SIGABRT) while the host was connecting to it");
  ExpectNothingLeft();
  // The connection arrives late: it is closed and released, not used.
  ASSERT_EQ(transport_.connection_stats[1], 1);
  transport_.held();
  EXPECT_EQ(transport_.connection_stats[0], 1);
  EXPECT_EQ(transport_.connection_stats[1], 0);
  EXPECT_FALSE(client_->started());
}

TEST_F(PluginClientSimTest, OverlongFirstLine) {
  world_.behavior.first_line = "1|5|unix|" + std::string(protocol::kHandshakeLineBytesMax, 'a');
  PluginLaunchOptions options = Options();
  options.line_bytes_max = protocol::kHandshakeLineBytesMax;
  const absl::Status status = StartAndWait(std::move(options));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(status), StartsWith("plugin 'kv' printed a first stdout line longer than 4096 "
                                      "bytes instead of a handshake line: \"1|5|unix|aaa"));
  ExpectNothingLeft();
}

TEST_F(PluginClientSimTest, AutoMtlsCertificateMustMatchTheOffer) {
  world_.behavior.send_cert = false;
  absl::Status status = StartAndWait(Options());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(status), StartsWith("plugin 'kv' sent no AutoMTLS certificate"));
  EXPECT_TRUE(transport_.endpoints.empty());
  ExpectNothingLeft();
}

TEST_F(PluginClientSimTest, DestroyingTheClientCancelsTheStart) {
  world_.behavior.silent = true;
  Start(Options());
  RunFor(absl::Seconds(1));
  EXPECT_EQ(sim_.launcher().live_count(), 1u);
  client_.reset();
  RunFor(absl::Minutes(2));
  EXPECT_FALSE(result_.has_value());
  ExpectNothingLeft();
}

TEST_F(PluginClientSimTest, ShutdownDuringStartCancelsIt) {
  world_.behavior.silent = true;
  Start(Options());
  RunFor(absl::Seconds(1));
  bool shut_down = false;
  client_->Shutdown(absl::Seconds(2), [&] {
    EXPECT_TRUE(result_.has_value());
    shut_down = true;
  });
  const absl::Status status = RunToDone();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  RunFor(absl::Seconds(1));
  EXPECT_TRUE(shut_down);
  ExpectNothingLeft();
}

TEST_F(PluginClientSimTest, InvalidOptionsAreReportedAsynchronously) {
  PluginLaunchOptions options = Options();
  options.runtime_dir = std::string("/") + std::string(70, 'd');
  absl::Status status = StartAndWait(std::move(options));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(status), HasSubstr("leave room for unix socket paths"));

  options = Options();
  options.runtime_dir = "/does/not/exist";
  status = StartAndWait(std::move(options));
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(status), StartsWith("plugin 'kv': create the per-launch directory: "));

  options = Options();
  options.plugin_name = "bad\nname";
  status = StartAndWait(std::move(options));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(status), HasSubstr("\"bad\\nname\""));

  // An env entry the environment builder rejects: its value must not be echoed.
  options = Options();
  options.entry_env.push_back(std::string(kSecret));  // No '='.
  status = StartAndWait(std::move(options));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(status), StartsWith("plugin 'kv': "));
  ExpectNoSecret();
  ExpectNothingLeft();
  EXPECT_EQ(sim_.launcher().spawn_count(), 0u);
}

TEST_F(PluginClientSimTest, ShutdownWithinGrace) {
  ASSERT_TRUE(StartAndWait(Options()).ok()) << *result_;
  FakeConnection* connection = transport_.last_connection;
  std::vector<ProcessExit> exits;
  client_->SetExitHandler([&](const ProcessExit& exit) { exits.push_back(exit); });
  const std::string dir = client_->launch_dir();
  const absl::Duration asked_at = sim_.clock().MonotonicNow();
  std::optional<absl::Duration> done_at;
  client_->Shutdown(absl::Seconds(2), [&] {
    EXPECT_TRUE(client_->exited());
    EXPECT_TRUE(connection->closed);
    EXPECT_THAT(RuntimeDirEntries(), ::testing::IsEmpty());
    done_at = sim_.clock().MonotonicNow();
  });
  EXPECT_TRUE(sim_.loop().RunUntil([&] { return done_at.has_value(); }, absl::Seconds(10)));
  EXPECT_LT(*done_at - asked_at, absl::Seconds(2));
  ASSERT_EQ(connection->calls.size(), 1u);
  EXPECT_EQ(connection->calls[0].method, "/plugin.GRPCController/Shutdown");
  EXPECT_EQ(connection->calls[0].request, "");
  EXPECT_EQ(connection->calls[0].timeout, absl::Seconds(2));
  EXPECT_TRUE(client_->exit_status()->success());
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_TRUE(exits[0].success());
  EXPECT_EQ(client_->launch_dir(), "");
  ExpectNothingLeft();
  ExpectNoTimersLeft();

  // Idempotent: a later Shutdown just reports completion.
  bool again = false;
  client_->Shutdown(absl::Seconds(2), [&] { again = true; });
  EXPECT_FALSE(again);
  sim_.loop().RunUntilIdle();
  EXPECT_TRUE(again);
  EXPECT_EQ(connection->calls.size(), 1u);
  EXPECT_EQ(exits.size(), 1u);
}

TEST_F(PluginClientSimTest, PluginIgnoringShutdownIsKilledAfterExactlyTheGracePeriod) {
  world_.behavior.obey_shutdown = false;
  ASSERT_TRUE(StartAndWait(Options()).ok()) << *result_;
  const absl::Duration asked_at = sim_.clock().MonotonicNow();
  int done_calls = 0;
  std::optional<absl::Duration> done_at;
  client_->Shutdown(absl::Seconds(2), [&] {
    ++done_calls;
    done_at = sim_.clock().MonotonicNow();
  });
  client_->Shutdown(absl::Seconds(30), [&] { ++done_calls; });  // Joins the first.
  EXPECT_TRUE(sim_.loop().RunUntil([&] { return done_calls == 2; }, absl::Minutes(1)));
  EXPECT_EQ(*done_at - asked_at, absl::Seconds(2));
  ASSERT_TRUE(client_->exit_status().has_value());
  EXPECT_TRUE(client_->exit_status()->signaled);
  EXPECT_EQ(client_->exit_status()->signal, SIGKILL);
  EXPECT_EQ(transport_.last_connection->calls.size(), 1u);
  EXPECT_THAT(RecordsWithMessage("did not exit within its shutdown grace period"),
              ::testing::SizeIs(1));
  ExpectNothingLeft();  // The killed plugin's socket file is gone too.
  sim_.loop().RunUntilIdle();
  EXPECT_EQ(done_calls, 2);
}

TEST_F(PluginClientSimTest, ExitHandlerRunsOnceOnACrash) {
  ASSERT_TRUE(StartAndWait(Options()).ok()) << *result_;
  std::vector<ProcessExit> exits;
  client_->SetExitHandler([&](const ProcessExit& exit) {
    EXPECT_TRUE(transport_.last_connection->closed);
    EXPECT_THAT(RuntimeDirEntries(), ::testing::IsEmpty());
    exits.push_back(exit);
  });
  RunFor(absl::Seconds(5));
  EXPECT_TRUE(exits.empty());
  ASSERT_TRUE(sim_.launcher().Crash(client_->pid(), SIGSEGV).ok());
  sim_.loop().RunUntilIdle();
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].signal, SIGSEGV);
  EXPECT_TRUE(client_->exited());
  ExpectNothingLeft();
  const std::vector<LogRecord> records = RecordsWithMessage("plugin process exited");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].level, LogLevel::kWarn);

  // A handler set after the end runs at once (posted), and Shutdown completes at once.
  std::vector<ProcessExit> late;
  client_->SetExitHandler([&](const ProcessExit& exit) { late.push_back(exit); });
  bool shut_down = false;
  client_->Shutdown(absl::Seconds(2), [&] { shut_down = true; });
  sim_.loop().RunUntilIdle();
  EXPECT_EQ(late.size(), 1u);
  EXPECT_TRUE(shut_down);
}

TEST_F(PluginClientSimTest, ExitHandlerCanDestroyTheClient) {
  ASSERT_TRUE(StartAndWait(Options()).ok()) << *result_;
  bool called = false;
  client_->SetExitHandler([&](const ProcessExit&) {
    called = true;
    client_.reset();
  });
  ASSERT_TRUE(sim_.launcher().Crash(client_->pid()).ok());
  sim_.loop().RunUntilIdle();
  EXPECT_TRUE(called);
  EXPECT_EQ(client_, nullptr);
  ExpectNothingLeft();
}

TEST_F(PluginClientSimTest, DestroyingARunningClientKillsItAndCleansUp) {
  ASSERT_TRUE(StartAndWait(Options()).ok()) << *result_;
  bool exit_handler_ran = false;
  client_->SetExitHandler([&](const ProcessExit&) { exit_handler_ran = true; });
  client_.reset();
  EXPECT_THAT(RuntimeDirEntries(), ::testing::IsEmpty());
  sim_.loop().RunUntilIdle();
  EXPECT_EQ(sim_.launcher().live_count(), 0u);
  EXPECT_FALSE(exit_handler_ran);
}

TEST_F(PluginClientSimTest, PluginLogLinesAreParsed) {
  world_.behavior.stderr_after_handshake = {
      R"({"@level":"debug","@message":"backend ready","@module":"kv","@timestamp":)"
      R"("2026-01-01T00:00:00.000000Z","mounts":2})",
      "2026-01-01T00:00:01.000Z [WARN]  kv: slow storage: latency=2s",
      "[ERROR] cannot reach upstream",
      "plain text on stderr",
      "panic: runtime error: index out of range",
      "goroutine 1 [running]:",
  };
  world_.behavior.stdout_after_handshake = {"stdout after the handshake"};
  ASSERT_TRUE(StartAndWait(Options()).ok()) << *result_;
  RunFor(absl::Seconds(1));
  const std::string source = absl::StrCat("plugin:kv[", client_->pid(), "]");

  auto one = [&](absl::string_view message) {
    std::vector<LogRecord> records = RecordsWithMessage(message);
    EXPECT_EQ(records.size(), 1u) << message;
    return records.empty() ? LogRecord{} : records[0];
  };
  LogRecord json = one("backend ready");
  EXPECT_EQ(json.level, LogLevel::kDebug);
  EXPECT_EQ(json.message, "backend ready");
  EXPECT_EQ(json.source, source);
  EXPECT_THAT(json.fields, Contains(std::make_pair(std::string("module"), std::string("kv"))));
  EXPECT_THAT(json.fields, Contains(std::make_pair(std::string("mounts"), std::string("2"))));
  EXPECT_EQ(json.time, sim_.clock().WallNow() - absl::Seconds(1));

  LogRecord text = one("slow storage");
  EXPECT_EQ(text.level, LogLevel::kWarn);
  EXPECT_EQ(text.message, "kv: slow storage: latency=2s");
  EXPECT_EQ(one("cannot reach upstream").level, LogLevel::kError);
  EXPECT_EQ(one("plain text on stderr").level, LogLevel::kInfo);
  EXPECT_EQ(one("panic: runtime error").level, LogLevel::kError);
  EXPECT_EQ(one("goroutine 1 [running]:").level, LogLevel::kError);  // After the panic line.
  EXPECT_EQ(one("stdout after the handshake").level, LogLevel::kInfo);

  // GRPCStdio lines from the connection are logged the same way.
  ASSERT_NE(transport_.last_connection->stdio, nullptr);
  transport_.last_connection->stdio(2, R"({"@level":"warn","@message":"via grpc stdio"})");
  transport_.last_connection->stdio(1, "[DEBUG] stdout via grpc");
  EXPECT_EQ(one("via grpc stdio").level, LogLevel::kWarn);
  EXPECT_EQ(one("stdout via grpc").level, LogLevel::kDebug);
  ExpectNoSecret();
}

TEST_F(PluginClientSimTest, OutputRateLimit) {
  for (int i = 0; i < 250; ++i) {
    world_.behavior.stderr_after_handshake.push_back(absl::StrCat("flood ", i));
  }
  PluginLaunchOptions options = Options();
  options.output_lines_per_second = 100;
  ASSERT_TRUE(StartAndWait(std::move(options)).ok()) << *result_;
  RunFor(absl::Milliseconds(500));
  EXPECT_EQ(RecordsWithMessage("flood ").size(), 100u);
  EXPECT_TRUE(RecordsWithMessage("dropped").empty()) << "reported before the second ended";
  RunFor(absl::Seconds(1));
  const std::vector<LogRecord> dropped = RecordsWithMessage("lines of plugin output dropped");
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].message,
            "150 lines of plugin output dropped (more than 100 lines per second)");
  EXPECT_EQ(dropped[0].level, LogLevel::kWarn);
  EXPECT_EQ(client_->dropped_output_lines(), 150u);
  // The last lines of the flood are the ones dropped, and the next second logs again.
  EXPECT_TRUE(RecordsWithMessage("flood 249").empty());
  transport_.last_connection->stdio(2, "after the flood");
  EXPECT_EQ(RecordsWithMessage("after the flood").size(), 1u);
  ExpectNoTimersLeft();
}

TEST_F(PluginClientSimTest, SecretNeverAppearsInRecordsOrErrors) {
  // Every path that writes records or errors, with a secret in argv and the entry's env.
  world_.behavior.stderr_at_start = {"[INFO] starting"};
  world_.behavior.stderr_after_handshake = {R"({"@level":"info","@message":"ready"})"};
  ASSERT_TRUE(StartAndWait(Options()).ok());
  client_->Shutdown();
  sim_.loop().RunUntilIdle();
  ExpectNoSecret();

  world_.behavior.first_line = "hello";
  client_.reset();
  StartAndWait(Options()).IgnoreError();
  ExpectNoSecret();

  world_.behavior.first_line.reset();
  world_.behavior.silent = true;
  client_.reset();
  StartAndWait(Options()).IgnoreError();
  ExpectNoSecret();

  world_.behavior.silent = false;
  transport_.fail_with = absl::UnavailableError("connection refused");
  client_.reset();
  StartAndWait(Options()).IgnoreError();
  ExpectNoSecret();
  EXPECT_GT(sink_.records().size(), 5u);
}

// ---------------------------------------------------------------------------------------------
// The real path: PosixEnv, a real misbehaving program, a transport that is never reached.

class UnreachableTransport final : public PluginTransport {
 public:
  absl::StatusOr<std::unique_ptr<ClientIdentity>> NewClientIdentity() override {
    return std::unique_ptr<ClientIdentity>(new FakeIdentity());
  }
  void Connect(
      const PluginEndpoint&, const ClientIdentity*, absl::Duration,
      absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<PluginConnection>>)>) override {
    ADD_FAILURE() << "a plugin without a handshake line was connected to";
  }
};

std::string FixturePath() {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  std::string path = "core/rpc/testdata/fixtures/fake_plugin";
  if (srcdir != nullptr) {
    std::string candidate =
        absl::StrCat(srcdir, "/", workspace != nullptr ? workspace : "bulwark", "/", path);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return path;
}

// True when `pid` is gone and reaped (a zombie still answers kill(pid, 0)).
bool Reaped(int64_t pid) { return kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

TEST(PluginClientPosixTest, RealProgramsGiveTheSameErrorsAndLeaveNothing) {
  // A short directory: unix socket paths must stay under 108 bytes.
  char dir_template[] = "/tmp/bwpc-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string runtime_dir = dir_template;
  PosixEnv posix;
  UnreachableTransport transport;
  MemoryLogSink sink;

  struct Case {
    std::vector<std::string> argv;
    absl::Duration start_timeout;
    absl::StatusCode code;
    std::string message_prefix;
  };
  const std::vector<Case> cases = {
      {{"fake_plugin", "hello"},
       absl::Seconds(30),
       absl::StatusCode::kFailedPrecondition,
       "plugin 'kv' printed \"hello\" before its handshake line"},
      {{"fake_plugin", "expect-cookie", "VAULT_DATABASE_PLUGIN", "x"},
       absl::Seconds(30),
       absl::StatusCode::kFailedPrecondition,
       "plugin 'kv' exited with code 1 before its handshake line, saying it was not started by "
       "a plugin host: the magic cookie VAULT_BACKEND_PLUGIN"},
      {{"fake_plugin", "silent"},
       absl::Milliseconds(300),
       absl::StatusCode::kDeadlineExceeded,
       "plugin 'kv' did not print its handshake line within 300ms"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.argv[1]);
    auto exe = posix.fs().OpenForExec(FixturePath());
    ASSERT_TRUE(exe.ok()) << exe.status();
    PluginLaunchOptions options;
    options.plugin_name = "kv";
    options.executable = exe->get();
    options.argv = c.argv;
    options.entry_env = {absl::StrCat("DB_PASSWORD=", kSecret)};
    options.runtime_dir = runtime_dir;
    options.start_timeout = c.start_timeout;
    options.log_sink = &sink;
    std::optional<absl::Status> result;
    std::unique_ptr<PluginClient> client = PluginClient::Start(
        posix.env(), transport, std::move(options), [&](absl::Status s) { result = s; });
    ASSERT_TRUE(posix.loop().RunUntil([&] { return result.has_value(); }, absl::Seconds(20)));
    EXPECT_EQ(result->code(), c.code) << *result;
    EXPECT_THAT(Msg(*result), StartsWith(c.message_prefix));
    EXPECT_THAT(result->ToString(), Not(HasSubstr(kSecret)));
    const int64_t pid = client->pid();
    ASSERT_GT(pid, 0);
    EXPECT_TRUE(client->exited());
    EXPECT_TRUE(Reaped(pid)) << "pid " << pid << " was left behind";
    auto left = posix.fs().ListDir(runtime_dir);
    ASSERT_TRUE(left.ok()) << left.status();
    EXPECT_THAT(*left, ::testing::IsEmpty());
    client.reset();
  }
  for (const LogRecord& record : sink.records()) {
    EXPECT_THAT(FormatLogRecord(record), Not(HasSubstr(kSecret)));
  }
  EXPECT_EQ(rmdir(runtime_dir.c_str()), 0);
}

}  // namespace
}  // namespace bulwark::rpc
