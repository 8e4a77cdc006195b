// The simulated node: the real core over simulated plugin processes; its disk view dies with it
// and can die mid-write; its executor drops the dead process's tasks; a restart rebuilds the
// core from disk; components see the lifecycle; every spawn is reported with its hash.
#include "sim/node.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/crypto/sha256.h"
#include "base/status/check.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/handshake.h"

namespace bulwark::sim {
namespace {

using ::testing::HasSubstr;

class RecordingComponent final : public NodeComponent {
 public:
  explicit RecordingComponent(std::vector<std::string>* events) : events_(events) {}
  absl::string_view name() const override { return "recorder"; }
  absl::Status OnStart(Node&) override {
    events_->push_back("start");
    return absl::OkStatus();
  }
  void OnUnsealed(Node&) override { events_->push_back("unsealed"); }
  void OnSealing(Node&) override { events_->push_back("sealing"); }
  void OnStop(Node&) override { events_->push_back("stop"); }
  std::optional<Response> Handle(Node&, const Request& request) override {
    if (request.key != "component/x") return std::nullopt;
    Response response;
    response.value = "from component";
    return response;
  }
  bool HandlesFault(FaultKind kind) const override { return kind == FaultKind::kPartition; }

 private:
  std::vector<std::string>* events_;
};

class NodeTest : public ::testing::Test {
 protected:
  NodeTest() {
    NodeHooks hooks;
    hooks.power_lost = [this](int, CrashMode mode) { power_lost_.push_back(mode); };
    hooks.spawning = [this](int, absl::string_view path, absl::string_view sha) {
      spawned_.push_back(absl::StrCat(path, " ", sha));
    };
    hooks.log = [this](int, absl::string_view line) { log_.emplace_back(line); };
    NodeOptions options;
    options.seed = 42;
    node_ = std::make_unique<Node>(options, loop_, clock_, std::move(hooks));
    SimFileSystem& disk = node_->disk();
    CHECK_OK(disk.CreateDir("/bulwark", 0755));
    CHECK_OK(disk.CreateDir("/bulwark/plugins", 0755));
    CHECK_OK(disk.CreateDir("/bulwark/run", 0700));
    CHECK_OK(disk.SyncDir("/"));
    CHECK_OK(disk.SyncDir("/bulwark"));
    CHECK_OK(disk.WriteFileDurably(
        "/bulwark/plugins/kv", SimProcessLauncher::ExecutableContents(kPluginMultiplexed), 0755));
  }

  // Runs `request` to completion on the simulated loop.
  Response Run(Request request) {
    std::optional<Response> got;
    node_->Execute(request, [&](Response r) { got = std::move(r); });
    loop_.RunUntil([&] { return got.has_value(); }, absl::Minutes(5));
    CHECK(got.has_value()) << OpKindName(request.kind) << " never answered";
    return *got;
  }

  std::vector<std::string> InitAndUnseal() {
    Request init;
    init.kind = OpKind::kInit;
    init.shares = 3;
    init.threshold = 2;
    Response shares = Run(init);
    EXPECT_TRUE(shares.status.ok()) << shares.status;
    Unseal(shares.shares);
    return shares.shares;
  }

  void Unseal(const std::vector<std::string>& shares) {
    Request unseal;
    unseal.kind = OpKind::kUnseal;
    unseal.unseal_shares = shares;
    Response r = Run(unseal);
    EXPECT_TRUE(r.status.ok()) << r.status;
    EXPECT_FALSE(r.sealed);
  }

  void MountKv() {
    Request reg;
    reg.kind = OpKind::kRegister;
    reg.registration.name = "kv";
    reg.registration.command = "kv";
    reg.registration.sha256 = crypto::HexEncode(
        crypto::Sha256::Hash(SimProcessLauncher::ExecutableContents(kPluginMultiplexed)));
    ASSERT_TRUE(Run(reg).status.ok());
    Request mount;
    mount.kind = OpKind::kEnableMount;
    mount.mount_path = "m0";
    mount.name = "kv";
    ASSERT_TRUE(Run(mount).status.ok());
  }

  Response Data(OpKind kind, std::string key, std::string value = "") {
    Request r;
    r.kind = kind;
    r.key = std::move(key);
    r.value = std::move(value);
    return Run(r);
  }

