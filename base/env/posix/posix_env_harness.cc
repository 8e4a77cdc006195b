// The EnvHarness for the production Env, so the shared contract suites run against real time,
// real files under $TEST_TMPDIR and real /bin programs.
#include <stdlib.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/env/posix/posix_env.h"
#include "base/env/testing/env_harness.h"
#include "base/status/check.h"

namespace bulwark::testing {
namespace {

class PosixEnvHarness final : public EnvHarness {
 public:
  Env& env() override { return posix_.env(); }

  bool RunUntil(absl::FunctionRef<bool()> done, absl::Duration limit) override {
    return posix_.loop().RunUntil(done, limit);
  }

  std::string ScratchDir() override {
    const char* tmp = getenv("TEST_TMPDIR");
    std::string pattern =
        absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/env_harness_XXXXXX");
    CHECK(mkdtemp(pattern.data()) != nullptr) << "mkdtemp " << pattern << " failed";
    return pattern;
  }

  ProgramRef Echo(const std::vector<std::string>& words) override {
    ProgramRef program{"/bin/echo", {"echo"}};
    program.argv.insert(program.argv.end(), words.begin(), words.end());
    return program;
  }

  ProgramRef ExitWith(int code) override {
    return {"/bin/sh", {"sh", "-c", absl::StrCat("exit ", code)}};
  }

  ProgramRef SleepForever() override { return {"/bin/sleep", {"sleep", "100000"}}; }

  ProgramRef PrintLine(OutputStream stream, const std::string& line) override {
    // The line travels as $1, so no quoting of its contents is needed.
    const char* script = stream == OutputStream::kStdout ? "printf '%s\\n' \"$1\"; echo done"
                                                         : "printf '%s\\n' \"$1\" >&2; echo done";
    return {"/bin/sh", {"sh", "-c", script, "sh", line}};
  }

 private:
  PosixEnv posix_;
};

}  // namespace

std::unique_ptr<EnvHarness> MakePosixEnvHarness() { return std::make_unique<PosixEnvHarness>(); }

}  // namespace bulwark::testing
