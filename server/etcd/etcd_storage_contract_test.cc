// The Storage contract on EtcdStorage: one real etcd for the suite, a fresh `path` per test.
#include "absl/strings/str_cat.h"
#include "core/storage/testing/storage_contract.h"
#include "server/etcd/etcd_client.h"
#include "server/etcd/etcd_storage.h"
#include "server/etcd/ha_test_util.h"
#include "server/testing/etcd.h"

namespace bulwark::etcd {
namespace {

using storage_testing::StorageContractTest;

server_testing::EtcdProcess* shared_etcd = nullptr;

server_testing::EtcdProcess& SharedEtcd() {
  if (shared_etcd == nullptr) shared_etcd = new server_testing::EtcdProcess();
  return *shared_etcd;
}

// Stops the shared etcd after the last test.
class EtcdEnvironment final : public ::testing::Environment {
 public:
  void TearDown() override {
    delete shared_etcd;
    shared_etcd = nullptr;
  }
};

const ::testing::Environment* const kEtcdEnvironment =
    ::testing::AddGlobalTestEnvironment(new EtcdEnvironment());

class EtcdBackend final : public storage_testing::Backend {
 public:
  EtcdBackend() {
    static int counter = 0;
    ClientOptions options;
    options.address = SharedEtcd().client_url();
    client_ = *Client::Connect(options);
    storage_ = std::make_unique<EtcdStorage>(*client_, absl::StrCat("contract-", ++counter));
  }
  Storage& storage() override { return *storage_; }

 private:
  std::unique_ptr<Client> client_;
  std::unique_ptr<EtcdStorage> storage_;
};

// The active node's view: holding the lock, every write a fenced Txn, reads from its cache.
class FencedEtcdBackend final : public storage_testing::Backend {
 public:
  FencedEtcdBackend() {
    static int counter = 0;
    node_ = std::make_unique<ha_testing::Node>(SharedEtcd(),
                                               absl::StrCat("/contract-fenced-", ++counter, "/"));
    node_->Campaign("uuid");
    EXPECT_TRUE(node_->WaitWon());
    EXPECT_TRUE(node_->won->ok());
    if (node_->won->ok()) node_->storage->FenceOn(**node_->won);
  }
  Storage& storage() override { return *node_->storage; }

 private:
  std::unique_ptr<ha_testing::Node> node_;
};

INSTANTIATE_TEST_SUITE_P(
    Etcd, StorageContractTest,
    ::testing::Values(storage_testing::BackendParam{"Etcd",
                                                    [] { return std::make_unique<EtcdBackend>(); }},
                      storage_testing::BackendParam{
                          "EtcdFenced", [] { return std::make_unique<FencedEtcdBackend>(); }}),
    storage_testing::BackendName);

}  // namespace
}  // namespace bulwark::etcd