  // Declared before the node, which writes to them until it is destroyed.
  std::vector<CrashMode> power_lost_;
  std::vector<std::string> spawned_;
  std::vector<std::string> log_;
  SimClock clock_;
  SimEventLoop loop_{clock_};
  std::unique_ptr<Node> node_;
};

TEST_F(NodeTest, MountTrafficRunsThroughARealPluginAndSurvivesAPowerLoss) {
  ASSERT_TRUE(node_->Start().ok());
  const std::vector<std::string> shares = InitAndUnseal();
  MountKv();
  ASSERT_THAT(spawned_, ::testing::SizeIs(1));
  EXPECT_THAT(spawned_[0], HasSubstr("/bulwark/plugins/kv "));
  ASSERT_TRUE(Data(OpKind::kPut, "m0/a/b", "durable").status.ok());
  EXPECT_EQ(Data(OpKind::kGet, "m0/a/b").value, "durable");
  EXPECT_THAT(Data(OpKind::kList, "m0/a/").keys, ::testing::ElementsAre("m0/a/b"));
  ASSERT_TRUE(Data(OpKind::kRawPut, "r/1", "raw").status.ok());

  node_->Stop();
  node_->disk().Crash(CrashMode::kDropUnsynced);
  ASSERT_TRUE(node_->Start().ok());
  EXPECT_EQ(Data(OpKind::kGet, "m0/a/b").status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Data(OpKind::kRawGet, "r/1").status.code(), absl::StatusCode::kFailedPrecondition);
  Unseal(shares);  // The mount table comes back from storage; its plugin starts again.
  EXPECT_EQ(Data(OpKind::kGet, "m0/a/b").value, "durable");
  EXPECT_EQ(Data(OpKind::kRawGet, "r/1").value, "raw");
  EXPECT_EQ(spawned_.size(), 2u);
}

TEST_F(NodeTest, SealStopsEveryPlugin) {
  ASSERT_TRUE(node_->Start().ok());
  InitAndUnseal();
  MountKv();
  EXPECT_EQ(node_->launcher().live_count(), 1u);
  Request seal;
  seal.kind = OpKind::kSeal;
  EXPECT_TRUE(Run(seal).status.ok());
  EXPECT_EQ(node_->launcher().live_count(), 0u);
  Request get;
  get.kind = OpKind::kCatalogGet;
  get.name = "kv";
  EXPECT_THAT(Run(get).status.message(), HasSubstr("sealed"));
}

TEST_F(NodeTest, AnArmedCrashStrikesInTheMiddleOfAWrite) {
  ASSERT_TRUE(node_->Start().ok());
  InitAndUnseal();
  node_->fs().ArmCrash(2, CrashMode::kTearUnsynced);  // Create the temporary, then append.
  const Response r = Data(OpKind::kRawPut, "k", "torn");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(power_lost_, ::testing::ElementsAre(CrashMode::kTearUnsynced));
  EXPECT_TRUE(node_->fs().dead());
  // Nothing reaches the disk after the crash point, through new calls or old handles.
  EXPECT_EQ(node_->fs().CreateDir("/x", 0700).code(), absl::StatusCode::kUnavailable);
}

TEST_F(NodeTest, TasksOfADeadProcessNeverRun) {
  int ran = 0;
  node_->executor().Post([&] { ++ran; });
  node_->executor().PostAfter(absl::Seconds(1), [&] { ++ran; });
  EXPECT_EQ(node_->executor().pending_timers(), 1u);
  node_->executor().Kill();
  EXPECT_EQ(node_->executor().pending_timers(), 0u);
  node_->executor().Post([&] { ran += 10; });
  loop_.RunUntilIdle();
  EXPECT_EQ(ran, 10);
}

TEST_F(NodeTest, ComponentsSeeTheLifecycleAndServeTheirRequests) {
  std::vector<std::string> events;
  node_->AddComponent(std::make_unique<RecordingComponent>(&events));
  ASSERT_TRUE(node_->Start().ok());
  InitAndUnseal();
  EXPECT_EQ(Data(OpKind::kGet, "component/x").value, "from component");
  Request seal;
  seal.kind = OpKind::kSeal;
  Run(seal);
  node_->Stop();
  EXPECT_THAT(events, ::testing::ElementsAre("start", "unsealed", "sealing", "stop"));
  EXPECT_EQ(node_->ComponentsHandling(FaultKind::kPartition).size(), 1u);
  EXPECT_TRUE(node_->ComponentsHandling(FaultKind::kRotateCredentials).empty());
}

TEST_F(NodeTest, TheCoreLogsThroughTheHook) {
  ASSERT_TRUE(node_->Start().ok());
  InitAndUnseal();
  EXPECT_THAT(log_, ::testing::Contains(HasSubstr("node: unsealed")));
}

// Every way kv-badhs mangles its handshake line is one the host must refuse: the premise of the
// bad_handshake invariant. Checked on the line with and without the MUX field and a certificate.
TEST(MangleHandshakeLineTest, EveryMangleIsRefusedByTheParser) {
  protocol::HandshakeLine hs;
  hs.app_version = 5;
  hs.network = "unix";
  hs.address = "/bulwark/run/plugin-0123456789ab/plugin42";
  hs.protocol = "grpc";
  for (bool certificate : {false, true}) {
    hs.server_cert_der =
        certificate ? std::string("\x30\x81\x40", 3) + std::string(0x40, '.') : std::string();
    for (bool mux : {false, true}) {
      if (mux) hs.multiplex_supported = true;
      const std::string line = protocol::FormatHandshakeLine(hs);
      ASSERT_TRUE(protocol::ParseHandshakeLine(line, {5}).ok()) << line;
      for (int mangle = 0; mangle < kHandshakeMangles; ++mangle) {
        const std::string mangled = MangleHandshakeLine(line, mangle);
        EXPECT_FALSE(protocol::ParseHandshakeLine(mangled, {5}).ok())
            << "mangle " << mangle << ": " << mangled;
      }
      hs.multiplex_supported.reset();
    }
  }
}

}  // namespace
}  // namespace bulwark::sim
