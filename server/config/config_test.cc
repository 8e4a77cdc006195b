// The configuration file: Vault's JSON shape, and errors that name the key path.
#include "server/config/config.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::config {
namespace {

using ::testing::HasSubstr;

std::string ErrorOf(absl::string_view text) {
  absl::StatusOr<ServerConfig> c = ParseConfig(text);
  EXPECT_FALSE(c.ok()) << text;
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(c.status().message());
}

constexpr absl::string_view kListener =
    R"("listener": {"tcp": {"address": "127.0.0.1:8200", "tls_disable": true}})";

std::string With(absl::string_view extra) {
  return absl::StrCat(R"({"storage": {"inmem": {}}, )", kListener, extra, "}");
}

TEST(ConfigTest, AFullConfigParses) {
  absl::StatusOr<ServerConfig> c = ParseConfig(R"({
    "storage": {"file": {"path": "/var/lib/bulwark"}},
    "listener": [{"tcp": {"address": "0.0.0.0:8443", "tls_cert_file": "/etc/c.pem",
                          "tls_key_file": "/etc/k.pem", "tls_disable": "false",
                          "cluster_address": "0.0.0.0:8444",
                          "max_request_size": 1048576}}],
    "plugin_directory": "/etc/bulwark/plugins/",
    "api_addr": "https://bulwark.example:8443",
    "cluster_addr": "https://bulwark.example:8444",
    "disable_mlock": true,
    "disable_clustering": true,
    "disable_plugin_automtls": true,
    "log_level": "Debug",
    "max_request_size": 2048,
    "ui": false
  })");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->storage.kind, StorageConfig::Kind::kFile);
  EXPECT_EQ(c->storage.path, "/var/lib/bulwark");
  EXPECT_EQ(c->listener.address, "0.0.0.0:8443");
  EXPECT_EQ(c->listener.tls_cert_file, "/etc/c.pem");
  EXPECT_EQ(c->listener.tls_key_file, "/etc/k.pem");
  EXPECT_FALSE(c->listener.tls_disable);
  EXPECT_EQ(c->plugin_directory, "/etc/bulwark/plugins");
  EXPECT_EQ(c->api_addr, "https://bulwark.example:8443");
  EXPECT_EQ(c->cluster_addr, "https://bulwark.example:8444");
  EXPECT_EQ(c->listener.cluster_address, "0.0.0.0:8444");
  EXPECT_TRUE(c->disable_clustering);
  EXPECT_TRUE(c->disable_mlock);
  EXPECT_TRUE(c->disable_plugin_automtls);
  EXPECT_EQ(c->log_level, LogLevel::kDebug);
  EXPECT_EQ(c->max_request_bytes, 1048576u);  // The listener's wins over the top level's.
}

TEST(ConfigTest, DefaultsOfAMinimalConfig) {
  absl::StatusOr<ServerConfig> c = ParseConfig(With(""));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->storage.kind, StorageConfig::Kind::kInmem);
  EXPECT_TRUE(c->listener.tls_disable);
  EXPECT_EQ(c->log_level, LogLevel::kInfo);
  EXPECT_EQ(c->max_request_bytes, kDefaultMaxRequestBytes);
  EXPECT_EQ(c->plugin_directory, "");
  EXPECT_FALSE(c->disable_plugin_automtls);
  EXPECT_FALSE(c->disable_clustering);
  EXPECT_EQ(c->listener.cluster_address, "");
  EXPECT_EQ(ParseConfig(With(R"(, "max_request_size": 4096)"))->max_request_bytes, 4096u);
  EXPECT_EQ(ParseConfig(With(R"(, "max_request_size": 0)"))->max_request_bytes,
            kDefaultMaxRequestBytes);
}

TEST(ConfigTest, UnknownKeysNameTheirPath) {
  EXPECT_EQ(ErrorOf(R"({"storage": {"inmem": {}},
                        "listener": {"tcp": {"adress": "127.0.0.1:8200", "tls_disable": true}}})"),
            "listener.tcp.adress: unknown key");
  EXPECT_EQ(ErrorOf(With(R"(, "seal": {})")), "seal: unknown key");
  EXPECT_EQ(
      ErrorOf(absl::StrCat(R"({"storage": {"file": {"path": "/x", "mode": 1}}, )", kListener, "}")),
      "storage.file.mode: unknown key");
  EXPECT_EQ(ErrorOf(absl::StrCat(R"({"storage": {"inmem": {"x": 1}}, )", kListener, "}")),
            "storage.inmem.x: unknown key");
  EXPECT_THAT(ErrorOf(With(R"(, "bad\nkey": 1)")), HasSubstr("\"bad\\nkey\": unknown key"));
}

