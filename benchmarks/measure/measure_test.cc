#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "benchmarks/measure/placement.h"
#include "benchmarks/measure/proc_memory.h"
#include "benchmarks/measure/record.h"
#include "benchmarks/measure/rounds.h"
#include "benchmarks/measure/stats.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::measure {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(StatsTest, MedianOfOddAndEvenCounts) {
  EXPECT_EQ(Median({3, 1, 2}), 2);
  EXPECT_EQ(Median({4, 1, 3, 2}), 2.5);
  EXPECT_TRUE(std::isnan(Median({})));
}

TEST(StatsTest, LatencyPercentilesFollowTheGoHostsRule) {
  std::vector<double> samples;
  for (int i = 100; i >= 1; --i) samples.push_back(i);
  const LatencySummary s = SummarizeLatency(samples);
  EXPECT_EQ(s.n, 100u);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.p50, 50);  // sorted[ceil(0.5 * 100) - 1]
  EXPECT_EQ(s.p90, 90);
  EXPECT_EQ(s.p99, 99);
  EXPECT_EQ(s.max, 100);
}

TEST(StatsTest, RatiosArePerRoundAndSkipMissingRounds) {
  const RangeSummary r = SummarizeRatios({2, 3, NAN, 8, 1}, {1, 1, 1, 4, 0});
  EXPECT_EQ(r.n, 3u);  // 2, 3, 2: the NaN round and the zero denominator are left out.
  EXPECT_EQ(r.median, 2);
  EXPECT_EQ(r.min, 2);
  EXPECT_EQ(r.max, 3);
  EXPECT_TRUE(std::isnan(SummarizeRatios({}, {}).median));
}

TEST(RecordTest, SignificantDigitsWithThousandsSeparators) {
  EXPECT_EQ(Significant(354.2), "354");
  EXPECT_EQ(Significant(1.5512), "1.55");
  EXPECT_EQ(Significant(0.27), "0.270");
  EXPECT_EQ(Significant(2470123.0), "2,470,123");
  EXPECT_EQ(Significant(-1234.0), "-1,234");
  EXPECT_EQ(Significant(0), "0");
}

TEST(RecordTest, ATableRecordNamesItsCommandMachineAndBuild) {
  TableRecord record;
  record.benchmark = "x_benchmark";
  record.command = "bazel run -c opt //benchmarks:x_benchmark";
  record.columns = {"benchmark", "wall time"};
  record.rows = {{"BM_A", "1 ms"}};
  const std::string path = absl::StrCat(::testing::TempDir(), "/record.json");
  ASSERT_TRUE(WriteTableRecord(path, record).ok());
  std::ifstream in(path);
  const nlohmann::json j = nlohmann::json::parse(
      std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()));
  EXPECT_EQ(j["format"], kTableRecordFormat);
  EXPECT_EQ(j["command"], record.command);
  EXPECT_EQ(j["rows"][0][1], "1 ms");
  EXPECT_EQ(j["machine"]["load_average"].size(), 3u);
  EXPECT_TRUE(j["build"].contains("compilation_mode"));
  EXPECT_TRUE(absl::EndsWith(j["started"].get<std::string>(), "Z"));
  EXPECT_FALSE(WriteTableRecord("/nonexistent-dir/record.json", record).ok());
}

TEST(RecordTest, ARecordNamesWhenTheRunStartedNotWhenItWasWritten) {
  // The process (this test binary) started before this sleep; the record is written after it.
  absl::SleepFor(absl::Milliseconds(1100));
  const std::string written = UtcNow();
  const nlohmann::json j = TableRecordJson(TableRecord{});
  // Both are "YYYY-MM-DDTHH:MM:SSZ", so they order as strings.
  EXPECT_LT(j["started"].get<std::string>(), written);
}

TEST(RoundsTest, ArmsTakeTurnsGoingFirst) {
  EXPECT_THAT(ArmOrder(2, 0), ElementsAre(0, 1));
  EXPECT_THAT(ArmOrder(2, 1), ElementsAre(1, 0));
  EXPECT_THAT(ArmOrder(2, 2), ElementsAre(0, 1));
  EXPECT_THAT(ArmOrder(3, 1), ElementsAre(1, 2, 0));
}

TEST(RoundsTest, RunChildCapturesStdoutAndAddsEnvironment) {
  ChildCommand c;
  c.argv = {"/bin/sh", "-c", "echo \"out $BW_MEASURE_TEST\""};
  c.extra_env = {"BW_MEASURE_TEST=yes"};
  absl::StatusOr<std::string> out = RunChild(c);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "out yes\n");
}

