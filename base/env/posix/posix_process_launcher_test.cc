// Posix-specific tests of PosixProcessLauncher: descriptor isolation, death with the parent,
// resource limits, exec errors, signal hygiene and handle destruction. Real /bin programs.
#include "base/env/posix/posix_process_launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "base/env/posix/posix_env.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

constexpr absl::Duration kLimit = absl::Seconds(5);

// What a process did, as seen through its callbacks.
struct Observed {
  std::vector<std::string> out;
  std::vector<std::pair<std::string, bool>> out_with_truncation;
  std::vector<std::string> err;
  std::optional<ProcessExit> exit;
  bool line_after_exit = false;
};

bool ProcessGone(int64_t pid) {
  // A zombie has already died; only its parent's bookkeeping is left.
  std::string stat_path = absl::StrCat("/proc/", pid, "/stat");
  int fd = open(stat_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  char buffer[512];
  const ssize_t n = read(fd, buffer, sizeof(buffer) - 1);
  close(fd);
  if (n <= 0) return true;
  absl::string_view stat(buffer, static_cast<size_t>(n));
  const size_t paren = stat.rfind(')');
  if (paren == absl::string_view::npos || paren + 2 >= stat.size()) return false;
  const char state = stat[paren + 2];
  return state == 'Z' || state == 'X';
}

class PosixProcessLauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    std::string pattern = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/launcher_test_XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }

  std::unique_ptr<ExecutableFile> Open(const std::string& path) {
    auto exe = posix_.fs().OpenForExec(path);
    EXPECT_TRUE(exe.ok()) << exe.status();
    return exe.ok() ? std::move(*exe) : nullptr;
  }

  // Spawns `path` with `options` (argv, env, limits, line cap), recording into `observed`.
  absl::StatusOr<std::unique_ptr<Process>> Spawn(const std::string& path, ProcessOptions options,
                                                 Observed& observed) {
    std::unique_ptr<ExecutableFile> exe = Open(path);
    if (exe == nullptr) return absl::InternalError("open failed");
    options.on_line = [&observed](OutputStream stream, absl::string_view line, bool truncated) {
      if (observed.exit.has_value()) observed.line_after_exit = true;
      if (stream == OutputStream::kStdout) {
        observed.out.emplace_back(line);
        observed.out_with_truncation.emplace_back(std::string(line), truncated);
      } else {
        observed.err.emplace_back(line);
      }
    };
    options.on_exit = [&observed](const ProcessExit& exit) {
      EXPECT_FALSE(observed.exit.has_value()) << "on_exit ran twice";
      observed.exit = exit;
    };
    return posix_.launcher().Spawn(*exe, std::move(options));
  }

  absl::StatusOr<std::unique_ptr<Process>> SpawnShell(const std::string& script,
                                                      Observed& observed) {
    ProcessOptions options;
    options.argv = {"sh", "-c", script};
    return Spawn("/bin/sh", std::move(options), observed);
  }

  bool RunUntil(std::function<bool()> done, absl::Duration limit = kLimit) {
    return posix_.loop().RunUntil(done, limit);
  }

  // Like RunUntil, but also wakes the loop every few milliseconds, for conditions that no
  // event announces (a process vanishing from /proc).
  bool PollUntil(std::function<bool()> done, absl::Duration limit) {
    TimerId timer = kNoTimer;
    std::function<void()> tick = [&] {
      timer = posix_.loop().PostAfter(absl::Milliseconds(5), [&] { tick(); });
    };
    tick();
    const bool result = posix_.loop().RunUntil(done, limit);
    posix_.loop().Cancel(timer);
    return result;
  }

  std::string WriteProgram(absl::string_view name, absl::string_view contents, uint32_t mode) {
    const std::string path = JoinPath(dir_, name);
    auto file = posix_.fs().NewWritableFile(path);
    EXPECT_TRUE(file.ok());
    EXPECT_TRUE((*file)->Append(contents).ok());
    EXPECT_TRUE((*file)->Close().ok());
    EXPECT_TRUE(posix_.fs().SetMode(path, mode).ok());
    return path;
  }

  PosixEnv posix_;
  std::string dir_;
};

TEST_F(PosixProcessLauncherTest, StdoutStderrPartialLineAndExitCodeInOrder) {
  Observed observed;
  auto process =
      SpawnShell("echo out1; echo err1 >&2; echo out2; printf partial; exit 3", observed);
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_GT((*process)->pid(), 0);
  ASSERT_TRUE(RunUntil([&] { return observed.exit.has_value(); }));
  EXPECT_EQ(observed.out, (std::vector<std::string>{"out1", "out2", "partial"}));
  EXPECT_EQ(observed.err, (std::vector<std::string>{"err1"}));
  EXPECT_FALSE(observed.exit->signaled);
  EXPECT_EQ(observed.exit->code, 3);
  EXPECT_TRUE((*process)->exited());
  EXPECT_FALSE(observed.line_after_exit);
}

