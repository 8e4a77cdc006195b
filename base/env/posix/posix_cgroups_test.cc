// Cgroup placement through PosixProcessLauncher on the machine's real hierarchy: the child is in
// its cgroup when it runs, with its limits; an OOM kill is reported as a kill at the memory
// limit; a fork bomb stops at pids.max; the cgroup goes when the process ends; stale instances of
// a dead owner are swept at the next Open, their leftover processes killed; without cgroups the
// limits fall back to rlimits. Real cgroups need root and a writable hierarchy: otherwise those
// tests skip, naming what is missing.
#include "base/env/posix/posix_cgroups.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/env/posix/posix_env.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

// A hang guard only: every wait below ends on an event (the process's exit).
constexpr absl::Duration kHangGuard = absl::Seconds(120);
// Distinct from the server's "bulwark", so a server running beside the test is not disturbed.
constexpr char kParent[] = "bulwark_test";

bool IsDir(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

TEST(CgroupMountsTest, FindsV1ControllersAndV2) {
  const std::string mountinfo =
      "24 30 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
      "25 24 0:23 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
      "26 24 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "27 24 0:25 / /sys/fs/cgroup/my\\040pids rw - cgroup cgroup rw,pids\n"
      "28 24 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"
      "29 24 0:27 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n";
  CgroupMounts m = ParseCgroupMounts(mountinfo, {"memory", "pids", "cpu"});
  EXPECT_EQ(m.v2, "/sys/fs/cgroup/unified");
  ASSERT_EQ(m.v1.size(), 3u);
  EXPECT_EQ(m.v1[0], "/sys/fs/cgroup/memory");
  EXPECT_EQ(m.v1[1], "/sys/fs/cgroup/my pids");
  EXPECT_EQ(m.v1[2], "/sys/fs/cgroup/cpu,cpuacct");  // Not cpuset: whole names only.

  CgroupMounts none = ParseCgroupMounts("1 0 0:1 / / rw - ext4 /dev/sda rw\n", {"memory"});
  EXPECT_EQ(none.v2, "");
  EXPECT_EQ(none.v1[0], "");
}

TEST(CgroupMountsTest, CpuSharesFollowTheWeightScale) {
  EXPECT_EQ(CpuSharesForWeight(100), 1024u);
  EXPECT_EQ(CpuSharesForWeight(50), 512u);
  EXPECT_EQ(CpuSharesForWeight(1), 10u);
  EXPECT_EQ(CpuSharesForWeight(10000), 102400u);
}

TEST(CgroupManagerTest, NoHierarchyIsAnErrorNamingWhatIsMissing) {
  const std::string path = absl::StrCat(getenv("TEST_TMPDIR"), "/mountinfo");
  std::ofstream(path) << "1 0 0:1 / / rw - ext4 /dev/sda rw\n";
  CgroupOptions options;
  options.mountinfo_path = path;
  absl::StatusOr<std::unique_ptr<CgroupManager>> m = CgroupManager::Open(options);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(m.status().message(), "no cgroup2 mount; no cgroup v1 hierarchy for memory, pids, cpu");
  options.parent = "../etc";
  EXPECT_EQ(CgroupManager::Open(options).status().code(), absl::StatusCode::kInvalidArgument);
}

class CgroupLaunchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "cgroups need root (euid " << geteuid() << ")";
    CgroupOptions options;
    options.parent = kParent;
    absl::StatusOr<std::unique_ptr<CgroupManager>> m = CgroupManager::Open(options);
    if (!m.ok()) GTEST_SKIP() << "no writable cgroup hierarchy: " << m.status().message();
    Use(*std::move(m));
  }

  void Use(std::unique_ptr<CgroupManager> cgroups) {
    cgroups_ = std::move(cgroups);
    posix_.launcher().UseCgroups(cgroups_.get());
  }

  void TearDown() override {
    process_.reset();
    cgroups_.reset();
  }

  // Spawns `argv` (argv[0] is the executable's path) in a group labelled "probe".
  void Spawn(std::vector<std::string> argv, GroupLimits limits) {
    auto exe = posix_.fs().OpenForExec(argv[0]);
    ASSERT_TRUE(exe.ok()) << exe.status();
    ProcessOptions options;
    options.argv = std::move(argv);
    options.group_label = "probe";
    options.group_limits = limits;
    options.on_line = [this](OutputStream, absl::string_view line, bool) {
      out_.emplace_back(line);
    };
    options.on_exit = [this](const ProcessExit& exit) { exit_ = exit; };
    auto process = posix_.launcher().Spawn(**exe, std::move(options));
    ASSERT_TRUE(process.ok()) << process.status();
    process_ = *std::move(process);
  }

  bool WaitExit() {
    return posix_.loop().RunUntil([this] { return exit_.has_value(); }, kHangGuard);
  }

  // A child that waits to be killed.
  static pid_t ForkPaused() {
    const pid_t child = fork();
    if (child == 0) {
      pause();
      _exit(0);
    }
    return child;
  }

  // The instance name of a host that has ended: a child's, read while it lived, then reaped.
  static absl::StatusOr<std::string> DeadOwnerInstance() {
    const pid_t child = ForkPaused();
    absl::StatusOr<std::string> name = CgroupManager::InstanceNameOf("/proc", child);
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    return name;
  }

  // Opens a new manager, as the next host's start does (which sweeps). A second host instance
  // in this process would have the same name: ours is dropped first, as a restarted host's was.
  absl::StatusOr<std::unique_ptr<CgroupManager>> Reopen() {
    posix_.launcher().UseCgroups(nullptr);
    cgroups_.reset();
    CgroupOptions options;
    options.parent = kParent;
    return CgroupManager::Open(options);
  }

  std::string Hog() const {
    return absl::StrCat(getenv("TEST_SRCDIR"), "/bulwark/base/env/posix/cgroup_hog");
  }

  // Spawns a shell in a cgroup with limits; it must run in its cgroup with those limits, and the
  // cgroup must be gone when its exit is collected.
  void ExpectPlacedWithLimitsAndRemoved() {
    std::vector<std::string> leaves;
    for (const std::string& dir : cgroups_->instance_dirs()) leaves.push_back(dir + "/probe-0");
    std::string script = "cat /proc/self/cgroup";
    if (cgroups_->version() == CgroupVersion::kV1) {
      script += absl::StrCat("; cat ", leaves[0], "/memory.limit_in_bytes ", leaves[1],
                             "/pids.max ", leaves[2], "/cpu.shares");
    } else {
      script += absl::StrCat("; cat ", leaves[0], "/memory.max ", leaves[0], "/pids.max ",
                             leaves[0], "/cpu.weight");
    }
    GroupLimits limits;
    limits.memory_bytes = uint64_t{48} << 20;
    limits.pids = 12;
    limits.cpu_weight = 50;
    Spawn({"/bin/sh", "-c", script}, limits);
    ASSERT_TRUE(WaitExit());
    EXPECT_TRUE(exit_->success()) << exit_->ToString();
    const std::string text = absl::StrJoin(out_, "\n");
    const std::string where = absl::StrCat("/", kParent, "/", cgroups_->instance(), "/probe-0");
    if (cgroups_->version() == CgroupVersion::kV1) {
      EXPECT_TRUE(absl::StrContains(text, absl::StrCat(":memory:", where))) << text;
      EXPECT_TRUE(absl::StrContains(text, absl::StrCat(":pids:", where))) << text;
      EXPECT_TRUE(absl::StrContains(text, absl::StrCat("\n50331648\n12\n512"))) << text;
    } else {
      EXPECT_TRUE(absl::StrContains(text, absl::StrCat("0::", where))) << text;
      EXPECT_TRUE(absl::StrContains(text, absl::StrCat("\n50331648\n12\n50"))) << text;
    }
    EXPECT_EQ(exit_->limit, "");
    // Removed when the exit was collected.
    for (const std::string& leaf : leaves) EXPECT_FALSE(IsDir(leaf)) << leaf;
  }

  PosixEnv posix_;
  std::unique_ptr<CgroupManager> cgroups_;
  std::unique_ptr<Process> process_;
  std::vector<std::string> out_;
  std::optional<ProcessExit> exit_;
};

