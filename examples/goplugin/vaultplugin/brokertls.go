// Repairs for go-plugin v1.0.1's AutoMTLS on brokered connections (hashicorp/go-plugin#109,
// fixed upstream by #193): v1.0.1 reuses each side's main-connection tls.Config for broker
// connections, but the plugin's config has no RootCAs/ServerName (so dialing the host's brokered
// server fails certificate verification) and the host's config has no ClientCAs/ClientAuth (so
// the host's brokered server accepts any client without a certificate).

package vaultplugin

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	plugin "github.com/hashicorp/go-plugin"
)

// brokerTLSHostname is the name in every AutoMTLS certificate (go-plugin mtls.go).
const brokerTLSHostname = "localhost"

// RepairPluginBrokerTLS makes the plugin's broker Dial verify the host the way go-plugin
// >= #193 does: trust exactly the host certificate from PLUGIN_CLIENT_CERT (hostCertPEM) and
// expect the name "localhost". Call it from GRPCServer, before Serve starts (go-plugin has
// already cloned the config for the main server by then, so only broker connections change).
//
// Returns (false, nil) when there is nothing to repair: no TLS (AutoMTLS off) or a go-plugin
// whose broker config already has RootCAs. Errors name what was unexpected; the caller decides
// whether to continue (broker dials would then fail with an x509 error).
//
// v1.0.1 keeps the config in the unexported field GRPCBroker.tls, which is reached with
// reflect+unsafe; the field's name and type are checked first so another go-plugin version
// fails loudly instead of corrupting memory.
func RepairPluginBrokerTLS(broker *plugin.GRPCBroker, hostCertPEM string) (bool, error) {
	if broker == nil {
		return false, errors.New("nil broker")
	}
	field := reflect.ValueOf(broker).Elem().FieldByName("tls")
	if !field.IsValid() || field.Type() != reflect.TypeOf((*tls.Config)(nil)) {
		return false, errors.New("go-plugin GRPCBroker has no field `tls *tls.Config` (not v1.0.1?)")
	}
	cfg := *(**tls.Config)(unsafe.Pointer(field.UnsafeAddr()))
	if cfg == nil || cfg.RootCAs != nil {
		return false, nil
	}
	if hostCertPEM == "" {
		return false, errors.New("broker uses TLS but PLUGIN_CLIENT_CERT is empty")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(hostCertPEM)) {
		return false, fmt.Errorf("PLUGIN_CLIENT_CERT holds no PEM certificate (%d bytes)", len(hostCertPEM))
	}
	cfg.RootCAs = pool
	if cfg.ServerName == "" {
		cfg.ServerName = brokerTLSHostname
	}
	return true, nil
}

// RepairHostBrokerTLS makes the host's brokered servers require and verify the plugin's
// certificate, as go-plugin >= #193 does. cfg is ClientConfig.TLSConfig after Client.Start()
// returned (AutoMTLS has then filled in the plugin's certificate as RootCAs) and before
// Client.Client() dials; go-plugin v1.0.1 hands this same pointer to the host's broker.
//
// Returns false when there is nothing to repair (no TLS, or no plugin certificate learned
// from the handshake, in which case requiring one would reject every broker connection).
func RepairHostBrokerTLS(cfg *tls.Config) bool {
	if cfg == nil || cfg.RootCAs == nil || cfg.ClientAuth == tls.RequireAndVerifyClientCert {
		return false
	}
	cfg.ClientCAs = cfg.RootCAs
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return true
}
