// ServeDatabase end to end: sdk/testing/memory_database_main.cc as a real child process, driven
// by this test as a Vault host would (AutoMTLS, protocol 5 or 6, multiplex ids), over gRPC.
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/goplugin/grpc_controller.grpc.pb.h"
#include "proto/vault/database.grpc.pb.h"
#include "proto/vault/multiplexing.grpc.pb.h"
#include "proto/vault/version.grpc.pb.h"
#include "protocol/handshake.h"
#include "protocol/tls_certs.h"
#include "sdk/serve_config.h"
#include "sdk/testing/plugin_process.h"

namespace bulwark::sdk {
namespace {

using ::bulwark::sdk::testing::PluginProcess;
using ::bulwark::sdk::testing::ProcessExitStatus;
using ::bulwark::sdk::testing::ShortTempDir;
using ::testing::HasSubstr;

// Generous for ASan; failures come back much sooner.
constexpr absl::Duration kStartTimeout = absl::Seconds(30);
constexpr absl::Duration kExitTimeout = absl::Seconds(20);
constexpr auto kCallTimeout = std::chrono::seconds(20);

std::string PluginBinary() {
  const char* srcdir = ::getenv("TEST_SRCDIR");
  const std::string relative = "sdk/memory_database_plugin";
  if (srcdir != nullptr) return absl::StrCat(srcdir, "/bulwark/", relative);
  return relative;
}

// One plugin process and a mutually authenticated channel to it.
class DatabaseHost {
 public:
  void Launch(const std::string& versions, const std::string& cookie_key,
              const std::string& cookie_value) {
    absl::StatusOr<protocol::SelfSignedCert> identity = protocol::GenerateSelfSignedCert(
        protocol::KeyType::kP256, protocol::kGoPluginCertValidity, absl::Now());
    ASSERT_TRUE(identity.ok()) << identity.status();
    identity_ = *identity;
    std::vector<std::string> env = {absl::StrCat(cookie_key, "=", cookie_value),
                                    absl::StrCat("PLUGIN_PROTOCOL_VERSIONS=", versions),
                                    absl::StrCat("PLUGIN_UNIX_SOCKET_DIR=", dir_.path()),
                                    "VAULT_PLUGIN_AUTOMTLS_ENABLED=true",
                                    absl::StrCat("PLUGIN_CLIENT_CERT=", identity_.cert_pem)};
    absl::StatusOr<std::unique_ptr<PluginProcess>> started =
        PluginProcess::Start(PluginBinary(), env);
    ASSERT_TRUE(started.ok()) << started.status();
    process_ = *std::move(started);
  }

  void Connect() {
    absl::StatusOr<std::string> line = process_->ReadFirstLine(kStartTimeout);
    ASSERT_TRUE(line.ok()) << line.status() << "\nstderr: " << process_->stderr_text();
    absl::StatusOr<protocol::HandshakeLine> parsed = protocol::ParseHandshakeLine(*line, {5, 6});
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    handshake_ = *parsed;
    absl::StatusOr<std::string> plugin_pem = protocol::CertDerToPem(handshake_.server_cert_der);
    ASSERT_TRUE(plugin_pem.ok()) << plugin_pem.status();
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = *plugin_pem;
    tls.pem_private_key = identity_.key_pem;
    tls.pem_cert_chain = identity_.cert_pem;
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channel_ = grpc::CreateCustomChannel(absl::StrCat("unix:", handshake_.address),
                                         grpc::SslCredentials(tls), args);
    database_ = dbplugin::v5::Database::NewStub(channel_);
  }

  std::unique_ptr<grpc::ClientContext> Context(const std::string& multiplex_id) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    if (!multiplex_id.empty()) context->AddMetadata("multiplex_id", multiplex_id);
    return context;
  }

  grpc::Status Initialize(const std::string& id, bool reachable) {
    dbplugin::v5::InitializeRequest request;
    request.set_verify_connection(true);
    (*request.mutable_config_data()->mutable_fields())["reachable"].set_bool_value(reachable);
    dbplugin::v5::InitializeResponse reply;
    return database_->Initialize(Context(id).get(), request, &reply);
  }

  grpc::Status NewUser(const std::string& id, std::string* username) {
    dbplugin::v5::NewUserRequest request;
    request.mutable_username_config()->set_role_name("ro");
    request.set_password("p4ssw0rd-not-logged");
    dbplugin::v5::NewUserResponse reply;
    grpc::Status status = database_->NewUser(Context(id).get(), request, &reply);
    *username = reply.username();
    return status;
  }

  grpc::Status MultiplexingSupport(bool* supported) {
    pluginutil::multiplexing::MultiplexingSupportResponse reply;
    grpc::Status status =
        pluginutil::multiplexing::PluginMultiplexing::NewStub(channel_)->MultiplexingSupport(
            Context("").get(), pluginutil::multiplexing::MultiplexingSupportRequest(), &reply);
    *supported = reply.supported();
    return status;
  }

  void ShutdownAndExpectCleanExit() {
    plugin::Empty reply;
    grpc::Status status = plugin::GRPCController::NewStub(channel_)->Shutdown(
        Context("").get(), plugin::Empty(), &reply);
    EXPECT_TRUE(status.ok()) << status.error_message();
    absl::StatusOr<ProcessExitStatus> exit = process_->WaitForExit(kExitTimeout);
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_FALSE(exit->signaled);
    EXPECT_EQ(exit->code, 0);
    EXPECT_THAT(dir_.Entries(), ::testing::IsEmpty()) << "the socket file must be removed";
  }

