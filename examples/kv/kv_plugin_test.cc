// End to end: //examples/kv:kv_plugin as a real child process, driven by this test acting as a
// go-plugin host. The test reads the handshake line, connects with gRPC (AutoMTLS on and off),
// serves pb.Storage back to the plugin over the broker, runs Setup / Initialize /
// HandleRequest, and shuts the plugin down. Negative cases: cookie, versions, bad certificate.
// Also: TCP fallback, the 7th handshake field, SIGTERM and parent death.
#include <grpc/grpc_security_constants.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/goplugin/grpc_broker.grpc.pb.h"
#include "proto/goplugin/grpc_controller.grpc.pb.h"
#include "proto/goplugin/grpc_stdio.grpc.pb.h"
#include "proto/health/health.grpc.pb.h"
#include "proto/vault/backend.grpc.pb.h"
#include "proto/vault/multiplexing.grpc.pb.h"
#include "proto/vault/version.grpc.pb.h"
#include "protocol/handshake.h"
#include "protocol/plugin_env.h"
#include "protocol/tls_certs.h"
#include "sdk/in_memory_host.h"
#include "sdk/serve_config.h"
#include "sdk/testing/plugin_process.h"

namespace bulwark::examples::kv {
namespace {

using ::bulwark::sdk::testing::PluginProcess;
using ::bulwark::sdk::testing::ProcessExitStatus;
using ::bulwark::sdk::testing::ShortTempDir;
using ::testing::HasSubstr;
using ::testing::Not;

// Generous: under ASan the plugin starts and stops slowly. Failures come back much sooner.
constexpr absl::Duration kStartTimeout = absl::Seconds(30);
constexpr absl::Duration kExitTimeout = absl::Seconds(20);
constexpr auto kCallTimeout = std::chrono::seconds(20);

std::string PluginBinary() {
  const char* srcdir = ::getenv("TEST_SRCDIR");
  const std::string relative = "examples/kv/kv_plugin";
  if (srcdir != nullptr) return absl::StrCat(srcdir, "/bulwark/", relative);
  return relative;
}

std::string Cookie() {
  return absl::StrCat(sdk::kVaultBackendCookieKey, "=", sdk::kVaultBackendCookieValue);
}

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + kCallTimeout;
}

struct Identity {
  std::string cert_pem;
  std::string key_pem;
};

Identity NewIdentity() {
  absl::StatusOr<protocol::SelfSignedCert> cert = protocol::GenerateSelfSignedCert(
      protocol::KeyType::kP256, protocol::kGoPluginCertValidity, absl::Now());
  EXPECT_TRUE(cert.ok()) << cert.status();
  if (!cert.ok()) return {};
  return {cert->cert_pem, cert->key_pem};
}

// pb.Storage as the host serves it to one plugin instance, over an InMemoryHostStorage. Records
// whether the plugin presented a TLS certificate.
class HostStorageService final : public pb::Storage::Service {
 public:
  explicit HostStorageService(std::shared_ptr<sdk::InMemoryHostStorage> storage)
      : storage_(std::move(storage)) {}

  grpc::Status Get(grpc::ServerContext* context, const pb::StorageGetArgs* request,
                   pb::StorageGetReply* reply) override {
    return Serve(context, sdk::kStorageGetMethod, *request, reply);
  }
  grpc::Status Put(grpc::ServerContext* context, const pb::StoragePutArgs* request,
                   pb::StoragePutReply* reply) override {
    return Serve(context, sdk::kStoragePutMethod, *request, reply);
  }
  grpc::Status Delete(grpc::ServerContext* context, const pb::StorageDeleteArgs* request,
                      pb::StorageDeleteReply* reply) override {
    return Serve(context, sdk::kStorageDeleteMethod, *request, reply);
  }
  grpc::Status List(grpc::ServerContext* context, const pb::StorageListArgs* request,
                    pb::StorageListReply* reply) override {
    return Serve(context, sdk::kStorageListMethod, *request, reply);
  }

  std::string peer_cert_pem() {
    std::lock_guard<std::mutex> lock(mu_);
    return peer_cert_pem_;
  }

