// Package vaultplugin holds what a Vault-style backend plugin and its go-plugin host share: the
// backend handshake (magic cookie, app protocol version 5) and the go-plugin "backend" plugin
// type that carries pb.Backend and logical.PluginVersion over go-plugin's gRPC transport.
package vaultplugin

import (
	"context"
	"crypto/rand"
	"errors"
	"math"
	"math/big"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"bulwark/proto/vault/logical"
	"bulwark/proto/vault/pb"
)

const (
	// MagicCookieKey and MagicCookieValue are Vault's backend plugin cookie
	// (sdk/plugin/serve.go); a plugin started without them refuses to run.
	MagicCookieKey   = "VAULT_BACKEND_PLUGIN"
	MagicCookieValue = "6669da05-b1c8-4f49-97d9-c8e5bed98e20"
	// ProtocolVersion is the app protocol of Vault's gRPC backend API (sdk/plugin/plugin_v5.go).
	ProtocolVersion = 5
	// PluginName is the key the host dispenses.
	PluginName = "backend"
	// MultiplexIDKey is the gRPC metadata key naming the plugin instance a call is for
	// (pluginutil.MultiplexingCtxKey). Vault sends it on every call, multiplexed plugin or not.
	MultiplexIDKey = "multiplex_id"
	multiplexIDLen = 10
)

// Handshake is the go-plugin handshake both sides use.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// Services are the gRPC services a backend plugin process serves next to go-plugin's own.
type Services struct {
	Backend pb.BackendServer
	// Version may be nil: hosts treat an Unimplemented logical.PluginVersion as "no version".
	Version logical.PluginVersionServer
}

// BackendPlugin is the go-plugin Plugin for PluginName over gRPC (net/rpc is refused).
// Plugin side: NewServices builds the services once per process; it receives the broker so the
// backend can dial the host's Storage in Setup. Host side: leave NewServices nil.
type BackendPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	NewServices func(broker *plugin.GRPCBroker) (Services, error)
}

// GRPCServer registers the backend's services on go-plugin's server (plugin side).
func (p *BackendPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	if p.NewServices == nil {
		return errors.New("vaultplugin: BackendPlugin.NewServices is nil on the plugin side")
	}
	services, err := p.NewServices(broker)
	if err != nil {
		return err
	}
	if services.Backend == nil {
		return errors.New("vaultplugin: NewServices returned no pb.Backend server")
	}
	pb.RegisterBackendServer(s, services.Backend)
	if services.Version != nil {
		logical.RegisterPluginVersionServer(s, services.Version)
	}
	return nil
}

// GRPCClient returns a *BackendClient for the plugin's connection (host side). Each dispensed
// client is one plugin instance with its own fresh multiplex id.
func (p *BackendPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn) (interface{}, error) {
	id, err := newMultiplexID()
	if err != nil {
		return nil, err
	}
	tagged := &multiplexConn{ClientConn: conn, id: id}
	return &BackendClient{
		BackendClient: pb.NewBackendClient(tagged),
		Version:       logical.NewPluginVersionClient(tagged),
		Broker:        broker,
		MultiplexID:   id,
	}, nil
}

// BackendClient is what the host dispenses: typed stubs on the plugin's main connection, whose
// every call carries MultiplexID as "multiplex_id" metadata (as Vault's pluginClientConn does),
// and the broker through which the host offers pb.Storage (AcceptAndServe with
// SetupArgs.broker_id).
type BackendClient struct {
	pb.BackendClient
	Version     logical.PluginVersionClient
	Broker      *plugin.GRPCBroker
	MultiplexID string
}

// multiplexConn adds the multiplex id to the outgoing metadata of every call.
type multiplexConn struct {
	*grpc.ClientConn
	id string
}

func (c *multiplexConn) Invoke(ctx context.Context, method string, args, reply interface{}, opts ...grpc.CallOption) error {
	return c.ClientConn.Invoke(metadata.AppendToOutgoingContext(ctx, MultiplexIDKey, c.id), method, args, reply, opts...)
}

func (c *multiplexConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.ClientConn.NewStream(metadata.AppendToOutgoingContext(ctx, MultiplexIDKey, c.id), desc, method, opts...)
}

// newMultiplexID returns 10 random base62 characters, the shape of Vault's ids.
func newMultiplexID() (string, error) {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	out := make([]byte, multiplexIDLen)
	for i := range out {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		out[i] = alphabet[n.Int64()]
	}
	return string(out), nil
}

// NewMaxSizeServer is a go-plugin GRPCServer factory with the message limits Vault uses on both
// sides of the backend API (math.MaxInt32; grpc-go's default receive limit is 4 MiB).
func NewMaxSizeServer(opts []grpc.ServerOption) *grpc.Server {
	opts = append(opts, grpc.MaxRecvMsgSize(math.MaxInt32), grpc.MaxSendMsgSize(math.MaxInt32))
	return grpc.NewServer(opts...)
}
