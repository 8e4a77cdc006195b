// Delta debugging of fault schedules (see shrink.h).
#include "sim/shrink.h"

#include <algorithm>
#include <utility>

namespace bulwark::sim {
namespace {

// Candidates that have not failed this long after the original failure are taken to pass: the
// fault that matters has had its chance. Liveness and cap failures show only at the end, so they
// get no such cut.
constexpr absl::Duration kCandidateGrace = absl::Seconds(60);

std::vector<FaultEvent> Chunk(const std::vector<FaultEvent>& items, size_t n, size_t i) {
  const size_t begin = items.size() * i / n;
  const size_t end = items.size() * (i + 1) / n;
  return std::vector<FaultEvent>(items.begin() + static_cast<std::ptrdiff_t>(begin),
                                 items.begin() + static_cast<std::ptrdiff_t>(end));
}

std::vector<FaultEvent> Complement(const std::vector<FaultEvent>& items, size_t n, size_t i) {
  const size_t begin = items.size() * i / n;
  const size_t end = items.size() * (i + 1) / n;
  std::vector<FaultEvent> out(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(begin));
  out.insert(out.end(), items.begin() + static_cast<std::ptrdiff_t>(end), items.end());
  return out;
}

}  // namespace

std::vector<FaultEvent> DeltaDebug(const std::vector<FaultEvent>& items,
                                   const std::function<bool(const std::vector<FaultEvent>&)>& fails,
                                   size_t tests_max, size_t* tests) {
  size_t calls = 0;
  auto test = [&](const std::vector<FaultEvent>& candidate) {
    ++calls;
    return fails(candidate);
  };
  std::vector<FaultEvent> current = items;
  // The cheapest possible answer first: a failure that needs no fault at all.
  if (!current.empty() && calls < tests_max && test({})) current.clear();
  size_t n = 2;
  while (current.size() >= 2 && calls < tests_max) {
    n = std::min(n, current.size());
    bool reduced = false;
    for (size_t i = 0; i < n && !reduced && calls < tests_max; ++i) {
      std::vector<FaultEvent> subset = Chunk(current, n, i);
      if (test(subset)) {
        current = std::move(subset);
        n = 2;
        reduced = true;
      }
    }
    for (size_t i = 0; i < n && !reduced && calls < tests_max && n > 2; ++i) {
      std::vector<FaultEvent> complement = Complement(current, n, i);
      if (test(complement)) {
        current = std::move(complement);
        n = std::max<size_t>(n - 1, 2);
        reduced = true;
      }
    }
    if (!reduced) {
      if (n >= current.size()) break;
      n = std::min(current.size(), 2 * n);
    }
  }
  if (tests != nullptr) *tests = calls;
  return current;
}

ShrinkResult Shrink(const RunConfig& config, const RunResult& failure, size_t runs_max) {
  ShrinkResult result;
  result.invariant = failure.signature();
  result.original_events = failure.schedule.size();
  result.schedule = failure.schedule;
  if (!failure.violations.empty()) result.violation = failure.violations[0];

  RunConfig replay = config;
  replay.record_trace = false;
  replay.stop_at_first_violation = true;
  replay.plant_nondeterminism_for_test = false;
  const bool end_only = result.invariant == "liveness" || result.invariant == "caps";
  auto run = [&](const std::vector<FaultEvent>& schedule, bool cut) {
    RunConfig candidate = replay;
    candidate.schedule = schedule;
    if (cut && !end_only && !failure.violations.empty()) {
      candidate.stop_after = absl::Milliseconds(failure.violations[0].at_ms) + kCandidateGrace;
    }
    ++result.runs;
    return RunSimulation(candidate);
  };

  const RunResult again = run(failure.schedule, /*cut=*/false);
  result.reproduced = again.signature() == result.invariant;
  if (!result.reproduced || runs_max <= 1) return result;

  size_t tests = 0;
  result.schedule = DeltaDebug(
      failure.schedule,
      [&](const std::vector<FaultEvent>& candidate) {
        return run(candidate, /*cut=*/true).signature() == result.invariant;
      },
      runs_max - 1, &tests);

  const RunResult first = run(result.schedule, /*cut=*/false);
  const RunResult second = run(result.schedule, /*cut=*/false);
  result.verified = first.signature() == result.invariant &&
                    second.signature() == result.invariant && first.trace_hash == second.trace_hash;
  if (!first.violations.empty()) result.violation = first.violations[0];
  return result;
}

}  // namespace bulwark::sim
