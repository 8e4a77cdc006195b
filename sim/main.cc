// //sim:sim — the deterministic simulator's command line (see cli.h; `--help` for the flags).
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "sim/cli.h"
#include "sim/crash_report.h"

int main(int argc, char** argv) {
  bulwark::sim::InstallCrashReport();
  std::vector<std::string> args(argv + 1, argv + argc);
  return bulwark::sim::RunCli(args, std::cout, std::cerr, ::isatty(STDERR_FILENO) == 1);
}
