// The scripted scenario: every step a named check that can fail; the first failure ends the run.
// Checks marked "go" rely on details of the Go example plugin (version string, special paths,
// the echo path, the read cache, the storage value format); "generic" mode skips them so any
// plugin with the same key/value contract (e.g. the C++ SDK's examples/kv) can be run.

package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"bulwark/proto/vault/logical"
	"bulwark/proto/vault/pb"
)

const expectedGoPluginVersion = "v0.1.0"

// killGracePeriod is go-plugin v1.0.1's wait after GRPCController.Shutdown before SIGKILL; a
// Kill that takes longer means the plugin did not exit on Shutdown.
const killGracePeriod = 2 * time.Second

type scenario struct {
	opts     sessionOptions
	goPlugin bool
	timeout  time.Duration
	checks   int
}

// check runs one step with its own deadline.
func (sc *scenario) check(name string, step func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), sc.timeout)
	defer cancel()
	if err := step(ctx); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	sc.checks++
	return nil
}

type grpcPeer struct{ peer peer.Peer }

func (p *grpcPeer) tlsState() *tls.ConnectionState {
	if info, ok := p.peer.AuthInfo.(credentials.TLSInfo); ok {
		return &info.State
	}
	return nil
}

func jsonEqual(got string, want map[string]interface{}) error {
	var obj map[string]interface{}
	if err := json.Unmarshal([]byte(got), &obj); err != nil {
		return fmt.Errorf("response data is not a JSON object (%d bytes)", len(got))
	}
	if !reflect.DeepEqual(obj, want) {
		return fmt.Errorf("response data %v, want %v", obj, want)
	}
	return nil
}

