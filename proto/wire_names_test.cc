// Pins the wire contract of our .proto files: every gRPC method path, its request/response types
// and streaming shape, no extra services or methods, and the field numbers that peers built
// from upstream go-plugin and Vault sources depend on. A failure here means bulwark would stop
// interoperating with real plugins or hosts, so fix the .proto, not the expectation.

#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proto/goplugin/grpc_broker.grpc.pb.h"
#include "proto/goplugin/grpc_controller.grpc.pb.h"
#include "proto/goplugin/grpc_stdio.grpc.pb.h"
#include "proto/health/health.grpc.pb.h"
#include "proto/vault/backend.grpc.pb.h"
#include "proto/vault/database.grpc.pb.h"
#include "proto/vault/multiplexing.grpc.pb.h"
#include "proto/vault/version.grpc.pb.h"

namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;

const DescriptorPool* Pool() { return DescriptorPool::generated_pool(); }

enum class Shape { kUnary, kServerStream, kBidi };

struct MethodSpec {
  const char* path;    // What goes in the HTTP/2 :path header.
  const char* input;   // Full name of the request message.
  const char* output;  // Full name of the response message.
  Shape shape;
};

// Every method of every service we define, as upstream defines it.
const std::vector<MethodSpec>& AllMethods() {
  static const auto* const kMethods = new std::vector<MethodSpec>{
      // go-plugin.
      {"/plugin.GRPCBroker/StartStream", "plugin.ConnInfo", "plugin.ConnInfo", Shape::kBidi},
      {"/plugin.GRPCController/Shutdown", "plugin.Empty", "plugin.Empty", Shape::kUnary},
      {"/plugin.GRPCStdio/StreamStdio", "google.protobuf.Empty", "plugin.StdioData",
       Shape::kServerStream},
      // gRPC health.
      {"/grpc.health.v1.Health/Check", "grpc.health.v1.HealthCheckRequest",
       "grpc.health.v1.HealthCheckResponse", Shape::kUnary},
      {"/grpc.health.v1.Health/Watch", "grpc.health.v1.HealthCheckRequest",
       "grpc.health.v1.HealthCheckResponse", Shape::kServerStream},
      // Vault backend, served by the plugin.
      {"/pb.Backend/HandleRequest", "pb.HandleRequestArgs", "pb.HandleRequestReply", Shape::kUnary},
      {"/pb.Backend/SpecialPaths", "pb.Empty", "pb.SpecialPathsReply", Shape::kUnary},
      {"/pb.Backend/HandleExistenceCheck", "pb.HandleExistenceCheckArgs",
       "pb.HandleExistenceCheckReply", Shape::kUnary},
      {"/pb.Backend/Cleanup", "pb.Empty", "pb.Empty", Shape::kUnary},
      {"/pb.Backend/InvalidateKey", "pb.InvalidateKeyArgs", "pb.Empty", Shape::kUnary},
      {"/pb.Backend/Setup", "pb.SetupArgs", "pb.SetupReply", Shape::kUnary},
      {"/pb.Backend/Initialize", "pb.InitializeArgs", "pb.InitializeReply", Shape::kUnary},
      {"/pb.Backend/Type", "pb.Empty", "pb.TypeReply", Shape::kUnary},
      // Vault backend, served by Vault on the brokered connection.
      {"/pb.Storage/List", "pb.StorageListArgs", "pb.StorageListReply", Shape::kUnary},
      {"/pb.Storage/Get", "pb.StorageGetArgs", "pb.StorageGetReply", Shape::kUnary},
      {"/pb.Storage/Put", "pb.StoragePutArgs", "pb.StoragePutReply", Shape::kUnary},
      {"/pb.Storage/Delete", "pb.StorageDeleteArgs", "pb.StorageDeleteReply", Shape::kUnary},
      {"/pb.SystemView/DefaultLeaseTTL", "pb.Empty", "pb.TTLReply", Shape::kUnary},
      {"/pb.SystemView/MaxLeaseTTL", "pb.Empty", "pb.TTLReply", Shape::kUnary},
      {"/pb.SystemView/Tainted", "pb.Empty", "pb.TaintedReply", Shape::kUnary},
      {"/pb.SystemView/CachingDisabled", "pb.Empty", "pb.CachingDisabledReply", Shape::kUnary},
      {"/pb.SystemView/ReplicationState", "pb.Empty", "pb.ReplicationStateReply", Shape::kUnary},
      {"/pb.SystemView/ResponseWrapData", "pb.ResponseWrapDataArgs", "pb.ResponseWrapDataReply",
       Shape::kUnary},
      {"/pb.SystemView/MlockEnabled", "pb.Empty", "pb.MlockEnabledReply", Shape::kUnary},
      {"/pb.SystemView/LocalMount", "pb.Empty", "pb.LocalMountReply", Shape::kUnary},
      {"/pb.SystemView/EntityInfo", "pb.EntityInfoArgs", "pb.EntityInfoReply", Shape::kUnary},
      {"/pb.SystemView/PluginEnv", "pb.Empty", "pb.PluginEnvReply", Shape::kUnary},
      {"/pb.SystemView/GroupsForEntity", "pb.EntityInfoArgs", "pb.GroupsForEntityReply",
       Shape::kUnary},
      {"/pb.SystemView/GeneratePasswordFromPolicy", "pb.GeneratePasswordFromPolicyRequest",
       "pb.GeneratePasswordFromPolicyReply", Shape::kUnary},
      {"/pb.SystemView/ClusterInfo", "pb.Empty", "pb.ClusterInfoReply", Shape::kUnary},
      {"/pb.SystemView/GenerateIdentityToken", "pb.GenerateIdentityTokenRequest",
       "pb.GenerateIdentityTokenResponse", Shape::kUnary},
      {"/pb.SystemView/RegisterRotationJob", "pb.RegisterRotationJobRequest",
       "pb.RegisterRotationJobResponse", Shape::kUnary},
      {"/pb.SystemView/DeregisterRotationJob", "pb.DeregisterRotationJobRequest", "pb.Empty",
       Shape::kUnary},
      {"/pb.Events/SendEvent", "pb.SendEventRequest", "pb.Empty", Shape::kUnary},
      {"/pb.Observations/RecordObservation", "pb.RecordObservationRequest", "pb.Empty",
       Shape::kUnary},
      // Vault database plugins.
      {"/dbplugin.v5.Database/Initialize", "dbplugin.v5.InitializeRequest",
       "dbplugin.v5.InitializeResponse", Shape::kUnary},
      {"/dbplugin.v5.Database/NewUser", "dbplugin.v5.NewUserRequest", "dbplugin.v5.NewUserResponse",
       Shape::kUnary},
      {"/dbplugin.v5.Database/UpdateUser", "dbplugin.v5.UpdateUserRequest",
       "dbplugin.v5.UpdateUserResponse", Shape::kUnary},
      {"/dbplugin.v5.Database/DeleteUser", "dbplugin.v5.DeleteUserRequest",
       "dbplugin.v5.DeleteUserResponse", Shape::kUnary},
      {"/dbplugin.v5.Database/Type", "dbplugin.v5.Empty", "dbplugin.v5.TypeResponse",
       Shape::kUnary},
      {"/dbplugin.v5.Database/Close", "dbplugin.v5.Empty", "dbplugin.v5.Empty", Shape::kUnary},
      // Vault plugin helpers.
      {"/pluginutil.multiplexing.PluginMultiplexing/MultiplexingSupport",
       "pluginutil.multiplexing.MultiplexingSupportRequest",
       "pluginutil.multiplexing.MultiplexingSupportResponse", Shape::kUnary},
      {"/logical.PluginVersion/Version", "logical.Empty", "logical.VersionReply", Shape::kUnary},
  };
  return *kMethods;
}

