// The key/value engine behind the Go example plugin: Vault's pb.Backend on top of the host's
// pb.Storage, which the plugin reaches by dialing SetupArgs.broker_id through go-plugin's broker.
//
// Paths: "<key>" (create/update with a non-empty JSON object, read, delete), "" or "<prefix>/"
// with operation list (keys one level below, sub-prefixes ending in '/'), and "echo"
// (create/update returns the request data unchanged without touching storage: a pure RPC path
// for benchmarks). With SetupArgs.Config["read_cache"] == "true" reads are cached until a
// write, delete or InvalidateKey for that key, which lets a host observe InvalidateKey.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"bulwark/proto/vault/logical"
	"bulwark/proto/vault/pb"
)

const (
	pluginVersion = "v0.1.0"
	// logical.TypeLogical: a secrets engine.
	backendTypeLogical = 1
	echoPath           = "echo"

	maxKeyBytes = 512
	// Request data is a JSON document; 1 MiB is far above what the examples and benchmarks send.
	maxDataBytes    = 1 << 20
	maxCacheEntries = 1024
	// Bound on each storage call, on top of whatever deadline the host's request carries.
	storageCallTimeout = 10 * time.Second
	// How much of an offending input an error message may quote.
	maxQuotedBytes = 64
)

// Vault's pb.ErrType values (sdk/plugin/pb/translation.go).
const (
	errTypeUnknown              = 0
	errTypeUserError            = 1
	errTypeInternalError        = 2
	errTypeUnsupportedOperation = 5
	errTypeInvalidRequest       = 7
)

// Vault's logical.Operation values.
const (
	opCreate = "create"
	opRead   = "read"
	opUpdate = "update"
	opDelete = "delete"
	opList   = "list"
)

// kvBackend is safe for concurrent use: go-plugin serves every RPC on its own goroutine.
type kvBackend struct {
	pb.UnimplementedBackendServer
	broker *plugin.GRPCBroker
	logger hclog.Logger

	mu      sync.Mutex
	conn    *grpc.ClientConn // brokered connection to the host; nil before Setup, after Cleanup
	storage pb.StorageClient
	cache   map[string][]byte // nil when caching is off
	// Bumped by every write, delete and invalidation, so a read that raced one of them does not
	// put a stale value into the cache.
	generation uint64
}

func newKVBackend(broker *plugin.GRPCBroker, logger hclog.Logger) *kvBackend {
	return &kvBackend{broker: broker, logger: logger}
}

// protoError builds a reply error; messages never quote request data.
func protoError(errType uint32, format string, args ...interface{}) *pb.ProtoError {
	return &pb.ProtoError{ErrType: errType, ErrMsg: fmt.Sprintf(format, args...)}
}

func quote(s string) string {
	if len(s) > maxQuotedBytes {
		return fmt.Sprintf("%q...", s[:maxQuotedBytes])
	}
	return fmt.Sprintf("%q", s)
}

func (b *kvBackend) Setup(ctx context.Context, args *pb.SetupArgs) (*pb.SetupReply, error) {
	// Waits (go-plugin: at most 5 s) for the host's ConnInfo for this id on the broker stream.
	conn, err := b.broker.Dial(args.BrokerId)
	if err != nil {
		return &pb.SetupReply{Err: fmt.Sprintf("dial host services at broker id %d: %v", args.BrokerId, err)}, nil
	}
	readCache := args.Config["read_cache"] == "true"
	b.mu.Lock()
	old := b.conn
	b.conn = conn
	b.storage = pb.NewStorageClient(conn)
	b.cache = nil
	if readCache {
		b.cache = make(map[string][]byte)
	}
	b.generation++
	b.mu.Unlock()
	if old != nil {
		old.Close()
	}
	b.logger.Info("setup", "broker_id", args.BrokerId, "backend_uuid", args.BackendUUID, "read_cache", readCache)
	return &pb.SetupReply{}, nil
}

func (b *kvBackend) Initialize(ctx context.Context, _ *pb.InitializeArgs) (*pb.InitializeReply, error) {
	// Proves the brokered connection works (TLS included) before the host sends requests.
	if _, err := b.list(ctx, ""); err != nil {
		return &pb.InitializeReply{Err: protoError(errTypeInternalError, "host storage unreachable: %v", err)}, nil
	}
	b.logger.Info("initialized")
	return &pb.InitializeReply{}, nil
}

func (b *kvBackend) Type(context.Context, *pb.Empty) (*pb.TypeReply, error) {
	return &pb.TypeReply{Type: backendTypeLogical}, nil
}

