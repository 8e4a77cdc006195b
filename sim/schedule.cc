// The fault schedule's text form (see schedule.h).
#include "sim/schedule.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status/quote.h"
#include "base/status/status_macros.h"
#include "faultinject/spec.h"

namespace bulwark::sim {
namespace {

constexpr size_t kQuotedBytesMax = 80;
constexpr int64_t kDurationMillisMax = int64_t{24} * 3600 * 1000;
constexpr int64_t kMidOpMutationsMax = 1000;
constexpr int64_t kIndexMax = 1000;

struct KindInfo {
  FaultKind kind;
  absl::string_view name;
  bool has_mode;
  int args;  // Integer arguments after the mode.
};

constexpr KindInfo kKinds[] = {
    {FaultKind::kCrash, "crash", true, 1},
    {FaultKind::kCrashMidOp, "midcrash", true, 2},
    {FaultKind::kKill, "kill", false, 1},
    {FaultKind::kSeal, "seal", false, 1},
    {FaultKind::kClockJump, "jump", false, 1},
    {FaultKind::kArtifactSwap, "swap", false, 2},
    {FaultKind::kPluginCrash, "plugin-crash", false, 1},
    {FaultKind::kPluginHang, "plugin-hang", false, 1},
    {FaultKind::kPluginSlow, "plugin-slow", false, 3},
    {FaultKind::kStepDown, "step-down", false, 1},
    {FaultKind::kPartition, "partition", false, 1},
    {FaultKind::kRotateCredentials, "rotate-credentials", false, 3},
    {FaultKind::kFailpointFire, "fp", false, 0},
    {FaultKind::kTamper, "tamper", false, 3},
    {FaultKind::kHa, "ha", false, 3},
};

const KindInfo& InfoOf(FaultKind kind) {
  for (const KindInfo& info : kKinds) {
    if (info.kind == kind) return info;
  }
  return kKinds[0];
}

std::string Quote(absl::string_view text) { return QuoteForError(text, kQuotedBytesMax); }

absl::Status EventError(absl::string_view event, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("schedule event ", Quote(event), ": ", why));
}

// The accepted range of each integer argument: [lo, hi].
std::pair<int64_t, int64_t> ArgRange(FaultKind kind, int index) {
  switch (kind) {
    case FaultKind::kCrashMidOp:
      if (index == 0) return {1, kMidOpMutationsMax};
      return {0, kDurationMillisMax};
    case FaultKind::kClockJump:
      return {-kDurationMillisMax * 365, kDurationMillisMax * 365};
    case FaultKind::kArtifactSwap:
      if (index == 0) return {0, kIndexMax};
      return {0, kDurationMillisMax};
    case FaultKind::kTamper:
      if (index == 0) return {0, 1};
      if (index == 1) return {0, kIndexMax};
      return {0, kDurationMillisMax};
    case FaultKind::kHa:
      if (index == 0)
        return {0, 10};  // sim/faults/ha.cc's kinds (it was 6: ha:7 and ha:8,
                         // the node<->node cuts, did not replay from text).
      return {0, kDurationMillisMax};
    case FaultKind::kPluginCrash:
    case FaultKind::kPluginHang:
      return {0, kIndexMax};
    case FaultKind::kPluginSlow:
      if (index == 0) return {0, kIndexMax};
      return {0, kDurationMillisMax};
    case FaultKind::kRotateCredentials:
      if (index == 0) return {0, 3};  // How: crash, plugin death, lost reply, unreachable.
      if (index == 1) return {0, 4};  // The rotation step (sim/faults/rotate_credentials.cc).
      return {0, kDurationMillisMax};
    default:
      return {0, kDurationMillisMax};
  }
}

absl::StatusOr<FaultEvent> ParseFire(absl::string_view text) {
  FaultEvent event;
  event.kind = FaultKind::kFailpointFire;
  absl::string_view rest = text.substr(3);  // After "fp:".
  const size_t hash = rest.find('#');
  const size_t eq = rest.find('=');
  if (hash == absl::string_view::npos || eq == absl::string_view::npos || eq < hash) {
    return EventError(text, "a failpoint fire is fp:<name>#<hit>=<action>");
  }
  event.site = std::string(rest.substr(0, hash));
  absl::Status name_ok = faultinject::ValidateFailpointName(event.site);
  if (!name_ok.ok()) return EventError(text, name_ok.message());
  if (!absl::SimpleAtoi(rest.substr(hash + 1, eq - hash - 1), &event.hit) || event.hit == 0) {
    return EventError(text, "the hit number must be an integer >= 1");
  }
  absl::StatusOr<std::vector<faultinject::Term>> terms =
      faultinject::ParseActions(rest.substr(eq + 1));
  if (!terms.ok()) return EventError(text, terms.status().message());
  if (terms->size() != 1 || (*terms)[0].count.has_value() ||
      (*terms)[0].probability_millionths != faultinject::kProbabilityScale || !(*terms)[0].action) {
    return EventError(text, "the action must be one of return(code), delay(ms), hang, crash");
  }
  event.action = (*terms)[0].action;
  return event;
}

absl::StatusOr<FaultEvent> ParseTimed(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  FaultEvent event;
  absl::string_view when = parts[0];
  const size_t at = when.find('@');
  if (at != absl::string_view::npos) {
    if (!absl::SimpleAtoi(when.substr(at + 1), &event.node) || event.node < 0 || event.node > 64) {
      return EventError(text, "the node after '@' must be an integer in [0, 64]");
    }
    when = when.substr(0, at);
  }
  if (!absl::SimpleAtoi(when, &event.at_ms) || event.at_ms < 0 ||
      event.at_ms > kScheduleTimeMillisMax) {
    return EventError(text, "it must start with the simulated time in whole milliseconds");
  }
  if (parts.size() < 2) return EventError(text, "the fault kind is missing");
  const KindInfo* info = nullptr;
  for (const KindInfo& candidate : kKinds) {
    if (candidate.name == parts[1] && candidate.kind != FaultKind::kFailpointFire) {
      info = &candidate;
    }
  }
  if (info == nullptr) {
    return EventError(text, absl::StrCat("unknown fault kind ", Quote(parts[1])));
  }
  event.kind = info->kind;
  const size_t expected = 2 + (info->has_mode ? 1 : 0) + static_cast<size_t>(info->args);
  if (parts.size() != expected) {
    return EventError(text, absl::StrCat(info->name, " takes ", expected - 2, " argument",
                                         expected == 3 ? "" : "s", " after the kind"));
  }
  size_t next = 2;
  if (info->has_mode) {
    if (parts[next] == "drop") {
      event.mode = CrashMode::kDropUnsynced;
    } else if (parts[next] == "tear") {
      event.mode = CrashMode::kTearUnsynced;
    } else {
      return EventError(text, "the crash mode must be drop or tear");
    }
    ++next;
  }
  for (int i = 0; i < info->args; ++i, ++next) {
    int64_t value = 0;
    const auto [lo, hi] = ArgRange(info->kind, i);
    if (!absl::SimpleAtoi(parts[next], &value) || value < lo || value > hi) {
      return EventError(
          text, absl::StrCat("argument ", i + 1, " must be an integer in [", lo, ", ", hi, "]"));
    }
    (i == 0 ? event.a : i == 1 ? event.b : event.c) = value;
  }
  return event;
}

}  // namespace

