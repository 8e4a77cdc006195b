// The simulated side of the Env contract suites: SimEnv plus simulated stand-ins for echo, sh
// and sleep installed as executables in the simulated file system.
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "base/env/sim/sim_env.h"
#include "base/env/testing/env_harness.h"
#include "base/status/check.h"

namespace bulwark::testing {
namespace {

using sim::SimProcessContext;
using sim::SimProgram;

// argv: echo WORD...
class EchoProgram : public SimProgram {
 public:
  void Start(SimProcessContext& ctx) override {
    std::vector<std::string> words(ctx.argv().begin() + 1, ctx.argv().end());
    ctx.Write(OutputStream::kStdout, absl::StrJoin(words, " ") + "\n");
    ctx.Exit(0);
  }
};

// argv: exit CODE
class ExitProgram : public SimProgram {
 public:
  void Start(SimProcessContext& ctx) override {
    int code = 0;
    CHECK(ctx.argv().size() == 2 && absl::SimpleAtoi(ctx.argv()[1], &code));
    ctx.Exit(code);
  }
};

// argv: sleep
class SleepProgram : public SimProgram {
 public:
  void Start(SimProcessContext&) override {}
};

// argv: printline stdout|stderr LINE
class PrintLineProgram : public SimProgram {
 public:
  void Start(SimProcessContext& ctx) override {
    CHECK(ctx.argv().size() == 3);
    OutputStream stream = ctx.argv()[1] == "stderr" ? OutputStream::kStderr : OutputStream::kStdout;
    // Write in pieces, as a pipe delivers them, to exercise line reassembly.
    const std::string text = ctx.argv()[2] + "\n";
    for (size_t i = 0; i < text.size(); i += 4096) ctx.Write(stream, text.substr(i, 4096));
    ctx.Write(OutputStream::kStdout, "done\n");
    ctx.Exit(0);
  }
};

class SimEnvHarness final : public EnvHarness {
 public:
  explicit SimEnvHarness(uint64_t seed) : sim_(seed) {
    sim::SimFileSystem& fs = sim_.fs();
    CHECK_OK(fs.CreateDir("/bin", 0755));
    CHECK_OK(fs.CreateDir("/tmp", 01777));
    Install("echo", [] { return std::make_unique<EchoProgram>(); });
    Install("exit", [] { return std::make_unique<ExitProgram>(); });
    Install("sleep", [] { return std::make_unique<SleepProgram>(); });
    Install("printline", [] { return std::make_unique<PrintLineProgram>(); });
  }

  Env& env() override { return sim_.env(); }

  bool RunUntil(absl::FunctionRef<bool()> done, absl::Duration limit) override {
    return sim_.loop().RunUntil(done, limit);
  }

  std::string ScratchDir() override {
    std::string dir = "/tmp/scratch" + std::to_string(++scratch_count_);
    CHECK_OK(sim_.fs().CreateDir(dir, 0700));
    return dir;
  }

  ProgramRef Echo(const std::vector<std::string>& words) override {
    ProgramRef ref{"/bin/echo", {"echo"}};
    ref.argv.insert(ref.argv.end(), words.begin(), words.end());
    return ref;
  }
  ProgramRef ExitWith(int code) override {
    return ProgramRef{"/bin/exit", {"exit", std::to_string(code)}};
  }
  ProgramRef SleepForever() override { return ProgramRef{"/bin/sleep", {"sleep"}}; }
  ProgramRef PrintLine(OutputStream stream, const std::string& line) override {
    return ProgramRef{"/bin/printline",
                      {"printline", stream == OutputStream::kStderr ? "stderr" : "stdout", line}};
  }

 private:
  void Install(const std::string& name, sim::SimProgramFactory factory) {
    sim_.launcher().RegisterProgram(name, std::move(factory));
    CHECK_OK(sim_.fs().WriteFileDurably("/bin/" + name,
                                        sim::SimProcessLauncher::ExecutableContents(name), 0755));
  }

  sim::SimEnv sim_;
  int scratch_count_ = 0;
};

}  // namespace

std::unique_ptr<EnvHarness> MakeSimEnvHarness(uint64_t seed) {
  return std::make_unique<SimEnvHarness>(seed);
}

}  // namespace bulwark::testing
