// A Vault-style key/value backend plugin in Go, served with go-plugin v1.0.1 (Debian's) over
// gRPC: the reference "real Go plugin" that bulwark's host and conformance suites run against.
package main

import (
	"os"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"

	"bulwark/examples/goplugin/vaultplugin"
)

// envNoBrokerRepair, when "1", leaves go-plugin v1.0.1's broker TLS as it is, so tests can show
// that stock v1.0.1 cannot dial the host's brokered Storage under AutoMTLS.
const envNoBrokerRepair = "BULWARK_GOPLUGIN_NO_BROKER_TLS_REPAIR"

func main() {
	// Created before Serve so it keeps the real stderr (Serve swaps os.Stderr for a pipe that
	// nothing in v1.0.1's gRPC mode drains). JSON lines are what go-plugin hosts parse.
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "kv-go",
		Level:      hclog.LevelFromString(envOr("BULWARK_GOPLUGIN_LOG_LEVEL", "info")),
		Output:     os.Stderr,
		JSONFormat: true,
	})

	backendPlugin := &vaultplugin.BackendPlugin{
		NewServices: func(broker *plugin.GRPCBroker) (vaultplugin.Services, error) {
			hostCert := os.Getenv("PLUGIN_CLIENT_CERT")
			if os.Getenv(envNoBrokerRepair) == "1" {
				logger.Warn("broker TLS repair disabled; AutoMTLS broker dials will fail on go-plugin v1.0.1")
			} else if repaired, err := vaultplugin.RepairPluginBrokerTLS(broker, hostCert); err != nil {
				logger.Error("cannot repair broker TLS; broker dials may fail", "error", err)
			} else if repaired {
				logger.Debug("broker dials now trust the host certificate from PLUGIN_CLIENT_CERT")
			}
			kv := newKVBackend(broker, logger)
			return vaultplugin.Services{Backend: kv, Version: versionServer{}}, nil
		},
	}

	// Serve returns when the host calls GRPCController.Shutdown or the listener dies; it exits
	// the process itself (status 1) when the magic cookie is missing.
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: vaultplugin.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			vaultplugin.ProtocolVersion: {vaultplugin.PluginName: backendPlugin},
		},
		GRPCServer: vaultplugin.NewMaxSizeServer,
		Logger:     logger,
	})
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