  ShortTempDir dir_;
  protocol::SelfSignedCert identity_;
  std::unique_ptr<PluginProcess> process_;
  protocol::HandshakeLine handshake_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<dbplugin::v5::Database::Stub> database_;
};

TEST(ServeDatabaseTest, ProtocolSixIsMultiplexedWithVaultsErrors) {
  DatabaseHost host;
  ASSERT_NO_FATAL_FAILURE(host.Launch("5,6", std::string(kVaultDatabaseCookieKey),
                                      std::string(kVaultDatabaseCookieValue)));
  ASSERT_NO_FATAL_FAILURE(host.Connect());
  EXPECT_EQ(host.handshake_.app_version, 6);
  bool supported = false;
  ASSERT_TRUE(host.MultiplexingSupport(&supported).ok());
  EXPECT_TRUE(supported);

  dbplugin::v5::TypeResponse type;
  grpc::Status status = host.database_->Type(host.Context("a").get(), dbplugin::v5::Empty(), &type);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(type.type(), "memdb");

  ASSERT_TRUE(host.Initialize("a", /*reachable=*/true).ok());
  status = host.Initialize("b", /*reachable=*/false);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(status.error_message(), "failed to initialize: the database is not reachable");

  std::string username;
  status = host.NewUser("a", &username);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(username, "v-ro-1");
  status = host.NewUser("never-initialized", &username);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(status.error_message(), "no database instance found");
  status = host.NewUser("", &username);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(status.error_message(), "no multiplexing ID found");

  dbplugin::v5::UpdateUserRequest update;
  update.set_username("v-ro-1");
  dbplugin::v5::UpdateUserResponse update_reply;
  status = host.database_->UpdateUser(host.Context("a").get(), update, &update_reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "update user request has no changes");
  update.mutable_password()->set_new_password("n3w-p4ss");
  status = host.database_->UpdateUser(host.Context("a").get(), update, &update_reply);
  EXPECT_TRUE(status.ok()) << status.error_message();

  dbplugin::v5::DeleteUserRequest del;
  del.set_username("v-ro-1");
  dbplugin::v5::DeleteUserResponse del_reply;
  status = host.database_->DeleteUser(host.Context("a").get(), del, &del_reply);
  EXPECT_TRUE(status.ok()) << status.error_message();

  dbplugin::v5::Empty closed;
  status = host.database_->Close(host.Context("a").get(), dbplugin::v5::Empty(), &closed);
  EXPECT_TRUE(status.ok()) << status.error_message();
  status = host.NewUser("a", &username);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNKNOWN) << "a closed connection is gone";

  logical::VersionReply version;
  status = logical::PluginVersion::NewStub(host.channel_)
               ->Version(host.Context("").get(), logical::Empty(), &version);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(version.plugin_version(), "v0.0.1");

  EXPECT_THAT(host.process_->stderr_text(), ::testing::Not(HasSubstr("p4ss")));
  host.ShutdownAndExpectCleanExit();
}

TEST(ServeDatabaseTest, ProtocolFiveServesOneDatabaseWithoutMultiplexing) {
  DatabaseHost host;
  ASSERT_NO_FATAL_FAILURE(host.Launch("5", std::string(kVaultDatabaseCookieKey),
                                      std::string(kVaultDatabaseCookieValue)));
  ASSERT_NO_FATAL_FAILURE(host.Connect());
  EXPECT_EQ(host.handshake_.app_version, 5);
  bool supported = true;
  grpc::Status status = host.MultiplexingSupport(&supported);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED)
      << "Vault's Serve registers no PluginMultiplexing service";
  std::string username;
  status = host.NewUser("", &username);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(status.error_message(), "unable to create new user: not initialized");
  ASSERT_TRUE(host.Initialize("", true).ok());
  status = host.NewUser("any-id-is-ignored", &username);
  EXPECT_TRUE(status.ok()) << status.error_message();
  host.ShutdownAndExpectCleanExit();
}

TEST(ServeDatabaseTest, BackendCookieIsRefused) {
  DatabaseHost host;
  ASSERT_NO_FATAL_FAILURE(host.Launch("5,6", std::string(kVaultBackendCookieKey),
                                      std::string(kVaultBackendCookieValue)));
  absl::StatusOr<ProcessExitStatus> exit = host.process_->WaitForExit(kExitTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->code, 1);
  EXPECT_EQ(host.process_->stdout_text(), "");
  EXPECT_THAT(host.process_->stderr_text(), HasSubstr("This binary is a plugin"));
}

TEST(ServeDatabaseTest, HostWithoutFiveOrSixIsRefused) {
  DatabaseHost host;
  ASSERT_NO_FATAL_FAILURE(host.Launch("4,7", std::string(kVaultDatabaseCookieKey),
                                      std::string(kVaultDatabaseCookieValue)));
  absl::StatusOr<ProcessExitStatus> exit = host.process_->WaitForExit(kExitTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->code, 1);
  EXPECT_EQ(host.process_->stdout_text(), "");
}

}  // namespace
}  // namespace bulwark::sdk
