// The Storage contract as a value-parameterised GoogleTest suite, so that every physical backend
// runs it from its own package: InMemoryStorage and FileStorage here (core/storage), EtcdStorage
// in //server/etcd. A backend's test instantiates StorageContractTest with BackendParams.
#ifndef BULWARK_CORE_STORAGE_TESTING_STORAGE_CONTRACT_H_
#define BULWARK_CORE_STORAGE_TESTING_STORAGE_CONTRACT_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/storage/storage.h"
#include "gtest/gtest.h"

namespace bulwark::storage_testing {

// One backend under test. File backends keep their data directory inside `root`, which holds
// nothing else, so a test can check that no write ever lands outside the data directory.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual Storage& storage() = 0;
  // Every path under root (recursively, as "a/b" relative to root, directories included), or
  // nullopt for a backend without files.
  virtual std::optional<std::vector<std::string>> Tree() { return std::nullopt; }
};

struct BackendParam {
  std::string name;
  std::function<std::unique_ptr<Backend>()> make;
};

class StorageContractTest : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override { backend_ = GetParam().make(); }
  Storage& storage() { return backend_->storage(); }

  std::unique_ptr<Backend> backend_;
};

// The test names' suffix: the backend's name.
std::string BackendName(const ::testing::TestParamInfo<BackendParam>& info);

}  // namespace bulwark::storage_testing

#endif  // BULWARK_CORE_STORAGE_TESTING_STORAGE_CONTRACT_H_
