// Drawing, compiling and dispatching a run's faults (see fault.h).
#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status/check.h"
#include "faultinject/spec.h"
#include "sim/cluster.h"
#include "sim/faults/fault.h"
#include "sim/world.h"

namespace bulwark::sim {

Faults::Faults(World& world, std::vector<std::unique_ptr<Fault>> kinds)
    : world_(world), kinds_(std::move(kinds)) {}

Fault* Faults::KindOf(FaultKind kind) {
  for (const std::unique_ptr<Fault>& fault : kinds_) {
    if (fault->kind() == kind) return fault.get();
  }
  return nullptr;
}

void Faults::Plan() {
  if (world_.config.schedule.has_value()) {
    CompileSchedule(*world_.config.schedule);
    if (!world_.config.failpoints.empty()) {
      CHECK_OK(world_.registry.Configure(world_.config.failpoints));
    }
  } else {
    timed_ = DrawTimed();
  }
}

void Faults::Schedule() {
  for (const FaultEvent& event : timed_) {
    world_.loop.PostAfter(absl::Milliseconds(event.at_ms), [this, event] { Apply(event); });
  }
}

std::vector<FaultEvent> Faults::DrawTimed() {
  std::vector<FaultEvent> events;
  const Scenario& scenario = world_.scenario;
  const FaultMix& mix = scenario.faults;
  const absl::Duration begin = mix.start;
  const absl::Duration end = scenario.workload - mix.end_margin;
  for (const std::unique_ptr<Fault>& fault : kinds_) {
    const double per_min = fault->RatePerMin(mix);
    if (per_min <= 0 || end <= begin) continue;
    // One stream per kind: a change in one kind's rate leaves the others' faults where they were.
    SeededRandom random =
        world_.root_random.Derive(absl::StrCat("faults/", FaultKindName(fault->kind())));
    absl::Duration t = begin + NextGap(random, per_min);
    while (t < end && events.size() < kScheduleEventsMax / 2) {
      FaultEvent event;
      event.kind = fault->kind();
      event.at_ms = Ms(t);
      event.node = static_cast<int>(random.Uniform(static_cast<uint64_t>(scenario.nodes)));
      fault->Draw(mix, random, event);
      events.push_back(event);
      t += NextGap(random, per_min);
    }
  }
  SortSchedule(events);
  return events;
}

// Each failpoint's fires become one configuration in the shared grammar: "6*off->1*crash" fires
// on the 7th hit only.
void Faults::CompileSchedule(const std::vector<FaultEvent>& schedule) {
  std::map<std::string, std::vector<const FaultEvent*>> by_site;
  for (const FaultEvent& event : schedule) {
    if (event.kind == FaultKind::kFailpointFire) {
      by_site[event.site].push_back(&event);
    } else {
      timed_.push_back(event);
    }
  }
  for (auto& [site, fires] : by_site) {
    std::sort(fires.begin(), fires.end(),
              [](const FaultEvent* a, const FaultEvent* b) { return a->hit < b->hit; });
    std::vector<faultinject::Term> terms;
    uint64_t next_hit = 1;
    for (const FaultEvent* fire : fires) {
      if (fire->hit < next_hit) continue;  // The same hit twice: the first one wins.
      if (terms.size() + 2 > faultinject::kTermsPerFailpointMax) break;
      if (fire->hit > next_hit) {
        faultinject::Term skip;
        skip.count = fire->hit - next_hit;
        terms.push_back(skip);
      }
      faultinject::Term term;
      term.count = 1;
      term.action = fire->action;
      terms.push_back(term);
      next_hit = fire->hit + 1;
    }
    CHECK_OK(world_.registry.Set(site, faultinject::FormatActions(terms)));
  }
}

void Faults::Apply(const FaultEvent& event) {
  if (world_.quiet || event.node >= world_.cluster->size()) return;
  Fault* fault = KindOf(event.kind);
  // Failpoint fires are never timed; a kind nobody registered never applies.
  const bool applied = fault != nullptr && fault->Apply(world_, event);
  const std::string kind(FaultKindName(event.kind));
  ++(applied ? world_.result.faults : world_.result.faults_skipped)[kind];
  world_.trace.Add(world_.Now(), event.node, applied ? "fault" : "fault-skipped", event.ToString());
}

void Faults::OnQuiet() {
  for (int n = 0; n < world_.cluster->size(); ++n) {
    for (const std::unique_ptr<Fault>& fault : kinds_) fault->OnQuietNode(world_, n);
  }
  for (const std::unique_ptr<Fault>& fault : kinds_) fault->OnQuiet(world_);
}

void Faults::EnableBuggify() {
  const FaultMix& mix = world_.scenario.faults;
  if (world_.config.schedule.has_value() || !mix.buggify) return;
  faultinject::BuggifyOptions options;
  options.seed = StableHash64("buggify", world_.config.seed);
  options.activation_probability = mix.buggify_activation;
  options.fire_probability = mix.buggify_fire;
  options.rules = mix.buggify_rules;
  world_.registry.EnableBuggify(std::move(options));
}

void Faults::OnFire(const faultinject::FireEvent& event) {
  if (absl::StartsWith(event.name, "bug.")) return;  // Configuration, not a fault.
  ++world_.result.faults["fp"];
  FaultEvent fire;
  fire.kind = FaultKind::kFailpointFire;
  fire.site = std::string(event.name);
  fire.hit = event.hit;
  fire.action = event.action;
  world_.trace.Add(world_.Now(), world_.cluster->active(), "fp-fire", fire.ToString());
  if (!world_.config.schedule.has_value() && event.buggify) fires_.push_back(std::move(fire));
  for (const std::unique_ptr<Fault>& fault : kinds_) fault->OnFire(world_, event);
}

std::vector<FaultEvent> Faults::Recorded() const {
  if (world_.config.schedule.has_value()) return *world_.config.schedule;
  std::vector<FaultEvent> schedule = timed_;
  schedule.insert(schedule.end(), fires_.begin(), fires_.end());
  return schedule;
}

}  // namespace bulwark::sim