func (b *kvBackend) SpecialPaths(context.Context, *pb.Empty) (*pb.SpecialPathsReply, error) {
	return &pb.SpecialPathsReply{Paths: &pb.Paths{Unauthenticated: []string{echoPath}}}, nil
}

func (b *kvBackend) Cleanup(context.Context, *pb.Empty) (*pb.Empty, error) {
	b.mu.Lock()
	conn := b.conn
	b.conn, b.storage, b.cache = nil, nil, nil
	b.generation++
	b.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	b.logger.Info("cleanup")
	return &pb.Empty{}, nil
}

func (b *kvBackend) InvalidateKey(_ context.Context, args *pb.InvalidateKeyArgs) (*pb.Empty, error) {
	b.forget(args.Key)
	return &pb.Empty{}, nil
}

func (b *kvBackend) HandleExistenceCheck(ctx context.Context, args *pb.HandleExistenceCheckArgs) (*pb.HandleExistenceCheckReply, error) {
	req := args.GetRequest()
	if req == nil {
		return &pb.HandleExistenceCheckReply{Err: protoError(errTypeInvalidRequest, "request is missing")}, nil
	}
	if req.Path == echoPath || req.Operation == opList || validateKey(req.Path) != nil {
		return &pb.HandleExistenceCheckReply{CheckFound: false}, nil
	}
	_, found, err := b.get(ctx, req.Path)
	if err != nil {
		return &pb.HandleExistenceCheckReply{Err: storageError(err)}, nil
	}
	return &pb.HandleExistenceCheckReply{CheckFound: true, Exists: found}, nil
}

func (b *kvBackend) HandleRequest(ctx context.Context, args *pb.HandleRequestArgs) (*pb.HandleRequestReply, error) {
	req := args.GetRequest()
	if req == nil {
		return &pb.HandleRequestReply{Err: protoError(errTypeInvalidRequest, "request is missing")}, nil
	}
	resp, perr := b.handle(ctx, req)
	return &pb.HandleRequestReply{Response: resp, Err: perr}, nil
}

// handle returns (nil, nil) where Vault answers 204/404: writes, deletes, missing keys.
func (b *kvBackend) handle(ctx context.Context, req *pb.Request) (*pb.Response, *pb.ProtoError) {
	if req.Path == echoPath {
		if req.Operation != opCreate && req.Operation != opUpdate {
			return nil, protoError(errTypeUnsupportedOperation, "operation %s is not supported on %s", quote(req.Operation), echoPath)
		}
		return &pb.Response{Data: req.Data}, nil
	}
	if req.Operation == opList {
		if req.Path != "" && !strings.HasSuffix(req.Path, "/") {
			return nil, protoError(errTypeUserError, "list path %s must be empty or end in '/'", quote(req.Path))
		}
		keys, err := b.list(ctx, req.Path)
		if err != nil {
			return nil, storageError(err)
		}
		if len(keys) == 0 {
			return nil, nil
		}
		data, _ := json.Marshal(map[string][]string{"keys": keys})
		return &pb.Response{Data: string(data)}, nil
	}
	if err := validateKey(req.Path); err != nil {
		return nil, protoError(errTypeUserError, "%v", err)
	}
	switch req.Operation {
	case opRead:
		value, found, err := b.get(ctx, req.Path)
		if err != nil {
			return nil, storageError(err)
		}
		if !found {
			return nil, nil
		}
		return &pb.Response{Data: string(value)}, nil
	case opCreate, opUpdate:
		value, perr := canonicalObject(req.Data)
		if perr != nil {
			return nil, perr
		}
		if err := b.put(ctx, req.Path, value); err != nil {
			return nil, storageError(err)
		}
		return nil, nil
	case opDelete:
		if err := b.delete(ctx, req.Path); err != nil {
			return nil, storageError(err)
		}
		return nil, nil
	default:
		return nil, protoError(errTypeUnsupportedOperation, "operation %s is not supported", quote(req.Operation))
	}
}

// canonicalObject checks that data is a non-empty JSON object and re-encodes it with sorted
// keys. Errors never quote the data: it may hold secrets.
func canonicalObject(data string) ([]byte, *pb.ProtoError) {
	if len(data) > maxDataBytes {
		return nil, protoError(errTypeUserError, "request data is %d bytes; the limit is %d", len(data), maxDataBytes)
	}
	dec := json.NewDecoder(strings.NewReader(data))
	dec.UseNumber()
	var obj map[string]interface{}
	if err := dec.Decode(&obj); err != nil || dec.More() {
		return nil, protoError(errTypeInvalidRequest, "request data is not a JSON object")
	}
	if len(obj) == 0 {
		return nil, protoError(errTypeUserError, "nothing to write: request data is an empty object")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, protoError(errTypeInternalError, "re-encoding request data failed")
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func validateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("key is empty")
	case len(key) > maxKeyBytes:
		return fmt.Errorf("key is %d bytes; the limit is %d", len(key), maxKeyBytes)
	case strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/"):
		return fmt.Errorf("key %s must not start or end with '/'", quote(key))
	}
	for _, segment := range strings.Split(key, "/") {
		if segment == "" || segment == "." || segment == ".." {
			return fmt.Errorf("key %s has an empty, '.' or '..' segment", quote(key))
		}
	}
	for _, r := range key {
		if r == unicode.ReplacementChar || unicode.IsControl(r) {
			return fmt.Errorf("key %s has invalid UTF-8 or control characters", quote(key))
		}
	}
	return nil
}

