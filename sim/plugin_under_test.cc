// The probe history and the probe contract's rule for reads (see plugin_under_test.h).
#include "sim/plugin_under_test.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status/check.h"

namespace bulwark::sim {
namespace {

// How much of a plugin's answer a violation quotes (it is the probe's data, never a secret).
constexpr size_t kQuoteBytesMax = 200;

std::string Quote(const nlohmann::json& data) {
  std::string text = data.dump();
  if (text.size() > kQuoteBytesMax) text = absl::StrCat(text.substr(0, kQuoteBytesMax), "...");
  return text;
}

// "" when `data` has every field of `fields` (values too when `values`), else the first missing.
std::string MissingField(const nlohmann::json& data, const nlohmann::json& fields, bool values) {
  for (const auto& [key, value] : fields.items()) {
    auto it = data.find(key);
    if (it == data.end()) return absl::StrCat("field \"", key, "\" missing");
    if (values && *it != value) {
      return absl::StrCat("field \"", key, "\" is ", Quote(*it), ", expected ", Quote(value));
    }
  }
  return "";
}

}  // namespace

size_t ProbeHistory::Begin(const std::string& path, ProbeOp::Kind kind, uint64_t seq) {
  std::vector<ProbeOp>& ops = ops_[path];
  ProbeOp op;
  op.kind = kind;
  op.sent = seq;
  ops.push_back(op);
  return ops.size() - 1;
}

void ProbeHistory::End(const std::string& path, size_t index, ProbeOp::Outcome outcome,
                       uint64_t seq) {
  auto it = ops_.find(path);
  CHECK(it != ops_.end() && index < it->second.size()) << "no probe operation " << index;
  it->second[index].outcome = outcome;
  it->second[index].end = seq;
}

bool ProbeHistory::MayExist(const std::string& path) const {
  auto it = ops_.find(path);
  if (it == ops_.end()) return false;
  return std::any_of(it->second.begin(), it->second.end(), [](const ProbeOp& op) {
    return op.kind == ProbeOp::Kind::kWrite && op.outcome != ProbeOp::Outcome::kFailed;
  });
}

ProbeRead ProbeHistory::Read(const std::string& path, nlohmann::json data, uint64_t sent,
                             uint64_t at) const {
  ProbeRead read;
  read.path = path;
  read.data = std::move(data);
  read.sent = sent;
  read.at = at;
  auto it = ops_.find(path);
  if (it == ops_.end()) return read;
  // A write or delete takes effect somewhere in [sent, end] (an unknown outcome: any time after
  // it was sent); the read, somewhere in [read.sent, read.at].
  uint64_t cutoff = 0;  // The end of the last delete that surely came before the read.
  for (const ProbeOp& op : it->second) {
    if (op.sent >= at) break;  // Sent after the read answered: cannot precede it.
    read.history.push_back(op);
    if (op.kind == ProbeOp::Kind::kDelete && op.outcome == ProbeOp::Outcome::kAcked &&
        op.end < sent) {
      cutoff = std::max(cutoff, op.end);
    }
  }
  for (const ProbeOp& op : read.history) {
    if (op.outcome == ProbeOp::Outcome::kFailed) continue;
    const bool may_follow_cutoff = op.outcome != ProbeOp::Outcome::kAcked || op.end > cutoff;
    if (op.kind == ProbeOp::Kind::kDelete) {
      if (may_follow_cutoff && !(op.outcome == ProbeOp::Outcome::kAcked && op.end == cutoff)) {
        read.delete_possible = true;
      }
      continue;
    }
    if (may_follow_cutoff) ++read.writes_possibly_before;
    if (op.outcome == ProbeOp::Outcome::kAcked && op.sent > cutoff && op.end < sent) {
      ++read.writes_surely_before;
    }
  }
  if (read.delete_possible) read.writes_surely_before = 0;
  return read;
}

std::string CheckProbeRead(const conformance::BackendProbe& probe, const ProbeRead& read) {
  if (read.data.is_null()) {
    if (read.writes_surely_before > 0) {
      return absl::StrCat("read of \"", read.path, "\" found nothing, but ",
                          read.writes_surely_before,
                          " acknowledged write(s) came before it and no delete in between");
    }
    return "";
  }
  if (!read.data.is_object()) {
    return absl::StrCat("read of \"", read.path,
                        "\" answered data that is not a JSON object: ", Quote(read.data));
  }
  if (read.writes_possibly_before == 0) {
    return absl::StrCat("read of \"", read.path, "\" answered ", Quote(read.data),
                        " although no write could have come before it");
  }
  if (!probe.idempotent_writes) {
    const nlohmann::json first = nlohmann::json::parse(probe.read_fields_json.front());
    const std::string missing = MissingField(read.data, first, /*values=*/false);
    if (missing.empty()) return "";
    return absl::StrCat("read of \"", read.path, "\": ", missing, " in ", Quote(read.data));
  }
  std::string first_mismatch;
  for (const std::string& entry : probe.read_fields_json) {
    const std::string mismatch =
        MissingField(read.data, nlohmann::json::parse(entry), /*values=*/true);
    if (mismatch.empty()) return "";
    if (first_mismatch.empty()) first_mismatch = mismatch;
  }
  return absl::StrCat("read of \"", read.path,
                      "\" does not answer the probe's read_fields: ", first_mismatch, " in ",
                      Quote(read.data));
}

}  // namespace bulwark::sim
