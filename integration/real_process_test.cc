// The lifecycle on real processes: the node over PosixEnv and the gRPC transport, running the
// C++ SDK kv plugin and a misbehaving one. Sharing and lazy reload after SIGKILL, a hung plugin
// stopped at its deadline and killed after the grace period, a memory limit, an artifact
// swapped after registration, and the descriptor path that makes a swap before exec harmless.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/crypto/sha256.h"
#include "base/env/posix/posix_env.h"
#include "base/log/log.h"
#include "base/status/check.h"
#include "core/lifecycle/external_runner.h"
#include "core/node/node.h"
#include "core/rpc/grpc_transport.h"
#include "core/storage/file_storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/node_process_fixture.h"
#include "proto/vault/multiplexing.pb.h"

namespace bulwark::lifecycle {
namespace {

using ::testing::HasSubstr;

std::string Runfile(absl::string_view rel) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/bulwark/", rel);
}

void CopyExecutable(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  CHECK(in.good()) << "cannot read " << from;
  const std::string tmp = to + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << in.rdbuf();
    CHECK(out.good()) << "cannot write " << tmp;
  }
  CHECK(chmod(tmp.c_str(), 0755) == 0);
  CHECK(rename(tmp.c_str(), to.c_str()) == 0);
}

bool ProcessGone(int64_t pid) { return kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

class RealProcessTest : public NodeProcessTest {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bwlcXXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    for (const char* d : {"/plugins", "/data", "/run"}) {
      ASSERT_EQ(mkdir((root_ + d).c_str(), 0700), 0);
    }
    ASSERT_EQ(chmod((root_ + "/plugins").c_str(), 0755), 0);
    CopyExecutable(Runfile("examples/kv/kv_plugin"), root_ + "/plugins/kv");
    CopyExecutable(Runfile("integration/testdata/misbehaving_plugin"),
                   root_ + "/plugins/misbehaving");
    CopyExecutable(Runfile("examples/goplugin/plugin"), root_ + "/plugins/gokv");
    storage_ = *FileStorage::Open(posix_.fs(), root_ + "/data");
    node::NodeOptions options = MakeRunners();
    options.lifecycle.request_timeout = absl::Seconds(2);
    options.lifecycle.shutdown_grace = absl::Seconds(1);
    options.lifecycle.control_timeout = absl::Seconds(5);
    RunnerLimits mem;
    mem.process.address_space_bytes = uint64_t{2} << 30;
    options.lifecycle.mount_limits["mem/"] = mem;
    // The plugin past its limit dies at once, but how soon the host sees the exit depends on
    // the machine: no request deadline may race it (Wait's limit is only a hang guard).
    options.lifecycle.mount_request_timeouts["mem/"] = absl::Hours(1);
    node_ = *node::Node::Open(posix_.env(), *storage_, *runners_, metrics_, log_, options);
    std::vector<crypto::SecureBuffer> shares = *node_->Initialize(1, 1);
    std::optional<absl::StatusOr<SealStatus>> st;
    node_->Unseal(shares[0].view(), [&](absl::StatusOr<SealStatus> s) { st = s; });
    ASSERT_TRUE(Wait([&] { return st.has_value(); }));
    ASSERT_TRUE(st->ok());
  }

  std::string Sha(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return crypto::HexEncode(crypto::Sha256::Hash(bytes));
  }

  void Register(const std::string& name) {
    catalog::RegisterRequest r;
    r.type = catalog::PluginType::kSecret;
    r.name = name;
    r.command = name;
    r.sha256 = Sha(root_ + "/plugins/" + name);
    absl::StatusOr<catalog::CatalogEntryView> v = node_->RegisterPlugin(r);
    ASSERT_TRUE(v.ok()) << v.status();
  }

  bool Logged(absl::string_view text) {
    for (const LogRecord& r : log_.records()) {
      if (absl::StrContains(FormatLogRecord(r), text)) return true;
    }
    return false;
  }

  std::vector<int64_t> Pids() {
    std::vector<int64_t> pids;
    for (const ProcessInfo& p : node_->lifecycle()->Processes()) pids.push_back(p.pid);
    return pids;
  }

  std::unique_ptr<FileStorage> storage_;
};

TEST_F(RealProcessTest, MultiplexedMountsShareAProcessThatIsLazilyReloadedAfterSigkill) {
  Register("kv");
  ASSERT_TRUE(Enable("a", "kv").ok());
  ASSERT_TRUE(Enable("b", "kv").ok());
  ASSERT_EQ(Pids().size(), 1u);
  ASSERT_TRUE(Do("a/x", "update", R"({"v":"1"})").ok());
  const int64_t pid = Pids()[0];
  ASSERT_EQ(kill(static_cast<pid_t>(pid), SIGKILL), 0);
  ASSERT_TRUE(Wait([&] { return node_->lifecycle()->process_count() == 0; }));
  absl::StatusOr<Reply> r = Do("a/x", "read");
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status();
  EXPECT_THAT((*r)->data(), HasSubstr("\"v\":\"1\""));
  ASSERT_EQ(Pids().size(), 1u);
  EXPECT_NE(Pids()[0], pid);
  EXPECT_TRUE(Do("b/x", "update", R"({"v":"2"})").ok());
  EXPECT_EQ(Pids().size(), 1u);
}