// "/pkg.Service/Method" -> "pkg.Service".
std::string ServiceOf(const std::string& path) { return path.substr(1, path.rfind('/') - 1); }

// The path grpc_cpp_plugin derives from a method descriptor.
std::string PathOf(const MethodDescriptor& method) {
  return "/" + method.service()->full_name() + "/" + method.name();
}

TEST(WireNamesTest, GeneratedServiceNamesMatchUpstream) {
  EXPECT_STREQ(plugin::GRPCBroker::service_full_name(), "plugin.GRPCBroker");
  EXPECT_STREQ(plugin::GRPCController::service_full_name(), "plugin.GRPCController");
  EXPECT_STREQ(plugin::GRPCStdio::service_full_name(), "plugin.GRPCStdio");
  EXPECT_STREQ(grpc::health::v1::Health::service_full_name(), "grpc.health.v1.Health");
  EXPECT_STREQ(pb::Backend::service_full_name(), "pb.Backend");
  EXPECT_STREQ(pb::Storage::service_full_name(), "pb.Storage");
  EXPECT_STREQ(pb::SystemView::service_full_name(), "pb.SystemView");
  EXPECT_STREQ(pb::Events::service_full_name(), "pb.Events");
  EXPECT_STREQ(pb::Observations::service_full_name(), "pb.Observations");
  EXPECT_STREQ(dbplugin::v5::Database::service_full_name(), "dbplugin.v5.Database");
  EXPECT_STREQ(pluginutil::multiplexing::PluginMultiplexing::service_full_name(),
               "pluginutil.multiplexing.PluginMultiplexing");
  EXPECT_STREQ(logical::PluginVersion::service_full_name(), "logical.PluginVersion");
}

