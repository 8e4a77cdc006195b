// Named failpoints, the site side: code that may be made to fail asks whether its failpoint fires
// and acts on the answer. With no registry installed the check is one atomic load and a
// predicted branch (benchmarks/failpoint_benchmark.cc), so sites stay compiled in everywhere.
//
//   absl::Status FileStorage::Put(...) {
//     ...
//     RETURN_IF_ERROR(BW_FAILPOINT_STATUS("storage.file.put.before_sync"));
//     RETURN_IF_ERROR(file->Sync());
//
//   if (faultinject::Action a = BW_FAILPOINT("plugin.client.call")) { ...act on a... }
//
// Names are lower-case dotted paths naming the component and the step ("storage.file.put.
// before_sync"). Names starting with "bug." are planted bugs (BW_PLANTED_BUG below): they break
// a rule when configured, exist only in testonly builds, and are never chosen by buggify mode.
#ifndef BULWARK_FAULTINJECT_FAILPOINT_H_
#define BULWARK_FAULTINJECT_FAILPOINT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/base/optimization.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/env/executor.h"
#include "base/env/failpoint_source.h"

namespace bulwark::faultinject {

enum class ActionKind : uint8_t {
  kNone,    // The failpoint did not fire: carry on.
  kReturn,  // Fail the operation with `code`.
  kDelay,   // Carry on after `delay`.
  kHang,    // Never complete (until the failpoint is reconfigured, in a real process).
  kCrash,   // The process dies here (a simulated node crash in the simulator).
};

// What a failpoint asks its site to do. Cheap to copy; converts to true when it fired.
struct Action {
  ActionKind kind = ActionKind::kNone;
  absl::StatusCode code = absl::StatusCode::kOk;  // kReturn only; never kOk then.
  absl::Duration delay = absl::ZeroDuration();    // kDelay only.

  explicit operator bool() const { return kind != ActionKind::kNone; }

  static Action Return(absl::StatusCode code) { return {ActionKind::kReturn, code, {}}; }
  static Action Delay(absl::Duration delay) {
    return {ActionKind::kDelay, absl::StatusCode::kOk, delay};
  }
  static Action Hang() { return {ActionKind::kHang, absl::StatusCode::kOk, {}}; }
  static Action Crash() { return {ActionKind::kCrash, absl::StatusCode::kOk, {}}; }

  // For kReturn: Status(code, "failpoint <name> injected <code name>"). OK for other kinds.
  absl::Status ToStatus(absl::string_view name) const;

  // The action in the failpoint grammar: "off", "return(unavailable)", "delay(10)", "hang",
  // "crash".
  std::string ToString() const;

