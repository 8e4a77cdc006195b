// Node on the simulated Env: work the node queued (a mount's start result) must not touch the
// node once it is destroyed, which is what the simulator does when it stops a node.
#include "core/node/node.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "base/env/sim/sim_env.h"
#include "base/status/check.h"
#include "base/storage/in_memory_storage.h"
#include "core/catalog/catalog_test_util.h"
#include "gtest/gtest.h"

namespace bulwark::node {
namespace {

constexpr uint64_t kSeed = 7;
constexpr absl::string_view kMountFailed = "mount did not come up";

using StartDone =
    absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<lifecycle::PluginRunner>>)>;

// Holds every plugin start so that the test decides when (and how) it ends.
class HeldStarts final : public lifecycle::RunnerFactory {
 public:
  void Start(catalog::LaunchSpec, const lifecycle::RunnerLimits&, StartDone done) override {
    starts.push_back(std::move(done));
  }
  std::vector<StartDone> starts;
};

size_t CountMessage(const MemoryLogSink& log, absl::string_view message) {
  size_t n = 0;
  for (const LogRecord& r : log.records()) n += r.message == message ? 1 : 0;
  return n;
}

class NodeTest : public ::testing::Test {
 protected:
  NodeTest() : sim_(kSeed) {
    std::printf("seed: %llu\n", static_cast<unsigned long long>(kSeed));
    CHECK_OK(sim_.fs().CreateDir(catalog::testing::kPluginDir, 0755));
    CHECK_OK(sim_.fs().SyncDir("/"));
    const std::string contents = "#!bulwark-sim plugin\n";
    CHECK_OK(sim_.fs().WriteFileDurably("/plugins/plugin-bin", contents, 0755));
    sha_ = catalog::testing::Sha256Hex(contents);
    NodeOptions options;
    options.catalog.plugin_directory = std::string(catalog::testing::kPluginDir);
    absl::StatusOr<std::unique_ptr<Node>> node =
        Node::Open(sim_.env(), physical_, runners_, metrics_, log_, options);
    CHECK_OK(node.status());
    node_ = std::move(*node);
  }

  // Initializes and unseals the node, registers plugin "kv" and persists a mount "kv/" of it
  // without starting it, then seals: the next unseal brings that mount up (LoadAndMountAll).
  void PrepareSealedNodeWithOneMount() {
    absl::StatusOr<std::vector<crypto::SecureBuffer>> shares = node_->Initialize(1, 1);
    CHECK_OK(shares.status());
    share_ = std::string(shares->at(0).view());
    ASSERT_FALSE(Unseal()->sealed);
    ASSERT_TRUE(node_
                    ->RegisterPlugin(catalog::testing::MakeRequest(catalog::PluginType::kSecret,
                                                                   "kv", "", "plugin-bin", sha_))
                    .ok());
    mount::EnableRequest enable;
    enable.path = "kv";
    enable.plugin_name = "kv";
    ASSERT_TRUE(node_->mounts()->Enable(enable, *node_->catalog()).ok());
    bool sealed = false;
    node_->Seal([&] { sealed = true; });
    sim_.loop().RunUntilIdle();
    ASSERT_TRUE(sealed);
  }

  std::optional<SealStatus> Unseal() {
    std::optional<SealStatus> out;
    node_->Unseal(share_, [&](absl::StatusOr<SealStatus> s) {
      CHECK_OK(s.status());
      out = *s;
    });
    sim_.loop().RunUntilIdle();
    return out;
  }