TEST(WireNamesTest, EveryExpectedMethodExistsWithUpstreamTypesAndShape) {
  for (const MethodSpec& spec : AllMethods()) {
    SCOPED_TRACE(spec.path);
    const std::string path = spec.path;
    // Descriptor lookups take "pkg.Service.Method".
    std::string dotted = path.substr(1);
    dotted[dotted.rfind('/')] = '.';
    const MethodDescriptor* method = Pool()->FindMethodByName(dotted);
    ASSERT_NE(method, nullptr);
    EXPECT_EQ(PathOf(*method), path);
    EXPECT_EQ(method->input_type()->full_name(), spec.input);
    EXPECT_EQ(method->output_type()->full_name(), spec.output);
    EXPECT_EQ(method->client_streaming(), spec.shape == Shape::kBidi);
    EXPECT_EQ(method->server_streaming(), spec.shape != Shape::kUnary);
  }
}

TEST(WireNamesTest, NoUnexpectedMethodsInAnyService) {
  std::set<std::string> services;
  std::set<std::string> expected_paths;
  for (const MethodSpec& spec : AllMethods()) {
    services.insert(ServiceOf(spec.path));
    expected_paths.insert(spec.path);
  }
  ASSERT_EQ(services.size(), 12u);
  ASSERT_EQ(expected_paths.size(), 43u);
  for (const std::string& name : services) {
    SCOPED_TRACE(name);
    const ServiceDescriptor* service = Pool()->FindServiceByName(name);
    ASSERT_NE(service, nullptr);
    for (int i = 0; i < service->method_count(); ++i) {
      EXPECT_EQ(expected_paths.count(PathOf(*service->method(i))), 1u)
          << "unexpected method " << PathOf(*service->method(i));
    }
  }
}

