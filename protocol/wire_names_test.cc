// Pins every constant of wire_names.h: each method path names a method that exists in the
// generated protos (which proto/wire_names_test pins to upstream), and each cookie and version
// is the value Vault's sources use.

#include "protocol/wire_names.h"

#include <google/protobuf/descriptor.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proto/goplugin/grpc_broker.pb.h"
#include "proto/goplugin/grpc_controller.pb.h"
#include "proto/goplugin/grpc_stdio.pb.h"
#include "proto/health/health.pb.h"
#include "proto/vault/backend.pb.h"
#include "proto/vault/database.pb.h"
#include "proto/vault/multiplexing.pb.h"
#include "proto/vault/version.pb.h"

namespace bulwark::protocol {
namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;

// The method "/pkg.Service/Method" names in the generated descriptor pool, or null.
const MethodDescriptor* Find(absl::string_view path) {
  if (path.size() < 4 || path[0] != '/') return nullptr;
  const size_t slash = path.rfind('/');
  if (slash == 0) return nullptr;
  const ServiceDescriptor* service =
      DescriptorPool::generated_pool()->FindServiceByName(std::string(path.substr(1, slash - 1)));
  if (service == nullptr) return nullptr;
  return service->FindMethodByName(std::string(path.substr(slash + 1)));
}

TEST(WireNamesTest, EveryMethodConstantNamesAGeneratedMethod) {
  const std::vector<absl::string_view> methods = {
      kBrokerStartStreamMethod,
      kControllerShutdownMethod,
      kStdioStreamMethod,
      kHealthCheckMethod,
      kSetupMethod,
      kInitializeMethod,
      kHandleRequestMethod,
      kHandleExistenceCheckMethod,
      kSpecialPathsMethod,
      kCleanupMethod,
      kInvalidateKeyMethod,
      kTypeMethod,
      kStorageGetMethod,
      kStoragePutMethod,
      kStorageDeleteMethod,
      kStorageListMethod,
      kSystemViewDefaultLeaseTtlMethod,
      kSystemViewMaxLeaseTtlMethod,
      kSystemViewTaintedMethod,
      kSystemViewCachingDisabledMethod,
      kSystemViewReplicationStateMethod,
      kSystemViewMlockEnabledMethod,
      kSystemViewLocalMountMethod,
      kSystemViewPluginEnvMethod,
      kDatabaseInitializeMethod,
      kDatabaseNewUserMethod,
      kDatabaseUpdateUserMethod,
      kDatabaseDeleteUserMethod,
      kDatabaseTypeMethod,
      kDatabaseCloseMethod,
      kMultiplexingSupportMethod,
      kVersionMethod,
  };
  for (absl::string_view path : methods) {
    EXPECT_NE(Find(path), nullptr) << path << " names no method in the generated protos";
  }
}

TEST(WireNamesTest, FindRefusesANameThatIsNotOnTheWire) {
  // The check above can fail: a near miss of a real name is not found.
  EXPECT_NE(Find("/pb.Backend/HandleRequest"), nullptr);
  EXPECT_EQ(Find("/pb.Backend/HandleRequests"), nullptr);
  EXPECT_EQ(Find("/pb.backend/HandleRequest"), nullptr);
  EXPECT_EQ(Find("pb.Backend/HandleRequest"), nullptr);
}

TEST(WireNamesTest, CookiesAndVersionsAreVaults) {
  // sdk/plugin/serve.go and sdk/database/dbplugin/v5/plugin_server.go (protocol-facts.md §5).
  EXPECT_EQ(kVaultBackendCookieKey, "VAULT_BACKEND_PLUGIN");
  EXPECT_EQ(kVaultBackendCookieValue, "6669da05-b1c8-4f49-97d9-c8e5bed98e20");
  EXPECT_EQ(kVaultBackendProtocolVersion, 5);
  EXPECT_EQ(kVaultDatabaseCookieKey, "VAULT_DATABASE_PLUGIN");
  EXPECT_EQ(kVaultDatabaseCookieValue, "926a0820-aea2-be28-51d6-83cdf00e8edb");
  EXPECT_EQ(kVaultDatabaseProtocolVersion, 5);
  EXPECT_EQ(kVaultDatabaseMultiplexedProtocolVersion, 6);
}

}  // namespace
}  // namespace bulwark::protocol
