// One plugin process driven the way Vault drives a v5 backend plugin with go-plugin v1.0.1:
// launch with the backend handshake (optionally AutoMTLS), dispense "backend", offer pb.Storage
// and pb.SystemView on a brokered connection, Setup with that broker id, then requests.

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"bulwark/examples/goplugin/vaultplugin"
	"bulwark/proto/vault/pb"
)

// How long Close waits for the host's brokered server goroutine after Kill closed the broker.
const brokerShutdownTimeout = 5 * time.Second

type sessionOptions struct {
	pluginPath string
	// Checksum of the plugin binary, verified by go-plugin before every exec (as Vault's catalog
	// does); nil skips the check.
	pluginSHA256 []byte
	autoMTLS     bool
	// Require the plugin's certificate on brokered servers (go-plugin v1.0.1 does not).
	repairBrokerTLS bool
	startTimeout    time.Duration
	logger          hclog.Logger
	// The CPU the plugin process is pinned to (-plugin-cpu); negative: not pinned.
	pluginCPU int
}

type session struct {
	client  *plugin.Client
	config  *plugin.ClientConfig
	backend *vaultplugin.BackendClient
	pid     int
	// The plugin's listening socket (unix) or address (tcp), from the handshake line.
	network, address string

	tally   transportTally
	storage *memStorage
	sysview *systemView
	// Closed when the brokered server for Setup has stopped; nil before Setup.
	brokerDone chan struct{}
}

// fileSHA256 hashes the plugin binary once; go-plugin re-checks it before every exec.
func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, bufio.NewReader(f)); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// launch starts the plugin and returns once "backend" is dispensed (no RPC made yet). On error
// the process, if any, is killed.
func launch(opts sessionOptions) (*session, error) {
	config := &plugin.ClientConfig{
		HandshakeConfig: vaultplugin.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			vaultplugin.ProtocolVersion: {vaultplugin.PluginName: &vaultplugin.BackendPlugin{}},
		},
		Cmd:              exec.Command(opts.pluginPath),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         opts.autoMTLS,
		StartTimeout:     opts.startTimeout,
		Logger:           opts.logger,
	}
	if opts.pluginSHA256 != nil {
		config.SecureConfig = &plugin.SecureConfig{Checksum: opts.pluginSHA256, Hash: sha256.New()}
	}
	client := plugin.NewClient(config)
	s := &session{client: client, config: config}
	s.storage = newMemStorage(&s.tally)
	s.sysview = &systemView{tally: &s.tally}
	if err := s.connect(opts); err != nil {
		client.Kill()
		return nil, err
	}
	return s, nil
}

func (s *session) connect(opts sessionOptions) error {
	// Start runs the plugin and parses its handshake line; with AutoMTLS it has then set
	// config.TLSConfig, with the plugin's certificate as RootCAs when the line carried one.
	if err := withThreadOnCPU(opts.pluginCPU, func() error {
		_, err := s.client.Start()
		return err
	}); err != nil {
		return fmt.Errorf("start plugin: %v", err)
	}
	if opts.autoMTLS {
		tlsConfig := s.config.TLSConfig
		if tlsConfig == nil || tlsConfig.RootCAs == nil {
			return errors.New("AutoMTLS is on but the plugin's handshake carried no server certificate")
		}
		if opts.repairBrokerTLS {
			vaultplugin.RepairHostBrokerTLS(tlsConfig)
		}
	}
	rpcClient, err := s.client.Client()
	if err != nil {
		return fmt.Errorf("connect to plugin: %v", err)
	}
	raw, err := rpcClient.Dispense(vaultplugin.PluginName)
	if err != nil {
		return fmt.Errorf("dispense %q: %v", vaultplugin.PluginName, err)
	}
	backend, ok := raw.(*vaultplugin.BackendClient)
	if !ok {
		return fmt.Errorf("dispense %q returned %T", vaultplugin.PluginName, raw)
	}
	s.backend = backend
	reattach := s.client.ReattachConfig()
	if reattach == nil {
		return errors.New("plugin has no process or address after start")
	}
	s.pid = reattach.Pid
	s.network, s.address = reattach.Addr.Network(), reattach.Addr.String()
	return nil
}

// ping is go-plugin's Ping: grpc.health.v1.Health/Check for the service "plugin".
func (s *session) ping() error {
	rpcClient, err := s.client.Client()
	if err != nil {
		return err
	}
	return rpcClient.Ping()
}