TEST_F(PosixProcessLauncherTest, LongLinesAreTruncatedToTheCap) {
  Observed observed;
  ProcessOptions options;
  options.argv = {"sh", "-c", "echo 0123456789abcdef; echo short"};
  options.line_bytes_max = 8;
  auto process = Spawn("/bin/sh", std::move(options), observed);
  ASSERT_TRUE(process.ok()) << process.status();
  ASSERT_TRUE(RunUntil([&] { return observed.exit.has_value(); }));
  const std::vector<std::pair<std::string, bool>> expected = {{"01234567", true}, {"short", false}};
  EXPECT_EQ(observed.out_with_truncation, expected);
}

TEST_F(PosixProcessLauncherTest, EnvironmentIsExactlyTheOneGivenAndStdinIsEmpty) {
  Observed observed;
  ProcessOptions options;
  options.argv = {"sh", "-c", "echo \"$FOO\"; echo \"${HOME-unset}\"; cat; echo end"};
  options.env = {"FOO=bar"};
  auto process = Spawn("/bin/sh", std::move(options), observed);
  ASSERT_TRUE(process.ok()) << process.status();
  ASSERT_TRUE(RunUntil([&] { return observed.exit.has_value(); }));
  EXPECT_EQ(observed.out, (std::vector<std::string>{"bar", "unset", "end"}));
  EXPECT_TRUE(observed.exit->success());
}

TEST_F(PosixProcessLauncherTest, ChildCannotSeeADescriptorTheParentOpened) {
  // Opened WITHOUT O_CLOEXEC, and moved high so it cannot coincide with ls's own descriptor.
  const int plain = open("/dev/null", O_RDONLY);
  ASSERT_GE(plain, 0);
  const int leaked = fcntl(plain, F_DUPFD, 50);
  ASSERT_GE(leaked, 50);
  close(plain);

  Observed observed;
  auto process = SpawnShell("ls /proc/self/fd", observed);
  ASSERT_TRUE(process.ok()) << process.status();
  ASSERT_TRUE(RunUntil([&] { return observed.exit.has_value(); }));
  close(leaked);
  ASSERT_TRUE(observed.exit->success()) << observed.exit->ToString();

  std::set<int> fds;
  for (const std::string& line : observed.out) {
    int fd;
    ASSERT_TRUE(absl::SimpleAtoi(line, &fd)) << line;
    fds.insert(fd);
  }
  EXPECT_EQ(fds.count(leaked), 0u) << "the child inherited descriptor " << leaked;
  // 0, 1, 2 and the one ls opened to read the directory.
  EXPECT_EQ(fds.size(), 4u);
  EXPECT_EQ(fds.count(0), 1u);
  EXPECT_EQ(fds.count(1), 1u);
  EXPECT_EQ(fds.count(2), 1u);
}

