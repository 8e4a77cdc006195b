// The cluster port's certificate authority (docs/ha.md, "The cluster port"): created once per
// cluster, by the first node that becomes active after sys/init, and kept behind the barrier at
// "core/cluster/ca" (so only an unsealed node can read it). Every unsealed node issues itself a
// leaf certificate from it for the cluster port's mutual TLS: a node proves it belongs to the
// cluster by having been unsealed.
//
// The key material is production-only (OpenSSL's RNG, through protocol/tls_certs): the
// simulator does not call this; its nodes forward over simulated links (docs/ha.md, "Seams").
#ifndef BULWARK_CORE_HA_CLUSTER_CA_H_
#define BULWARK_CORE_HA_CLUSTER_CA_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/storage/storage.h"

namespace bulwark::ha {

inline constexpr char kClusterCaKey[] = "core/cluster/ca";
// The name every node's cluster certificate carries and every client verifies.
inline constexpr char kClusterServerName[] = "bulwark-cluster";
inline constexpr absl::Duration kClusterCaValidity = absl::Hours(24 * 365 * 10);
inline constexpr absl::Duration kClusterCertValidity = absl::Hours(24 * 365);

struct ClusterCa {
  std::string cert_pem;
  std::string key_pem;  // Secret: never logged.
};

// A node's TLS material for the cluster port: the CA to trust and its own certificate.
struct ClusterTls {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;  // Secret: never logged.
};

// The CA at kClusterCaKey, or nullopt when none was created yet. DataLoss for an entry that
// does not decode.
absl::StatusOr<std::optional<ClusterCa>> LoadClusterCa(Storage& barrier);

// The CA at kClusterCaKey, created and written there first when there is none (the active
// node's fenced barrier view: a standby's write fails read-only).
absl::StatusOr<ClusterCa> EnsureClusterCa(Storage& barrier, absl::Time now);

// A fresh key and a certificate for it issued by `ca`, named kClusterServerName.
absl::StatusOr<ClusterTls> IssueClusterTls(const ClusterCa& ca, absl::Time now);

}  // namespace bulwark::ha

#endif  // BULWARK_CORE_HA_CLUSTER_CA_H_
