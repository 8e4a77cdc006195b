// The control for the secret scan (//server/e2e:audit_test): with the planted bug
// "bug.audit.data_in_clear" switched on, request data reaches the file unhashed, and the same
// scan finds the secret; with it off, the scan finds nothing. Links the testonly variant.
#include <string>

#include "absl/strings/match.h"
#include "base/env/sim/sim_env.h"
#include "base/log/log.h"
#include "base/storage/in_memory_storage.h"
#include "core/audit/audit.h"
#include "faultinject/registry.h"
#include "gtest/gtest.h"

namespace bulwark::audit {
namespace {

// What the e2e scan does: true when any secret appears in the audit file.
bool ScanFindsASecret(sim::SimEnv& sim, const std::string& path) {
  const std::string text = *sim.fs().ReadFile(path);
  return absl::StrContains(text, "hunter2-SECRET");
}

TEST(AuditPlantedBugTest, TheScanCatchesDataWrittenInClear) {
  for (const bool planted : {false, true}) {
    sim::SimEnv sim(3);
    SeededRandom failpoint_random(4);
    faultinject::Registry registry(failpoint_random);
    sim.env().failpoints = &registry;
    if (planted) {
      ASSERT_TRUE(registry.Set("bug.audit.data_in_clear", "return").ok());
    }
    ASSERT_TRUE(sim.env().fs.CreateDir("/log").ok());
    InMemoryStorage barrier;
    MemoryLogSink log;
    AuditBroker broker(sim.env(), barrier, log);
    ASSERT_TRUE(broker.Enable("file", "file", "", {{"file_path", "/log/a.log"}}).ok());
    const Json data = {{"password", "hunter2-SECRET"}};
    AuditRecord r;
    r.path = "secret/app";
    r.operation = "update";
    r.data = &data;
    ASSERT_TRUE(broker.LogRequest(r).ok());
    EXPECT_EQ(ScanFindsASecret(sim, "/log/a.log"), planted) << (planted ? "planted" : "clean");
    sim.env().failpoints = nullptr;
  }
}

}  // namespace
}  // namespace bulwark::audit
