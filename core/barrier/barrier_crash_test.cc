// Crash tests of the barrier over FileStorage on the simulated file system: Initialize, and a
// workload of puts, deletes and rotations, are cut off after every file-system step with both
// crash modes; after a restart the barrier must unseal, hold every acknowledged write, and show
// the interrupted operation entirely or not at all.
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/crypto/secure_buffer.h"
#include "base/env/random.h"
#include "base/env/sim/sim_file_system.h"
#include "base/storage/in_memory_storage.h"
#include "core/barrier/barrier.h"
#include "core/storage/file_storage.h"
#include "core/storage/testing/crashing_file_system.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

constexpr absl::string_view kDir = "/data";
constexpr int kShares = 3;
constexpr int kThreshold = 2;

std::vector<std::string> Views(const std::vector<crypto::SecureBuffer>& shares) {
  std::vector<std::string> out;
  for (const crypto::SecureBuffer& share : shares) out.emplace_back(share.view());
  return out;
}

const char* ModeName(sim::CrashMode mode) {
  return mode == sim::CrashMode::kDropUnsynced ? "drop" : "tear";
}

// A FileStorage and a barrier on top of it; either may be missing if opening failed.
struct Stack {
  Stack(FileSystem& fs, uint64_t random_seed) : random(random_seed) {
    absl::StatusOr<std::unique_ptr<FileStorage>> opened = FileStorage::Open(fs, kDir);
    if (!opened.ok()) {
      status = opened.status();
      return;
    }
    storage = *std::move(opened);
    absl::StatusOr<std::unique_ptr<Barrier>> b = Barrier::Open(*storage, random);
    if (!b.ok()) {
      status = b.status();
      return;
    }
    barrier = *std::move(b);
  }
  bool ok() const { return barrier != nullptr; }

  SeededRandom random;
  absl::Status status;
  std::unique_ptr<FileStorage> storage;
  std::unique_ptr<Barrier> barrier;
};

absl::Status UnsealWith(Barrier& barrier, const std::vector<std::string>& shares) {
  for (int i = 0; i < kThreshold; ++i) {
    absl::StatusOr<SealStatus> status = barrier.Unseal(shares[i == 0 ? 0 : shares.size() - 1]);
    if (!status.ok()) return status.status();
  }
  return barrier.sealed() ? absl::InternalError("still sealed") : absl::OkStatus();
}

TEST(BarrierCrashTest, InitializeInterruptedAtEveryStepLeavesAnOpenableBarrier) {
  int runs = 0;
  int initialized_without_ack = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    // The barrier draws the same randomness whatever storage is under it, so a reference run
    // over memory yields the shares that the interrupted Initialize would have returned.
    SeededRandom reference_random(seed);
    InMemoryStorage reference_storage;
    std::unique_ptr<Barrier> reference = *Barrier::Open(reference_storage, reference_random);
    const std::vector<std::string> shares = Views(*reference->Initialize(kShares, kThreshold));

    uint64_t steps = 0;
    {
      SeededRandom fs_random(seed);
      sim::SimFileSystem sim(fs_random);
      testing::CrashingFileSystem counting(sim, std::nullopt, sim::CrashMode::kDropUnsynced);
      Stack stack(counting, seed);
      ASSERT_TRUE(stack.ok()) << stack.status;
      ASSERT_TRUE(stack.barrier->Initialize(kShares, kThreshold).ok());
      steps = counting.mutations();
    }
    ASSERT_GE(steps, 10u);
    for (sim::CrashMode mode : {sim::CrashMode::kDropUnsynced, sim::CrashMode::kTearUnsynced}) {
      for (uint64_t crash_after = 1; crash_after <= steps; ++crash_after) {
        SCOPED_TRACE(absl::StrCat("seed ", seed, ", mode ", ModeName(mode),
                                  ", crash after mutation ", crash_after, " of ", steps));
        SeededRandom fs_random(seed * 1000 + crash_after);
        sim::SimFileSystem sim(fs_random);
        bool acknowledged = false;
        {
          testing::CrashingFileSystem crashing(sim, crash_after, mode);
          Stack stack(crashing, seed);
          if (stack.ok()) {
            absl::StatusOr<std::vector<crypto::SecureBuffer>> result =
                stack.barrier->Initialize(kShares, kThreshold);
            acknowledged = result.ok();
            if (acknowledged) {
              EXPECT_EQ(Views(*result), shares);
            }
          }
          ASSERT_TRUE(crashing.crashed());
        }
        Stack restarted(sim, seed + 100);
        ASSERT_TRUE(restarted.ok()) << restarted.status;
        Barrier& barrier = *restarted.barrier;
        if (acknowledged) {
          EXPECT_TRUE(barrier.initialized());
        }
        if (barrier.initialized()) {
          if (!acknowledged) ++initialized_without_ack;
          ASSERT_TRUE(UnsealWith(barrier, shares).ok());
        } else {
          // Never initialized: initializing again works (over any half-written keyring).
          absl::StatusOr<std::vector<crypto::SecureBuffer>> fresh =
              barrier.Initialize(kShares, kThreshold);
          ASSERT_TRUE(fresh.ok()) << fresh.status();
          ASSERT_TRUE(UnsealWith(barrier, Views(*fresh)).ok());
        }
        ASSERT_TRUE(barrier.Put("after/restart", "works").ok());
        EXPECT_EQ(**barrier.Get("after/restart"), "works");
        ++runs;
      }
    }
  }
  std::cout << "initialize crash runs: " << runs
            << "; initialized although Initialize failed: " << initialized_without_ack << "\n";
}

