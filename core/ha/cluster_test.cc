// The cluster CA behind the barrier, the certificates issued from it, and the forwarding
// decisions (docs/ha.md, "The cluster port" and "Forwarding").
#include <string>

#include "absl/time/time.h"
#include "base/storage/in_memory_storage.h"
#include "base/storage/storage_errors.h"
#include "core/ha/cluster_ca.h"
#include "core/ha/forwarding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/tls_certs.h"

namespace bulwark::ha {
namespace {

using ::testing::ElementsAre;

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

TEST(ClusterCaTest, CreatedOnceAndKeptInStorage) {
  InMemoryStorage barrier;
  absl::StatusOr<std::optional<ClusterCa>> none = LoadClusterCa(barrier);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());

  absl::StatusOr<ClusterCa> ca = EnsureClusterCa(barrier, kNow);
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<protocol::CertInfo> info = protocol::ParseCertPem(ca->cert_pem);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(info->is_ca);
  EXPECT_TRUE(info->self_signed);
  EXPECT_TRUE(protocol::CheckKeyMatchesCert(ca->cert_pem, ca->key_pem).ok());

  // A second node (or a restart) finds the same CA.
  absl::StatusOr<ClusterCa> again = EnsureClusterCa(barrier, kNow + absl::Hours(1));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->cert_pem, ca->cert_pem);
  EXPECT_EQ(again->key_pem, ca->key_pem);
  absl::StatusOr<std::optional<ClusterCa>> loaded = LoadClusterCa(barrier);
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->cert_pem, ca->cert_pem);
}

TEST(ClusterCaTest, ACorruptEntryIsDataLoss) {
  InMemoryStorage barrier;
  ASSERT_TRUE(barrier.Put(kClusterCaKey, "{\"cert_pem\": 3}").ok());
  EXPECT_EQ(LoadClusterCa(barrier).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(EnsureClusterCa(barrier, kNow).status().code(), absl::StatusCode::kDataLoss);
}

TEST(ClusterCaTest, EachNodesCertificateIsIssuedByTheCa) {
  InMemoryStorage barrier;
  absl::StatusOr<ClusterCa> ca = EnsureClusterCa(barrier, kNow);
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<ClusterTls> a = IssueClusterTls(*ca, kNow);
  absl::StatusOr<ClusterTls> b = IssueClusterTls(*ca, kNow);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(a->key_pem, b->key_pem);  // A fresh key per node.
  EXPECT_EQ(a->ca_pem, ca->cert_pem);
  absl::StatusOr<protocol::CertInfo> leaf = protocol::ParseCertPem(a->cert_pem);
  absl::StatusOr<protocol::CertInfo> root = protocol::ParseCertPem(ca->cert_pem);
  ASSERT_TRUE(leaf.ok() && root.ok());
  EXPECT_EQ(leaf->issuer, root->subject);
  EXPECT_FALSE(leaf->self_signed);
  EXPECT_FALSE(leaf->is_ca);
  EXPECT_THAT(leaf->dns_names, ElementsAre(kClusterServerName));
  EXPECT_THAT(leaf->ext_key_usage, ElementsAre("clientAuth", "serverAuth"));
  EXPECT_TRUE(protocol::CheckKeyMatchesCert(a->cert_pem, a->key_pem).ok());
  EXPECT_EQ(leaf->not_after, kNow + kClusterCertValidity);

  // The CA's key must be the CA certificate's.
  ClusterCa wrong = *ca;
  wrong.key_pem = a->key_pem;
  EXPECT_EQ(IssueClusterTls(wrong, kNow).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ForwardingDecisionTest, StandbyServesForwardsOrRedirects) {
  StandbyRequest r;
  r.forwarding_enabled = true;
  r.active_cluster_addr_known = true;
  EXPECT_EQ(DecideStandby(r), StandbyDisposition::kForward);

  StandbyRequest http_layer = r;
  http_layer.answered_in_http_layer = true;
  EXPECT_EQ(DecideStandby(http_layer), StandbyDisposition::kServe);

  StandbyRequest off = r;
  off.forwarding_enabled = false;  // disable_clustering
  EXPECT_EQ(DecideStandby(off), StandbyDisposition::kRedirect);

  StandbyRequest no_port = r;
  no_port.active_cluster_addr_known = false;
  EXPECT_EQ(DecideStandby(no_port), StandbyDisposition::kRedirect);

  StandbyRequest asked = r;
  asked.client_asked_no_forwarding = true;
  EXPECT_EQ(DecideStandby(asked), StandbyDisposition::kRedirect);

  StandbyRequest twice = r;
  twice.already_forwarded = true;  // Forwarded at most once.
  EXPECT_EQ(DecideStandby(twice), StandbyDisposition::kRedirect);
}

TEST(ForwardingDecisionTest, OnlyAReadOnlyErrorIsResent) {
  EXPECT_TRUE(ShouldResendToActive(ReadOnlyError(), /*already_forwarded=*/false));
  EXPECT_FALSE(ShouldResendToActive(ReadOnlyError(), /*already_forwarded=*/true));
  EXPECT_FALSE(ShouldResendToActive(FencedError("k"), false));
  EXPECT_FALSE(ShouldResendToActive(absl::FailedPreconditionError("cannot write"), false));
  EXPECT_FALSE(ShouldResendToActive(absl::OkStatus(), false));
  // Across the plugin protocol only the text survives.
  EXPECT_TRUE(ShouldResendToActive(ReadOnlyError().message(), false));
  EXPECT_TRUE(ShouldResendToActive(
      R"({"errors":["1 error occurred:\n\t* cannot write to readonly storage\n\n"]})", false));
  EXPECT_FALSE(ShouldResendToActive(ReadOnlyError().message(), /*already_forwarded=*/true));
  EXPECT_FALSE(ShouldResendToActive(absl::string_view("permission denied"), false));
}

}  // namespace
}  // namespace bulwark::ha