TEST_F(RealProcessTest, GoPluginGetsAProcessPerMountAndIsLazilyReloaded) {
  Register("gokv");
  ASSERT_TRUE(Enable("g1", "gokv").ok());
  ASSERT_TRUE(Enable("g2", "gokv").ok());
  ASSERT_EQ(Pids().size(), 2u);  // go-plugin v1.0.1 plugins do not multiplex
  ASSERT_TRUE(Do("g1/x", "update", R"({"v":"go"})").ok());
  const int64_t pid = Pids()[0];
  ASSERT_EQ(kill(static_cast<pid_t>(pid), SIGKILL), 0);
  ASSERT_TRUE(Wait([&] { return node_->lifecycle()->process_count() == 1; }));
  absl::StatusOr<Reply> r = Do("g1/x", "read");
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status();
  EXPECT_THAT((*r)->data(), HasSubstr("go"));
  EXPECT_EQ(Pids().size(), 2u);
  // Unmounting one stops exactly its process.
  std::optional<absl::Status> s;
  node_->DisableMount("g2", [&](absl::Status st) { s = st; });
  ASSERT_TRUE(Wait([&] { return s.has_value(); }));
  EXPECT_TRUE(s->ok()) << *s;
  EXPECT_EQ(Pids().size(), 1u);
}

TEST_F(RealProcessTest, HungPluginIsStoppedAtItsDeadlineAndKilledAfterTheGracePeriod) {
  Register("misbehaving");
  ASSERT_TRUE(Enable("m", "misbehaving").ok());
  const int64_t pid = Pids()[0];
  absl::StatusOr<Reply> r = Do("m/block", "read");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  // It waits a minute for the blocked call on Shutdown; the host kills it after 1 s of grace.
  EXPECT_TRUE(Wait([&] { return ProcessGone(pid); }, absl::Seconds(10)));
  // The next request starts a fresh process.
  EXPECT_TRUE(Do("m/k", "update", R"({"v":"1"})").ok());
}

TEST_F(RealProcessTest, PluginPastItsMemoryLimitIsStoppedAndOthersKeepServing) {
#if defined(__SANITIZE_ADDRESS__) || defined(BW_THREAD_SANITIZER)
  // An ASan- or TSan-built plugin reserves terabytes of shadow address space, so no RLIMIT_AS
  // lets it start at all; the limit is tested in the normal build (and under UBSan).
  GTEST_SKIP() << "RLIMIT_AS cannot be combined with AddressSanitizer or ThreadSanitizer";
#endif
  Register("misbehaving");
  Register("kv");
  ASSERT_TRUE(Enable("mem", "misbehaving").ok());
  ASSERT_TRUE(Enable("ok", "kv").ok());
  absl::StatusOr<Reply> r = Do("mem/alloc", "read");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  // It died because the limit refused its mapping, and said so on stderr.
  EXPECT_TRUE(Wait([&] { return Logged("fatal error: out of memory"); }));
  EXPECT_TRUE(Do("ok/k", "update", R"({"v":"1"})").ok());
  EXPECT_TRUE(Do("mem/k", "update", R"({"v":"1"})").ok());  // restarted, within its limit
}

TEST_F(RealProcessTest, ArtifactSwappedAfterRegistrationIsRefusedWithBothHashes) {
  Register("kv");
  const std::string good = Sha(root_ + "/plugins/kv");
  CopyExecutable(root_ + "/plugins/misbehaving", root_ + "/plugins/kv");
  absl::Status s = Enable("a", "kv");
  EXPECT_THAT(std::string(s.message()), HasSubstr(good));
  EXPECT_THAT(std::string(s.message()), HasSubstr(Sha(root_ + "/plugins/misbehaving")));
  EXPECT_TRUE(Pids().empty());
}

TEST_F(RealProcessTest, SwapBetweenCheckAndExecRunsTheVerifiedFile) {
  Register("kv");
  // Verify and open now, swap the file, then launch with the held descriptor.
  absl::StatusOr<catalog::LaunchSpec> spec =
      node_->catalog()->GetForLaunch(catalog::PluginType::kSecret, "kv");
  ASSERT_TRUE(spec.ok()) << spec.status();
  CopyExecutable(root_ + "/plugins/misbehaving", root_ + "/plugins/kv");
  std::optional<absl::StatusOr<std::unique_ptr<PluginRunner>>> runner;
  runners_->Start(std::move(*spec), RunnerLimits{},
                  [&](absl::StatusOr<std::unique_ptr<PluginRunner>> r) { runner = std::move(r); });
  ASSERT_TRUE(Wait([&] { return runner.has_value(); }));
  ASSERT_TRUE(runner->ok()) << runner->status();
  // kv multiplexes; the misbehaving plugin now at that path does not: ask which one runs.
  std::optional<absl::StatusOr<std::string>> reply;
  (**runner)->connection().Call("/pluginutil.multiplexing.PluginMultiplexing/MultiplexingSupport",
                                "", CallOptions{},
                                [&](absl::StatusOr<std::string> r) { reply = std::move(r); });
  ASSERT_TRUE(Wait([&] { return reply.has_value(); }));
  ASSERT_TRUE(reply->ok()) << reply->status();
  pluginutil::multiplexing::MultiplexingSupportResponse resp;
  ASSERT_TRUE(resp.ParseFromString(**reply));
  EXPECT_TRUE(resp.supported());
  bool stopped = false;
  (**runner)->Stop(absl::Seconds(1), [&] { stopped = true; });
  ASSERT_TRUE(Wait([&] { return stopped; }));
}

}  // namespace
}  // namespace bulwark::lifecycle