 private:
  grpc::Status Serve(grpc::ServerContext* context, absl::string_view method,
                     const google::protobuf::Message& request, google::protobuf::Message* reply) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const grpc::string_ref& v :
           context->auth_context()->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME)) {
        peer_cert_pem_.assign(v.data(), v.size());
      }
    }
    absl::StatusOr<std::string> bytes = storage_->Handle(method, request.SerializeAsString());
    if (!bytes.ok()) {
      return grpc::Status(grpc::StatusCode::INTERNAL, std::string(bytes.status().message()));
    }
    reply->ParseFromString(*bytes);
    return grpc::Status::OK;
  }

  const std::shared_ptr<sdk::InMemoryHostStorage> storage_;
  std::mutex mu_;
  std::string peer_cert_pem_;
};

// How the host's broker server treats the plugin's certificate.
enum class HostTls {
  kNone,           // No AutoMTLS at all.
  kRequireClient,  // go-plugin since #193 and bulwark: requires and verifies the plugin cert.
  kNoClientCert,   // go-plugin v1.0.1: presents its cert, asks for none.
};

std::string HostTlsName(HostTls tls) {
  switch (tls) {
    case HostTls::kNone:
      return "Plaintext";
    case HostTls::kRequireClient:
      return "MtlsHostRequiresClientCert";
    case HostTls::kNoClientCert:
      return "MtlsGoPlugin101Host";
  }
  return "?";
}

std::vector<std::string> BaseEnv(const ShortTempDir& dir) {
  return {Cookie(),
          "PLUGIN_PROTOCOL_VERSIONS=5",
          "PLUGIN_MIN_PORT=10000",
          "PLUGIN_MAX_PORT=25000",
          absl::StrCat("PLUGIN_UNIX_SOCKET_DIR=", dir.path()),
          "VAULT_VERSION=1.16.0",
          "VAULT_PLUGIN_METADATA_MODE=false"};
}

// A host for one plugin process: launch, connect, broker, host services, shutdown.
class Host {
 public:
  Host(HostTls tls, const ShortTempDir& dir) : tls_(tls), dir_(dir) {
    if (tls_ != HostTls::kNone) identity_ = NewIdentity();
  }

  ~Host() {
    if (broker_context_ != nullptr) broker_context_->TryCancel();
    if (stdio_context_ != nullptr) stdio_context_->TryCancel();
    if (storage_server_ != nullptr) storage_server_->Shutdown(std::chrono::system_clock::now());
  }

  void Launch(std::vector<std::string> extra_env = {}) {
    std::vector<std::string> env = BaseEnv(dir_);
    if (tls_ != HostTls::kNone) {
      env.push_back("VAULT_PLUGIN_AUTOMTLS_ENABLED=true");
      env.push_back(absl::StrCat("PLUGIN_CLIENT_CERT=", identity_.cert_pem));
    }
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    env = protocol::DedupEnvLastWins(env);  // As Go's exec does: later entries win.
    absl::StatusOr<std::unique_ptr<PluginProcess>> started =
        PluginProcess::Start(PluginBinary(), env);
    ASSERT_TRUE(started.ok()) << started.status();
    process_ = *std::move(started);
    absl::StatusOr<std::string> line = process_->ReadFirstLine(kStartTimeout);
    ASSERT_TRUE(line.ok()) << line.status() << "\nstderr: " << process_->stderr_text();
    line_ = *line;
    absl::StatusOr<protocol::HandshakeLine> parsed = protocol::ParseHandshakeLine(*line, {5});
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    handshake_ = *parsed;
  }

  void Connect() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
    if (tls_ != HostTls::kNone) {
      ASSERT_FALSE(handshake_.server_cert_der.empty()) << "AutoMTLS plugin sent no certificate";
      absl::StatusOr<std::string> plugin_pem = protocol::CertDerToPem(handshake_.server_cert_der);
      ASSERT_TRUE(plugin_pem.ok()) << plugin_pem.status();
      plugin_cert_pem_ = *plugin_pem;
      grpc::SslCredentialsOptions options;
      options.pem_root_certs = plugin_cert_pem_;
      options.pem_private_key = identity_.key_pem;
      options.pem_cert_chain = identity_.cert_pem;
      credentials = grpc::SslCredentials(options);
      args.SetSslTargetNameOverride("localhost");
    } else {
      ASSERT_TRUE(handshake_.server_cert_der.empty());
    }
    const std::string target = handshake_.network == "unix"
                                   ? absl::StrCat("unix:", handshake_.address)
                                   : handshake_.address;
    channel_ = grpc::CreateCustomChannel(target, credentials, args);