struct Op {
  enum Kind { kPut, kDelete, kRotate } kind;
  std::string key;
  std::string value;
};

std::vector<Op> MakeWorkload(uint64_t seed) {
  SeededRandom random(seed);
  std::vector<Op> ops;
  for (int i = 0; i < 16; ++i) {
    const uint64_t roll = random.Uniform(10);
    Op op{roll < 6   ? Op::kPut
          : roll < 8 ? Op::kDelete
                     : Op::kRotate,
          absl::StrCat("mount/key", random.Uniform(4)), ""};
    if (op.kind == Op::kPut) {
      const size_t size = random.OneIn(2) ? random.Uniform(20) : 2000 + random.Uniform(2000);
      op.value = std::string(size, static_cast<char>('a' + i));
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

// Entries written (and the rotation done) before the crash runs start: durable and acknowledged.
std::map<std::string, std::string> Prepare(sim::SimFileSystem& sim, uint64_t seed,
                                           std::vector<std::string>& shares) {
  Stack stack(sim, seed);
  EXPECT_TRUE(stack.ok()) << stack.status;
  shares = Views(*stack.barrier->Initialize(kShares, kThreshold));
  EXPECT_TRUE(UnsealWith(*stack.barrier, shares).ok());
  std::map<std::string, std::string> model = {{"mount/key0", "initial 0"},
                                              {"mount/key1", std::string(3000, 'i')},
                                              {"other/untouched", "never written again"}};
  for (const auto& [key, value] : model) {
    EXPECT_TRUE(stack.barrier->Put(key, value).ok());
    EXPECT_TRUE(stack.barrier->Rotate().ok());
  }
  return model;
}

TEST(BarrierCrashTest, PutsDeletesAndRotationsInterruptedAtEveryStep) {
  int runs = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    const std::vector<Op> ops = MakeWorkload(seed);
    uint64_t steps = 0;
    {
      SeededRandom fs_random(seed);
      sim::SimFileSystem sim(fs_random);
      std::vector<std::string> shares;
      Prepare(sim, seed, shares);
      testing::CrashingFileSystem counting(sim, std::nullopt, sim::CrashMode::kDropUnsynced);
      Stack stack(counting, seed + 1);
      ASSERT_TRUE(UnsealWith(*stack.barrier, shares).ok());
      for (const Op& op : ops) {
        ASSERT_TRUE(op.kind == Op::kPut      ? stack.barrier->Put(op.key, op.value).ok()
                    : op.kind == Op::kDelete ? stack.barrier->Delete(op.key).ok()
                                             : stack.barrier->Rotate().ok());
      }
      steps = counting.mutations();
    }
    ASSERT_GE(steps, 30u);
    for (sim::CrashMode mode : {sim::CrashMode::kDropUnsynced, sim::CrashMode::kTearUnsynced}) {
      for (uint64_t crash_after = 1; crash_after <= steps; ++crash_after) {
        SCOPED_TRACE(absl::StrCat("seed ", seed, ", mode ", ModeName(mode),
                                  ", crash after mutation ", crash_after, " of ", steps));
        SeededRandom fs_random(seed * 1000 + crash_after);
        sim::SimFileSystem sim(fs_random);
        std::vector<std::string> shares;
        std::map<std::string, std::string> model = Prepare(sim, seed, shares);
        uint32_t term = 0;
        std::optional<Op> in_flight;
        {
          testing::CrashingFileSystem crashing(sim, crash_after, mode);
          Stack stack(crashing, seed + 1);
          if (stack.ok() && UnsealWith(*stack.barrier, shares).ok()) {
            term = stack.barrier->active_term();
            for (const Op& op : ops) {
              absl::Status status;
              if (op.kind == Op::kPut) {
                status = stack.barrier->Put(op.key, op.value);
              } else if (op.kind == Op::kDelete) {
                status = stack.barrier->Delete(op.key);
              } else {
                status = stack.barrier->Rotate().status();
              }
              if (!status.ok()) {
                EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
                in_flight = op;
                break;
              }
              if (op.kind == Op::kPut) model[op.key] = op.value;
              if (op.kind == Op::kDelete) model.erase(op.key);
              if (op.kind == Op::kRotate) ++term;
            }
          }
          ASSERT_TRUE(crashing.crashed());
        }

        Stack restarted(sim, seed + 2);
        ASSERT_TRUE(restarted.ok()) << restarted.status;
        Barrier& barrier = *restarted.barrier;
        ASSERT_TRUE(UnsealWith(barrier, shares).ok()) << "the keyring must open after a crash";
        if (term != 0) {
          const bool rotating = in_flight.has_value() && in_flight->kind == Op::kRotate;
          EXPECT_TRUE(barrier.active_term() == term ||
                      (rotating && barrier.active_term() == term + 1))
              << "active term " << barrier.active_term() << ", acknowledged " << term;
        }
        std::vector<std::string> expected_keys;
        const bool key_in_flight = in_flight.has_value() && in_flight->kind != Op::kRotate;
        for (const auto& [key, value] : model) {
          if (key_in_flight && key == in_flight->key) continue;
          expected_keys.push_back(key);
          absl::StatusOr<std::optional<std::string>> got = barrier.Get(key);
          ASSERT_TRUE(got.ok()) << key << ": " << got.status();
          EXPECT_EQ(*got, std::optional<std::string>(value)) << key;
        }
        if (key_in_flight) {
          std::optional<std::string> before;
          if (auto it = model.find(in_flight->key); it != model.end()) before = it->second;
          const std::optional<std::string> after =
              in_flight->kind == Op::kPut ? std::optional<std::string>(in_flight->value)
                                          : std::nullopt;
          absl::StatusOr<std::optional<std::string>> got = barrier.Get(in_flight->key);
          ASSERT_TRUE(got.ok()) << got.status();
          EXPECT_TRUE(*got == before || *got == after) << in_flight->key;
          if (got->has_value()) expected_keys.push_back(in_flight->key);
          std::sort(expected_keys.begin(), expected_keys.end());
        }
        EXPECT_EQ(*barrier.List(""), expected_keys);
        // Fully usable: new writes, a new term, and everything still opens.
        ASSERT_TRUE(barrier.Rotate().ok());
        ASSERT_TRUE(barrier.Put("after/restart", "works").ok());
        EXPECT_EQ(**barrier.Get("after/restart"), "works");
        ++runs;
      }
    }
  }
  std::cout << "workload crash runs: " << runs << "\n";
}

}  // namespace
}  // namespace bulwark