std::string HelperPath() {
  std::vector<std::string> candidates;
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  if (srcdir != nullptr) {
    candidates.push_back(absl::StrCat(srcdir, "/", workspace != nullptr ? workspace : "bulwark",
                                      "/base/env/posix/spawn_then_wait"));
  }
  candidates.push_back("base/env/posix/spawn_then_wait");
  for (const std::string& candidate : candidates) {
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return candidates.front();
}

TEST_F(PosixProcessLauncherTest, ChildDiesWhenItsParentDies) {
  Observed observed;
  ProcessOptions options;
  options.argv = {"spawn_then_wait"};
  auto helper = Spawn(HelperPath(), std::move(options), observed);
  ASSERT_TRUE(helper.ok()) << helper.status();
  ASSERT_TRUE(RunUntil([&] { return !observed.out.empty() || observed.exit.has_value(); }));
  ASSERT_FALSE(observed.out.empty()) << "helper exited early: " << observed.exit->ToString()
                                     << "; stderr: " << absl::StrJoin(observed.err, "\n");
  int64_t grandchild = 0;
  ASSERT_TRUE(absl::SimpleAtoi(observed.out[0], &grandchild)) << observed.out[0];
  ASSERT_FALSE(ProcessGone(grandchild));

  ASSERT_TRUE((*helper)->Kill().ok());
  ASSERT_TRUE(RunUntil([&] { return observed.exit.has_value(); }));
  EXPECT_TRUE(observed.exit->signaled);
  EXPECT_EQ(observed.exit->signal, SIGKILL);

  EXPECT_TRUE(PollUntil([&] { return ProcessGone(grandchild); }, absl::Seconds(10)))
      << "grandchild " << grandchild << " outlived its parent";
}

TEST_F(PosixProcessLauncherTest, ResourceLimitsApplyToTheChild) {
  Observed observed;
  ProcessOptions options;
  options.argv = {"sh", "-c", "ulimit -n; ulimit -v; ulimit -t"};
  options.limits.open_files = 64;
  options.limits.address_space_bytes = uint64_t{256} << 20;
  options.limits.cpu_seconds = 7;
  auto process = Spawn("/bin/sh", std::move(options), observed);
  ASSERT_TRUE(process.ok()) << process.status();
  ASSERT_TRUE(RunUntil([&] { return observed.exit.has_value(); }));
  EXPECT_EQ(observed.out, (std::vector<std::string>{"64", "262144", "7"}));
}

TEST_F(PosixProcessLauncherTest, TinyAddressSpaceMakesTheChildFail) {
  Observed observed;
  ProcessOptions options;
  options.argv = {"sh", "-c", "echo should not get here"};
  options.limits.address_space_bytes = 64 * 1024;
  auto process = Spawn("/bin/sh", std::move(options), observed);
  if (!process.ok()) {
    // exec itself ran out of memory before the point of no return.
    EXPECT_EQ(process.status().code(), absl::StatusCode::kResourceExhausted) << process.status();
    return;
  }
  ASSERT_TRUE(RunUntil([&] { return observed.exit.has_value(); }));
  EXPECT_FALSE(observed.exit->success());
  EXPECT_TRUE(observed.out.empty());
}

TEST_F(PosixProcessLauncherTest, FileWithoutExecuteBitIsPermissionDenied) {
  const std::string path = WriteProgram("not_executable", "#!/bin/sh\necho hi\n", 0644);
  Observed observed;
  ProcessOptions options;
  options.argv = {"x"};
  auto process = Spawn(path, std::move(options), observed);
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.status().code(), absl::StatusCode::kPermissionDenied) << process.status();
  EXPECT_TRUE(absl::StrContains(process.status().message(), path)) << process.status();
}

TEST_F(PosixProcessLauncherTest, GarbageIsFailedPrecondition) {
  const std::string path = WriteProgram("garbage", "this is not a program\n\x01\x02", 0755);
  Observed observed;
  ProcessOptions options;
  options.argv = {"x"};
  auto process = Spawn(path, std::move(options), observed);
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.status().code(), absl::StatusCode::kFailedPrecondition) << process.status();
  EXPECT_TRUE(absl::StrContains(process.status().message(),
                                absl::StrCat(path, ": is not an executable program")))
      << process.status();
}

TEST_F(PosixProcessLauncherTest, ScriptsCannotRunFromADescriptor) {
  // Documented limitation: the interpreter would be handed /dev/fd/N, which exec has closed.
  const std::string path = WriteProgram("script", "#!/bin/sh\necho hi\n", 0755);
  Observed observed;
  ProcessOptions options;
  options.argv = {"script"};
  auto process = Spawn(path, std::move(options), observed);
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.status().code(), absl::StatusCode::kFailedPrecondition) << process.status();
}

TEST_F(PosixProcessLauncherTest, InvalidOptionsFailBeforeForking) {
  Observed observed;
  auto process = Spawn("/bin/sh", ProcessOptions{}, observed);
  EXPECT_EQ(process.status().code(), absl::StatusCode::kInvalidArgument);
  ProcessOptions options;
  options.argv = {"sh"};
  options.env = {"NOEQUALS"};
  process = Spawn("/bin/sh", std::move(options), observed);
  EXPECT_EQ(process.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PosixProcessLauncherTest, SignalAndKillBeforeAndAfterExit) {
  Observed observed;
  ProcessOptions options;
  options.argv = {"sleep", "100000"};
  auto process = Spawn("/bin/sleep", std::move(options), observed);
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_FALSE((*process)->exited());
  EXPECT_EQ((*process)->Signal(-1).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*process)->Signal(SIGTERM).ok());
  ASSERT_TRUE(RunUntil([&] { return observed.exit.has_value(); }));
  EXPECT_TRUE(observed.exit->signaled);
  EXPECT_EQ(observed.exit->signal, SIGTERM);
  EXPECT_TRUE((*process)->exited());
  EXPECT_EQ((*process)->Signal(SIGTERM).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE((*process)->Kill().ok());
}

TEST_F(PosixProcessLauncherTest, ChildStartsWithDefaultSignalsEvenIfTheParentIgnoresOrBlocks) {
  struct sigaction ignore, previous_action;
  memset(&ignore, 0, sizeof(ignore));
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGTERM, &ignore, &previous_action), 0);
  sigset_t block, previous_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &block, &previous_mask), 0);

  Observed term_observed, int_observed;
  ProcessOptions term_options, int_options;
  term_options.argv = {"sleep", "100000"};
  int_options.argv = {"sleep", "100000"};
  auto term_process = Spawn("/bin/sleep", std::move(term_options), term_observed);
  auto int_process = Spawn("/bin/sleep", std::move(int_options), int_observed);
  sigaction(SIGTERM, &previous_action, nullptr);
  pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
  ASSERT_TRUE(term_process.ok());
  ASSERT_TRUE(int_process.ok());

  ASSERT_TRUE((*term_process)->Signal(SIGTERM).ok());
  ASSERT_TRUE((*int_process)->Signal(SIGINT).ok());
  ASSERT_TRUE(RunUntil([&] { return term_observed.exit && int_observed.exit; }));
  EXPECT_EQ(term_observed.exit->signal, SIGTERM) << term_observed.exit->ToString();
  EXPECT_EQ(int_observed.exit->signal, SIGINT) << int_observed.exit->ToString();
}