    // What go-plugin's client does right after dialing: the broker stream, then stdio.
    broker_ = plugin::GRPCBroker::NewStub(channel_);
    broker_context_ = std::make_unique<grpc::ClientContext>();
    broker_stream_ = broker_->StartStream(broker_context_.get());
    stdio_context_ = std::make_unique<grpc::ClientContext>();
    stdio_stream_ = plugin::GRPCStdio::NewStub(channel_)->StreamStdio(stdio_context_.get(),
                                                                      google::protobuf::Empty());
    backend_ = pb::Backend::NewStub(channel_);
  }

  // Starts the host's storage server for one instance and announces it under `broker_id`.
  void OfferStorage(uint32_t broker_id) {
    storage_ = std::make_shared<sdk::InMemoryHostStorage>();
    storage_service_ = std::make_unique<HostStorageService>(storage_);
    std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
    if (tls_ != HostTls::kNone) {
      grpc::SslServerCredentialsOptions options(
          tls_ == HostTls::kRequireClient
              ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
              : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
      if (tls_ == HostTls::kRequireClient) options.pem_root_certs = plugin_cert_pem_;
      options.pem_key_cert_pairs.push_back({identity_.key_pem, identity_.cert_pem});
      credentials = grpc::SslServerCredentials(options);
    }
    host_socket_ = absl::StrCat(dir_.path(), "/host", broker_id, ".sock");
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("unix:", host_socket_), credentials);
    builder.RegisterService(storage_service_.get());
    storage_server_ = builder.BuildAndStart();
    ASSERT_NE(storage_server_, nullptr);
    plugin::ConnInfo info;
    info.set_service_id(broker_id);
    info.set_network("unix");
    info.set_address(host_socket_);
    ASSERT_TRUE(broker_stream_->Write(info));
  }

  void AddMetadata(grpc::ClientContext* context, const std::string& multiplex_id) {
    context->set_deadline(Deadline());
    if (!multiplex_id.empty()) context->AddMetadata("multiplex_id", multiplex_id);
  }

  grpc::Status Setup(uint32_t broker_id, const std::string& multiplex_id, pb::SetupReply* reply) {
    grpc::ClientContext context;
    AddMetadata(&context, multiplex_id);
    pb::SetupArgs args;
    args.set_broker_id(broker_id);
    args.set_backenduuid("uuid-1");
    (*args.mutable_config())["plugin_name"] = "kv";
    return backend_->Setup(&context, args, reply);
  }

  grpc::Status Handle(const std::string& multiplex_id, const std::string& op,
                      const std::string& path, const std::string& data,
                      pb::HandleRequestReply* reply) {
    grpc::ClientContext context;
    AddMetadata(&context, multiplex_id);
    pb::HandleRequestArgs args;
    args.mutable_request()->set_operation(op);
    args.mutable_request()->set_path(path);
    args.mutable_request()->set_data(data);
    return backend_->HandleRequest(&context, args, reply);
  }

  grpc::Status Shutdown() {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    plugin::Empty empty;
    return plugin::GRPCController::NewStub(channel_)->Shutdown(&context, plugin::Empty(), &empty);
  }

  HostTls tls_;
  const ShortTempDir& dir_;
  Identity identity_;
  std::unique_ptr<PluginProcess> process_;
  std::string line_;
  protocol::HandshakeLine handshake_;
  std::string plugin_cert_pem_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<plugin::GRPCBroker::Stub> broker_;
  std::unique_ptr<grpc::ClientContext> broker_context_;
  std::unique_ptr<grpc::ClientReaderWriter<plugin::ConnInfo, plugin::ConnInfo>> broker_stream_;
  std::unique_ptr<grpc::ClientContext> stdio_context_;
  std::unique_ptr<grpc::ClientReader<plugin::StdioData>> stdio_stream_;
  std::unique_ptr<pb::Backend::Stub> backend_;
  std::shared_ptr<sdk::InMemoryHostStorage> storage_;
  std::unique_ptr<HostStorageService> storage_service_;
  std::unique_ptr<grpc::Server> storage_server_;
  std::string host_socket_;
};