  friend bool operator==(const Action& a, const Action& b) {
    return a.kind == b.kind && a.code == b.code && a.delay == b.delay;
  }
  friend bool operator!=(const Action& a, const Action& b) { return !(a == b); }
};

class Registry;

// Makes `registry` the one every site consults (nullptr: none, every site is off). Explicit, never
// done by a static initializer. The registry must outlive its installation, and installing or
// uninstalling must not race with evaluations in flight: do it at startup, before the threads
// that evaluate start, or (tests, the simulator) on the only thread. See ScopedInstall.
void InstallRegistry(Registry* registry);
Registry* InstalledRegistry();

namespace internal {

extern std::atomic<Registry*> g_installed_registry;

// The slow paths, out of line so that the inline checks stay small.
Action EvaluateInstalled(Registry* registry, absl::string_view name);
absl::Status EvaluateStatusInstalled(Registry* registry, absl::string_view name);

}  // namespace internal

// Returns what failpoint `name` asks for. The site handles every kind itself (an asynchronous
// site schedules its continuation after a kDelay, drops it for kHang, and so on).
inline Action Failpoint(absl::string_view name) {
  Registry* registry = internal::g_installed_registry.load(std::memory_order_acquire);
  if (ABSL_PREDICT_TRUE(registry == nullptr)) return Action();
  return internal::EvaluateInstalled(registry, name);
}

// For synchronous sites: the status to return from the operation. kReturn gives its error; the
// registry's Effects carry out kDelay, kHang and kCrash (a real process sleeps, blocks until the
// failpoint is reconfigured, or aborts; the simulator delays the reply, wedges or crashes the
// node) and the result of that is returned (OK: carry on).
inline absl::Status FailpointStatus(absl::string_view name) {
  Registry* registry = internal::g_installed_registry.load(std::memory_order_acquire);
  if (ABSL_PREDICT_TRUE(registry == nullptr)) return absl::OkStatus();
  return internal::EvaluateStatusInstalled(registry, name);
}

// Per-node forms, for sites in components that know their node's Env: `source` is the Env's
// failpoints. A non-null source is that node's registry and the only one consulted (so two
// simulated nodes in one process are configured apart); nullptr falls back to the installed
// registry, as above (a real process is one node). The source must be a faultinject::Registry.
namespace internal {
Registry* RegistryOf(FailpointSource* source);
}  // namespace internal

inline Action Failpoint(FailpointSource* source, absl::string_view name) {
  if (ABSL_PREDICT_TRUE(source == nullptr)) return Failpoint(name);
  return internal::EvaluateInstalled(internal::RegistryOf(source), name);
}

inline absl::Status FailpointStatus(FailpointSource* source, absl::string_view name) {
  if (ABSL_PREDICT_TRUE(source == nullptr)) return FailpointStatus(name);
  return internal::EvaluateStatusInstalled(internal::RegistryOf(source), name);
}

// What an asynchronous site's caller continues with: OK to carry on, or the injected error.
using Continuation = absl::AnyInvocable<void(absl::Status)>;

namespace internal {
void EvaluateAsyncInstalled(Registry* registry, Executor& executor, absl::string_view name,
                            Continuation next);
}  // namespace internal

// For asynchronous sites, whose caller carries on in a continuation (a reply callback, the next
// step of a launch): the failpoint never blocks the thread that evaluates it, which in a real
// process is the event loop. Not fired: `next(OK)` at once. kReturn: `next(error)` at once.
// kDelay: `next(OK)` is posted on `executor` (the Env's) after the delay. kHang: `next` is
// destroyed without running: the operation never completes, and whatever its owner holds for it
// (a deadline, a watchdog) must notice. kCrash: the registry's Effects decide (the simulator
// crashes the node and `next` gets its status), else the process aborts as at a synchronous site.
inline void FailpointAsync(Executor& executor, absl::string_view name, Continuation next) {
  Registry* registry = internal::g_installed_registry.load(std::memory_order_acquire);
  if (ABSL_PREDICT_TRUE(registry == nullptr)) {
    next(absl::OkStatus());
    return;
  }
  internal::EvaluateAsyncInstalled(registry, executor, name, std::move(next));
}

}  // namespace bulwark::faultinject

namespace bulwark::faultinject::internal {

// Compile-time checks on a site's name literal: planted bugs, and only they, start with "bug.".
template <size_t N>
constexpr bool IsPlantedBugName(const char (&name)[N]) {
  return N > 4 && name[0] == 'b' && name[1] == 'u' && name[2] == 'g' && name[3] == '.';
}
template <bool kPlantedBug>
constexpr void RequireOrdinaryName() {
  static_assert(!kPlantedBug, "a \"bug.*\" failpoint is a planted bug: use BW_PLANTED_BUG");
}
template <bool kPlantedBug>
constexpr void RequirePlantedBugName() {
  static_assert(kPlantedBug, "BW_PLANTED_BUG names must start with \"bug.\"");
}

}  // namespace bulwark::faultinject::internal

// The forms sites use. The name must be a string literal, so that the set of failpoints is the
// set of literals in the source (grep-able, bounded).
#define BW_FAILPOINT(name)                                          \
  (::bulwark::faultinject::internal::RequireOrdinaryName<           \
       ::bulwark::faultinject::internal::IsPlantedBugName(name)>(), \
   ::bulwark::faultinject::Failpoint(::absl::string_view("" name)))
#define BW_FAILPOINT_STATUS(name)                                   \
  (::bulwark::faultinject::internal::RequireOrdinaryName<           \
       ::bulwark::faultinject::internal::IsPlantedBugName(name)>(), \
   ::bulwark::faultinject::FailpointStatus(::absl::string_view("" name)))
// The per-node forms: BW_FAILPOINT_STATUS_IN(env.failpoints, "storage.file.put.before_sync").
#define BW_FAILPOINT_IN(source, name)                               \
  (::bulwark::faultinject::internal::RequireOrdinaryName<           \
       ::bulwark::faultinject::internal::IsPlantedBugName(name)>(), \
   ::bulwark::faultinject::Failpoint((source), ::absl::string_view("" name)))