TEST_F(PosixProcessLauncherTest, DestroyingARunningHandleKillsAndReaps) {
  Observed observed;
  ProcessOptions options;
  options.argv = {"sleep", "100000"};
  auto process = Spawn("/bin/sleep", std::move(options), observed);
  ASSERT_TRUE(process.ok()) << process.status();
  const int64_t pid = (*process)->pid();
  ASSERT_EQ(access(absl::StrCat("/proc/", pid).c_str(), F_OK), 0);
  process->reset();
  // Reaped, not merely killed: a zombie would still have a /proc entry.
  EXPECT_NE(access(absl::StrCat("/proc/", pid).c_str(), F_OK), 0);
  EXPECT_FALSE(RunUntil([&] { return observed.exit.has_value(); }, absl::Milliseconds(20)));
}

TEST_F(PosixProcessLauncherTest, HandleMayBeDestroyedFromItsOwnOnExit) {
  std::unique_ptr<ExecutableFile> exe = Open("/bin/sh");
  std::unique_ptr<Process> process;
  bool exited = false;
  ProcessOptions options;
  options.argv = {"sh", "-c", "echo bye"};
  options.on_exit = [&](const ProcessExit& exit) {
    EXPECT_TRUE(process->exited());
    EXPECT_TRUE(exit.success());
    process.reset();
    exited = true;
  };
  auto spawned = posix_.launcher().Spawn(*exe, std::move(options));
  ASSERT_TRUE(spawned.ok()) << spawned.status();
  process = std::move(*spawned);
  ASSERT_TRUE(RunUntil([&] { return exited; }));
  EXPECT_EQ(process, nullptr);
}

TEST_F(PosixProcessLauncherTest, HandleMayBeDestroyedFromOnLineAndNothingRunsAfterwards) {
  std::unique_ptr<ExecutableFile> exe = Open("/bin/sh");
  std::unique_ptr<Process> process;
  int lines = 0;
  bool exit_called = false;
  int64_t pid = 0;
  ProcessOptions options;
  options.argv = {"sh", "-c", "printf '1\\n2\\n3\\n'; echo err >&2; exec sleep 100000"};
  options.on_line = [&](OutputStream, absl::string_view, bool) {
    ++lines;
    process.reset();
  };
  options.on_exit = [&](const ProcessExit&) { exit_called = true; };
  auto spawned = posix_.launcher().Spawn(*exe, std::move(options));
  ASSERT_TRUE(spawned.ok()) << spawned.status();
  process = std::move(*spawned);
  pid = process->pid();
  ASSERT_TRUE(RunUntil([&] { return lines > 0; }));
  EXPECT_FALSE(RunUntil([&] { return lines > 1 || exit_called; }, absl::Milliseconds(20)));
  EXPECT_EQ(lines, 1);
  EXPECT_FALSE(exit_called);
  EXPECT_NE(access(absl::StrCat("/proc/", pid).c_str(), F_OK), 0);
}

TEST_F(PosixProcessLauncherTest, ManyShortProcessesLeakNoDescriptors) {
  auto count_fds = [] {
    auto names = PosixFileSystem().ListDir("/proc/self/fd");
    return names.ok() ? names->size() : 0;
  };
  const size_t before = count_fds();
  for (int i = 0; i < 20; ++i) {
    Observed observed;
    auto process = SpawnShell(absl::StrCat("echo ", i), observed);
    ASSERT_TRUE(process.ok()) << process.status();
    ASSERT_TRUE(RunUntil([&] { return observed.exit.has_value(); }));
    EXPECT_EQ(observed.out, (std::vector<std::string>{absl::StrCat(i)}));
  }
  EXPECT_EQ(count_fds(), before);
}

}  // namespace
}  // namespace bulwark
