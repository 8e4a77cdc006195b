// The server's configuration file: Vault's JSON config shape, for the subset bulwark serves.
//
//   {
//     "storage": {"file": {"path": "/var/lib/bulwark"}},      or {"inmem": {}}, or
//                {"etcd": {"address": "http://127.0.0.1:2379", "path": "/vault/",
//                          "ha_enabled": "true", "lock_ttl": "15s", "request_timeout": "5s"}}
//     "listener": {"tcp": {"address": "127.0.0.1:8200", "tls_cert_file": "...",
//                          "tls_key_file": "...", "tls_disable": false,
//                          "cluster_address": "127.0.0.1:8201",
//                          "max_request_size": 33554432}},   (or a list holding one listener)
//     "plugin_directory": "/etc/bulwark/plugins",
//     "api_addr": "https://bulwark.example:8200", "cluster_addr": "https://...:8201",
//     "disable_mlock": true, "log_level": "info", "max_request_size": 33554432, "ui": false,
//     "disable_clustering": false,              (Vault's: no cluster port, no forwarding)
//     "performance_standby": false,             (bulwark's; see ServerConfig)
//     "performance_standby_cached_reads": true, (bulwark's; see ServerConfig)
//     "disable_plugin_automtls": false,         (bulwark's; see ServerConfig)
//     "plugin_signature_policy": "required",    (bulwark's: off, warn, required; docs/security.md)
//     "plugin_allowed_signers_file": "/etc/bulwark/allowed_signers"
//   }
//
// Unknown keys and values of the wrong type are errors naming the key path
// ("listener.tcp.adress: unknown key"). HCL is not read: write the file as JSON.
#ifndef BULWARK_SERVER_CONFIG_CONFIG_H_
#define BULWARK_SERVER_CONFIG_CONFIG_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/log/log.h"

namespace bulwark::config {

// Vault's default max_request_size (32 MiB), and the most bulwark accepts.
inline constexpr size_t kDefaultMaxRequestBytes = size_t{32} << 20;
inline constexpr size_t kMaxRequestBytesMax = size_t{1} << 30;
// Largest configuration file read.
inline constexpr size_t kConfigBytesMax = size_t{1} << 20;

// storage "etcd" (docs/ha.md): Vault's etcd backend keys, v3 API only.
struct EtcdStorageConfig {
  std::string address = "http://127.0.0.1:2379";  // The first of a comma-separated list is used.
  std::string path = "/vault/";                   // Key prefix, as Vault's `path`.
  bool ha_enabled = false;                        // Take the HA lock at unseal.
  absl::Duration lock_ttl = absl::Seconds(15);    // The lock lease's TTL (Vault: lock_timeout).
  absl::Duration request_timeout = absl::Seconds(5);
};

// lock_ttl bounds: the lease margin (docs/ha.md) needs at least 2 s.
inline constexpr absl::Duration kLockTtlMin = absl::Seconds(2);
inline constexpr absl::Duration kLockTtlMax = absl::Hours(1);

struct StorageConfig {
  enum class Kind { kFile, kInmem, kEtcd };
  Kind kind = Kind::kInmem;
  std::string path;        // kFile: the data directory.
  EtcdStorageConfig etcd;  // kEtcd.
};

struct ListenerConfig {
  std::string address = "127.0.0.1:8200";  // host:port; port 0 picks a free port.
  // Vault's listener key: where the cluster port listens (host:port; port 0 picks one). "" :
  // the host:port of cluster_addr. docs/ha.md, "The cluster port".
  std::string cluster_address;
  std::string tls_cert_file;
  std::string tls_key_file;
  bool tls_disable = false;
};

struct ServerConfig {
  StorageConfig storage;
  ListenerConfig listener;
  std::string plugin_directory;  // "" when external plugins are not allowed.
  std::string api_addr;
  std::string cluster_addr;
  // Vault's key: no cluster port and no request forwarding on this node (its standbys answer
  // 307 as before). docs/ha.md, "Forwarding".
  bool disable_clustering = false;
  // bulwark's key (Vault Enterprise has the inverse, disable_performance_standby, and its
  // standbys are performance standbys by default): while not active, this node is a performance
  // standby: it runs its plugins and serves reads; a write is re-sent to the active node. Needs
  // HA on etcd and the cluster port. docs/ha.md, "Performance standbys".
  bool performance_standby = false;
  // bulwark's key: a performance standby answers storage reads from memory, kept fresh by its
  // etcd watch (docs/ha.md, "Reads on a performance standby"); false reads etcd every time.
  bool performance_standby_cached_reads = true;
  // Accepted for compatibility; bulwark never mlocks its memory (docs/server.md).
  bool disable_mlock = false;
  // bulwark's own key (Vault decides per plugin version): external plugins run without
  // go-plugin's AutoMTLS and get Vault's legacy TLS instead, a certificate wrapped for them at
  // launch (VAULT_UNWRAP_TOKEN) that they unwrap at api_addr (docs/server.md, "Wrapped-token
  // bootstrap").
  bool disable_plugin_automtls = false;
  LogLevel log_level = LogLevel::kInfo;
  size_t max_request_bytes = kDefaultMaxRequestBytes;
  // bulwark's keys for signed plugins (docs/security.md): "off", "warn" or "required", and the
  // allowed-signers file (ssh-keygen's format, absolute path), required unless the policy is off.
  std::string plugin_signature_policy = "off";
  std::string plugin_allowed_signers_file;
};

// Parses and validates a configuration file's text. Errors: kInvalidArgument with a message
// that starts with the key path it is about (or "config:" for the file as a whole).
absl::StatusOr<ServerConfig> ParseConfig(absl::string_view json_text);

}  // namespace bulwark::config

#endif  // BULWARK_SERVER_CONFIG_CONFIG_H_