void ExpectHclogOnly(const std::string& stderr_text, const std::string& secret) {
  EXPECT_THAT(stderr_text, Not(HasSubstr(secret)));
  for (absl::string_view line : absl::StrSplit(stderr_text, '\n', absl::SkipEmpty())) {
    // gRPC's own diagnostics (gpr_log, "E1123 ...") are not ours; every SDK line is hclog JSON.
    if (!absl::StartsWith(line, "{")) continue;
    nlohmann::json parsed = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(parsed.is_object()) << line;
    EXPECT_EQ(parsed["@module"], "kv") << line;
    EXPECT_TRUE(parsed.contains("@level") && parsed.contains("@message") &&
                parsed.contains("@timestamp"))
        << line;
  }
}

class KvPluginTest : public ::testing::TestWithParam<HostTls> {};

TEST_P(KvPluginTest, ServesThroughTheBrokerAndShutsDownCleanly) {
  ShortTempDir dir;
  ASSERT_FALSE(dir.path().empty());
  Host host(GetParam(), dir);
  ASSERT_NO_FATAL_FAILURE(host.Launch());
  EXPECT_EQ(host.handshake_.network, "unix");
  EXPECT_EQ(host.handshake_.app_version, 5);
  EXPECT_TRUE(absl::StartsWith(host.handshake_.address, dir.path() + "/plugin"));
  EXPECT_FALSE(host.handshake_.multiplex_supported.has_value());  // No 7th field unasked.
  if (GetParam() != HostTls::kNone) {
    absl::StatusOr<protocol::CertInfo> cert =
        protocol::ParseCertDer(host.handshake_.server_cert_der);
    ASSERT_TRUE(cert.ok()) << cert.status();
    EXPECT_EQ(cert->curve, "P-256");
    EXPECT_EQ(cert->dns_names, std::vector<std::string>{"localhost"});
  }
  struct stat socket_stat {};
  ASSERT_EQ(::stat(host.handshake_.address.c_str(), &socket_stat), 0);
  EXPECT_TRUE(S_ISSOCK(socket_stat.st_mode));
  ASSERT_NO_FATAL_FAILURE(host.Connect());

  // go-plugin's Ping.
  {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    grpc::health::v1::HealthCheckRequest request;
    request.set_service("plugin");
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status =
        grpc::health::v1::Health::NewStub(host.channel_)->Check(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message()
                             << "\nstderr: " << host.process_->stderr_text();
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  // What Vault asks before mounting.
  {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    pluginutil::multiplexing::MultiplexingSupportResponse response;
    ASSERT_TRUE(pluginutil::multiplexing::PluginMultiplexing::NewStub(host.channel_)
                    ->MultiplexingSupport(&context, {}, &response)
                    .ok());
    EXPECT_TRUE(response.supported());
  }
  {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    logical::VersionReply reply;
    ASSERT_TRUE(logical::PluginVersion::NewStub(host.channel_)
                    ->Version(&context, logical::Empty(), &reply)
                    .ok());
    EXPECT_EQ(reply.plugin_version(), "v0.1.0");
  }

  ASSERT_NO_FATAL_FAILURE(host.OfferStorage(1));
  pb::SetupReply setup;
  grpc::Status status = host.Setup(1, "m1", &setup);
  ASSERT_TRUE(status.ok()) << status.error_message()
                           << "\nstderr: " << host.process_->stderr_text();
  EXPECT_EQ(setup.err(), "");
  {
    grpc::ClientContext context;
    host.AddMetadata(&context, "m1");
    pb::InitializeReply reply;
    ASSERT_TRUE(host.backend_->Initialize(&context, pb::InitializeArgs(), &reply).ok());
    EXPECT_FALSE(reply.has_err());
  }

  const std::string secret = "p1-very-secret-value";
  pb::HandleRequestReply write;
  status = host.Handle("m1", "create", "app/db", absl::StrCat(R"({"password":")", secret, R"("})"),
                       &write);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(write.has_err()) << write.err().err_msg();
  // Stored by the host, over the brokered connection.
  ASSERT_TRUE(host.storage_->Get("app/db").has_value());
  EXPECT_THAT(host.storage_->Get("app/db")->value, HasSubstr(secret));
  if (GetParam() == HostTls::kRequireClient) {
    // The plugin dialed the broker with its own (handshake) certificate.
    EXPECT_EQ(protocol::CertPemToDer(host.storage_service_->peer_cert_pem()).value_or(""),
              host.handshake_.server_cert_der);
  }

  pb::HandleRequestReply read;
  ASSERT_TRUE(host.Handle("m1", "read", "app/db", "null", &read).ok());
  ASSERT_FALSE(read.has_err()) << read.err().err_msg();
  EXPECT_EQ(nlohmann::json::parse(read.response().data())["password"], secret);

  pb::HandleRequestReply invalid;
  ASSERT_TRUE(host.Handle("m1", "update", "bad key", R"({"x":1})", &invalid).ok());
  EXPECT_EQ(invalid.err().err_type(), 1u);

  pb::HandleRequestReply unknown;
  status = host.Handle("nope", "read", "app/db", "null", &unknown);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("\"nope\""));

  // Cleanup, then the controller's Shutdown: exit 0, socket gone.
  {
    grpc::ClientContext context;
    host.AddMetadata(&context, "m1");
    pb::Empty empty;
    ASSERT_TRUE(host.backend_->Cleanup(&context, pb::Empty(), &empty).ok());
  }
  status = host.Shutdown();
  EXPECT_TRUE(status.ok()) << status.error_message();
  absl::StatusOr<ProcessExitStatus> exit = host.process_->WaitForExit(kExitTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_FALSE(exit->signaled) << "signal " << exit->signal;
  EXPECT_EQ(exit->code, 0) << host.process_->stderr_text();
  EXPECT_NE(::access(host.handshake_.address.c_str(), F_OK), 0) << "socket file left behind";
  // The stdio stream stayed open and empty until the plugin ended it.
  plugin::StdioData data;
  EXPECT_FALSE(host.stdio_stream_->Read(&data));
  EXPECT_EQ(host.process_->stdout_text(), host.line_ + "\n");  // Exactly one line.
  ExpectHclogOnly(host.process_->stderr_text(), secret);
  EXPECT_THAT(host.process_->stderr_text(), HasSubstr("GRPCController.Shutdown"));
}

INSTANTIATE_TEST_SUITE_P(Tls, KvPluginTest,
                         ::testing::Values(HostTls::kNone, HostTls::kRequireClient,
                                           HostTls::kNoClientCert),
                         [](const ::testing::TestParamInfo<HostTls>& info) {
                           return HostTlsName(info.param);
                         });

TEST(KvPluginStartupTest, ClientWithoutTheHostCertificateIsRefused) {
  ShortTempDir dir;
  Host host(HostTls::kRequireClient, dir);
  ASSERT_NO_FATAL_FAILURE(host.Launch());
  // A client presenting some other certificate must not get in.
  host.identity_ = NewIdentity();
  ASSERT_NO_FATAL_FAILURE(host.Connect());
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status =
      grpc::health::v1::Health::NewStub(host.channel_)->Check(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  host.process_->Signal(SIGTERM);
  absl::StatusOr<ProcessExitStatus> exit = host.process_->WaitForExit(kExitTimeout);
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->code, 0);
}

TEST(KvPluginStartupTest, SetupFailsWhenTheHostAnnouncesNothing) {
  ShortTempDir dir;
  Host host(HostTls::kNone, dir);
  ASSERT_NO_FATAL_FAILURE(host.Launch());
  ASSERT_NO_FATAL_FAILURE(host.Connect());
  pb::SetupReply reply;
  grpc::Status status = host.Setup(42, "m1", &reply);  // Nothing offered under 42.
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("broker id 42"));
  ASSERT_TRUE(host.Shutdown().ok());
  absl::StatusOr<ProcessExitStatus> exit = host.process_->WaitForExit(kExitTimeout);
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->code, 0);
}

