// Shared plumbing of the Env contract suites: the harness parameter and its printable name.
#ifndef BULWARK_BASE_ENV_TESTING_CONTRACT_TEST_UTIL_H_
#define BULWARK_BASE_ENV_TESTING_CONTRACT_TEST_UTIL_H_

#include <memory>
#include <string>

#include "base/env/testing/env_harness.h"
#include "gtest/gtest.h"

namespace bulwark::testing {

struct HarnessParam {
  std::string name;
  EnvHarnessFactory make;
};

inline std::string HarnessName(const ::testing::TestParamInfo<HarnessParam>& info) {
  return info.param.name;
}

// Both implementations every contract suite runs against.
inline ::testing::internal::ValueArray<HarnessParam, HarnessParam> AllHarnesses() {
  return ::testing::Values(HarnessParam{"Posix", [] { return MakePosixEnvHarness(); }},
                           HarnessParam{"Sim", [] { return MakeSimEnvHarness(/*seed=*/1); }});
}

class EnvContractTest : public ::testing::TestWithParam<HarnessParam> {
 protected:
  void SetUp() override { harness_ = GetParam().make(); }
  Env& env() { return harness_->env(); }
  std::unique_ptr<EnvHarness> harness_;
};

}  // namespace bulwark::testing

#endif  // BULWARK_BASE_ENV_TESTING_CONTRACT_TEST_UTIL_H_