TEST_F(CgroupLaunchTest, ChildRunsInItsCgroupWithItsLimitsAndTheCgroupGoesAtExit) {
  ExpectPlacedWithLimitsAndRemoved();
}

TEST_F(CgroupLaunchTest, OomKillIsReportedAsAKillAtTheMemoryLimit) {
  GroupLimits limits;
  limits.memory_bytes = uint64_t{32} << 20;
  Spawn({Hog(), "memory"}, limits);
  ASSERT_TRUE(WaitExit());
  EXPECT_TRUE(exit_->signaled);
  EXPECT_EQ(exit_->signal, SIGKILL);
  EXPECT_EQ(exit_->limit, "memory");
  EXPECT_EQ(exit_->ToString(), "killed by signal 9 (SIGKILL) at its memory limit");
  for (const std::string& dir : cgroups_->instance_dirs()) EXPECT_FALSE(IsDir(dir + "/probe-0"));
}

TEST_F(CgroupLaunchTest, ASigkillFromOutsideIsNotALimitKill) {
  GroupLimits limits;
  limits.memory_bytes = uint64_t{64} << 20;
  Spawn({"/bin/sleep", "1000"}, limits);
  ASSERT_TRUE(process_->Kill().ok());
  ASSERT_TRUE(WaitExit());
  EXPECT_EQ(exit_->signal, SIGKILL);
  EXPECT_EQ(exit_->limit, "");
}

