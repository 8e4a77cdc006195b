// The key/value model's bookkeeping and checks (see model.h).
#include "sim/model.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "base/env/random.h"
#include "base/status/check.h"

namespace bulwark::sim {
namespace {

std::string Describe(const KvModel::Value& value) {
  if (!value.has_value()) return "absent";
  return absl::StrCat("a value of ", value->size(), " bytes (digest ",
                      StableHash64(*value) % 1000000, ")");
}

}  // namespace

uint64_t KvModel::BeginWrite(const std::string& key, Value value, uint64_t seq) {
  KeyState& state = keys_[key];
  if (state.versions.empty()) {
    state.versions.push_back(Version{0, std::nullopt, 0, uint64_t{0}, false});
  }
  CHECK(state.versions.size() < kModelVersionsPerKeyMax) << "model: too many versions of a key";
  if (value.has_value()) ever_written_.insert(StableHash64(*value));
  Version version;
  version.number = state.next_number++;
  version.value = std::move(value);
  version.sent = seq;
  state.versions.push_back(std::move(version));
  return state.versions.back().number;
}

void KvModel::EndWrite(const std::string& key, uint64_t number, Outcome outcome, uint64_t seq) {
  auto it = keys_.find(key);
  CHECK(it != keys_.end()) << "model: EndWrite of an unknown key";
  for (Version& version : it->second.versions) {
    if (version.number != number) continue;
    if (outcome == Outcome::kAcked) version.acked = seq;
    if (outcome == Outcome::kFailed) version.failed = true;
    return;
  }
  CHECK(false) << "model: EndWrite of an unknown version";
}

bool KvModel::Allowed(const KeyState* state, bool presence_only, const Value& value, uint64_t sent,
                      uint64_t answered) const {
  auto matches = [&](const Value& candidate) {
    if (presence_only) return candidate.has_value() == value.has_value();
    return candidate == value;
  };
  if (state == nullptr) return matches(std::nullopt);
  // The last version acknowledged before the operation was sent: everything older is dead.
  size_t base = 0;
  for (size_t i = 0; i < state->versions.size(); ++i) {
    const Version& v = state->versions[i];
    if (v.acked.has_value() && *v.acked < sent) base = i;
  }
  for (size_t i = 0; i < state->versions.size(); ++i) {
    const Version& v = state->versions[i];
    if (v.failed || v.sent >= answered) continue;
    // Older than the base, only a write of unknown outcome may still show.
    if (i < base && v.acked.has_value()) continue;
    if (matches(v.value)) return true;
  }
  return false;
}

Verdict KvModel::Explain(const std::string& key, const KeyState* state, const Value& value,
                         bool presence_only, uint64_t sent, uint64_t answered) const {
  Verdict verdict;
  if (Allowed(state, presence_only, value, sent, answered)) return verdict;
  verdict.ok = false;
  const std::string observed =
      presence_only ? (value.has_value() ? "present" : "absent") : Describe(value);
  bool seen_before = !value.has_value();  // Absence is what every key starts as.
  if (value.has_value() && !presence_only) {
    seen_before = ever_written_.count(StableHash64(*value)) > 0;
  } else if (value.has_value() && state != nullptr) {
    for (const Version& v : state->versions) seen_before |= v.value.has_value();
  }
  std::string expected;
  if (state != nullptr) {
    // The most recent versions only: enough to see what was lost, bounded in size.
    constexpr size_t kVersionsShownMax = 6;
    const size_t skip =
        state->versions.size() > kVersionsShownMax ? state->versions.size() - kVersionsShownMax : 0;
    if (skip > 0) expected = absl::StrCat("(", skip, " older)");
    for (const Version& v : absl::MakeConstSpan(state->versions).subspan(skip)) {
      absl::StrAppend(&expected, expected.empty() ? "" : ", ", "#", v.number, " ",
                      Describe(v.value), " sent@", v.sent,
                      v.acked.has_value() ? absl::StrCat(" acked@", *v.acked) : "",
                      v.failed ? " failed" : "");
    }
  }
  verdict.invariant = seen_before ? "durability" : "phantom_read";
  verdict.detail = absl::StrCat(presence_only ? "listing" : "read", " of key \"", key, "\" (sent@",
                                sent, ", answered@", answered, ") saw ", observed,
                                seen_before ? ", which an acknowledged later write had replaced"
                                            : ", which was never written",
                                "; versions: ", expected.empty() ? "none" : expected);
  return verdict;
}

Verdict KvModel::CheckRead(const std::string& key, const Value& value, uint64_t sent,
                           uint64_t answered) const {
  auto it = keys_.find(key);
  return Explain(key, it == keys_.end() ? nullptr : &it->second, value, false, sent, answered);
}

Verdict KvModel::CheckPresence(const std::string& key, bool present, uint64_t sent,
                               uint64_t answered) const {
  auto it = keys_.find(key);
  const Value marker = present ? Value(std::string()) : std::nullopt;
  return Explain(key, it == keys_.end() ? nullptr : &it->second, marker, true, sent, answered);
}

Verdict KvModel::CheckList(absl::string_view prefix, const std::vector<std::string>& keys,
                           uint64_t sent, uint64_t answered) const {
  std::set<absl::string_view> listed(keys.begin(), keys.end());
  for (const std::string& key : keys) {
    if (!absl::StartsWith(key, prefix) || keys_.find(key) == keys_.end()) {
      Verdict verdict;
      verdict.ok = false;
      verdict.invariant = "phantom_read";
      verdict.detail = absl::StrCat("listing of \"", prefix, "\" (sent@", sent, ") shows key \"",
                                    key, "\", which was never written");
      return verdict;
    }
  }
  for (auto it = keys_.lower_bound(std::string(prefix));
       it != keys_.end() && absl::StartsWith(it->first, prefix); ++it) {
    Verdict verdict = CheckPresence(it->first, listed.count(it->first) > 0, sent, answered);
    if (!verdict.ok) return verdict;
  }
  return Verdict();
}

bool KvModel::Settled(const std::string& key, Value* value) const {
  auto it = keys_.find(key);
  if (it == keys_.end()) {
    *value = std::nullopt;
    return true;
  }
  const std::vector<Version>& versions = it->second.versions;
  for (auto v = versions.rbegin(); v != versions.rend(); ++v) {
    if (v->failed) continue;
    if (!v->acked.has_value()) return false;
    *value = v->value;
    return true;
  }
  return false;
}

void KvModel::Prune(uint64_t oldest_running_read) {
  for (auto& [key, state] : keys_) {
    size_t base = 0;
    for (size_t i = 0; i < state.versions.size(); ++i) {
      const Version& v = state.versions[i];
      if (v.acked.has_value() && *v.acked < oldest_running_read) base = i;
    }
    if (base == 0) continue;
    // Writes of unknown outcome stay: they may still take effect.
    std::vector<Version> kept;
    for (size_t i = 0; i < state.versions.size(); ++i) {
      const Version& v = state.versions[i];
      if (i >= base || (!v.acked.has_value() && !v.failed))
        kept.push_back(std::move(state.versions[i]));
    }
    state.versions = std::move(kept);
  }
}

std::vector<std::string> KvModel::Keys() const {
  std::vector<std::string> out;
  out.reserve(keys_.size());
  for (const auto& [key, state] : keys_) out.push_back(key);
  return out;
}

size_t KvModel::version_count() const {
  size_t n = 0;
  for (const auto& [key, state] : keys_) n += state.versions.size();
  return n;
}

}  // namespace bulwark::sim
