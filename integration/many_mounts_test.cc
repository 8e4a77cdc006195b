// 1000 mounts of one multiplexed plugin on one process, on real processes and the whole host
// path (node, catalog, mount table, lifecycle, gRPC transport, the C++ SDK kv plugin with its
// default options): every mount is set up, writes a value of its own and reads it back, and the
// plugin reaches the host's storage for all of them over one shared connection. Storage is in
// memory: this is about the plugin connection, not the disk. No timing is judged; the waits are
// hang guards.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/crypto/sha256.h"
#include "base/env/posix/posix_env.h"
#include "base/log/log.h"
#include "base/status/check.h"
#include "base/storage/in_memory_storage.h"
#include "core/lifecycle/external_runner.h"
#include "core/node/node.h"
#include "core/rpc/grpc_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/node_process_fixture.h"

namespace bulwark::lifecycle {
namespace {

using ::testing::HasSubstr;

constexpr int kMounts = 1000;

std::string Runfile(absl::string_view rel) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/bulwark/", rel);
}

// Open descriptors of process `pid`.
int CountDescriptors(int64_t pid) {
  DIR* dir = opendir(absl::StrCat("/proc/", pid, "/fd").c_str());
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n;
}

class ManyMountsTest : public NodeProcessTest {
 protected:
  void SetUp() override {
    wait_limit_ = absl::Minutes(2);
    char tmpl[] = "/tmp/bwmmXXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    for (const char* d : {"/plugins", "/run"}) ASSERT_EQ(mkdir((root_ + d).c_str(), 0700), 0);
    ASSERT_EQ(chmod((root_ + "/plugins").c_str(), 0755), 0);
    const std::string kv = root_ + "/plugins/kv";
    {
      std::ifstream in(Runfile("examples/kv/kv_plugin"), std::ios::binary);
      std::ofstream out(kv, std::ios::binary);
      out << in.rdbuf();
      ASSERT_TRUE(in.good() && out.good()) << "cannot copy the kv plugin";
    }
    ASSERT_EQ(chmod(kv.c_str(), 0755), 0);
    node::NodeOptions options = MakeRunners();
    node_ = *node::Node::Open(posix_.env(), storage_, *runners_, metrics_, log_, options);
    std::vector<crypto::SecureBuffer> shares = *node_->Initialize(1, 1);
    std::optional<absl::StatusOr<SealStatus>> st;
    node_->Unseal(shares[0].view(), [&](absl::StatusOr<SealStatus> s) { st = s; });
    ASSERT_TRUE(Wait([&] { return st.has_value(); }));
    ASSERT_TRUE(st->ok()) << st->status();

    std::ifstream in(kv, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    catalog::RegisterRequest r;
    r.type = catalog::PluginType::kSecret;
    r.name = "kv";
    r.command = "kv";
    r.sha256 = crypto::HexEncode(crypto::Sha256::Hash(bytes));
    absl::StatusOr<catalog::CatalogEntryView> v = node_->RegisterPlugin(r);
    ASSERT_TRUE(v.ok()) << v.status();
  }

  InMemoryStorage storage_;
};

TEST_F(ManyMountsTest, ThousandMountsOnOneProcessEachKeepTheirOwnData) {
  for (int i = 0; i < kMounts; ++i) {
    absl::Status enabled = Enable(absl::StrCat("m", i), "kv");
    ASSERT_TRUE(enabled.ok()) << "mount " << i << ": " << enabled;
  }
  std::vector<ProcessInfo> processes = node_->lifecycle()->Processes();
  ASSERT_EQ(processes.size(), 1u) << "one multiplexed process serves every mount";
  EXPECT_EQ(processes[0].mounts.size(), static_cast<size_t>(kMounts));
  // Every mount writes through its own instance to its own storage over the broker...
  for (int i = 0; i < kMounts; ++i) {
    absl::StatusOr<Reply> w = Do(absl::StrCat("m", i, "/k"), "update",
                                 absl::StrCat(R"({"v":"value-of-mount-)", i, R"("})"));
    ASSERT_TRUE(w.ok()) << "write to mount " << i << ": " << w.status();
  }
  // ...and reads back its own value, not another mount's (the host routes by broker id).
  for (int i = 0; i < kMounts; ++i) {
    absl::StatusOr<Reply> r = Do(absl::StrCat("m", i, "/k"), "read");
    ASSERT_TRUE(r.ok() && r->has_value()) << "read from mount " << i << ": " << r.status();
    EXPECT_THAT((*r)->data(), HasSubstr(absl::StrCat("\"value-of-mount-", i, "\"")));
  }
  // One connection back to the host for all of them: a plugin with a brokered connection per
  // mount would hold more than kMounts descriptors.
  const int descriptors = CountDescriptors(processes[0].pid);
  EXPECT_GT(descriptors, 0);
  EXPECT_LT(descriptors, 100) << "the plugin holds a descriptor per mount";
  EXPECT_EQ(node_->lifecycle()->Processes()[0].pid, processes[0].pid) << "the plugin restarted";
}

}  // namespace
}  // namespace bulwark::lifecycle