// setup offers the host services on a fresh broker id and calls Setup with it.
func (s *session) setup(ctx context.Context, config map[string]string) error {
	if s.brokerDone != nil {
		return errors.New("setup called twice on one session")
	}
	broker := s.backend.Broker
	brokerID := broker.NextId()
	done := make(chan struct{})
	s.brokerDone = done
	go func() {
		defer close(done)
		// Returns once the broker is closed (Kill closes it).
		broker.AcceptAndServe(brokerID, func(opts []grpc.ServerOption) *grpc.Server {
			server := vaultplugin.NewMaxSizeServer(opts)
			pb.RegisterStorageServer(server, s.storage)
			pb.RegisterSystemViewServer(server, s.sysview)
			return server
		})
	}()
	reply, err := s.backend.Setup(ctx, &pb.SetupArgs{BrokerId: brokerID, Config: config, BackendUUID: newUUID()})
	if err != nil {
		return fmt.Errorf("Setup RPC: %v", err)
	}
	if reply.Err != "" {
		return fmt.Errorf("Setup: %s", reply.Err)
	}
	return nil
}

func (s *session) initialize(ctx context.Context) error {
	reply, err := s.backend.Initialize(ctx, &pb.InitializeArgs{})
	if err != nil {
		return fmt.Errorf("Initialize RPC: %v", err)
	}
	if reply.Err != nil {
		return fmt.Errorf("Initialize: %s (err_type %d)", reply.Err.ErrMsg, reply.Err.ErrType)
	}
	return nil
}

// request sends one logical request. A non-nil *pb.ProtoError is the plugin's logical error;
// the error result is a transport failure.
func (s *session) request(ctx context.Context, op, path, data string) (*pb.Response, *pb.ProtoError, error) {
	reply, err := s.backend.HandleRequest(ctx, &pb.HandleRequestArgs{
		Request: &pb.Request{Id: newUUID(), Operation: op, Path: path, Data: data},
	})
	if err != nil {
		return nil, nil, err
	}
	return reply.Response, reply.Err, nil
}

// close stops the plugin the way go-plugin does (GRPCController.Shutdown, up to 2 s, then
// SIGKILL) and waits for the brokered server. Returns how long Kill took.
func (s *session) close() time.Duration {
	start := time.Now()
	s.client.Kill()
	took := time.Since(start)
	if s.brokerDone != nil {
		select {
		case <-s.brokerDone:
		case <-time.After(brokerShutdownTimeout):
		}
	}
	return took
}

// processMemory is where a process's resident memory is (KiB): VmRSS with its anonymous and
// file parts from /proc/PID/status, PSS and USS (Private_Clean + Private_Dirty) from
// /proc/PID/smaps_rollup.
type processMemory struct {
	VmRSSKiB   int64 `json:"vm_rss_kib"`
	RssAnonKiB int64 `json:"rss_anon_kib"`
	RssFileKiB int64 `json:"rss_file_kib"`
	PssKiB     int64 `json:"pss_kib"`
	UssKiB     int64 `json:"uss_kib"`
}

func procFields(path string, keys ...string) (map[string]int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		for _, k := range keys {
			if fields[0] == k+":" {
				n, err := strconv.ParseInt(fields[1], 10, 64)
				if err != nil {
					return nil, fmt.Errorf("%s: unreadable %s line", path, k)
				}
				out[k] = n
			}
		}
	}
	for _, k := range keys {
		if _, ok := out[k]; !ok {
			return nil, fmt.Errorf("%s: no %s line", path, k)
		}
	}
	return out, nil
}

// memory reads the plugin process's processMemory.
func (s *session) memory() (processMemory, error) {
	st, err := procFields(fmt.Sprintf("/proc/%d/status", s.pid), "VmRSS", "RssAnon", "RssFile")
	if err != nil {
		return processMemory{}, err
	}
	ro, err := procFields(fmt.Sprintf("/proc/%d/smaps_rollup", s.pid), "Pss", "Private_Clean", "Private_Dirty")
	if err != nil {
		return processMemory{}, err
	}
	return processMemory{
		VmRSSKiB: st["VmRSS"], RssAnonKiB: st["RssAnon"], RssFileKiB: st["RssFile"],
		PssKiB: ro["Pss"], UssKiB: ro["Private_Clean"] + ro["Private_Dirty"],
	}, nil
}

// rssKiB reads VmRSS of the plugin process from /proc.
func (s *session) rssKiB() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line)
			if len(fields) >= 2 {
				return strconv.ParseInt(fields[1], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS line in /proc/%d/status", s.pid)
}

// mainConnTLS reports how the main connection is secured, via the peer of one Type call.
func (s *session) mainConnTLS(ctx context.Context) (*tls.ConnectionState, error) {
	var p grpcPeer
	if _, err := s.backend.Type(ctx, &pb.Empty{}, grpc.Peer(&p.peer)); err != nil {
		return nil, err
	}
	return p.tlsState(), nil
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
