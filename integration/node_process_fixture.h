// What the integration tests that drive the whole host on real plugin processes share: a node
// over PosixEnv and the gRPC transport, its teardown, and helpers to mount and to send requests.
// The test's SetUp makes root_, runners_ and node_ (its storage is its own).
#ifndef BULWARK_INTEGRATION_NODE_PROCESS_FIXTURE_H_
#define BULWARK_INTEGRATION_NODE_PROCESS_FIXTURE_H_

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/env/posix/posix_env.h"
#include "base/log/log.h"
#include "base/status/check.h"
#include "core/lifecycle/external_runner.h"
#include "core/node/node.h"
#include "core/rpc/grpc_transport.h"
#include "gtest/gtest.h"

namespace bulwark::lifecycle {

class NodeProcessTest : public ::testing::Test {
 protected:
  void TearDown() override {
    bool done = false;
    node_->Shutdown([&] { done = true; });
    EXPECT_TRUE(Wait([&] { return done; }));
    EXPECT_EQ(node_->lifecycle()->process_count(), 0u);
    node_.reset();
    std::system(absl::StrCat("rm -rf ", root_).c_str());
  }

  // Runs the loop until `cond` holds or `limit` (a hang guard) passes.
  bool Wait(absl::FunctionRef<bool()> cond, absl::Duration limit = absl::ZeroDuration()) {
    return posix_.loop().RunUntil(cond, limit == absl::ZeroDuration() ? wait_limit_ : limit);
  }

  // Makes runners_ (runtime directory root_/run, logging to log_) and returns node options whose
  // plugin directory is root_/plugins.
  node::NodeOptions MakeRunners() {
    ExternalRunnerOptions ro;
    ro.runtime_dir = root_ + "/run";
    ro.log_sink = &log_;
    runners_ = std::make_unique<ExternalRunnerFactory>(posix_.env(), transport_, ro);
    node::NodeOptions options;
    options.catalog.plugin_directory = root_ + "/plugins";
    return options;
  }

  absl::Status Enable(const std::string& path, const std::string& plugin) {
    mount::EnableRequest r;
    r.path = path;
    r.plugin_name = plugin;
    std::optional<absl::StatusOr<mount::MountEntry>> got;
    node_->EnableMount(r, [&](absl::StatusOr<mount::MountEntry> e) { got = e; });
    CHECK(Wait([&] { return got.has_value(); }));
    return got->status();
  }

  absl::StatusOr<Reply> Do(const std::string& path, const std::string& op, std::string data = "") {
    std::optional<absl::StatusOr<Reply>> got;
    node_->Handle(path, op, std::move(data), [&](absl::StatusOr<Reply> r) { got = r; });
    CHECK(Wait([&] { return got.has_value(); }));
    return *got;
  }

  absl::Duration wait_limit_ = absl::Seconds(30);
  PosixEnv posix_;
  rpc::GrpcPluginTransport transport_{posix_.loop()};
  MemoryLogSink log_;
  metrics::Registry metrics_;
  std::string root_;
  std::unique_ptr<ExternalRunnerFactory> runners_;
  std::unique_ptr<node::Node> node_;
};

}  // namespace bulwark::lifecycle

#endif  // BULWARK_INTEGRATION_NODE_PROCESS_FIXTURE_H_