TEST(RoundsTest, RunChildNamesAFailedExit) {
  ChildCommand c;
  c.argv = {"/bin/sh", "-c", "exit 3"};
  absl::StatusOr<std::string> out = RunChild(c);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("exit status 3"));
  c.argv = {"/nonexistent/benchmark"};
  out = RunChild(c);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("exec failed"));
}

TEST(RoundsTest, RunChildKillsAChildPastTheHangGuard) {
  ChildCommand c;
  c.argv = {"/bin/sleep", "600"};
  c.hang_guard = absl::Milliseconds(50);
  absl::StatusOr<std::string> out = RunChild(c);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("hang guard"));
}

TEST(RoundsTest, RunChildPinsTheChildAndWhatItStarts) {
  ChildCommand c;
  // The grandchild (grep's process) inherits the mask set between fork and exec.
  c.argv = {"/bin/sh", "-c", "grep Cpus_allowed_list /proc/self/status"};
  c.cpu = 0;
  absl::StatusOr<std::string> out = RunChild(c);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "Cpus_allowed_list:\t0\n");
}

TEST(PlacementTest, AProcessForkedUnderScopedThreadCpuStartsThere) {
  const pid_t self = ::getpid();
  absl::StatusOr<std::string> before = CpusAllowed(self);
  ASSERT_TRUE(before.ok()) << before.status();
  pid_t child = 0;
  {
    ScopedThreadCpu pin(0);
    ASSERT_TRUE(pin.status().ok()) << pin.status();
    child = ::fork();
    if (child == 0) {
      ::pause();
      _exit(0);
    }
    ASSERT_GT(child, 0);
  }
  absl::StatusOr<std::string> in_child = CpusAllowed(child);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ASSERT_TRUE(in_child.ok()) << in_child.status();
  EXPECT_EQ(*in_child, "0");
  // The thread's own mask came back.
  EXPECT_EQ(*CpusAllowed(self), *before);
}

TEST(PlacementTest, PinProcessMovesEveryThread) {
  const pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    _exit(0);
  }
  ASSERT_GT(child, 0);
  const absl::Status pinned = PinProcess(child, 0);
  absl::StatusOr<std::string> cpus = CpusAllowed(child);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ASSERT_TRUE(pinned.ok()) << pinned;
  ASSERT_TRUE(cpus.ok()) << cpus.status();
  EXPECT_EQ(*cpus, "0");
  EXPECT_FALSE(PinProcess(999999999, 0).ok());
}

constexpr char kStatus[] =
    "Name:\tkv_plugin\nVmPeak:\t  700000 kB\nVmRSS:\t   20600 kB\nRssAnon:\t    2600 kB\n"
    "RssFile:\t   18000 kB\nRssShmem:\t       0 kB\n";
constexpr char kRollup[] =
    "55d0c0000000-7ffd00000000 ---p 00000000 00:00 0    [rollup]\nRss:               20600 kB\n"
    "Pss:               11100 kB\nShared_Clean:      15000 kB\nShared_Dirty:          0 kB\n"
    "Private_Clean:      1000 kB\nPrivate_Dirty:      4600 kB\n";

TEST(ProcMemoryTest, UssIsPrivateCleanPlusPrivateDirty) {
  absl::StatusOr<ProcessMemory> m = ParseProcessMemory(kStatus, kRollup);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->vm_rss_kib, 20600);
  EXPECT_EQ(m->rss_anon_kib, 2600);
  EXPECT_EQ(m->rss_file_kib, 18000);
  EXPECT_EQ(m->pss_kib, 11100);
  EXPECT_EQ(m->uss_kib(), 5600);
}

TEST(ProcMemoryTest, AMissingFieldIsNamed) {
  absl::StatusOr<ProcessMemory> m = ParseProcessMemory("VmRSS: 1 kB\n", kRollup);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("RssAnon"));
  m = ParseProcessMemory(kStatus, "Pss: x kB\n");
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("unreadable Pss"));
}

TEST(ProcMemoryTest, ReadsThisProcess) {
  absl::StatusOr<ProcessMemory> m = ReadProcessMemory(::getpid());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_GT(m->vm_rss_kib, 0);
  EXPECT_GT(m->uss_kib(), 0);
  EXPECT_LE(m->uss_kib(), m->vm_rss_kib);
  absl::StatusOr<double> cpu = ProcessCpuMicros(::getpid());
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_GE(*cpu, 0);
  EXPECT_FALSE(ReadProcessMemory(999999999).ok());
}

}  // namespace
}  // namespace bulwark::measure
