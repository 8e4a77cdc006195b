// The host's half of Vault's brokered services: pb.Storage over an in-memory map, a minimal
// pb.SystemView, and a tally of how every brokered call was authenticated, so the scenario can
// prove that AutoMTLS covered the plugin-to-host direction too.

package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"bulwark/proto/vault/logical"
	"bulwark/proto/vault/pb"
)

const (
	maxStorageEntries    = 100000
	maxStorageKeyBytes   = 4096
	maxStorageValueBytes = 16 << 20
	// Vault's default lease TTL and max lease TTL (32 days), as Go nanoseconds.
	defaultLeaseTTL = int64(768 * time.Hour)
	hostVersion     = "1.15.0"
)

// transportTally counts brokered calls by how the peer was authenticated.
type transportTally struct {
	plaintext      int64 // no TLS at all
	tlsNoClientCrt int64 // TLS, but the plugin presented no certificate
	tlsVerified    int64 // TLS with a client certificate that verified against ClientCAs
}

func (t *transportTally) record(ctx context.Context) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		atomic.AddInt64(&t.plaintext, 1)
		return
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if ok && len(info.State.VerifiedChains) > 0 {
		atomic.AddInt64(&t.tlsVerified, 1)
		return
	}
	atomic.AddInt64(&t.tlsNoClientCrt, 1)
}

func (t *transportTally) snapshot() (plaintext, noClientCert, verified int64) {
	return atomic.LoadInt64(&t.plaintext), atomic.LoadInt64(&t.tlsNoClientCrt), atomic.LoadInt64(&t.tlsVerified)
}

// memStorage implements pb.Storage. Errors go back in the reply's err string, as Vault does.
type memStorage struct {
	pb.UnimplementedStorageServer
	tally *transportTally

	mu      sync.Mutex
	entries map[string][]byte
}

func newMemStorage(tally *transportTally) *memStorage {
	return &memStorage{tally: tally, entries: make(map[string][]byte)}
}

func checkStorageKey(key string) string {
	if key == "" {
		return "storage key is empty"
	}
	if len(key) > maxStorageKeyBytes {
		return fmt.Sprintf("storage key is %d bytes; the limit is %d", len(key), maxStorageKeyBytes)
	}
	return ""
}

func (s *memStorage) Get(ctx context.Context, args *pb.StorageGetArgs) (*pb.StorageGetReply, error) {
	s.tally.record(ctx)
	if msg := checkStorageKey(args.Key); msg != "" {
		return &pb.StorageGetReply{Err: msg}, nil
	}
	value, ok := s.lookup(args.Key)
	if !ok {
		return &pb.StorageGetReply{}, nil
	}
	return &pb.StorageGetReply{Entry: &pb.StorageEntry{Key: args.Key, Value: value}}, nil
}

func (s *memStorage) Put(ctx context.Context, args *pb.StoragePutArgs) (*pb.StoragePutReply, error) {
	s.tally.record(ctx)
	entry := args.GetEntry()
	if entry == nil {
		return &pb.StoragePutReply{Err: "put without an entry"}, nil
	}
	if msg := checkStorageKey(entry.Key); msg != "" {
		return &pb.StoragePutReply{Err: msg}, nil
	}
	if len(entry.Value) > maxStorageValueBytes {
		return &pb.StoragePutReply{Err: fmt.Sprintf("value is %d bytes; the limit is %d", len(entry.Value), maxStorageValueBytes)}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.entries[entry.Key]; !exists && len(s.entries) >= maxStorageEntries {
		return &pb.StoragePutReply{Err: fmt.Sprintf("storage is full (%d entries)", maxStorageEntries)}, nil
	}
	s.entries[entry.Key] = append([]byte(nil), entry.Value...)
	return &pb.StoragePutReply{}, nil
}

func (s *memStorage) Delete(ctx context.Context, args *pb.StorageDeleteArgs) (*pb.StorageDeleteReply, error) {
	s.tally.record(ctx)
	if msg := checkStorageKey(args.Key); msg != "" {
		return &pb.StorageDeleteReply{Err: msg}, nil
	}
	s.mu.Lock()
	delete(s.entries, args.Key)
	s.mu.Unlock()
	return &pb.StorageDeleteReply{}, nil
}

// List returns the keys directly under prefix, and each deeper level once as "<name>/",
// sorted: Vault's logical.Storage contract.
func (s *memStorage) List(ctx context.Context, args *pb.StorageListArgs) (*pb.StorageListReply, error) {
	s.tally.record(ctx)
	seen := make(map[string]bool)
	s.mu.Lock()
	for key := range s.entries {
		if !strings.HasPrefix(key, args.Prefix) {
			continue
		}
		rest := key[len(args.Prefix):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i+1]
		}
		seen[rest] = true
	}
	s.mu.Unlock()
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return &pb.StorageListReply{Keys: keys}, nil
}

// lookup returns a copy of the value under key.
func (s *memStorage) lookup(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	value, ok := s.entries[key]
	return append([]byte(nil), value...), ok
}

// set and remove change storage behind the plugin's back (what replication or a standby
// does), for the InvalidateKey check.
func (s *memStorage) set(key string, value []byte) {
	s.mu.Lock()
	s.entries[key] = append([]byte(nil), value...)
	s.mu.Unlock()
}

func (s *memStorage) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// systemView answers the read-only pb.SystemView calls a simple backend makes; the rest stay
// Unimplemented (ResponseWrapData, EntityInfo, GroupsForEntity, password policies, identity
// tokens, rotation jobs need a real Vault core).
type systemView struct {
	pb.UnimplementedSystemViewServer
	tally *transportTally
}

func (v *systemView) DefaultLeaseTTL(ctx context.Context, _ *pb.Empty) (*pb.TTLReply, error) {
	v.tally.record(ctx)
	return &pb.TTLReply{TTL: defaultLeaseTTL}, nil
}

func (v *systemView) MaxLeaseTTL(ctx context.Context, _ *pb.Empty) (*pb.TTLReply, error) {
	v.tally.record(ctx)
	return &pb.TTLReply{TTL: defaultLeaseTTL}, nil
}

func (v *systemView) Tainted(ctx context.Context, _ *pb.Empty) (*pb.TaintedReply, error) {
	v.tally.record(ctx)
	return &pb.TaintedReply{}, nil
}

func (v *systemView) CachingDisabled(ctx context.Context, _ *pb.Empty) (*pb.CachingDisabledReply, error) {
	v.tally.record(ctx)
	return &pb.CachingDisabledReply{}, nil
}

func (v *systemView) ReplicationState(ctx context.Context, _ *pb.Empty) (*pb.ReplicationStateReply, error) {
	v.tally.record(ctx)
	return &pb.ReplicationStateReply{}, nil
}

func (v *systemView) MlockEnabled(ctx context.Context, _ *pb.Empty) (*pb.MlockEnabledReply, error) {
	v.tally.record(ctx)
	return &pb.MlockEnabledReply{}, nil
}

func (v *systemView) LocalMount(ctx context.Context, _ *pb.Empty) (*pb.LocalMountReply, error) {
	v.tally.record(ctx)
	return &pb.LocalMountReply{}, nil
}

func (v *systemView) PluginEnv(ctx context.Context, _ *pb.Empty) (*pb.PluginEnvReply, error) {
	v.tally.record(ctx)
	return &pb.PluginEnvReply{PluginEnvironment: &logical.PluginEnvironment{VaultVersion: hostVersion}}, nil
}
