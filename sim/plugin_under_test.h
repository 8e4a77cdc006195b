// A plugin author's backend in the simulator (plugin_simulation_test, sim/defs.bzl): the
// author's C++ backend factory runs as the simulated plugin processes (and the built-in) of every
// data mount, in place of the kv example, and the workload drives it only through its manifest's
// backend probe (docs/conformance.md, "The backend probe"): writes of write_data, reads, and
// deletes when the probe has one, all on the probe path of each data mount.
//
// The history of those operations judges every read (invariant probe_read), and the author may
// add a check of their own (invariant plugin_check): a callback that sees each read with the
// writes that surely and possibly came before it.
#ifndef BULWARK_SIM_PLUGIN_UNDER_TEST_H_
#define BULWARK_SIM_PLUGIN_UNDER_TEST_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "conformance/suite/manifest.h"
#include "nlohmann/json.hpp"
#include "sdk/backend.h"
#include "sim/model.h"

namespace bulwark::sim {

// One write or delete of a probe path, in history sequence numbers.
struct ProbeOp {
  enum class Kind { kWrite, kDelete };
  using Outcome = KvModel::Outcome;  // Acked, failed (surely no effect), unknown.
  Kind kind = Kind::kWrite;
  uint64_t sent = 0;
  uint64_t end = UINT64_MAX;            // When its outcome became known; UINT64_MAX while pending.
  Outcome outcome = Outcome::kUnknown;  // Until it ends: it may take effect at any time.
};

// A read of a probe path as the author's check sees it.
struct ProbeRead {
  std::string path;     // "m0/<write_path>".
  nlohmann::json data;  // Response.data; null when the read found nothing (Vault's 404).
  uint64_t sent = 0;
  uint64_t at = 0;
  // Writes that surely took effect before the read: acknowledged before it was sent, and after
  // every delete that surely preceded it. 0 when a delete may have come in between.
  int writes_surely_before = 0;
  // Writes that may have taken effect before the read answered (sent before it and not refused).
  // The core retries a request once after a lazy reload (as Vault does), so a write that is not
  // idempotent may be applied up to twice: up to 2 * writes_possibly_before applications.
  int writes_possibly_before = 0;
  // A delete (acknowledged or not) may lie between the writes and the read.
  bool delete_possible = false;
  // Every write and delete of the path sent before the read answered, in send order.
  std::vector<ProbeOp> history;
};

// The author's check: "" when the read is consistent with the writes, else what is wrong (no
// secrets: the probe's data comes from the manifest).
using ProbeCheck = std::function<std::string(const ProbeRead& read)>;

struct PluginUnderTest {
  std::string name;  // For reports (the manifest's name).
  sdk::BackendFactory factory;
  conformance::BackendProbe probe;
  ProbeCheck check;  // Optional.
};

// The writes and deletes of every probe path, for the probe_read invariant and the author's check.
class ProbeHistory {
 public:
  // An operation was sent at `seq`; returns its index for End.
  size_t Begin(const std::string& path, ProbeOp::Kind kind, uint64_t seq);
  void End(const std::string& path, size_t index, ProbeOp::Outcome outcome, uint64_t seq);

  // Whether a write of `path` may already have happened (the next write is then an "update",
  // else a "create", as the probe contract says).
  bool MayExist(const std::string& path) const;

  // The read of `path` sent at `sent` and answered at `at` with `data`, with what the history
  // says about the writes before it.
  ProbeRead Read(const std::string& path, nlohmann::json data, uint64_t sent, uint64_t at) const;

 private:
  std::map<std::string, std::vector<ProbeOp>> ops_;
};

// The probe contract's own rule for a read (the probe_read invariant): "" or what is wrong.
//  - nothing found although a write surely came before and no delete may have come in between;
//  - data that is not a JSON object, or found although no write may have come before it;
//  - with idempotent writes, data without the fields (values included) of any read_fields entry;
//    without, data missing a field of read_fields[0] (values depend on how many writes landed).
std::string CheckProbeRead(const conformance::BackendProbe& probe, const ProbeRead& read);

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_PLUGIN_UNDER_TEST_H_
