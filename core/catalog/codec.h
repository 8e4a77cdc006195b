// The stored form of catalog records: JSON shaped like Vault's pluginutil.PluginRunner and
// pluginutil.PinnedVersion, so the records read like Vault's and a Vault entry decodes here.
//
//   entry: {"name":"kv","type":"secret","version":"v1.2.3","command":"kv-plugin",
//           "args":["-x"],"env":["K=V"],"sha256":"<base64 of the 32 raw bytes>","builtin":false}
//   pin:   {"name":"kv","type":"secret","version":"v1.2.3"}
//
// A signed entry adds, after "builtin", bulwark's own fields (Vault ignores them):
//   "signature":"-----BEGIN SSH SIGNATURE-----\n...","signer_principal":"alice@example.com",
//   "signer_fingerprint":"SHA256:<base64>"
// An unsigned entry is encoded without them, exactly as before they existed, and a record
// without them (older, or Vault's) decodes as unsigned.
//
// Decoding accepts what Vault writes too: "type" as a string or as consts.PluginType's number
// (1 auth, 2 database, 3 secret), null for empty lists, unknown fields (skipped), and "oci_image"
// and "runtime" when empty. Every decoded field passes the same validation as a registration.
#ifndef BULWARK_CORE_CATALOG_CODEC_H_
#define BULWARK_CORE_CATALOG_CODEC_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/catalog/plugin_entry.h"

namespace bulwark::catalog {

// Nesting deeper than this in a stored record (inside unknown fields) is refused as corrupt.
inline constexpr int kJsonDepthMax = 32;

struct PinRecord {
  PluginType type = PluginType::kSecret;
  std::string name;
  std::string version;  // Normalised, never "".

  friend bool operator==(const PinRecord& a, const PinRecord& b) {
    return a.type == b.type && a.name == b.name && a.version == b.version;
  }
};

// Encodes a user entry. REQUIRES: `entry` passed validation and is not a built-in.
std::string EncodeEntry(const CatalogEntry& entry);

// Decodes and validates an entry record. DataLoss (catalog.storage_corrupt) naming the field if
// the JSON is malformed, a field has the wrong JSON type or fails validation, the record claims
// to be a built-in, or it names an OCI image or runtime (not supported).
absl::StatusOr<CatalogEntry> DecodeEntry(absl::string_view json);

// Encodes a pin. REQUIRES: validated fields.
std::string EncodePin(const PinRecord& pin);

// Decodes and validates a pin record. DataLoss (catalog.storage_corrupt) as for DecodeEntry.
absl::StatusOr<PinRecord> DecodePin(absl::string_view json);

}  // namespace bulwark::catalog

#endif  // BULWARK_CORE_CATALOG_CODEC_H_
