// The end-to-end harness itself: exit codes, captured streams, stdin, waiting for a line, stop.
#include "server/testing/process.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::server_testing {
namespace {

using ::testing::HasSubstr;

const std::string kSh = "/bin/sh";

TEST(ProcessTest, RunProcessCapturesBothStreamsStdinAndTheExitCode) {
  ProcessResult r =
      RunProcess({kSh, "-c", "read line; echo \"out:$line:$FOO\"; echo err >&2; exit 3"},
                 {"FOO=bar"}, "hello\n");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out:hello:bar\n");
  EXPECT_EQ(r.err, "err\n");
  r = RunProcess({kSh, "-c", "kill -9 $$"}, {});
  EXPECT_EQ(r.exit_code, 128 + 9);
  r = RunProcess({"/nonexistent/program"}, {});
  EXPECT_EQ(r.exit_code, 127);
}

TEST(ProcessTest, ServerProcessWaitsForALineAndStopsOnASignal) {
  // The trap is set before the lines the test waits for, so the signal cannot come first.
  ServerProcess p({kSh, "-c",
                   "trap 'echo bye; exit 0' TERM; echo 'Api Address: http://x'; "
                   "echo started >&2; while :; do sleep 1; done"},
                  {"PATH=/usr/bin:/bin"});
  std::optional<std::string> line = p.WaitForLine("Api Address:");
  ASSERT_TRUE(line.has_value()) << p.output();
  EXPECT_EQ(*line, "Api Address: http://x");
  EXPECT_TRUE(p.WaitForLine("started").has_value());
  EXPECT_EQ(p.Stop(SIGTERM), 0);
  EXPECT_THAT(p.output(), HasSubstr("bye"));
}

TEST(ProcessTest, WaitForLineEndsWhenTheOutputEnds) {
  ServerProcess p({kSh, "-c", "echo one"}, {});
  EXPECT_FALSE(p.WaitForLine("never").has_value());
  EXPECT_EQ(p.Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace bulwark::server_testing
