// Fault schedules: the faults of one run as data. A run either draws its faults from the seed
// (and records them, including every failpoint that fired) or replays a given schedule, which is
// what shrinking edits. The compact text form is what the report prints for a replay command:
//
//   <ms>[@<node>]:<kind>[:<arg>...]     a timed fault, e.g. 42000:crash:tear:2500
//   fp:<failpoint>#<hit>=<action>       the <hit>-th evaluation of a failpoint fires,
//                                       e.g. fp:storage.file.put.before_sync#7=return(unavailable)
//
// joined by ','. Kinds and their arguments (times in simulated milliseconds):
//   crash:<drop|tear>:<restart_ms>            power loss now; unsynced data dropped or torn
//   midcrash:<drop|tear>:<k>:<restart_ms>     power loss at the k-th file-system mutation from now,
//                                             i.e. in the middle of whatever write is running
//   kill:<restart_ms>                         the process is killed; the disk keeps everything
//   seal:<duration_ms>                        the operator seals, and unseals after the duration
//   jump:<delta_ms>                           the node's wall clock steps (may be negative)
//   swap:<artifact>:<duration_ms>             a plugin artifact is replaced on disk, then restored
//   plugin-crash:<index>, plugin-hang:<index> a running plugin process crashes or hangs
//   plugin-slow:<plugin>:<delay_ms>:<duration_ms>
//                                             every message to and from a plugin's processes is
//                                             delayed for a while (plugin 0 kv, 1 kv-solo)
//   step-down:<duration_ms>                   the node leaves the active role (every plugin
//                                             stops), and takes it back after the duration
//   rotate-credentials:<how>:<step>:<ms>      a root rotation of the database workload with, at
//                                             rotation step <step> (0 WAL write, 1 before
//                                             UpdateUser, 2 its reply, 3 config write, 4 WAL
//                                             delete), how 0: the machine crashes (restart after
//                                             ms), 1: the database plugin's processes die, 2: the
//                                             UpdateUser reply is lost (applied, reported failed),
//                                             3: the database is unreachable for ms
//   partition:<duration_ms>                   a hook for a component not built yet: a run applies
//                                             it only if a node component handles it
#ifndef BULWARK_SIM_SCHEDULE_H_
#define BULWARK_SIM_SCHEDULE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/env/sim/sim_file_system.h"
#include "faultinject/failpoint.h"

namespace bulwark::sim {

inline constexpr size_t kScheduleEventsMax = 4096;
inline constexpr size_t kScheduleTextBytesMax = 256 * 1024;
inline constexpr int64_t kScheduleTimeMillisMax = int64_t{1} << 40;

enum class FaultKind {
  kCrash,
  kCrashMidOp,
  kKill,
  kSeal,
  kClockJump,
  kArtifactSwap,
  kPluginCrash,
  kPluginHang,
  kPluginSlow,
  kStepDown,
  kPartition,
  kRotateCredentials,
  kFailpointFire,
  // tamper:<what>:<artifact>:<duration_ms>, what 0: the artifact is overwritten in place, 1: the
  // signer's line is removed from the allowed-signers file. Appended: earlier kinds keep their
  // numbers.
  kTamper,
  // ha:<what>:<duration_ms>:<param>, on an HA cluster (sim/ha, faults/ha.cc): what 0 the node is
  // cut off from the store, 1 the store is down, 2 the store is slow (param: added latency ms),
  // 3 the node's clock runs at param/1000 of real time, 4 the active node pauses, 5 the active
  // steps down (handing the role on), 6 the active is killed (restarts after the duration).
  kHa,
};

// The name used in schedules and reports: "crash", "midcrash", ..., "fp".
absl::string_view FaultKindName(FaultKind kind);

struct FaultEvent {
  FaultKind kind = FaultKind::kCrash;
  int64_t at_ms = 0;  // Simulated time; unused for kFailpointFire.
  int node = 0;
  CrashMode mode = CrashMode::kDropUnsynced;  // kCrash, kCrashMidOp.
  // Kind-specific integers, in the order of the text form (see above).
  int64_t a = 0;
  int64_t b = 0;
  int64_t c = 0;
  // kFailpointFire: which evaluation of which failpoint fires, and how.
  std::string site;
  uint64_t hit = 0;
  faultinject::Action action;

  std::string ToString() const;
  friend bool operator==(const FaultEvent& x, const FaultEvent& y);
  friend bool operator!=(const FaultEvent& x, const FaultEvent& y) { return !(x == y); }
};

// Timed events by (time, node, kind, a, b); failpoint fires after them by (site, hit). A
// canonical order, so that equal schedules print equally.
void SortSchedule(std::vector<FaultEvent>& events);

std::string FormatSchedule(const std::vector<FaultEvent>& events);

// Parses the text form. InvalidArgument naming the offending event and what is wrong.
absl::StatusOr<std::vector<FaultEvent>> ParseSchedule(absl::string_view text);

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_SCHEDULE_H_