// storageError reports a failed storage call. Errors the host put in the reply travel as type 0
// with their text unchanged, because Vault matches sentinel errors (e.g. "cannot write to
// readonly storage") by message; transport failures are internal errors.
func storageError(err error) *pb.ProtoError {
	if err == errNotSetUp {
		return protoError(errTypeInternalError, "%v", err)
	}
	if re, ok := err.(replyError); ok {
		return protoError(errTypeUnknown, "%s", string(re))
	}
	if s, ok := status.FromError(err); ok {
		return protoError(errTypeInternalError, "host storage call failed: %s: %s", s.Code(), s.Message())
	}
	return protoError(errTypeInternalError, "host storage call failed: %v", err)
}

var errNotSetUp = errors.New("backend is not set up: Setup has not run, or Cleanup has")

// replyError is an error string the host returned inside a Storage reply.
type replyError string

func (e replyError) Error() string { return string(e) }

// client returns the storage stub and the current generation, or an error before Setup.
func (b *kvBackend) client() (pb.StorageClient, uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.storage == nil {
		return nil, 0, errNotSetUp
	}
	return b.storage, b.generation, nil
}

func (b *kvBackend) get(ctx context.Context, key string) ([]byte, bool, error) {
	b.mu.Lock()
	if value, ok := b.cache[key]; ok {
		b.mu.Unlock()
		return value, true, nil
	}
	b.mu.Unlock()
	storage, generation, err := b.client()
	if err != nil {
		return nil, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, storageCallTimeout)
	defer cancel()
	reply, err := storage.Get(ctx, &pb.StorageGetArgs{Key: key})
	if err != nil {
		return nil, false, err
	}
	if reply.Err != "" {
		return nil, false, replyError(reply.Err)
	}
	if reply.Entry == nil {
		return nil, false, nil
	}
	b.mu.Lock()
	if b.cache != nil && b.generation == generation && len(b.cache) < maxCacheEntries {
		b.cache[key] = reply.Entry.Value
	}
	b.mu.Unlock()
	return reply.Entry.Value, true, nil
}

func (b *kvBackend) put(ctx context.Context, key string, value []byte) error {
	storage, _, err := b.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, storageCallTimeout)
	defer cancel()
	reply, err := storage.Put(ctx, &pb.StoragePutArgs{Entry: &pb.StorageEntry{Key: key, Value: value}})
	b.forget(key)
	if err != nil {
		return err
	}
	if reply.Err != "" {
		return replyError(reply.Err)
	}
	return nil
}

func (b *kvBackend) delete(ctx context.Context, key string) error {
	storage, _, err := b.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, storageCallTimeout)
	defer cancel()
	reply, err := storage.Delete(ctx, &pb.StorageDeleteArgs{Key: key})
	b.forget(key)
	if err != nil {
		return err
	}
	if reply.Err != "" {
		return replyError(reply.Err)
	}
	return nil
}

func (b *kvBackend) list(ctx context.Context, prefix string) ([]string, error) {
	storage, _, err := b.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, storageCallTimeout)
	defer cancel()
	reply, err := storage.List(ctx, &pb.StorageListArgs{Prefix: prefix})
	if err != nil {
		return nil, err
	}
	if reply.Err != "" {
		return nil, replyError(reply.Err)
	}
	keys := append([]string(nil), reply.Keys...)
	sort.Strings(keys)
	return keys, nil
}

// forget drops a cached value and makes in-flight reads skip the cache fill.
func (b *kvBackend) forget(key string) {
	b.mu.Lock()
	delete(b.cache, key)
	b.generation++
	b.mu.Unlock()
}

// versionServer answers logical.PluginVersion, which Vault calls when registering a plugin.
type versionServer struct {
	logical.UnimplementedPluginVersionServer
}

func (versionServer) Version(context.Context, *logical.Empty) (*logical.VersionReply, error) {
	return &logical.VersionReply{PluginVersion: pluginVersion}, nil
}
