// The etcd client against a real etcd: KV, transactions, leases, watches, and errors that name
// the endpoint and the operation.
#include "server/etcd/etcd_client.h"

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/testing/etcd.h"

namespace bulwark::etcd {
namespace {

using ::testing::HasSubstr;

class EtcdClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { etcd_ = new server_testing::EtcdProcess(); }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  void SetUp() override {
    ClientOptions options;
    options.address = etcd_->client_url();
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }
  absl::Status Put(const std::string& key, const std::string& value, int64_t lease = 0) {
    etcdserverpb::PutRequest put;
    put.set_key(key);
    put.set_value(value);
    put.set_lease(lease);
    return client_->Put(put).status();
  }
  std::optional<std::string> Get(const std::string& key) {
    etcdserverpb::RangeRequest range;
    range.set_key(key);
    absl::StatusOr<etcdserverpb::RangeResponse> r = client_->Range(range);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->kvs_size() == 0) return std::nullopt;
    return r->kvs(0).value();
  }

  static server_testing::EtcdProcess* etcd_;
  std::unique_ptr<Client> client_;
};

server_testing::EtcdProcess* EtcdClientTest::etcd_ = nullptr;

TEST(PrefixEndTest, IncrementsTheLastByteThatCanBe) {
  EXPECT_EQ(PrefixEnd("a/"), "a0");
  EXPECT_EQ(PrefixEnd("ab"), "ac");
  EXPECT_EQ(PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixEnd(""), std::string(1, '\0'));
  EXPECT_EQ(PrefixEnd(std::string("\xff\xff", 2)), std::string(1, '\0'));
}

TEST(ClientConnectTest, RefusesAddressesItCannotUse) {
  for (const char* bad : {"", "http://", "127.0.0.1", "http://127.0.0.1:0", "http://h:99999",
                          "http://h:1/path", "https://127.0.0.1:2379"}) {
    ClientOptions options;
    options.address = bad;
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
    EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  ClientOptions list;
  list.address = "http://127.0.0.1:2379,http://127.0.0.2:2379";
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(list);
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->endpoint(), "127.0.0.1:2379");
}

TEST(ClientConnectTest, AnUnreachableEtcdIsAnErrorNamingEndpointAndOperation) {
  ClientOptions options;
  const int port = server_testing::FreeLoopbackPort();  // Nothing listens there.
  options.address = "http://127.0.0.1:" + std::to_string(port);
  options.request_timeout = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  ASSERT_TRUE(client.ok());
  etcdserverpb::RangeRequest range;
  range.set_key("k");
  absl::Status s = (*client)->Range(range).status();
  EXPECT_THAT(s.code(), ::testing::AnyOf(absl::StatusCode::kUnavailable,
                                         absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(s.message(), HasSubstr("etcd 127.0.0.1:" + std::to_string(port) + ": Range: "));
}

TEST_F(EtcdClientTest, PutRangeDeleteAndPrefixRanges) {
  ASSERT_TRUE(Put("/t1/a", "1").ok());
  ASSERT_TRUE(Put("/t1/b/c", "2").ok());
  ASSERT_TRUE(Put("/t1c", "outside").ok());
  EXPECT_EQ(Get("/t1/a"), "1");
  etcdserverpb::RangeRequest range;
  range.set_key("/t1/");
  range.set_range_end(PrefixEnd("/t1/"));
  range.set_keys_only(true);
  absl::StatusOr<etcdserverpb::RangeResponse> r = client_->Range(range);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->kvs_size(), 2);
  EXPECT_EQ(r->kvs(0).key(), "/t1/a");
  EXPECT_EQ(r->kvs(1).key(), "/t1/b/c");
  EXPECT_EQ(r->kvs(0).value(), "");
  etcdserverpb::DeleteRangeRequest del;
  del.set_key("/t1/a");
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> d = client_->DeleteRange(del);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->deleted(), 1);
  EXPECT_EQ(Get("/t1/a"), std::nullopt);
}

