// The ProcessLauncher contract, run against real processes and simulated ones.
#include <csignal>
#include <optional>
#include <string>
#include <vector>

#include "base/env/testing/contract_test_util.h"

namespace bulwark::testing {
namespace {

struct Line {
  OutputStream stream;
  std::string text;
  bool truncated;
};

class ProcessLauncherContractTest : public EnvContractTest {
 protected:
  // Spawns `program`, recording its lines and exit. Returns the handle (null on error, with the
  // status in spawn_status_).
  std::unique_ptr<Process> Spawn(const ProgramRef& program,
                                 size_t line_bytes_max = kLineBytesDefault) {
    auto exe = env().fs.OpenForExec(program.path);
    EXPECT_TRUE(exe.ok()) << exe.status();
    if (!exe.ok()) return nullptr;
    return SpawnFile(**exe, program.argv, line_bytes_max);
  }

  std::unique_ptr<Process> SpawnFile(const ExecutableFile& exe, std::vector<std::string> argv,
                                     size_t line_bytes_max = kLineBytesDefault) {
    ProcessOptions options;
    options.argv = std::move(argv);
    options.env = {"PATH=/usr/bin:/bin"};
    options.line_bytes_max = line_bytes_max;
    options.on_line = [this](OutputStream stream, absl::string_view text, bool truncated) {
      EXPECT_FALSE(exit_.has_value()) << "a line arrived after the exit";
      lines_.push_back(Line{stream, std::string(text), truncated});
    };
    options.on_exit = [this](const ProcessExit& exit) {
      EXPECT_FALSE(exit_.has_value()) << "on_exit ran twice";
      exit_ = exit;
    };
    auto process = env().launcher.Spawn(exe, std::move(options));
    spawn_status_ = process.status();
    return process.ok() ? std::move(*process) : nullptr;
  }

  bool WaitForExit() {
    return harness_->RunUntil([this] { return exit_.has_value(); }, absl::Seconds(20));
  }

  std::vector<std::string> Texts(OutputStream stream) const {
    std::vector<std::string> out;
    for (const Line& l : lines_) {
      if (l.stream == stream) out.push_back(l.text);
    }
    return out;
  }