TEST(ConfigTest, WrongTypesNameTheirPath) {
  EXPECT_EQ(ErrorOf(With(R"(, "disable_mlock": "maybe")")), "disable_mlock: expected a boolean");
  EXPECT_EQ(ErrorOf(With(R"(, "api_addr": 8200)")), "api_addr: expected a string");
  EXPECT_EQ(ErrorOf(With(R"(, "disable_plugin_automtls": 1)")),
            "disable_plugin_automtls: expected a boolean");
  EXPECT_EQ(ErrorOf(With(R"(, "max_request_size": "big")")),
            "max_request_size: expected an integer number of bytes");
  EXPECT_THAT(ErrorOf(With(R"(, "max_request_size": -1)")), HasSubstr("must not be negative"));
  EXPECT_EQ(ErrorOf(absl::StrCat(R"({"storage": {"file": {"path": 5}}, )", kListener, "}")),
            "storage.file.path: expected a string");
  EXPECT_EQ(ErrorOf(R"({"storage": {"inmem": {}}, "listener": {"tcp": {"tls_disable": []}}})"),
            "listener.tcp.tls_disable: expected a boolean");
  EXPECT_THAT(ErrorOf(With(R"(, "log_level": "loud")")), HasSubstr("log_level: unknown level"));
}

TEST(ConfigTest, StorageAndListenerRules) {
  EXPECT_THAT(ErrorOf(absl::StrCat("{", kListener, "}")), HasSubstr("storage: required"));
  EXPECT_THAT(ErrorOf(R"({"storage": {"inmem": {}}})"), HasSubstr("listener: required"));
  EXPECT_THAT(ErrorOf(absl::StrCat(R"({"storage": {"consul": {}}, )", kListener, "}")),
              HasSubstr("storage.consul: unsupported storage type"));
  EXPECT_THAT(ErrorOf(absl::StrCat(R"({"storage": {"inmem": {}, "file": {"path": "/x"}}, )",
                                   kListener, "}")),
              HasSubstr("exactly one storage type"));
  EXPECT_EQ(ErrorOf(absl::StrCat(R"({"storage": {"file": {}}, )", kListener, "}")),
            "storage.file.path: required");
  EXPECT_THAT(ErrorOf(R"({"storage": {"inmem": {}}, "listener": {"unix": {}}})"),
              HasSubstr("listener.unix: unsupported listener type"));
  EXPECT_THAT(ErrorOf(R"({"storage": {"inmem": {}}, "listener": [{"tcp": {}}, {"tcp": {}}]})"),
              HasSubstr("exactly one listener"));
  EXPECT_EQ(
      ErrorOf(R"({"storage": {"inmem": {}}, "listener": {"tcp": {"address": "127.0.0.1:8200"}}})"),
      "listener.tcp.tls_cert_file: required unless tls_disable is true");
  EXPECT_THAT(ErrorOf(R"({"storage": {"inmem": {}},
                          "listener": {"tcp": {"address": "localhost", "tls_disable": true}}})"),
              HasSubstr("listener.tcp.address: expected host:port"));
  EXPECT_THAT(ErrorOf(R"({"storage": {"inmem": {}},
                          "listener": {"tcp": {"address": ":99999", "tls_disable": true}}})"),
              HasSubstr("listener.tcp.address"));
  EXPECT_THAT(ErrorOf(R"({"storage": {"inmem": {}},
                          "listener": {"tcp": {"address": "127.0.0.1:0", "tls_disable": true,
                                               "cluster_address": "8201"}}})"),
              HasSubstr("listener.tcp.cluster_address: expected host:port"));
  EXPECT_THAT(ErrorOf(With(R"(, "disable_clustering": "maybe")")), HasSubstr("disable_clustering"));
  EXPECT_THAT(ErrorOf(With(R"(, "performance_standby": true)")),
              HasSubstr("performance_standby: needs storage \"etcd\" with ha_enabled"));
  absl::StatusOr<ServerConfig> perf = ParseConfig(R"({
    "storage": {"etcd": {"address": "http://127.0.0.1:2379", "ha_enabled": "true"}},
    "listener": {"tcp": {"address": "127.0.0.1:0", "tls_disable": true,
                         "cluster_address": "127.0.0.1:0"}},
    "performance_standby": true})");
  ASSERT_TRUE(perf.ok()) << perf.status();
  EXPECT_TRUE(perf->performance_standby);
  EXPECT_TRUE(perf->performance_standby_cached_reads);
  EXPECT_THAT(ErrorOf(With(R"(, "performance_standby_cached_reads": "often")")),
              HasSubstr("performance_standby_cached_reads"));
  EXPECT_EQ(ErrorOf(With(R"(, "plugin_directory": "plugins")")),
            "plugin_directory: must be an absolute path");
  EXPECT_THAT(ErrorOf(With(R"(, "api_addr": "bulwark:8200")")),
              HasSubstr("api_addr: expected a URL"));
}

std::string WithEtcd(absl::string_view body) {
  return absl::StrCat(R"({"storage": {"etcd": )", body, "}, ", kListener, "}");
}