TEST(WireNamesTest, NoUnexpectedServicesInOurFiles) {
  const std::vector<std::pair<std::string, std::set<std::string>>> kFiles = {
      {"proto/goplugin/grpc_broker.proto", {"plugin.GRPCBroker"}},
      {"proto/goplugin/grpc_controller.proto", {"plugin.GRPCController"}},
      {"proto/goplugin/grpc_stdio.proto", {"plugin.GRPCStdio"}},
      {"proto/health/health.proto", {"grpc.health.v1.Health"}},
      {"proto/vault/backend.proto",
       {"pb.Backend", "pb.Storage", "pb.SystemView", "pb.Events", "pb.Observations"}},
      {"proto/vault/database.proto", {"dbplugin.v5.Database"}},
      {"proto/vault/multiplexing.proto", {"pluginutil.multiplexing.PluginMultiplexing"}},
      {"proto/vault/version.proto", {"logical.PluginVersion"}},
      {"proto/vault/event.proto", {}},
      {"proto/vault/identity.proto", {}},
      {"proto/vault/plugin.proto", {}},
  };
  for (const auto& [file_name, expected] : kFiles) {
    SCOPED_TRACE(file_name);
    const FileDescriptor* file = Pool()->FindFileByName(file_name);
    ASSERT_NE(file, nullptr);
    EXPECT_EQ(file->syntax(), FileDescriptor::SYNTAX_PROTO3);
    std::set<std::string> actual;
    for (int i = 0; i < file->service_count(); ++i) actual.insert(file->service(i)->full_name());
    EXPECT_EQ(actual, expected);
  }
}

struct FieldSpec {
  const char* message;
  const char* field;
  int number;
  FieldDescriptor::Type type;
  bool repeated;
};

void ExpectFields(const std::vector<FieldSpec>& specs) {
  for (const FieldSpec& spec : specs) {
    SCOPED_TRACE(std::string(spec.message) + "." + spec.field);
    const Descriptor* message = Pool()->FindMessageTypeByName(spec.message);
    ASSERT_NE(message, nullptr);
    const FieldDescriptor* field = message->FindFieldByName(spec.field);
    ASSERT_NE(field, nullptr);
    EXPECT_EQ(field->number(), spec.number);
    EXPECT_EQ(field->type(), spec.type);
    EXPECT_EQ(field->is_repeated(), spec.repeated);
  }
}

void ExpectFieldCount(const char* message_name, int count) {
  const Descriptor* message = Pool()->FindMessageTypeByName(message_name);
  ASSERT_NE(message, nullptr) << message_name;
  EXPECT_EQ(message->field_count(), count) << message_name;
}

constexpr auto kString = FieldDescriptor::TYPE_STRING;
constexpr auto kBytes = FieldDescriptor::TYPE_BYTES;
constexpr auto kBool = FieldDescriptor::TYPE_BOOL;
constexpr auto kInt32 = FieldDescriptor::TYPE_INT32;
constexpr auto kInt64 = FieldDescriptor::TYPE_INT64;
constexpr auto kUint32 = FieldDescriptor::TYPE_UINT32;
constexpr auto kMessage = FieldDescriptor::TYPE_MESSAGE;
constexpr auto kEnum = FieldDescriptor::TYPE_ENUM;

TEST(WireNamesTest, GoPluginFieldNumbers) {
  ExpectFields({
      {"plugin.ConnInfo", "service_id", 1, kUint32, false},
      {"plugin.ConnInfo", "network", 2, kString, false},
      {"plugin.ConnInfo", "address", 3, kString, false},
      {"plugin.ConnInfo", "knock", 4, kMessage, false},
      {"plugin.ConnInfo.Knock", "knock", 1, kBool, false},
      {"plugin.ConnInfo.Knock", "ack", 2, kBool, false},
      {"plugin.ConnInfo.Knock", "error", 3, kString, false},
      {"plugin.StdioData", "channel", 1, kEnum, false},
      {"plugin.StdioData", "data", 2, kBytes, false},
  });
  ExpectFieldCount("plugin.ConnInfo", 4);
  ExpectFieldCount("plugin.ConnInfo.Knock", 3);
  ExpectFieldCount("plugin.StdioData", 2);
  ExpectFieldCount("plugin.Empty", 0);

  const EnumDescriptor* channel = Pool()->FindEnumTypeByName("plugin.StdioData.Channel");
  ASSERT_NE(channel, nullptr);
  EXPECT_EQ(channel->value_count(), 3);
  EXPECT_EQ(channel->FindValueByName("INVALID")->number(), 0);
  EXPECT_EQ(channel->FindValueByName("STDOUT")->number(), 1);
  EXPECT_EQ(channel->FindValueByName("STDERR")->number(), 2);
  EXPECT_EQ(plugin::StdioData::STDERR, 2);
}

