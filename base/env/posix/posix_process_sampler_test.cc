#include "base/env/posix/posix_process_sampler.h"

#include <unistd.h>

#include "gtest/gtest.h"

namespace bulwark {
namespace {

TEST(ParseProcStatTest, ReadsUtimeStimeAndResidentPages) {
  // A comm with a space and a parenthesis, as the kernel prints it.
  const char* stat =
      "1234 (kv plugin) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 99 1000 42";
  absl::StatusOr<ProcessSample> s = ParseProcStat(stat, "5000 300 100 1 0 200 0\n", 100, 4096);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_DOUBLE_EQ(s->cpu_seconds, 3.0);
  EXPECT_EQ(s->resident_bytes, 300u * 4096u);
}

TEST(ParseProcStatTest, MalformedTextIsDataLoss) {
  EXPECT_EQ(ParseProcStat("garbage", "1 2", 100, 4096).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseProcStat("1 (a) S 1 2", "1 2", 100, 4096).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseProcStat("1 (a) S 1 1 1 0 -1 0 0 0 0 0 5 5 0 0", "x", 100, 4096).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(PosixProcessSamplerTest, SamplesItselfAndRefusesAMissingProcess) {
  PosixProcessSampler sampler;
  absl::StatusOr<ProcessSample> self = sampler.Sample(getpid());
  ASSERT_TRUE(self.ok()) << self.status();
  EXPECT_GT(self->resident_bytes, 0u);
  EXPECT_GE(self->cpu_seconds, 0.0);
  EXPECT_EQ(sampler.Sample(0).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sampler.Sample(0x3fffffff).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace bulwark