TEST_F(EtcdClientTest, TxnAppliesOnlyWhenTheComparisonHolds) {
  ASSERT_TRUE(Put("/t2/guard", "g").ok());
  etcdserverpb::RangeRequest range;
  range.set_key("/t2/guard");
  const int64_t created = client_->Range(range)->kvs(0).create_revision();
  auto txn = [&](int64_t revision, const std::string& value) {
    etcdserverpb::TxnRequest request;
    etcdserverpb::Compare* cmp = request.add_compare();
    cmp->set_key("/t2/guard");
    cmp->set_target(etcdserverpb::Compare::CREATE);
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_create_revision(revision);
    etcdserverpb::PutRequest* put = request.add_success()->mutable_request_put();
    put->set_key("/t2/x");
    put->set_value(value);
    absl::StatusOr<etcdserverpb::TxnResponse> r = client_->Txn(request);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && r->succeeded();
  };
  EXPECT_TRUE(txn(created, "first"));
  EXPECT_EQ(Get("/t2/x"), "first");
  EXPECT_FALSE(txn(created + 1000, "second"));
  EXPECT_EQ(Get("/t2/x"), "first");
}

TEST_F(EtcdClientTest, LeasesRenewAndTheirKeysGoWithThem) {
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> lease = client_->LeaseGrant(absl::Seconds(30));
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(lease->ttl(), 30);
  ASSERT_TRUE(Put("/t3/leased", "v", lease->id()).ok());
  absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> renewed =
      client_->LeaseKeepAliveOnce(lease->id());
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->id(), lease->id());
  EXPECT_GT(renewed->ttl(), 0);
  ASSERT_TRUE(client_->LeaseRevoke(lease->id()).ok());
  EXPECT_EQ(Get("/t3/leased"), std::nullopt);
  // A renewal of a revoked lease reports TTL <= 0 (the lease is gone).
  renewed = client_->LeaseKeepAliveOnce(lease->id());
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_LE(renewed->ttl(), 0);
  EXPECT_THAT(client_->LeaseRevoke(lease->id()).message(), HasSubstr(": LeaseRevoke: "));
}

TEST_F(EtcdClientTest, WatchReportsChangesAfterCreationAndEndsAtItsDeadline) {
  ASSERT_TRUE(Put("/t4/before", "x").ok());
  etcdserverpb::WatchCreateRequest create;
  create.set_key("/t4/");
  create.set_range_end(PrefixEnd("/t4/"));
  absl::StatusOr<std::unique_ptr<WatchStream>> watch = client_->Watch(create, absl::Seconds(60));
  ASSERT_TRUE(watch.ok()) << watch.status();
  EXPECT_GT((*watch)->created_revision(), 0);
  ASSERT_TRUE(Put("/t4/a", "1").ok());
  ASSERT_TRUE(client_
                  ->DeleteRange([] {
                    etcdserverpb::DeleteRangeRequest d;
                    d.set_key("/t4/before");
                    return d;
                  }())
                  .ok());
  std::vector<std::pair<int, std::string>> seen;
  while (seen.size() < 2) {
    absl::StatusOr<std::optional<etcdserverpb::WatchResponse>> next = (*watch)->Next();
    ASSERT_TRUE(next.ok()) << next.status();
    ASSERT_TRUE(next->has_value());
    for (const mvccpb::Event& e : (*next)->events()) seen.emplace_back(e.type(), e.kv().key());
  }
  EXPECT_THAT(seen, ::testing::ElementsAre(
                        std::pair<int, std::string>(mvccpb::Event::PUT, "/t4/a"),
                        std::pair<int, std::string>(mvccpb::Event::DELETE, "/t4/before")));
  // A short-deadline watch with no changes ends with nullopt, not an error.
  absl::StatusOr<std::unique_ptr<WatchStream>> quiet = client_->Watch(create, absl::Seconds(1));
  ASSERT_TRUE(quiet.ok()) << quiet.status();
  absl::StatusOr<std::optional<etcdserverpb::WatchResponse>> none = (*quiet)->Next();
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
}

}  // namespace
}  // namespace bulwark::etcd