TEST(WireNamesTest, HealthFieldNumbers) {
  ExpectFields({
      {"grpc.health.v1.HealthCheckRequest", "service", 1, kString, false},
      {"grpc.health.v1.HealthCheckResponse", "status", 1, kEnum, false},
  });
  const EnumDescriptor* status =
      Pool()->FindEnumTypeByName("grpc.health.v1.HealthCheckResponse.ServingStatus");
  ASSERT_NE(status, nullptr);
  EXPECT_EQ(status->value_count(), 4);
  EXPECT_EQ(status->FindValueByName("UNKNOWN")->number(), 0);
  EXPECT_EQ(status->FindValueByName("SERVING")->number(), 1);
  EXPECT_EQ(status->FindValueByName("NOT_SERVING")->number(), 2);
  EXPECT_EQ(status->FindValueByName("SERVICE_UNKNOWN")->number(), 3);
}

TEST(WireNamesTest, VaultBackendFieldNumbers) {
  ExpectFields({
      {"pb.HandleRequestArgs", "storage_id", 1, kUint32, false},
      {"pb.HandleRequestArgs", "request", 2, kMessage, false},
      {"pb.HandleRequestReply", "response", 1, kMessage, false},
      {"pb.HandleRequestReply", "err", 2, kMessage, false},
      {"pb.ProtoError", "err_type", 1, kUint32, false},
      {"pb.ProtoError", "err_msg", 2, kString, false},
      {"pb.ProtoError", "err_code", 3, kInt64, false},
      {"pb.SetupArgs", "broker_id", 1, kUint32, false},
      {"pb.SetupArgs", "Config", 2, kMessage, true},  // map<string, string>
      {"pb.SetupArgs", "backendUUID", 3, kString, false},
      {"pb.Request", "id", 1, kString, false},
      {"pb.Request", "ReplicationCluster", 2, kString, false},
      {"pb.Request", "operation", 3, kString, false},
      {"pb.Request", "path", 4, kString, false},
      {"pb.Request", "data", 5, kString, false},
      {"pb.Request", "headers", 8, kMessage, true},
      {"pb.Request", "connection", 20, kMessage, false},
      {"pb.Request", "requires_snapshot_id", 21, kString, false},
      {"pb.Response", "data", 3, kString, false},
      {"pb.Response", "mount_type", 8, kString, false},
      {"pb.Auth", "alias", 11, kMessage, false},
      {"pb.Auth", "no_default_policy", 18, kBool, false},
      {"pb.LeaseOptions", "TTL", 1, kInt64, false},
      {"pb.LeaseOptions", "MaxTTL", 5, kInt64, false},
      {"pb.Paths", "allow_snapshot_read", 8, kString, true},
      {"pb.TokenEntry", "external_id", 22, kString, false},
      // Out of order upstream: remote_port was added after connection_state.
      {"pb.Connection", "remote_addr", 1, kString, false},
      {"pb.Connection", "connection_state", 2, kMessage, false},
      {"pb.Connection", "remote_port", 3, kInt32, false},
      {"pb.StorageEntry", "key", 1, kString, false},
      {"pb.StorageEntry", "value", 2, kBytes, false},
      {"pb.StorageEntry", "seal_wrap", 3, kBool, false},
      {"pb.ResponseWrapDataArgs", "JWT", 3, kBool, false},
      {"pb.ReplicationStateReply", "state", 1, kInt32, false},
      {"pb.SendEventRequest", "event", 2, kMessage, false},
      {"logical.Alias", "ID", 5, kString, false},
      {"logical.Alias", "local", 8, kBool, false},
      {"logical.PluginEnvironment", "vault_version", 1, kString, false},
      {"logical.EventData", "metadata", 2, kMessage, false},
  });
  ExpectFieldCount("pb.HandleRequestArgs", 2);
  ExpectFieldCount("pb.Request", 21);
  ExpectFieldCount("pb.Auth", 18);
  ExpectFieldCount("pb.Paths", 8);
  ExpectFieldCount("pb.StoragePutReply", 1);
  EXPECT_EQ(Pool()->FindFieldByName("pb.Auth.alias")->message_type()->full_name(), "logical.Alias");
}