TEST_F(CgroupLaunchTest, ForkBombStopsAtPidsMax) {
  GroupLimits limits;
  limits.pids = 8;
  Spawn({Hog(), "fork", "100"}, limits);
  ASSERT_TRUE(WaitExit());
  EXPECT_TRUE(exit_->success()) << exit_->ToString();
  // The hog itself is one of the 8.
  EXPECT_EQ(absl::StrJoin(out_, "\n"), "started 7");
}

// A host killed with SIGKILL: its plugins are still in its cgroups when the next host starts
// (PR_SET_PDEATHSIG is on its way, or missed them). The sweep kills them and waits for the
// kernel to take them out, then removes the cgroups: no "stale cgroup remains".
TEST_F(CgroupLaunchTest, StaleInstanceWithLiveProcessesIsKilledAndSwept) {
  absl::StatusOr<std::string> dead = DeadOwnerInstance();
  ASSERT_TRUE(dead.ok()) << dead.status();
  // The dead host's plugin: a process placed in the leaf "kv-1" of every hierarchy.
  const pid_t plugin = ForkPaused();
  // Reaped as soon as it dies, as init reaps an orphaned plugin: no zombie stays behind. Killed
  // here if the test ends before the sweep did.
  int status = 0;
  std::thread reaper([&] { waitpid(plugin, &status, 0); });
  absl::Cleanup stop = [&] {
    if (reaper.joinable()) {
      kill(plugin, SIGKILL);
      reaper.join();
    }
  };
  std::vector<std::string> stale;
  for (const std::string& dir : cgroups_->instance_dirs()) {
    const std::string instance = dir.substr(0, dir.rfind('/')) + "/" + *dead;
    stale.push_back(instance);
    ASSERT_EQ(mkdir(instance.c_str(), 0755), 0) << instance;
    ASSERT_EQ(mkdir((instance + "/kv-1").c_str(), 0755), 0);
    std::ofstream(instance + "/kv-1/cgroup.procs") << plugin << "\n";
  }
  absl::StatusOr<std::unique_ptr<CgroupManager>> again = Reopen();
  ASSERT_TRUE(again.ok()) << again.status();
  reaper.join();  // Returns once the sweep has killed it.
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_GE((*again)->swept(), 1);
  EXPECT_TRUE((*again)->sweep_problems().empty())
      << absl::StrJoin((*again)->sweep_problems(), "; ");
  for (const std::string& instance : stale) EXPECT_FALSE(IsDir(instance)) << instance;
}

TEST_F(CgroupLaunchTest, StaleInstanceOfADeadOwnerIsSweptAtTheNextOpen) {
  absl::StatusOr<std::string> dead = DeadOwnerInstance();
  ASSERT_TRUE(dead.ok()) << dead.status();
  // Another pid namespace's instance is never touched.
  const std::string foreign = "1-12345-678";
  std::vector<std::string> roots;
  for (const std::string& dir : cgroups_->instance_dirs()) {
    const std::string root = dir.substr(0, dir.rfind('/'));
    roots.push_back(root);
    ASSERT_EQ(mkdir((root + "/" + *dead).c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root + "/" + *dead + "/kv-3").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root + "/" + foreign).c_str(), 0755), 0);
  }
  absl::StatusOr<std::unique_ptr<CgroupManager>> again = Reopen();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_GE((*again)->swept(), 1);
  EXPECT_TRUE((*again)->sweep_problems().empty())
      << absl::StrJoin((*again)->sweep_problems(), "; ");
  for (const std::string& root : roots) {
    EXPECT_FALSE(IsDir(root + "/" + *dead)) << root;
    EXPECT_TRUE(IsDir(root + "/" + foreign)) << root;
    rmdir((root + "/" + foreign).c_str());
  }
}

