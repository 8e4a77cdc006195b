// Tests for the simulated launcher's faults: crash, hang, parent death. (The behaviour it shares
// with real processes is covered by //base/env/testing:process_launcher_contract_test.)
#include "base/env/sim/sim_process_launcher.h"

#include <csignal>
#include <optional>

#include "base/env/sim/sim_env.h"
#include "gtest/gtest.h"

namespace bulwark::sim {
namespace {

// Prints "tick" every second until signalled; ignores SIGINT like a go-plugin plugin.
class Ticker : public SimProgram {
 public:
  void Start(SimProcessContext& ctx) override { Tick(ctx); }
  bool OnSignal(SimProcessContext&, int signal) override { return signal != SIGINT; }

 private:
  void Tick(SimProcessContext& ctx) {
    ctx.Write(OutputStream::kStdout, "tick\n");
    ctx.PostAfter(absl::Seconds(1), [this, &ctx] { Tick(ctx); });
  }
};

class SimLauncherTest : public ::testing::Test {
 protected:
  SimLauncherTest() : sim_(1) {
    sim_.launcher().RegisterProgram("ticker", [] { return std::make_unique<Ticker>(); });
    EXPECT_TRUE(
        sim_.fs()
            .WriteFileDurably("/ticker", SimProcessLauncher::ExecutableContents("ticker"), 0755)
            .ok());
  }

  std::unique_ptr<Process> Start() {
    auto exe = sim_.fs().OpenForExec("/ticker");
    EXPECT_TRUE(exe.ok());
    ProcessOptions options;
    options.argv = {"ticker"};
    options.on_line = [this](OutputStream, absl::string_view, bool) { ++ticks_; };
    options.on_exit = [this](const ProcessExit& e) { exit_ = e; };
    auto process = sim_.launcher().Spawn(**exe, std::move(options));
    EXPECT_TRUE(process.ok()) << process.status();
    return std::move(*process);
  }

  SimEnv sim_;
  int ticks_ = 0;
  std::optional<ProcessExit> exit_;
};

TEST_F(SimLauncherTest, CrashEndsTheProcessAndStopsItsTasks) {
  auto process = Start();
  sim_.loop().RunUntil([] { return false; }, absl::Milliseconds(3500));
  EXPECT_EQ(ticks_, 4);
  ASSERT_TRUE(sim_.launcher().Crash(process->pid()).ok());
  sim_.loop().RunUntilIdle();
  ASSERT_TRUE(exit_.has_value());
  EXPECT_TRUE(exit_->signaled);
  EXPECT_EQ(exit_->signal, SIGSEGV);
  EXPECT_EQ(ticks_, 4);
  EXPECT_EQ(sim_.launcher().live_count(), 0u);
  EXPECT_EQ(sim_.launcher().Crash(process->pid()).code(), absl::StatusCode::kNotFound);
}

TEST_F(SimLauncherTest, IgnoredSignalKeepsItRunning) {
  auto process = Start();
  ASSERT_TRUE(process->Signal(SIGINT).ok());
  sim_.loop().RunUntil([] { return false; }, absl::Seconds(2));
  EXPECT_FALSE(process->exited());
  ASSERT_TRUE(process->Signal(SIGTERM).ok());
  sim_.loop().RunUntil([&] { return exit_.has_value(); }, absl::Seconds(1));
  ASSERT_TRUE(exit_.has_value());
  EXPECT_EQ(exit_->signal, SIGTERM);
}

TEST_F(SimLauncherTest, HungProcessOnlyDiesOfSigkill) {
  auto process = Start();
  sim_.loop().RunUntil([] { return false; }, absl::Milliseconds(1500));
  ASSERT_TRUE(sim_.launcher().Hang(process->pid()).ok());
  const int ticks = ticks_;
  ASSERT_TRUE(process->Signal(SIGTERM).ok());
  sim_.loop().RunUntil([] { return false; }, absl::Seconds(10));
  EXPECT_EQ(ticks_, ticks);
  EXPECT_FALSE(process->exited());
  ASSERT_TRUE(process->Kill().ok());
  sim_.loop().RunUntil([&] { return exit_.has_value(); }, absl::Seconds(1));
  EXPECT_EQ(exit_->signal, SIGKILL);
}

TEST_F(SimLauncherTest, ParentDeathKillsEveryChild) {
  auto a = Start();
  auto b = Start();
  EXPECT_EQ(sim_.launcher().LivePids().size(), 2u);
  sim_.launcher().KillAll();
  EXPECT_EQ(sim_.launcher().live_count(), 0u);
  EXPECT_TRUE(a->exited());
  EXPECT_TRUE(b->exited());
}

TEST_F(SimLauncherTest, DestroyedHandleGetsNoCallbacks) {
  auto process = Start();
  sim_.loop().RunUntil([] { return false; }, absl::Milliseconds(1500));
  const int ticks = ticks_;
  process.reset();
  sim_.loop().RunUntilIdle();
  EXPECT_EQ(ticks_, ticks);
  EXPECT_FALSE(exit_.has_value());
  EXPECT_EQ(sim_.launcher().live_count(), 0u);
}

}  // namespace
}  // namespace bulwark::sim