TEST(KvPluginStartupTest, TcpFallbackAndMultiplexField) {
  ShortTempDir dir;
  Host host(HostTls::kNone, dir);
  // The socket directory does not exist, so the plugin listens on TCP; the host asked for broker
  // multiplexing, which the SDK declines in the 7th field.
  ASSERT_NO_FATAL_FAILURE(
      host.Launch({absl::StrCat("PLUGIN_UNIX_SOCKET_DIR=", dir.path(), "/no"), "PLUGIN_MIN_PORT=0",
                   "PLUGIN_MAX_PORT=0", "PLUGIN_MULTIPLEX_GRPC=true"}));
  EXPECT_EQ(host.handshake_.network, "tcp");
  EXPECT_TRUE(absl::StartsWith(host.handshake_.address, "127.0.0.1:"));
  EXPECT_TRUE(absl::EndsWith(host.line_, "|grpc||false")) << host.line_;
  ASSERT_EQ(host.handshake_.multiplex_supported, false);
  ASSERT_NO_FATAL_FAILURE(host.Connect());
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(
      grpc::health::v1::Health::NewStub(host.channel_)->Check(&context, request, &response).ok());
  ASSERT_TRUE(host.Shutdown().ok());
  absl::StatusOr<ProcessExitStatus> exit = host.process_->WaitForExit(kExitTimeout);
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->code, 0);
}

