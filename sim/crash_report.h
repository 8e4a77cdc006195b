// A sweep that dies on a signal (a segfault in core code, an abort) still names the seed it was
// running and the command that replays it. The line is formatted before each seed runs
// (ArmCrashReport); the handler only write(2)s it and re-raises the signal with its default
// action, so the process still dies by that signal (and dumps core where it would have).
#ifndef BULWARK_SIM_CRASH_REPORT_H_
#define BULWARK_SIM_CRASH_REPORT_H_

#include "absl/strings/string_view.h"

namespace bulwark::sim {

// The longest armed text; a longer one is cut (its end says so).
inline constexpr size_t kCrashReportBytesMax = 8192;

// Installs the handler for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT, on an alternate stack (a
// stack overflow is reported too). For a composition root (the sim binary); call once, early.
void InstallCrashReport();

// What the handler writes to stderr after "bulwark sim: died on <SIGNAL> while running ": e.g.
// "seed 17 (scenario default)\n  replay:  bazel run //sim -- --seed 17 ...\n". Not signal-safe
// itself (it must not run inside a handler); safe against a signal arriving while it runs.
void ArmCrashReport(absl::string_view text);
// Nothing is running any more: the handler writes only the signal's name.
void DisarmCrashReport();

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_CRASH_REPORT_H_