  sim::SimEnv sim_;
  InMemoryStorage physical_;
  HeldStarts runners_;
  metrics::Registry metrics_;
  MemoryLogSink log_;
  std::unique_ptr<Node> node_;
  std::string sha_;
  std::string share_;
};

// The control for the test below: the failed start reaches the node's per-mount callback, which
// logs the mount, and the unseal completes.
TEST_F(NodeTest, AMountWhosePluginFailsToStartIsLoggedAndTheUnsealCompletes) {
  PrepareSealedNodeWithOneMount();
  std::optional<SealStatus> unsealed;
  node_->Unseal(share_, [&](absl::StatusOr<SealStatus> s) { unsealed = *s; });
  ASSERT_EQ(runners_.starts.size(), 1u);
  runners_.starts[0](absl::UnavailableError("plugin exited before its handshake"));
  sim_.loop().RunUntilIdle();
  ASSERT_TRUE(unsealed.has_value());
  EXPECT_FALSE(unsealed->sealed);
  EXPECT_EQ(CountMessage(log_, kMountFailed), 1u);
}

// LoadAndMountAll's per-mount callback used to keep a raw `this`: the mount's answer, queued on
// the executor before the node was destroyed, then ran on the destroyed node (a use after free
// under ASan; without ASan it still wrote a log record on the dead node's behalf).
TEST_F(NodeTest, AMountAnswerQueuedBeforeTheNodeIsDestroyedDoesNotTouchIt) {
  PrepareSealedNodeWithOneMount();
  bool unseal_done = false;
  node_->Unseal(share_, [&](absl::StatusOr<SealStatus>) { unseal_done = true; });
  ASSERT_EQ(runners_.starts.size(), 1u);
  // The start fails: the lifecycle manager queues the mount's answer for the node.
  runners_.starts[0](absl::UnavailableError("plugin exited before its handshake"));
  ASSERT_GT(sim_.loop().pending(), 0u);
  const size_t records_before = log_.records().size();
  node_.reset();
  sim_.loop().RunUntilIdle();
  EXPECT_EQ(CountMessage(log_, kMountFailed), 0u);
  EXPECT_EQ(log_.records().size(), records_before);
  EXPECT_FALSE(unseal_done);
}

// Two nodes on one storage (an HA cluster): a standby unsealed before the active node rotated
// the barrier key becomes active and rotates too. Its rotation must add a term after the other
// node's (RotateBarrierKey reads the stored keyring first): a keyring written from the keyring
// it read at its unseal would reuse term 2 with a new key, and the entry sealed under the first
// term 2 would never open again. Found while turning rotations on in the simulated cluster.
TEST_F(NodeTest, ARotationOnANewActiveNodeKeepsTheTermAnotherNodeAdded) {
  absl::StatusOr<std::vector<crypto::SecureBuffer>> shares = node_->Initialize(1, 1);
  ASSERT_TRUE(shares.ok()) << shares.status();
  share_ = std::string(shares->at(0).view());
  ASSERT_FALSE(Unseal()->sealed);
  HeldStarts other_runners;
  metrics::Registry other_metrics;
  MemoryLogSink other_log;
  NodeOptions options;
  options.catalog.plugin_directory = std::string(catalog::testing::kPluginDir);
  options.role = Role::kStandby;
  absl::StatusOr<std::unique_ptr<Node>> other =
      Node::Open(sim_.env(), physical_, other_runners, other_metrics, other_log, options);
  ASSERT_TRUE(other.ok()) << other.status();
  (*other)->Unseal(share_, [](absl::StatusOr<SealStatus> s) { CHECK_OK(s.status()); });
  sim_.loop().RunUntilIdle();
  ASSERT_FALSE((*other)->sealed());

  ASSERT_EQ(node_->RotateBarrierKey().value(), 2u);
  ASSERT_TRUE(node_->barrier().Put("sealed-under-2", "v").ok());
  bool active = false;
  (*other)->BecomeActive([&](absl::Status s) {
    CHECK_OK(s);
    active = true;
  });
  sim_.loop().RunUntilIdle();
  ASSERT_TRUE(active);
  EXPECT_EQ((*other)->barrier().active_term(), 2u);  // BecomeActive reloaded it.
  EXPECT_EQ((*other)->RotateBarrierKey().value(), 3u);
  ASSERT_TRUE(node_->barrier().ReloadKeyring().ok());
  EXPECT_EQ(node_->barrier().Get("sealed-under-2").value(), std::optional<std::string>("v"));
  EXPECT_EQ((*other)->barrier().Get("sealed-under-2").value(), std::optional<std::string>("v"));
}

// Vault's init: the root token is stored while the barrier is briefly open, the node stays
// sealed, and the token works once the node is unsealed (and never while it is sealed).
TEST_F(NodeTest, InitializeWithRootTokenStoresATokenThatWorksAfterUnseal) {
  absl::StatusOr<InitResult> init = node_->InitializeWithRootToken(3, 2);
  ASSERT_TRUE(init.ok()) << init.status();
  ASSERT_EQ(init->shares.size(), 3u);
  EXPECT_TRUE(node_->sealed());
  EXPECT_EQ(node_->seal_status().progress, 0);
  EXPECT_EQ(node_->LookupToken(init->root_token).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // A reset discards the first share: two more are needed.
  share_ = std::string(init->shares[0].view());
  EXPECT_TRUE(Unseal()->sealed);
  node_->ResetUnsealProgress();
  EXPECT_EQ(node_->seal_status().progress, 0);
  share_ = std::string(init->shares[1].view());
  EXPECT_TRUE(Unseal()->sealed);
  share_ = std::string(init->shares[2].view());
  EXPECT_FALSE(Unseal()->sealed);

  absl::StatusOr<token::TokenEntry> root = node_->LookupToken(init->root_token);
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->display_name, "root");
  absl::StatusOr<token::CreatedToken> child = node_->CreateToken(init->root_token, {});
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_TRUE(node_->LookupToken(child->token).ok());
  EXPECT_TRUE(node_->RevokeToken(child->token).ok());
  EXPECT_EQ(node_->LookupToken(child->token).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(node_->InitializeWithRootToken(1, 1).status().code() ==
              absl::StatusCode::kAlreadyExists);
}

TEST_F(NodeTest, ABadRootTokenIdIsRefusedBeforeAnythingIsWritten) {
  EXPECT_EQ(node_->InitializeWithRootToken(1, 1, "bad id").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(node_->seal_status().initialized);
  absl::StatusOr<InitResult> init = node_->InitializeWithRootToken(1, 1, "root");
  ASSERT_TRUE(init.ok()) << init.status();
  EXPECT_EQ(init->root_token, "root");
  share_ = std::string(init->shares[0].view());
  EXPECT_FALSE(Unseal()->sealed);
  EXPECT_TRUE(node_->LookupToken("root").ok());
}

}  // namespace
}  // namespace bulwark::node

namespace bulwark::node {
namespace {

wrapping::WrapRequest BootstrapRequest() {
  wrapping::WrapRequest r;
  r.data_json = crypto::SecureBuffer(std::string(R"({"ServerCert":"YQ==","ServerKey":"Yg=="})"));
  r.ttl = absl::Seconds(60);
  r.creation_path = "sys/plugins/bootstrap/kv";
  r.addr = "http://127.0.0.1:8200";
  return r;
}

// Wrapping lives behind the barrier: refused while sealed; a token wrapped before a seal still
// unwraps (once) after the next unseal, because the key and the record are in storage; one
// that expired while the node was sealed is swept at the unseal.
TEST_F(NodeTest, WrappedResponsesNeedTheBarrierOpenAndSurviveASeal) {
  EXPECT_EQ(node_->WrapResponse(BootstrapRequest()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<std::vector<crypto::SecureBuffer>> shares = node_->Initialize(1, 1);
  ASSERT_TRUE(shares.ok());
  share_ = std::string(shares->at(0).view());
  ASSERT_FALSE(Unseal()->sealed);
  auto seal = [&] {
    bool sealed = false;
    node_->Seal([&] { sealed = true; });
    // Only until sealed: running every pending task would move time past the expiry timers.
    ASSERT_TRUE(sim_.loop().RunUntil([&] { return sealed; }, absl::Seconds(5)));
  };
  auto unseal = [&] {
    bool done = false;
    node_->Unseal(share_, [&](absl::StatusOr<SealStatus>) { done = true; });
    ASSERT_TRUE(sim_.loop().RunUntil([&] { return done; }, absl::Seconds(5)));
  };

  absl::StatusOr<wrapping::WrapResult> wrapped = node_->WrapResponse(BootstrapRequest());
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  seal();
  EXPECT_EQ(node_->UnwrapResponse(wrapped->token).status().code(),
            absl::StatusCode::kFailedPrecondition);
  unseal();
  EXPECT_TRUE(node_->UnwrapResponse(wrapped->token).ok());
  EXPECT_TRUE(wrapping::IsInvalidWrappingToken(node_->UnwrapResponse(wrapped->token).status()));

  absl::StatusOr<wrapping::WrapResult> late = node_->WrapResponse(BootstrapRequest());
  ASSERT_TRUE(late.ok());
  seal();
  sim_.loop().RunUntilIdle();  // Its expiry timer runs while sealed and cannot delete it.
  ASSERT_EQ(physical_.List("logical/core/wrapping/response/")->size(), 1u);
  unseal();
  EXPECT_EQ(CountMessage(log_, "removed expired wrapped responses"), 1u);
  EXPECT_TRUE(physical_.List("logical/core/wrapping/response/")->empty());
  EXPECT_TRUE(wrapping::IsInvalidWrappingToken(node_->UnwrapResponse(late->token).status()));
}

}  // namespace
}  // namespace bulwark::node