TEST(KvPluginStartupTest, SigtermStopsGracefully) {
  ShortTempDir dir;
  Host host(HostTls::kNone, dir);
  ASSERT_NO_FATAL_FAILURE(host.Launch());
  ASSERT_EQ(host.process_->Signal(SIGINT), 0);  // Ignored, as go-plugin plugins do.
  ASSERT_EQ(host.process_->Signal(SIGTERM), 0);
  absl::StatusOr<ProcessExitStatus> exit = host.process_->WaitForExit(kExitTimeout);
  ASSERT_TRUE(exit.ok());
  EXPECT_FALSE(exit->signaled);
  EXPECT_EQ(exit->code, 0);
  EXPECT_THAT(host.process_->stderr_text(), HasSubstr("SIGTERM"));
  EXPECT_TRUE(dir.Entries().empty()) << "socket file left behind";
}

// One "Key:  N kB" value of /proc/<pid>/status, or -1.
int64_t ProcStatusKiB(pid_t pid, absl::string_view key) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, absl::StrCat(key, ":"))) {
      int64_t kib = -1;
      std::istringstream(line.substr(key.size() + 1)) >> kib;
      return kib;
    }
  }
  return -1;
}

// Whether this process may mlockall (CAP_IPC_LOCK or a large enough RLIMIT_MEMLOCK), probed in
// a child so the test process itself stays unlocked.
bool MlockAllowed() {
  const pid_t child = ::fork();
  if (child == 0) _exit(::mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0 ? 0 : 1);
  int status = 0;
  return child > 0 && ::waitpid(child, &status, 0) == child && WIFEXITED(status) &&
         WEXITSTATUS(status) == 0;
}

TEST(KvPluginStartupTest, MlockLocksMemoryWithoutFaultingInEveryThreadStack) {
  if (!MlockAllowed()) GTEST_SKIP() << "mlockall is not permitted here (no CAP_IPC_LOCK)";
  ShortTempDir dir;
  Host host(HostTls::kNone, dir);
  ASSERT_NO_FATAL_FAILURE(host.Launch({"VAULT_PLUGIN_MLOCK_ENABLED=true"}));
  const pid_t pid = host.process_->pid();
#if !defined(__SANITIZE_ADDRESS__) && !defined(BW_THREAD_SANITIZER)
  // (The sanitizers turn mlockall into a no-op, and their shadow memory dwarfs any RSS bound.)
  EXPECT_GT(ProcStatusKiB(pid, "VmLck"), 0) << "memory is not locked";
  // Locking with MCL_FUTURE alone faults in every 8 MiB thread stack: ~170 MB for this plugin.
  EXPECT_LT(ProcStatusKiB(pid, "VmRSS"), 64 * 1024) << "mlock made untouched memory resident";
#else
  EXPECT_GE(ProcStatusKiB(pid, "VmRSS"), 0);
#endif
  ASSERT_EQ(host.process_->Signal(SIGTERM), 0);
  absl::StatusOr<ProcessExitStatus> exit = host.process_->WaitForExit(kExitTimeout);
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->code, 0);
}

