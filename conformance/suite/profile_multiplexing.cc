// The multiplexing profile (optional; run only when the manifest claims "multiplexing"): one
// process serves several backend instances keyed by the "multiplex_id" gRPC metadata, each with
// its own brokered connection back to the host (protocol-facts §4.4 and §5).
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "conformance/suite/conformance.h"
#include "conformance/suite/harness.h"
#include "conformance/suite/profile_util.h"
#include "gtest/gtest.h"
#include "proto/vault/backend.grpc.pb.h"
#include "proto/vault/multiplexing.grpc.pb.h"
#include "protocol/wire_names.h"

namespace bulwark::conformance {
namespace {

// One HandleRequest on the probe path under `mux`; gRPC failures (timeouts included) go to
// CheckOk.
std::optional<pb::HandleRequestReply> Request(Mounted& m, const std::string& mux,
                                              const std::string& operation,
                                              const std::string& data_json = "") {
  auto reply = m.plugin->HandleRequest(mux, operation, ProbePath(), data_json);
  if (!CheckOk(reply.status(),
               absl::StrCat("pb.Backend/HandleRequest ", operation, " under multiplex id ", mux))) {
    return std::nullopt;
  }
  return *std::move(reply);
}

// Creates the probe under `mux` and expects success without a logical error.
bool Write(Mounted& m, const std::string& mux) {
  auto reply = Request(m, mux, "create", ProbeJson());
  if (!reply) return false;
  EXPECT_FALSE(HasLogicalError(*reply)) << "create of the probe path under multiplex id " << mux
                                        << ": expected success, got " << Describe(*reply);
  return !HasLogicalError(*reply);
}

CONFORMANCE_TEST(Multiplexing, SupportReported, Must, "plugin-protocol.md §4 (multiplexing)",
                 "pluginutil.multiplexing.PluginMultiplexing/MultiplexingSupport MUST answer "
                 "supported=true for a plugin that claims multiplexing.") {
  auto plugin = PluginUnderTest::Start();
  if (!CheckOk(plugin.status(), "start the plugin")) return;
  auto stub = pluginutil::multiplexing::PluginMultiplexing::NewStub((*plugin)->channel());
  pluginutil::multiplexing::MultiplexingSupportRequest request;
  pluginutil::multiplexing::MultiplexingSupportResponse response;
  // Vault asks on the raw connection, without a multiplex id.
  auto ctx = (*plugin)->NewContext();
  if (!CheckOk(PluginUnderTest::FromGrpc(stub->MultiplexingSupport(ctx.get(), request, &response)),
               "PluginMultiplexing/MultiplexingSupport")) {
    return;
  }
  EXPECT_TRUE(response.supported()) << "expected supported=true, got false";
}

CONFORMANCE_TEST(Multiplexing, InstancesIsolated, Must, "plugin-protocol.md §4 (multiplexing)",
                 "A write under one multiplex_id MUST NOT be visible to a read under another "
                 "multiplex_id of the same process.") {
  auto m = StartMounted(1);
  if (!CheckOk(m.status(), "start the plugin and set up instance A")) return;
  const std::string a = m->mux, b = MuxId(2);
  if (!CheckOk(MountBackend(*m->plugin, b).status(), "set up instance B")) return;
  if (!Write(*m, a)) return;
  auto in_a = Request(*m, a, "read");
  if (!in_a) return;
  ASSERT_EQ(ProbeFieldsMismatch(*in_a), "") << "expected the write to be readable in A";
  auto in_b = Request(*m, b, "read");
  if (!in_b) return;
  EXPECT_TRUE(IsNotFound(*in_b)) << "expected no data under multiplex id " << b
                                 << " for a write made under " << a << ", got " << Describe(*in_b);
}

CONFORMANCE_TEST(Multiplexing, InstanceUsesOwnStorage, Must,
                 "plugin-protocol.md §4 (call sequence for one mount)",
                 "Each multiplexed instance MUST store through the broker connection offered in "
                 "its own Setup, never through another instance's.") {
  auto m = StartMounted(3);
  if (!CheckOk(m.status(), "start the plugin and set up instance A")) return;
  const std::string a = m->mux, b = MuxId(4);
  auto broker_b = MountBackend(*m->plugin, b);
  if (!CheckOk(broker_b.status(), "set up instance B")) return;
  sdk::InMemoryHostStorage* storage_a = m->plugin->storage(m->broker_id);
  sdk::InMemoryHostStorage* storage_b = m->plugin->storage(*broker_b);
  ASSERT_TRUE(storage_a != nullptr && storage_b != nullptr) << "harness: storage missing";
  const size_t a_before = storage_a->calls(protocol::kStoragePutMethod);
  const size_t b_before = storage_b->calls(protocol::kStoragePutMethod);
  if (!Write(*m, a)) return;
  EXPECT_GT(storage_a->calls(protocol::kStoragePutMethod), a_before)
      << "expected pb.Storage/Put on A's broker connection after a write under A, got none";
  EXPECT_EQ(storage_b->calls(protocol::kStoragePutMethod), b_before)
      << "expected no pb.Storage/Put on B's broker connection after a write under A, got "
      << storage_b->calls(protocol::kStoragePutMethod) - b_before;
}

CONFORMANCE_TEST(Multiplexing, CleanupIsolated, Must, "plugin-protocol.md §4 (multiplexing)",
                 "pb.Backend/Cleanup under one multiplex_id MUST leave the other instances "
                 "serving their data.") {
  auto m = StartMounted(5);
  if (!CheckOk(m.status(), "start the plugin and set up instance A")) return;
  const std::string a = m->mux, b = MuxId(6);
  if (!CheckOk(MountBackend(*m->plugin, b).status(), "set up instance B")) return;
  if (!Write(*m, a) || !Write(*m, b)) return;
  pb::Empty args, reply;
  auto ctx = m->plugin->NewContext(a);
  if (!CheckOk(PluginUnderTest::FromGrpc(m->plugin->backend().Cleanup(ctx.get(), args, &reply)),
               "pb.Backend/Cleanup of instance A")) {
    return;
  }
  auto in_b = Request(*m, b, "read");
  if (!in_b) return;
  EXPECT_EQ(ProbeFieldsMismatch(*in_b), "")
      << "expected instance B to keep serving its data after A's Cleanup";
}

CONFORMANCE_TEST(Multiplexing, CallWithoutIdRefused, Must, "plugin-protocol.md §4 (multiplexing)",
                 "A pb.Backend call without multiplex_id metadata to a multiplexing plugin MUST "
                 "fail with a gRPC error, as Vault's ServeMultiplex does.") {
  auto m = StartMounted(7);
  if (!CheckOk(m.status(), "start the plugin and set up instance A")) return;
  const std::string& a = m->mux;
  if (!Write(*m, a)) return;
  // Vault's GetMultiplexIDFromContext fails ("missing plugin multiplexing metadata", "no
  // multiplexing ID found", ...) and the plain Go error becomes a gRPC status (UNKNOWN). Any
  // failing code is accepted; serving some instance is not.
  auto reply = m->plugin->HandleRequest("", "read", ProbePath(), "");
  if (reply.status().code() == absl::StatusCode::kDeadlineExceeded) {
    ReportTimeout("pb.Backend/HandleRequest without multiplex_id");
    return;
  }
  EXPECT_FALSE(reply.ok()) << "expected a gRPC error for a call without multiplex_id, got a "
                              "reply: "
                           << (reply.ok() ? Describe(*reply) : "");
}

}  // namespace
}  // namespace bulwark::conformance
