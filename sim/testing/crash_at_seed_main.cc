// //sim:sim_crash_at_seed_for_test — the sim binary, plus a way to make one seed of a sweep kill
// the process with a signal, for crash_report_test. Test-only (testonly target): the first two
// arguments are the seed and the signal (SEGV, ABRT, BUS, FPE or ILL); the rest go to the CLI.
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "sim/cli.h"
#include "sim/crash_report.h"

namespace {

int SignalNamed(const std::string& name) {
  if (name == "SEGV") return SIGSEGV;
  if (name == "ABRT") return SIGABRT;
  if (name == "BUS") return SIGBUS;
  if (name == "FPE") return SIGFPE;
  if (name == "ILL") return SIGILL;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t crash_seed = 0;
  const int signal = argc >= 3 ? SignalNamed(argv[2]) : 0;
  if (argc < 3 || !absl::SimpleAtoi(argv[1], &crash_seed) || signal == 0) {
    std::cerr << "usage: " << argv[0] << " SEED SEGV|ABRT|BUS|FPE|ILL [sim flags...]\n";
    return 2;
  }
  bulwark::sim::InstallCrashReport();
  bulwark::sim::CliHooks hooks;
  hooks.seed_starting = [crash_seed, signal](uint64_t seed) {
    if (seed == crash_seed) ::raise(signal);
  };
  std::vector<std::string> args(argv + 3, argv + argc);
  return bulwark::sim::RunCli(args, std::cout, std::cerr, /*progress_bar=*/false, hooks);
}
