// Crash tests of FileStorage on the simulated file system: a workload of puts and deletes is cut
// off after every one of its file-system steps, with unsynced state dropped or torn, and the
// reopened storage must hold every acknowledged write and nothing half-written.
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/env/random.h"
#include "base/env/sim/sim_file_system.h"
#include "core/storage/file_storage.h"
#include "core/storage/testing/crashing_file_system.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

constexpr absl::string_view kDir = "/data";

struct Op {
  std::string key;
  std::optional<std::string> value;  // nullopt: delete.
};

// Puts and deletes over three keys, values of very different sizes, so that overwrites of a long
// value by a short one (and back) are among them: a torn write would show as a mix.
std::vector<Op> MakeWorkload(uint64_t seed) {
  SeededRandom random(seed);
  std::vector<Op> ops;
  for (int i = 0; i < 14; ++i) {
    Op op{absl::StrCat("dir/key", random.Uniform(3)), std::nullopt};
    if (!random.OneIn(4)) {
      const size_t size = random.OneIn(2) ? random.Uniform(16) : 1000 + random.Uniform(3000);
      op.value = std::string(size, static_cast<char>('a' + i));
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

struct Outcome {
  std::map<std::string, std::string> acknowledged;
  std::optional<Op> in_flight;  // The operation that failed because of the crash.
  bool crashed = false;
};

// Opens the storage over `fs` and applies `ops` until one fails.
Outcome RunWorkload(FileSystem& fs, const std::vector<Op>& ops) {
  Outcome outcome;
  absl::StatusOr<std::unique_ptr<FileStorage>> storage = FileStorage::Open(fs, kDir);
  if (!storage.ok()) {
    outcome.crashed = true;
    return outcome;
  }
  for (const Op& op : ops) {
    absl::Status status =
        op.value.has_value() ? (*storage)->Put(op.key, *op.value) : (*storage)->Delete(op.key);
    if (!status.ok()) {
      EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
      outcome.in_flight = op;
      outcome.crashed = true;
      return outcome;
    }
    if (op.value.has_value()) {
      outcome.acknowledged[op.key] = *op.value;
    } else {
      outcome.acknowledged.erase(op.key);
    }
  }
  return outcome;
}

void CheckRecovered(sim::SimFileSystem& sim, const Outcome& outcome) {
  absl::StatusOr<std::unique_ptr<FileStorage>> reopened = FileStorage::Open(sim, kDir);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  FileStorage& storage = **reopened;
  std::vector<std::string> expected_keys;
  for (const auto& [key, value] : outcome.acknowledged) {
    if (outcome.in_flight.has_value() && outcome.in_flight->key == key) continue;
    expected_keys.push_back(key);
    EXPECT_EQ(*storage.Get(key), std::optional<std::string>(value)) << key;
  }
  std::vector<std::string> listed = *storage.List("");
  if (outcome.in_flight.has_value()) {
    // The interrupted operation took effect entirely or not at all.
    const Op& op = *outcome.in_flight;
    std::optional<std::string> before;
    if (auto it = outcome.acknowledged.find(op.key); it != outcome.acknowledged.end()) {
      before = it->second;
    }
    const std::optional<std::string> now = *storage.Get(op.key);
    EXPECT_TRUE(now == before || now == op.value)
        << op.key << " holds " << (now ? now->substr(0, 20) : "nothing") << " ("
        << (now ? now->size() : 0) << " bytes)";
    if (now.has_value()) expected_keys.push_back(op.key);
    std::sort(expected_keys.begin(), expected_keys.end());
  }
  EXPECT_EQ(listed, expected_keys);
  const std::vector<std::string> names = *sim.ListDir(kDir);
  for (const std::string& name : names) {
    EXPECT_FALSE(absl::EndsWith(name, ".tmp")) << "leftover temporary " << name;
  }
  // Still writable.
  EXPECT_TRUE(storage.Put("after/restart", "ok").ok());
}

TEST(FileStorageCrashTest, EveryStepOfEveryWriteWithBothCrashModes) {
  int runs = 0;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    const std::vector<Op> ops = MakeWorkload(seed);
    uint64_t steps = 0;
    {
      SeededRandom fs_random(seed);
      sim::SimFileSystem sim(fs_random);
      testing::CrashingFileSystem counting(sim, std::nullopt, sim::CrashMode::kDropUnsynced);
      Outcome outcome = RunWorkload(counting, ops);
      ASSERT_FALSE(outcome.crashed);
      steps = counting.mutations();
    }
    ASSERT_GT(steps, 40u);
    for (sim::CrashMode mode : {sim::CrashMode::kDropUnsynced, sim::CrashMode::kTearUnsynced}) {
      for (uint64_t crash_after = 1; crash_after <= steps; ++crash_after) {
        SCOPED_TRACE(absl::StrCat("seed ", seed, ", mode ",
                                  mode == sim::CrashMode::kDropUnsynced ? "drop" : "tear",
                                  ", crash after mutation ", crash_after, " of ", steps));
        SeededRandom fs_random(seed * 1000 + crash_after);
        sim::SimFileSystem sim(fs_random);
        testing::CrashingFileSystem crashing(sim, crash_after, mode);
        Outcome outcome = RunWorkload(crashing, ops);
        ASSERT_TRUE(crashing.crashed());
        CheckRecovered(sim, outcome);
        ++runs;
      }
    }
  }
  std::cout << "crash runs: " << runs << "\n";
}

}  // namespace
}  // namespace bulwark