absl::string_view FaultKindName(FaultKind kind) { return InfoOf(kind).name; }

std::string FaultEvent::ToString() const {
  const KindInfo& info = InfoOf(kind);
  if (kind == FaultKind::kFailpointFire) {
    return absl::StrCat("fp:", site, "#", hit, "=", action.ToString());
  }
  std::string out = absl::StrCat(at_ms);
  if (node != 0) absl::StrAppend(&out, "@", node);
  absl::StrAppend(&out, ":", info.name);
  if (info.has_mode) {
    absl::StrAppend(&out, ":", mode == CrashMode::kDropUnsynced ? "drop" : "tear");
  }
  if (info.args >= 1) absl::StrAppend(&out, ":", a);
  if (info.args >= 2) absl::StrAppend(&out, ":", b);
  if (info.args >= 3) absl::StrAppend(&out, ":", c);
  return out;
}

bool operator==(const FaultEvent& x, const FaultEvent& y) {
  return x.kind == y.kind && x.at_ms == y.at_ms && x.node == y.node && x.mode == y.mode &&
         x.a == y.a && x.b == y.b && x.c == y.c && x.site == y.site && x.hit == y.hit &&
         x.action == y.action;
}

void SortSchedule(std::vector<FaultEvent>& events) {
  std::stable_sort(events.begin(), events.end(), [](const FaultEvent& x, const FaultEvent& y) {
    const bool xf = x.kind == FaultKind::kFailpointFire;
    const bool yf = y.kind == FaultKind::kFailpointFire;
    if (xf != yf) return yf;
    if (xf) return std::tie(x.site, x.hit) < std::tie(y.site, y.hit);
    return std::make_tuple(x.at_ms, x.node, static_cast<int>(x.kind), x.a, x.b, x.c) <
           std::make_tuple(y.at_ms, y.node, static_cast<int>(y.kind), y.a, y.b, y.c);
  });
}

std::string FormatSchedule(const std::vector<FaultEvent>& events) {
  return absl::StrJoin(events, ",", [](std::string* out, const FaultEvent& event) {
    out->append(event.ToString());
  });
}

absl::StatusOr<std::vector<FaultEvent>> ParseSchedule(absl::string_view text) {
  if (text.size() > kScheduleTextBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("schedule is ", text.size(), " bytes; the limit is ", kScheduleTextBytesMax));
  }
  std::vector<FaultEvent> events;
  for (absl::string_view raw : absl::StrSplit(text, ',')) {
    const absl::string_view item = absl::StripAsciiWhitespace(raw);
    if (item.empty()) continue;
    if (events.size() == kScheduleEventsMax) {
      return absl::InvalidArgumentError(
          absl::StrCat("schedule has more than ", kScheduleEventsMax, " events"));
    }
    absl::StatusOr<FaultEvent> event =
        absl::StartsWith(item, "fp:") ? ParseFire(item) : ParseTimed(item);
    if (!event.ok()) return event.status();
    events.push_back(*std::move(event));
  }
  return events;
}

}  // namespace bulwark::sim