  std::vector<Line> lines_;
  std::optional<ProcessExit> exit_;
  absl::Status spawn_status_;
};

TEST_P(ProcessLauncherContractTest, EchoPrintsItsLineThenExitsZero) {
  auto process = Spawn(harness_->Echo({"hello", "world"}));
  ASSERT_NE(process, nullptr) << spawn_status_;
  EXPECT_GT(process->pid(), 0);
  ASSERT_TRUE(WaitForExit());
  EXPECT_TRUE(exit_->success()) << exit_->ToString();
  EXPECT_TRUE(process->exited());
  EXPECT_EQ(Texts(OutputStream::kStdout), std::vector<std::string>{"hello world"});
  EXPECT_TRUE(Texts(OutputStream::kStderr).empty());
}

TEST_P(ProcessLauncherContractTest, ExitCodesAreReported) {
  for (int code : {0, 3, 42}) {
    exit_.reset();
    auto process = Spawn(harness_->ExitWith(code));
    ASSERT_NE(process, nullptr) << spawn_status_;
    ASSERT_TRUE(WaitForExit());
    EXPECT_FALSE(exit_->signaled);
    EXPECT_EQ(exit_->code, code);
    EXPECT_EQ(exit_->ToString(), "exit code " + std::to_string(code));
  }
}

TEST_P(ProcessLauncherContractTest, KillEndsASleepingChild) {
  auto process = Spawn(harness_->SleepForever());
  ASSERT_NE(process, nullptr) << spawn_status_;
  EXPECT_FALSE(harness_->RunUntil([this] { return exit_.has_value(); }, absl::Milliseconds(50)));
  EXPECT_FALSE(process->exited());
  ASSERT_TRUE(process->Kill().ok());
  ASSERT_TRUE(WaitForExit());
  EXPECT_TRUE(exit_->signaled);
  EXPECT_EQ(exit_->signal, SIGKILL);
  EXPECT_EQ(exit_->ToString(), "killed by signal 9 (SIGKILL)");
  EXPECT_TRUE(process->Kill().ok()) << "killing an exited process is a no-op";
  EXPECT_EQ(process->Signal(SIGTERM).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(ProcessLauncherContractTest, TermSignalIsDelivered) {
  auto process = Spawn(harness_->SleepForever());
  ASSERT_NE(process, nullptr) << spawn_status_;
  ASSERT_TRUE(process->Signal(SIGTERM).ok());
  ASSERT_TRUE(WaitForExit());
  EXPECT_TRUE(exit_->signaled);
  EXPECT_EQ(exit_->signal, SIGTERM);
}

TEST_P(ProcessLauncherContractTest, LongLineIsTruncatedAndFlagged) {
  auto process = Spawn(harness_->PrintLine(OutputStream::kStdout, std::string(100000, 'x')),
                       /*line_bytes_max=*/1024);
  ASSERT_NE(process, nullptr) << spawn_status_;
  ASSERT_TRUE(WaitForExit());
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_EQ(lines_[0].text, std::string(1024, 'x'));
  EXPECT_TRUE(lines_[0].truncated);
  EXPECT_EQ(lines_[1].text, "done");
  EXPECT_FALSE(lines_[1].truncated);
}

TEST_P(ProcessLauncherContractTest, LineAtTheCapIsWhole) {
  auto process = Spawn(harness_->PrintLine(OutputStream::kStdout, std::string(1024, 'y')), 1024);
  ASSERT_NE(process, nullptr) << spawn_status_;
  ASSERT_TRUE(WaitForExit());
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_EQ(lines_[0].text.size(), 1024u);
  EXPECT_FALSE(lines_[0].truncated);
}

TEST_P(ProcessLauncherContractTest, StderrLinesAreTaggedAsStderr) {
  auto process = Spawn(harness_->PrintLine(OutputStream::kStderr, "warning: careful"));
  ASSERT_NE(process, nullptr) << spawn_status_;
  ASSERT_TRUE(WaitForExit());
  EXPECT_EQ(Texts(OutputStream::kStderr), std::vector<std::string>{"warning: careful"});
  EXPECT_EQ(Texts(OutputStream::kStdout), std::vector<std::string>{"done"});
}

TEST_P(ProcessLauncherContractTest, InvalidOptionsAreRejected) {
  ProgramRef echo = harness_->Echo({});
  auto exe = env().fs.OpenForExec(echo.path);
  ASSERT_TRUE(exe.ok());
  EXPECT_EQ(SpawnFile(**exe, {}), nullptr);
  EXPECT_EQ(spawn_status_.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SpawnFile(**exe, {"echo"}, /*line_bytes_max=*/0), nullptr);
  EXPECT_EQ(spawn_status_.code(), absl::StatusCode::kInvalidArgument);
  ProcessOptions options;
  options.argv = {"echo"};
  options.env = {"SECRET_TOKEN_VALUE_WITHOUT_EQUALS"};
  absl::Status bad_env = env().launcher.Spawn(**exe, std::move(options)).status();
  EXPECT_EQ(bad_env.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_env.message().find("SECRET_TOKEN"), absl::string_view::npos)
      << "env contents must not appear in errors: " << bad_env;
}

TEST_P(ProcessLauncherContractTest, NonExecutableFilesAreRefused) {
  const std::string dir = harness_->ScratchDir();
  const std::string no_x = JoinPath(dir, "no-exec-bit");
  const std::string garbage = JoinPath(dir, "garbage");
  for (const std::string& path : {no_x, garbage}) {
    auto file = env().fs.NewWritableFile(path);
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->Append("\x01\x02 this is not a program\n").ok());
    ASSERT_TRUE((*file)->Close().ok());
  }
  ASSERT_TRUE(env().fs.SetMode(no_x, 0644).ok());
  ASSERT_TRUE(env().fs.SetMode(garbage, 0755).ok());
  auto exe = env().fs.OpenForExec(no_x);
  ASSERT_TRUE(exe.ok());
  EXPECT_EQ(SpawnFile(**exe, {"x"}), nullptr);
  EXPECT_EQ(spawn_status_.code(), absl::StatusCode::kPermissionDenied) << spawn_status_;
  exe = env().fs.OpenForExec(garbage);
  ASSERT_TRUE(exe.ok());
  EXPECT_EQ(SpawnFile(**exe, {"x"}), nullptr);
  EXPECT_EQ(spawn_status_.code(), absl::StatusCode::kFailedPrecondition) << spawn_status_;
  EXPECT_NE(spawn_status_.message().find(garbage), absl::string_view::npos) << spawn_status_;
}

TEST_P(ProcessLauncherContractTest, DestroyingTheHandleEndsTheProcessWithoutCallbacks) {
  auto process = Spawn(harness_->SleepForever());
  ASSERT_NE(process, nullptr) << spawn_status_;
  process.reset();
  harness_->RunUntil([] { return false; }, absl::Milliseconds(50));
  EXPECT_FALSE(exit_.has_value());
}

INSTANTIATE_TEST_SUITE_P(Env, ProcessLauncherContractTest, AllHarnesses(), HarnessName);

}  // namespace
}  // namespace bulwark::testing
