#include "core/ha/cluster_ca.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status/status_macros.h"
#include "nlohmann/json.hpp"
#include "protocol/tls_certs.h"

namespace bulwark::ha {

absl::StatusOr<std::optional<ClusterCa>> LoadClusterCa(Storage& barrier) {
  ASSIGN_OR_RETURN(std::optional<std::string> value, barrier.Get(kClusterCaKey));
  if (!value.has_value()) return std::optional<ClusterCa>();
  nlohmann::json j = nlohmann::json::parse(value->begin(), value->end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("cert_pem") || !j.contains("key_pem") ||
      !j["cert_pem"].is_string() || !j["key_pem"].is_string()) {
    return absl::DataLossError(
        absl::StrCat("cluster CA at ", kClusterCaKey, ": not a {cert_pem, key_pem} object"));
  }
  ClusterCa ca;
  ca.cert_pem = j["cert_pem"].get<std::string>();
  ca.key_pem = j["key_pem"].get<std::string>();
  return std::optional<ClusterCa>(std::move(ca));
}

absl::StatusOr<ClusterCa> EnsureClusterCa(Storage& barrier, absl::Time now) {
  ASSIGN_OR_RETURN(std::optional<ClusterCa> existing, LoadClusterCa(barrier));
  if (existing.has_value()) return *std::move(existing);
  ASSIGN_OR_RETURN(protocol::SelfSignedCert cert,
                   protocol::GenerateCaCert("bulwark cluster CA", kClusterCaValidity, now));
  ClusterCa ca;
  ca.cert_pem = std::move(cert.cert_pem);
  ca.key_pem = std::move(cert.key_pem);
  nlohmann::json j = {{"cert_pem", ca.cert_pem}, {"key_pem", ca.key_pem}};
  RETURN_IF_ERROR(barrier.Put(kClusterCaKey, j.dump()));
  return ca;
}

absl::StatusOr<ClusterTls> IssueClusterTls(const ClusterCa& ca, absl::Time now) {
  ASSIGN_OR_RETURN(
      protocol::SelfSignedCert leaf,
      protocol::IssueCert(ca.cert_pem, ca.key_pem, kClusterServerName, kClusterCertValidity, now));
  ClusterTls tls;
  tls.ca_pem = ca.cert_pem;
  tls.cert_pem = std::move(leaf.cert_pem);
  tls.key_pem = std::move(leaf.key_pem);
  return tls;
}

}  // namespace bulwark::ha