TEST(ConfigTest, EtcdStorageDefaultsAndKeys) {
  absl::StatusOr<ServerConfig> defaults = ParseConfig(WithEtcd("{}"));
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->storage.kind, StorageConfig::Kind::kEtcd);
  EXPECT_EQ(defaults->storage.etcd.address, "http://127.0.0.1:2379");
  EXPECT_EQ(defaults->storage.etcd.path, "/vault/");
  EXPECT_FALSE(defaults->storage.etcd.ha_enabled);
  EXPECT_EQ(defaults->storage.etcd.lock_ttl, absl::Seconds(15));
  EXPECT_EQ(defaults->storage.etcd.request_timeout, absl::Seconds(5));

  absl::StatusOr<ServerConfig> c = ParseConfig(WithEtcd(
      R"({"address": "http://10.0.0.5:2379,http://10.0.0.6:2379", "path": "/bulwark/",
          "ha_enabled": "true", "lock_ttl": "10s", "request_timeout": 3, "etcd_api": "v3"})"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->storage.etcd.address, "http://10.0.0.5:2379,http://10.0.0.6:2379");
  EXPECT_EQ(c->storage.etcd.path, "/bulwark/");
  EXPECT_TRUE(c->storage.etcd.ha_enabled);
  EXPECT_EQ(c->storage.etcd.lock_ttl, absl::Seconds(10));
  EXPECT_EQ(c->storage.etcd.request_timeout, absl::Seconds(3));
}

TEST(ConfigTest, EtcdStorageErrorsNameTheKey) {
  EXPECT_EQ(ErrorOf(WithEtcd(R"({"adress": "http://x:1"})")), "storage.etcd.adress: unknown key");
  EXPECT_THAT(ErrorOf(WithEtcd(R"({"address": "https://x:1"})")),
              HasSubstr("storage.etcd.address: expected http://host:port"));
  EXPECT_EQ(ErrorOf(WithEtcd(R"({"path": ""})")), "storage.etcd.path: must not be empty");
  EXPECT_EQ(ErrorOf(WithEtcd(R"({"ha_enabled": "yes"})")),
            "storage.etcd.ha_enabled: expected a boolean");
  EXPECT_THAT(ErrorOf(WithEtcd(R"({"lock_ttl": "soon"})")),
              HasSubstr("storage.etcd.lock_ttl: expected a duration"));
  for (const char* bad : {R"("1s")", R"("2h")", R"("2500ms")", "0"}) {
    EXPECT_THAT(ErrorOf(WithEtcd(absl::StrCat(R"({"lock_ttl": )", bad, "}"))),
                HasSubstr("storage.etcd.lock_ttl: must be a whole number of seconds from 2s to 1h"))
        << bad;
  }
  EXPECT_THAT(ErrorOf(WithEtcd(R"({"request_timeout": "0s"})")),
              HasSubstr("storage.etcd.request_timeout"));
  EXPECT_THAT(ErrorOf(WithEtcd(R"({"etcd_api": "v2"})")),
              HasSubstr("storage.etcd.etcd_api: only \"v3\""));
}

TEST(ConfigTest, PluginSignatureKeys) {
  absl::StatusOr<ServerConfig> c = ParseConfig(With(""));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->plugin_signature_policy, "off");
  EXPECT_EQ(c->plugin_allowed_signers_file, "");
  c = ParseConfig(With(R"(, "plugin_signature_policy": "required",
                           "plugin_allowed_signers_file": "/etc/bulwark/allowed_signers")"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->plugin_signature_policy, "required");
  EXPECT_EQ(c->plugin_allowed_signers_file, "/etc/bulwark/allowed_signers");
  EXPECT_EQ(ErrorOf(With(R"(, "plugin_signature_policy": "on")")),
            "plugin_signature_policy: unknown policy \"on\" (off, warn, required)");
  EXPECT_THAT(ErrorOf(With(R"(, "plugin_signature_policy": "warn")")),
              HasSubstr("plugin_allowed_signers_file: required when plugin_signature_policy is "
                        "\"warn\""));
  EXPECT_EQ(ErrorOf(With(R"(, "plugin_allowed_signers_file": "allowed")")),
            "plugin_allowed_signers_file: must be an absolute path");
}

TEST(ConfigTest, UiIsRejectedWhenEnabled) {
  EXPECT_TRUE(ParseConfig(With(R"(, "ui": false)")).ok());
  EXPECT_THAT(ErrorOf(With(R"(, "ui": true)")), HasSubstr("ui: the web UI is not supported"));
}

TEST(ConfigTest, NotJsonOrNotAnObject) {
  EXPECT_THAT(ErrorOf("storage \"file\" { path = \"/x\" }"), HasSubstr("config: not valid JSON"));
  EXPECT_EQ(ErrorOf("[]"), "config: expected a JSON object");
  EXPECT_THAT(ErrorOf(std::string(100, '[')), HasSubstr("nested deeper"));
  EXPECT_THAT(ErrorOf(std::string(kConfigBytesMax + 1, ' ')), HasSubstr("larger than"));
}

}  // namespace
}  // namespace bulwark::config
