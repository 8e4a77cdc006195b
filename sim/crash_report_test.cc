// A sweep that dies on a signal names the seed it was running and its replay command, and still
// dies by that signal. Runs //sim:sim_crash_at_seed_for_test as a child process.
#include "sim/crash_report.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace bulwark::sim {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kBinary[] = "sim/sim_crash_at_seed_for_test";

struct Outcome {
  int status = 0;
  std::string out;  // stdout and stderr, in order.
};

// Runs the binary with `args`, stdout and stderr into one pipe, until it exits.
Outcome RunSim(const std::vector<std::string>& args) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<char*> argv;
  std::string binary = kBinary;
  argv.push_back(binary.data());
  std::vector<std::string> copies = args;
  for (std::string& arg : copies) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  EXPECT_EQ(::posix_spawn(&pid, kBinary, &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  Outcome outcome;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buffer, sizeof(buffer));
    if (n <= 0) break;
    outcome.out.append(buffer, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  EXPECT_EQ(::waitpid(pid, &outcome.status, 0), pid);
  return outcome;
}

TEST(CrashReportTest, SegfaultNamesTheSeedAndItsReplayCommand) {
  const Outcome o = RunSim({"3", "SEGV", "--seeds", "1..5", "--scenario", "quiet"});
  ASSERT_TRUE(WIFSIGNALED(o.status)) << o.out;
  EXPECT_EQ(WTERMSIG(o.status), SIGSEGV);
  EXPECT_THAT(o.out,
              HasSubstr("bulwark sim: died on SIGSEGV while running seed 3 (scenario "
                        "quiet)\n  replay:  bazel run //sim -- --seed 3 --scenario quiet\n"));
  // Seeds 1 and 2 ran; nothing names them as the crash.
  EXPECT_THAT(o.out, Not(HasSubstr("seed 2 (scenario")));
}

TEST(CrashReportTest, AbortKeepsTheFlagsThatMatterForTheReplay) {
  const Outcome o =
      RunSim({"2", "ABRT", "--seeds", "1..4", "--scenario", "quiet", "--steps-max", "5000000"});
  ASSERT_TRUE(WIFSIGNALED(o.status)) << o.out;
  EXPECT_EQ(WTERMSIG(o.status), SIGABRT);
  EXPECT_THAT(o.out, HasSubstr("died on SIGABRT while running seed 2 (scenario quiet)"));
  EXPECT_THAT(o.out, HasSubstr("replay:  bazel run //sim -- --seed 2 --scenario quiet "
                               "--steps-max 5000000\n"));
}

TEST(CrashReportTest, EverySignalItHandlesIsReportedAndReRaised) {
  for (const auto& [name, signal] : std::vector<std::pair<std::string, int>>{
           {"BUS", SIGBUS}, {"FPE", SIGFPE}, {"ILL", SIGILL}}) {
    const Outcome o = RunSim({"1", name, "--seed", "1", "--scenario", "quiet"});
    ASSERT_TRUE(WIFSIGNALED(o.status)) << name << ": " << o.out;
    EXPECT_EQ(WTERMSIG(o.status), signal) << name;
    EXPECT_THAT(o.out, HasSubstr("died on SIG" + name + " while running seed 1 (scenario quiet)"));
  }
}

TEST(CrashReportTest, ADrillNamesTheBugAndTheReplayWithItsFailpoints) {
  const Outcome o = RunSim({"1", "SEGV", "--drill", "catalog.skip_hash_check"});
  ASSERT_TRUE(WIFSIGNALED(o.status)) << o.out;
  EXPECT_EQ(WTERMSIG(o.status), SIGSEGV);
  EXPECT_THAT(o.out, HasSubstr("died on SIGSEGV while running seed 1 (drill "
                               "catalog.skip_hash_check, scenario "));
  EXPECT_THAT(o.out, HasSubstr("replay:  bazel run //sim -- --seed 1 --scenario "));
  EXPECT_THAT(o.out, HasSubstr("--failpoints 'bug.catalog.skip_hash_check=return"));
}

TEST(CrashReportTest, ASweepWithoutASignalPrintsNoCrashReport) {
  const Outcome o = RunSim({"99", "SEGV", "--seeds", "1..2", "--scenario", "quiet"});
  ASSERT_TRUE(WIFEXITED(o.status)) << o.out;
  EXPECT_EQ(WEXITSTATUS(o.status), 0) << o.out;
  EXPECT_THAT(o.out, HasSubstr("2 passed, 0 failed"));
  EXPECT_THAT(o.out, Not(HasSubstr("died on")));
}

}  // namespace
}  // namespace bulwark::sim