TEST(KvPluginStartupTest, ExitsWhenTheParentDies) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);  // So the orphan comes back to us.
  ShortTempDir dir;
  absl::StatusOr<std::unique_ptr<PluginProcess>> process =
      PluginProcess::Start(PluginBinary(), BaseEnv(dir), /*via_intermediate=*/true);
  ASSERT_TRUE(process.ok()) << process.status();
  ASSERT_TRUE((*process)->ReadFirstLine(kStartTimeout).ok()) << (*process)->stderr_text();
  (*process)->ReleaseIntermediate();  // The plugin's parent exits.
  absl::StatusOr<ProcessExitStatus> exit = (*process)->WaitForExit(kExitTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_FALSE(exit->signaled);
  EXPECT_EQ(exit->code, 1);
  EXPECT_THAT((*process)->stderr_text(), HasSubstr("the parent process exited"));
  EXPECT_TRUE(dir.Entries().empty()) << "socket file left behind";
}

struct RefusalCase {
  std::string name;
  std::vector<std::string> env;  // Besides the socket directory.
  std::string stderr_part;
  bool exact_cookie_message = false;
};

class KvPluginRefusalTest : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(KvPluginRefusalTest, ExitsOneWithAClearMessageAndNoHandshake) {
  ShortTempDir dir;
  std::vector<std::string> env = GetParam().env;
  env.push_back(absl::StrCat("PLUGIN_UNIX_SOCKET_DIR=", dir.path()));
  absl::StatusOr<std::unique_ptr<PluginProcess>> process =
      PluginProcess::Start(PluginBinary(), env);
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<ProcessExitStatus> exit = (*process)->WaitForExit(kExitTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_FALSE(exit->signaled);
  EXPECT_EQ(exit->code, 1);
  EXPECT_EQ((*process)->stdout_text(), "");
  if (GetParam().exact_cookie_message) {
    EXPECT_EQ((*process)->stderr_text(), sdk::kNotAPluginMessage);
  } else {
    EXPECT_THAT((*process)->stderr_text(), HasSubstr(GetParam().stderr_part));
  }
  EXPECT_TRUE(dir.Entries().empty());
}

INSTANTIATE_TEST_SUITE_P(
    Startup, KvPluginRefusalTest,
    ::testing::Values(
        RefusalCase{"NoEnvironment", {}, "", true},
        RefusalCase{
            "WrongCookie", {"VAULT_BACKEND_PLUGIN=wrong", "PLUGIN_PROTOCOL_VERSIONS=5"}, "", true},
        RefusalCase{"DatabaseCookie",
                    {"VAULT_DATABASE_PLUGIN=926a0820-aea2-be28-51d6-83cdf00e8edb",
                     "PLUGIN_PROTOCOL_VERSIONS=5"},
                    "",
                    true},
        RefusalCase{"NoCommonVersion",
                    {Cookie(), "PLUGIN_PROTOCOL_VERSIONS=3,4"},
                    "no common plugin protocol version"},
        RefusalCase{"NoVersionsOffered", {Cookie()}, "no common plugin protocol version"},
        RefusalCase{"BadClientCert",
                    {Cookie(), "PLUGIN_PROTOCOL_VERSIONS=5", "PLUGIN_CLIENT_CERT=not a cert"},
                    "PLUGIN_CLIENT_CERT is not a PEM certificate"}),
    [](const ::testing::TestParamInfo<RefusalCase>& info) { return info.param.name; });

}  // namespace
}  // namespace bulwark::examples::kv