#define BW_FAILPOINT_STATUS_IN(source, name)                        \
  (::bulwark::faultinject::internal::RequireOrdinaryName<           \
       ::bulwark::faultinject::internal::IsPlantedBugName(name)>(), \
   ::bulwark::faultinject::FailpointStatus((source), ::absl::string_view("" name)))
// An asynchronous site: BW_FAILPOINT_ASYNC(env.executor, "lifecycle.launch.handshake", next).
#define BW_FAILPOINT_ASYNC(executor, name, next)                    \
  (::bulwark::faultinject::internal::RequireOrdinaryName<           \
       ::bulwark::faultinject::internal::IsPlantedBugName(name)>(), \
   ::bulwark::faultinject::FailpointAsync((executor), ::absl::string_view("" name), (next)))

// Planted bugs: a "bug.*" failpoint that, when configured, makes the code break one of its rules
// (skip a hash check, acknowledge before a sync, accept any client certificate), so that the
// simulator's drill and the conformance suite's misbehaving fixtures can show that they catch the
// breakage. They must never ship. A translation unit compiled without BULWARK_PLANTED_BUGS (every
// production build) gets a constant "did not fire" and the name is not emitted: no configuration,
// BULWARK_FAILPOINTS included, can reach the site, and the binary holds no "bug." string. Only the
// testonly "_planted_bugs" library variants (bw_planted_bugs_cc_library in //bazel:defs.bzl) are
// compiled with it. BW_PLANTED_BUG is an Action, BW_PLANTED_BUG_STATUS an absl::Status, like the
// two forms above; the _IN forms take the node's FailpointSource as BW_FAILPOINT_IN does.
#ifdef BULWARK_PLANTED_BUGS
#define BW_PLANTED_BUG(name)                                        \
  (::bulwark::faultinject::internal::RequirePlantedBugName<         \
       ::bulwark::faultinject::internal::IsPlantedBugName(name)>(), \
   ::bulwark::faultinject::Failpoint(::absl::string_view("" name)))
#define BW_PLANTED_BUG_STATUS(name)                                 \
  (::bulwark::faultinject::internal::RequirePlantedBugName<         \
       ::bulwark::faultinject::internal::IsPlantedBugName(name)>(), \
   ::bulwark::faultinject::FailpointStatus(::absl::string_view("" name)))
#define BW_PLANTED_BUG_IN(source, name)                             \
  (::bulwark::faultinject::internal::RequirePlantedBugName<         \
       ::bulwark::faultinject::internal::IsPlantedBugName(name)>(), \
   ::bulwark::faultinject::Failpoint((source), ::absl::string_view("" name)))
#define BW_PLANTED_BUG_STATUS_IN(source, name)                      \
  (::bulwark::faultinject::internal::RequirePlantedBugName<         \
       ::bulwark::faultinject::internal::IsPlantedBugName(name)>(), \
   ::bulwark::faultinject::FailpointStatus((source), ::absl::string_view("" name)))
#else
#define BW_PLANTED_BUG(name)                                        \
  (::bulwark::faultinject::internal::RequirePlantedBugName<         \
       ::bulwark::faultinject::internal::IsPlantedBugName(name)>(), \
   ::bulwark::faultinject::Action())
#define BW_PLANTED_BUG_STATUS(name)                                 \
  (::bulwark::faultinject::internal::RequirePlantedBugName<         \
       ::bulwark::faultinject::internal::IsPlantedBugName(name)>(), \
   ::absl::OkStatus())
#define BW_PLANTED_BUG_IN(source, name)                             \
  ((void)(source),                                                  \
   ::bulwark::faultinject::internal::RequirePlantedBugName<         \
       ::bulwark::faultinject::internal::IsPlantedBugName(name)>(), \
   ::bulwark::faultinject::Action())
#define BW_PLANTED_BUG_STATUS_IN(source, name)                      \
  ((void)(source),                                                  \
   ::bulwark::faultinject::internal::RequirePlantedBugName<         \
       ::bulwark::faultinject::internal::IsPlantedBugName(name)>(), \
   ::absl::OkStatus())
#endif

#endif  // BULWARK_FAULTINJECT_FAILPOINT_H_
