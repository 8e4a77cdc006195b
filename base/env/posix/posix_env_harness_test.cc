// Smoke test of MakePosixEnvHarness: each named program behaves as EnvHarness documents.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/env/testing/env_harness.h"
#include "gtest/gtest.h"

namespace bulwark::testing {
namespace {

struct Result {
  std::vector<std::string> out;
  std::vector<std::string> err;
  std::optional<ProcessExit> exit;
};

class PosixEnvHarnessTest : public ::testing::Test {
 protected:
  std::unique_ptr<Process> Start(const ProgramRef& program, Result& result) {
    auto exe = harness_->env().fs.OpenForExec(program.path);
    EXPECT_TRUE(exe.ok()) << exe.status();
    if (!exe.ok()) return nullptr;
    ProcessOptions options;
    options.argv = program.argv;
    options.on_line = [&result](OutputStream stream, absl::string_view line, bool) {
      (stream == OutputStream::kStdout ? result.out : result.err).emplace_back(line);
    };
    options.on_exit = [&result](const ProcessExit& exit) { result.exit = exit; };
    auto process = harness_->env().launcher.Spawn(**exe, std::move(options));
    EXPECT_TRUE(process.ok()) << process.status();
    return process.ok() ? std::move(*process) : nullptr;
  }

  Result Run(const ProgramRef& program) {
    Result result;
    std::unique_ptr<Process> process = Start(program, result);
    EXPECT_TRUE(harness_->RunUntil([&] { return result.exit.has_value(); }, absl::Seconds(5)));
    return result;
  }

  std::unique_ptr<EnvHarness> harness_ = MakePosixEnvHarness();
};

TEST_F(PosixEnvHarnessTest, ScratchDirIsFreshAndEmpty) {
  const std::string a = harness_->ScratchDir();
  const std::string b = harness_->ScratchDir();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.front(), '/');
  auto names = harness_->env().fs.ListDir(a);
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_TRUE(names->empty());
}

TEST_F(PosixEnvHarnessTest, Echo) {
  Result result = Run(harness_->Echo({"hello", "world"}));
  EXPECT_EQ(result.out, (std::vector<std::string>{"hello world"}));
  EXPECT_TRUE(result.err.empty());
  EXPECT_TRUE(result.exit->success());
}

TEST_F(PosixEnvHarnessTest, ExitWith) {
  Result result = Run(harness_->ExitWith(42));
  EXPECT_TRUE(result.out.empty());
  EXPECT_EQ(result.exit->code, 42);
}

TEST_F(PosixEnvHarnessTest, PrintLineOnEachStream) {
  const std::string tricky = "it's \"$HOME\" `x` \\n %s";
  Result out = Run(harness_->PrintLine(OutputStream::kStdout, tricky));
  EXPECT_EQ(out.out, (std::vector<std::string>{tricky, "done"}));
  EXPECT_TRUE(out.err.empty());
  Result err = Run(harness_->PrintLine(OutputStream::kStderr, tricky));
  EXPECT_EQ(err.out, (std::vector<std::string>{"done"}));
  EXPECT_EQ(err.err, (std::vector<std::string>{tricky}));
  EXPECT_TRUE(err.exit->success());
}

TEST_F(PosixEnvHarnessTest, SleepForeverDoesNotExit) {
  Result result;
  std::unique_ptr<Process> process = Start(harness_->SleepForever(), result);
  ASSERT_NE(process, nullptr);
  EXPECT_FALSE(harness_->RunUntil([&] { return result.exit.has_value(); }, absl::Milliseconds(50)));
  ASSERT_TRUE(process->Kill().ok());
  EXPECT_TRUE(harness_->RunUntil([&] { return result.exit.has_value(); }, absl::Seconds(5)));
}

}  // namespace
}  // namespace bulwark::testing
