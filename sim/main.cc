// //sim:sim — the deterministic simulator's command line (see cli.h; `--help` for the flags).
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "sim/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return bulwark::sim::RunCli(args, std::cout, std::cerr, ::isatty(STDERR_FILENO) == 1);
}