func mustJSON(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// expectNoError turns a transport error or a logical error into one error.
func expectNoError(perr *pb.ProtoError, err error) error {
	if err != nil {
		return fmt.Errorf("RPC failed: %v", err)
	}
	if perr != nil {
		return fmt.Errorf("plugin error type %d: %s", perr.ErrType, perr.ErrMsg)
	}
	return nil
}

func (sc *scenario) read(ctx context.Context, s *session, key string) (*pb.Response, error) {
	resp, perr, err := s.request(ctx, "read", key, "")
	if e := expectNoError(perr, err); e != nil {
		return nil, e
	}
	return resp, nil
}

func (sc *scenario) readEquals(ctx context.Context, s *session, key string, want map[string]interface{}) error {
	resp, err := sc.read(ctx, s, key)
	if err != nil {
		return err
	}
	if resp == nil {
		return fmt.Errorf("read %q: no data", key)
	}
	return jsonEqual(resp.Data, want)
}

func (sc *scenario) listEquals(ctx context.Context, s *session, prefix string, want []interface{}) error {
	resp, perr, err := s.request(ctx, "list", prefix, "")
	if e := expectNoError(perr, err); e != nil {
		return e
	}
	if resp == nil {
		return fmt.Errorf("list %q: no data", prefix)
	}
	return jsonEqual(resp.Data, map[string]interface{}{"keys": want})
}

// run executes the scenario; the returned summary is the PASS line's detail.
func (sc *scenario) run() (string, error) {
	var s *session
	err := sc.check("launch", func(context.Context) error {
		var err error
		s, err = launch(sc.opts)
		return err
	})
	if err != nil {
		return "", err
	}
	closed := false
	defer func() {
		if !closed {
			s.close()
		}
	}()
	if err := sc.steps(s); err != nil {
		return "", err
	}

	var killTook time.Duration
	err = sc.check("kill", func(context.Context) error {
		killTook = s.close()
		closed = true
		if !s.client.Exited() {
			return fmt.Errorf("plugin process %d still running after Kill", s.pid)
		}
		if killTook >= killGracePeriod {
			return fmt.Errorf("plugin ignored GRPCController.Shutdown (Kill took %v, so go-plugin sent SIGKILL)", killTook)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	err = sc.check("socket-removed", func(context.Context) error {
		if s.network != "unix" {
			return nil
		}
		if _, err := os.Stat(s.address); !os.IsNotExist(err) {
			return fmt.Errorf("plugin socket %s still exists after exit", s.address)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	plain, noCert, verified := s.tally.snapshot()
	return fmt.Sprintf("checks=%d automtls=%t broker_calls{plaintext=%d tls_no_client_cert=%d tls_verified=%d} kill_ms=%d",
		sc.checks, sc.opts.autoMTLS, plain, noCert, verified, killTook.Milliseconds()), nil
}

func (sc *scenario) steps(s *session) error {
	steps := []struct {
		name   string
		goOnly bool
		step   func(ctx context.Context) error
	}{
		{"negotiated-version", false, func(context.Context) error {
			if v := s.client.NegotiatedVersion(); v != 5 {
				return fmt.Errorf("negotiated app protocol %d, want 5", v)
			}
			return nil
		}},
		{"ping", false, func(context.Context) error { return s.ping() }},
		{"setup", false, func(ctx context.Context) error {
			return s.setup(ctx, map[string]string{
				"plugin_name": "kv-go-example", "plugin_type": "secret", "read_cache": "true",
			})
		}},
		{"initialize", false, func(ctx context.Context) error { return s.initialize(ctx) }},
		{"main-connection-tls", false, func(ctx context.Context) error {
			state, err := s.mainConnTLS(ctx)
			if err != nil {
				return err
			}
			switch {
			case sc.opts.autoMTLS && state == nil:
				return fmt.Errorf("AutoMTLS on but the main connection is plaintext")
			case sc.opts.autoMTLS && len(state.VerifiedChains) == 0:
				return fmt.Errorf("main connection TLS without a verified plugin certificate")
			case !sc.opts.autoMTLS && state != nil:
				return fmt.Errorf("AutoMTLS off but the main connection uses TLS")
			}
			return nil
		}},
		{"type", false, func(ctx context.Context) error {
			reply, err := s.backend.Type(ctx, &pb.Empty{})
			if err != nil {
				return err
			}
			if reply.Type != 1 {
				return fmt.Errorf("type %d, want 1 (logical)", reply.Type)
			}
			return nil
		}},
		{"plugin-version", true, func(ctx context.Context) error {
			reply, err := s.backend.Version.Version(ctx, &logical.Empty{})
			if err != nil {
				return err
			}
			if reply.PluginVersion != expectedGoPluginVersion {
				return fmt.Errorf("version %q, want %q", reply.PluginVersion, expectedGoPluginVersion)
			}
			return nil
		}},
		{"special-paths", true, func(ctx context.Context) error {
			reply, err := s.backend.SpecialPaths(ctx, &pb.Empty{})
			if err != nil {
				return err
			}
			if got := reply.GetPaths().GetUnauthenticated(); !reflect.DeepEqual(got, []string{"echo"}) {
				return fmt.Errorf("unauthenticated paths %v, want [echo]", got)
			}
			return nil
		}},
		{"write", false, func(ctx context.Context) error {
			for key, data := range map[string]string{"alpha": `{"v":"1"}`, "dir/beta": `{"v":"b"}`, "dir/gamma": `{"v":"g","n":3}`} {
				resp, perr, err := s.request(ctx, "create", key, data)
				if e := expectNoError(perr, err); e != nil {
					return fmt.Errorf("write %q: %v", key, e)
				}
				if resp != nil && resp.Data != "" {
					return fmt.Errorf("write %q answered with data", key)
				}
			}
			return nil
		}},
		{"stored-in-host-storage", false, func(context.Context) error {
			if n := s.storage.size(); n < 3 {
				return fmt.Errorf("host storage holds %d entries after 3 writes: the plugin is not using the brokered pb.Storage", n)
			}
			if !sc.goPlugin {
				return nil
			}
			value, ok := s.storage.lookup("alpha")
			if !ok {
				return fmt.Errorf("host storage has no key \"alpha\"")
			}
			return jsonEqual(string(value), map[string]interface{}{"v": "1"})
		}},
		{"read", false, func(ctx context.Context) error {
			if err := sc.readEquals(ctx, s, "alpha", map[string]interface{}{"v": "1"}); err != nil {
				return err
			}
			return sc.readEquals(ctx, s, "dir/gamma", map[string]interface{}{"v": "g", "n": 3.0})
		}},
		{"read-missing", false, func(ctx context.Context) error {
			resp, err := sc.read(ctx, s, "missing")
			if err != nil {
				return err
			}
			if resp != nil && resp.Data != "" {
				return fmt.Errorf("read of a missing key returned data")
			}
			return nil
		}},
		{"existence-check", false, func(ctx context.Context) error {
			for key, want := range map[string]bool{"alpha": true, "missing": false} {
				reply, err := s.backend.HandleExistenceCheck(ctx, &pb.HandleExistenceCheckArgs{
					Request: &pb.Request{Operation: "update", Path: key},
				})
				if err != nil {
					return err
				}
				if reply.Err != nil {
					return fmt.Errorf("%q: plugin error %s", key, reply.Err.ErrMsg)
				}
				if sc.goPlugin && !reply.CheckFound {
					return fmt.Errorf("%q: check not found", key)
				}
				if reply.CheckFound && reply.Exists != want {
					return fmt.Errorf("%q: exists=%t, want %t", key, reply.Exists, want)
				}
			}
			return nil
		}},
		{"list", false, func(ctx context.Context) error {
			if err := sc.listEquals(ctx, s, "", []interface{}{"alpha", "dir/"}); err != nil {
				return err
			}
			return sc.listEquals(ctx, s, "dir/", []interface{}{"beta", "gamma"})
		}},
		{"invalidate-key", false, func(ctx context.Context) error {
			if sc.goPlugin {
				// Change the stored value behind the plugin's back: the cached read must stay stale
				// until InvalidateKey, which proves the RPC reached the cache.
				s.storage.set("alpha", []byte(`{"v":"2"}`))
				if err := sc.readEquals(ctx, s, "alpha", map[string]interface{}{"v": "1"}); err != nil {
					return fmt.Errorf("before InvalidateKey (expected the cached value): %v", err)
				}
			}
			if _, err := s.backend.InvalidateKey(ctx, &pb.InvalidateKeyArgs{Key: "alpha"}); err != nil {
				return err
			}
			if sc.goPlugin {
				return sc.readEquals(ctx, s, "alpha", map[string]interface{}{"v": "2"})
			}
			return nil
		}},
		{"echo", true, func(ctx context.Context) error {
			data := mustJSON(map[string]string{"payload": "ping"})
			resp, perr, err := s.request(ctx, "update", "echo", data)
			if e := expectNoError(perr, err); e != nil {
				return e
			}
			if resp == nil || resp.Data != data {
				return fmt.Errorf("echo did not return the request data")
			}
			return nil
		}},
		{"delete", false, func(ctx context.Context) error {
			before := s.storage.size()
			resp, perr, err := s.request(ctx, "delete", "alpha", "")
			if e := expectNoError(perr, err); e != nil {
				return e
			}
			if resp != nil && resp.Data != "" {
				return fmt.Errorf("delete answered with data")
			}
			if after := s.storage.size(); after != before-1 {
				return fmt.Errorf("host storage went from %d to %d entries on delete", before, after)
			}
			resp, err = sc.read(ctx, s, "alpha")
			if err != nil {
				return err
			}
			if resp != nil && resp.Data != "" {
				return fmt.Errorf("read after delete returned data")
			}
			return nil
		}},
		{"invalid-write-rejected", false, func(ctx context.Context) error {
			_, perr, err := s.request(ctx, "create", "empty", `{}`)
			if err != nil {
				return err
			}
			// User error, bad request or invalid request: all Vault 400s.
			if perr == nil || (perr.ErrType != 1 && perr.ErrType != 4 && perr.ErrType != 7) {
				return fmt.Errorf("writing an empty object: got %v, want a user/bad-request/invalid-request error", perr)
			}
			if _, ok := s.storage.lookup("empty"); ok {
				return fmt.Errorf("the rejected write reached storage")
			}
			return nil
		}},
		{"broker-connection-tls", false, func(context.Context) error {
			plain, noCert, verified := s.tally.snapshot()
			total := plain + noCert + verified
			switch {
			case total == 0:
				return fmt.Errorf("the plugin made no brokered calls")
			case !sc.opts.autoMTLS && total != plain:
				return fmt.Errorf("AutoMTLS off but %d brokered calls used TLS", total-plain)
			case sc.opts.autoMTLS && plain != 0:
				return fmt.Errorf("AutoMTLS on but %d brokered calls were plaintext", plain)
			case sc.opts.autoMTLS && sc.opts.repairBrokerTLS && verified != total:
				return fmt.Errorf("%d brokered calls without a verified plugin certificate", total-verified)
			}
			return nil
		}},
		{"cleanup", false, func(ctx context.Context) error {
			_, err := s.backend.Cleanup(ctx, &pb.Empty{})
			return err
		}},
	}
	for _, st := range steps {
		if st.goOnly && !sc.goPlugin {
			continue
		}
		if err := sc.check(st.name, st.step); err != nil {
			return err
		}
	}
	return nil
}