TEST(WireNamesTest, VaultDatabaseFieldNumbers) {
  ExpectFields({
      {"dbplugin.v5.NewUserRequest", "username_config", 1, kMessage, false},
      {"dbplugin.v5.NewUserRequest", "password", 2, kString, false},
      {"dbplugin.v5.NewUserRequest", "expiration", 3, kMessage, false},
      {"dbplugin.v5.NewUserRequest", "statements", 4, kMessage, false},
      {"dbplugin.v5.NewUserRequest", "rollback_statements", 5, kMessage, false},
      {"dbplugin.v5.NewUserRequest", "credential_type", 6, kInt32, false},
      {"dbplugin.v5.NewUserRequest", "public_key", 7, kBytes, false},
      {"dbplugin.v5.NewUserRequest", "subject", 8, kString, false},
      {"dbplugin.v5.UpdateUserRequest", "username", 1, kString, false},
      {"dbplugin.v5.UpdateUserRequest", "public_key", 4, kMessage, false},
      {"dbplugin.v5.UpdateUserRequest", "credential_type", 5, kInt32, false},
      {"dbplugin.v5.UpdateUserRequest", "self_managed_password", 6, kString, false},
      {"dbplugin.v5.InitializeRequest", "config_data", 1, kMessage, false},
      {"dbplugin.v5.InitializeRequest", "verify_connection", 2, kBool, false},
      {"dbplugin.v5.TypeResponse", "Type", 1, kString, false},
      {"dbplugin.v5.Statements", "Commands", 1, kString, true},
      {"dbplugin.v5.UsernameConfig", "display_name", 1, kString, false},
      {"dbplugin.v5.UsernameConfig", "role_name", 2, kString, false},
  });
  ExpectFieldCount("dbplugin.v5.NewUserRequest", 8);
  ExpectFieldCount("dbplugin.v5.UpdateUserRequest", 6);
  EXPECT_EQ(
      Pool()->FindFieldByName("dbplugin.v5.NewUserRequest.expiration")->message_type()->full_name(),
      "google.protobuf.Timestamp");
  EXPECT_EQ(Pool()
                ->FindFieldByName("dbplugin.v5.InitializeRequest.config_data")
                ->message_type()
                ->full_name(),
            "google.protobuf.Struct");
}

TEST(WireNamesTest, VaultHelperFieldNumbers) {
  ExpectFields({
      {"pluginutil.multiplexing.MultiplexingSupportResponse", "supported", 1, kBool, false},
      {"logical.VersionReply", "plugin_version", 1, kString, false},
  });
  ExpectFieldCount("pluginutil.multiplexing.MultiplexingSupportRequest", 0);
  ExpectFieldCount("logical.Empty", 0);
}

// The descriptor checks above trust that grpc_cpp_plugin builds call paths from descriptors.
// This checks the generated client stubs themselves: each call goes to an in-process server
// whose only service is a catch-all that records the :path it was called on.
class PathRecorder : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      paths_.push_back(ctx->method());
    }
    return grpc::CallbackGenericService::CreateReactor(ctx);  // Finishes with UNIMPLEMENTED.
  }

  // Paths seen since the last call, oldest first.
  std::vector<std::string> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    out.swap(paths_);
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> paths_;
};

// Bounds every call so a broken server fails the test instead of hanging it.
constexpr std::chrono::seconds kCallDeadline(30);

class GeneratedStubPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterCallbackGenericService(&recorder_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = server_->InProcessChannel(grpc::ChannelArguments());
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  void Deadline(grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + kCallDeadline);
  }

  // Calls one generated unary stub method and returns the path the server saw.
  template <typename Stub, typename Req, typename Resp>
  std::string Unary(Stub* stub,
                    grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*)) {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    Req request;
    Resp response;
    const grpc::Status status = (stub->*method)(&ctx, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << status.error_message();
    return OnlyPath();
  }

  std::string OnlyPath() {
    std::vector<std::string> paths = recorder_.Take();
    EXPECT_EQ(paths.size(), 1u);
    return paths.empty() ? std::string() : paths.front();
  }

  PathRecorder recorder_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(GeneratedStubPathTest, GoPluginStubs) {
  {
    auto stub = plugin::GRPCBroker::NewStub(channel_);
    grpc::ClientContext ctx;
    Deadline(&ctx);
    auto stream = stub->StartStream(&ctx);
    stream->WritesDone();
    plugin::ConnInfo info;
    while (stream->Read(&info)) {
    }
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_EQ(OnlyPath(), "/plugin.GRPCBroker/StartStream");
  }
  {
    auto stub = plugin::GRPCController::NewStub(channel_);
    EXPECT_EQ(Unary(stub.get(), &plugin::GRPCController::Stub::Shutdown),
              "/plugin.GRPCController/Shutdown");
  }
  {
    auto stub = plugin::GRPCStdio::NewStub(channel_);
    grpc::ClientContext ctx;
    Deadline(&ctx);
    auto reader = stub->StreamStdio(&ctx, google::protobuf::Empty());
    plugin::StdioData data;
    while (reader->Read(&data)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_EQ(OnlyPath(), "/plugin.GRPCStdio/StreamStdio");
  }
}

TEST_F(GeneratedStubPathTest, HealthStubs) {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  EXPECT_EQ(Unary(stub.get(), &grpc::health::v1::Health::Stub::Check),
            "/grpc.health.v1.Health/Check");
  grpc::ClientContext ctx;
  Deadline(&ctx);
  auto reader = stub->Watch(&ctx, grpc::health::v1::HealthCheckRequest());
  grpc::health::v1::HealthCheckResponse response;
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(OnlyPath(), "/grpc.health.v1.Health/Watch");
}

TEST_F(GeneratedStubPathTest, VaultBackendStubs) {
  auto backend = pb::Backend::NewStub(channel_);
  using B = pb::Backend::Stub;
  EXPECT_EQ(Unary(backend.get(), &B::HandleRequest), "/pb.Backend/HandleRequest");
  EXPECT_EQ(Unary(backend.get(), &B::SpecialPaths), "/pb.Backend/SpecialPaths");
  EXPECT_EQ(Unary(backend.get(), &B::HandleExistenceCheck), "/pb.Backend/HandleExistenceCheck");
  EXPECT_EQ(Unary(backend.get(), &B::Cleanup), "/pb.Backend/Cleanup");
  EXPECT_EQ(Unary(backend.get(), &B::InvalidateKey), "/pb.Backend/InvalidateKey");
  EXPECT_EQ(Unary(backend.get(), &B::Setup), "/pb.Backend/Setup");
  EXPECT_EQ(Unary(backend.get(), &B::Initialize), "/pb.Backend/Initialize");
  EXPECT_EQ(Unary(backend.get(), &B::Type), "/pb.Backend/Type");

  auto storage = pb::Storage::NewStub(channel_);
  using S = pb::Storage::Stub;
  EXPECT_EQ(Unary(storage.get(), &S::List), "/pb.Storage/List");
  EXPECT_EQ(Unary(storage.get(), &S::Get), "/pb.Storage/Get");
  EXPECT_EQ(Unary(storage.get(), &S::Put), "/pb.Storage/Put");
  EXPECT_EQ(Unary(storage.get(), &S::Delete), "/pb.Storage/Delete");

  auto sys = pb::SystemView::NewStub(channel_);
  using V = pb::SystemView::Stub;
  EXPECT_EQ(Unary(sys.get(), &V::DefaultLeaseTTL), "/pb.SystemView/DefaultLeaseTTL");
  EXPECT_EQ(Unary(sys.get(), &V::MaxLeaseTTL), "/pb.SystemView/MaxLeaseTTL");
  EXPECT_EQ(Unary(sys.get(), &V::Tainted), "/pb.SystemView/Tainted");
  EXPECT_EQ(Unary(sys.get(), &V::CachingDisabled), "/pb.SystemView/CachingDisabled");
  EXPECT_EQ(Unary(sys.get(), &V::ReplicationState), "/pb.SystemView/ReplicationState");
  EXPECT_EQ(Unary(sys.get(), &V::ResponseWrapData), "/pb.SystemView/ResponseWrapData");
  EXPECT_EQ(Unary(sys.get(), &V::MlockEnabled), "/pb.SystemView/MlockEnabled");
  EXPECT_EQ(Unary(sys.get(), &V::LocalMount), "/pb.SystemView/LocalMount");
  EXPECT_EQ(Unary(sys.get(), &V::EntityInfo), "/pb.SystemView/EntityInfo");
  EXPECT_EQ(Unary(sys.get(), &V::PluginEnv), "/pb.SystemView/PluginEnv");
  EXPECT_EQ(Unary(sys.get(), &V::GroupsForEntity), "/pb.SystemView/GroupsForEntity");
  EXPECT_EQ(Unary(sys.get(), &V::GeneratePasswordFromPolicy),
            "/pb.SystemView/GeneratePasswordFromPolicy");
  EXPECT_EQ(Unary(sys.get(), &V::ClusterInfo), "/pb.SystemView/ClusterInfo");
  EXPECT_EQ(Unary(sys.get(), &V::GenerateIdentityToken), "/pb.SystemView/GenerateIdentityToken");
  EXPECT_EQ(Unary(sys.get(), &V::RegisterRotationJob), "/pb.SystemView/RegisterRotationJob");
  EXPECT_EQ(Unary(sys.get(), &V::DeregisterRotationJob), "/pb.SystemView/DeregisterRotationJob");

  auto events = pb::Events::NewStub(channel_);
  EXPECT_EQ(Unary(events.get(), &pb::Events::Stub::SendEvent), "/pb.Events/SendEvent");
  auto observations = pb::Observations::NewStub(channel_);
  EXPECT_EQ(Unary(observations.get(), &pb::Observations::Stub::RecordObservation),
            "/pb.Observations/RecordObservation");
}

TEST_F(GeneratedStubPathTest, VaultDatabaseAndHelperStubs) {
  auto db = dbplugin::v5::Database::NewStub(channel_);
  using D = dbplugin::v5::Database::Stub;
  EXPECT_EQ(Unary(db.get(), &D::Initialize), "/dbplugin.v5.Database/Initialize");
  EXPECT_EQ(Unary(db.get(), &D::NewUser), "/dbplugin.v5.Database/NewUser");
  EXPECT_EQ(Unary(db.get(), &D::UpdateUser), "/dbplugin.v5.Database/UpdateUser");
  EXPECT_EQ(Unary(db.get(), &D::DeleteUser), "/dbplugin.v5.Database/DeleteUser");
  EXPECT_EQ(Unary(db.get(), &D::Type), "/dbplugin.v5.Database/Type");
  EXPECT_EQ(Unary(db.get(), &D::Close), "/dbplugin.v5.Database/Close");

  auto mux = pluginutil::multiplexing::PluginMultiplexing::NewStub(channel_);
  EXPECT_EQ(
      Unary(mux.get(), &pluginutil::multiplexing::PluginMultiplexing::Stub::MultiplexingSupport),
      "/pluginutil.multiplexing.PluginMultiplexing/MultiplexingSupport");

  auto version = logical::PluginVersion::NewStub(channel_);
  EXPECT_EQ(Unary(version.get(), &logical::PluginVersion::Stub::Version),
            "/logical.PluginVersion/Version");
}

}  // namespace