TEST(CgroupFallbackTest, WithoutCgroupsGroupLimitsBecomeRlimits) {
  PosixEnv posix;
  EXPECT_EQ(posix.launcher().LimitsMechanism(), "rlimit");
  auto exe = posix.fs().OpenForExec("/bin/sh");
  ASSERT_TRUE(exe.ok());
  std::vector<std::string> out;
  std::optional<ProcessExit> exit;
  ProcessOptions options;
  options.argv = {"sh", "-c", "ulimit -v; grep 'Max processes' /proc/self/limits"};
  options.group_label = "probe";
  options.group_limits.memory_bytes = uint64_t{512} << 20;
  options.group_limits.pids = 4000;
  options.limits.address_space_bytes = uint64_t{1} << 30;  // The stricter one wins.
  options.on_line = [&](OutputStream, absl::string_view line, bool) { out.emplace_back(line); };
  options.on_exit = [&](const ProcessExit& e) { exit = e; };
  auto process = posix.launcher().Spawn(**exe, std::move(options));
  ASSERT_TRUE(process.ok()) << process.status();
  ASSERT_TRUE(posix.loop().RunUntil([&] { return exit.has_value(); }, kHangGuard));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], "524288");  // KiB: the group's 512 MiB, stricter than the process's 1 GiB.
  EXPECT_TRUE(absl::StrContains(out[1], " 4000 ")) << out[1];
}

// cgroup v2 for real, whatever the machine's own layout: the test mounts a cgroup2 hierarchy in
// its own directory (in a private mount namespace when it can make one) and hands the manager a
// mountinfo naming only that mount, so the v2 path (subtree_control, memory.max, pids.max,
// cpu.weight, 0::<path>) runs. Root may always mount cgroup2, but there is one cgroup2 hierarchy
// per machine: its memory, pids and cpu controllers are usable only when no v1 hierarchy holds
// them. Where they are held (this project's CI machine mounts v1 memory, pids and cpu), or the
// mount is not allowed, the test skips saying which.
class CgroupV2MountTest : public CgroupLaunchTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "mounting cgroup2 needs root (euid " << geteuid() << ")";
    const char* tmp = getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr);
    mount_point_ = absl::StrCat(tmp, "/cgroup2");
    ASSERT_TRUE(mkdir(mount_point_.c_str(), 0755) == 0 || errno == EEXIST);
    // A private mount namespace keeps the mount from the rest of the machine and takes it away
    // with the process; without one the mount is detached in TearDown.
    if (unshare(CLONE_NEWNS) == 0) {
      (void)mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
    }
    if (mount("cgroup2", mount_point_.c_str(), "cgroup2", 0, nullptr) != 0) {
      const int err = errno;
      GTEST_SKIP() << "cannot mount cgroup2 at " << mount_point_ << ": " << strerror(err);
    }
    mounted_ = true;
    const std::string mountinfo = absl::StrCat(tmp, "/cgroup2_mountinfo");
    std::ofstream(mountinfo) << "99 1 0:99 / " << mount_point_
                             << " rw,relatime - cgroup2 cgroup2 rw\n";
    CgroupOptions options;
    options.parent = kParent;
    options.mountinfo_path = mountinfo;
    absl::StatusOr<std::unique_ptr<CgroupManager>> m = CgroupManager::Open(options);
    if (!m.ok()) {
      std::ifstream in(mount_point_ + "/cgroup.controllers");
      std::stringstream controllers;
      controllers << in.rdbuf();
      std::string have = controllers.str();
      if (!have.empty() && have.back() == '\n') have.pop_back();
      GTEST_SKIP() << "cgroup2 mounted at " << mount_point_ << ", but its memory, pids and cpu "
                   << "controllers are not available (cgroup.controllers: \"" << have
                   << "\"; a controller serves one hierarchy, and a v1 hierarchy holds them): "
                   << m.status().message();
    }
    ASSERT_EQ((*m)->version(), CgroupVersion::kV2);
    Use(*std::move(m));
  }

  void TearDown() override {
    CgroupLaunchTest::TearDown();
    if (mounted_) umount2(mount_point_.c_str(), MNT_DETACH);
  }

  std::string mount_point_;
  bool mounted_ = false;
};

TEST_F(CgroupV2MountTest, ChildRunsInItsV2CgroupWithItsLimitsAndTheCgroupGoesAtExit) {
  ExpectPlacedWithLimitsAndRemoved();
}

}  // namespace
}  // namespace bulwark
