// -bench: what a go-plugin v1.0.1 host pays to talk to a backend plugin, printed as one JSON
// object: launch-to-first-call time, unary round-trip latency (p50/p99) for small and large
// payloads, calls/s with 1 and 8 concurrent callers, and the plugin's resident memory.

package main

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type benchOptions struct {
	launches int
	warmup   int
	samples  int
	duration time.Duration
	callers  []int
	payloads []int
}

type durationStats struct {
	N     int     `json:"n"`
	MinUs float64 `json:"min_us"`
	P50Us float64 `json:"p50_us"`
	P99Us float64 `json:"p99_us"`
	MaxUs float64 `json:"max_us"`
}

type latencyResult struct {
	Op           string `json:"op"`
	PayloadBytes int    `json:"payload_bytes"`
	durationStats
}

type throughputResult struct {
	Op           string  `json:"op"`
	PayloadBytes int     `json:"payload_bytes"`
	Callers      int     `json:"callers"`
	Calls        int64   `json:"calls"`
	Seconds      float64 `json:"seconds"`
	CallsPerSec  float64 `json:"calls_per_sec"`
}

type benchReport struct {
	Host       string `json:"host"`
	Plugin     string `json:"plugin"`
	AutoMTLS   bool   `json:"automtls"`
	GoVersion  string `json:"go_version"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Notes      string `json:"notes"`
	// go-plugin's SHA-256 check of the binary (when LaunchIncludesSHA256), exec, handshake,
	// dial, dispense and one health check (go-plugin's Ping) that returned. Not a pb.Backend
	// call: multiplexing plugins answer those only after Setup.
	LaunchToFirstCall    durationStats `json:"launch_to_first_call"`
	LaunchIncludesSHA256 bool          `json:"launch_includes_sha256_check"`
	IdleRSSKiB           int64         `json:"plugin_idle_rss_kib"`
	// The same moment (after Setup and Initialize): VmRSS, PSS and USS of the plugin.
	IdleMemory processMemory `json:"plugin_idle_memory"`
	// Where the processes ran: Cpus_allowed_list of this host and of the benchmarked plugin.
	HostCPUs     string             `json:"host_cpus"`
	PluginCPUs   string             `json:"plugin_cpus"`
	LoadedRSSKiB int64              `json:"plugin_rss_after_load_kib"`
	Latency      []latencyResult    `json:"latency"`
	Throughput   []throughputResult `json:"throughput"`
}

func summarize(samples []time.Duration) durationStats {
	if len(samples) == 0 {
		return durationStats{}
	}
	sorted := append([]time.Duration(nil), samples...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(sorted)))) - 1
		if i < 0 {
			i = 0
		}
		return float64(sorted[i].Nanoseconds()) / 1e3
	}
	return durationStats{
		N:     len(sorted),
		MinUs: float64(sorted[0].Nanoseconds()) / 1e3,
		P50Us: at(0.50),
		P99Us: at(0.99),
		MaxUs: float64(sorted[len(sorted)-1].Nanoseconds()) / 1e3,
	}
}

// emptyPayload is the request body with an empty value; payloads pad its value.
const emptyPayload = `{"value":""}`

// payloadData is a request body of exactly n bytes: {"value":"xxx..."}. Sizing the whole JSON
// document (not just the value) keeps a 64 KiB payload within plugins that cap stored values
// at 64 KiB, such as examples/kv.
func payloadData(n int) string {
	return `{"value":"` + strings.Repeat("x", n-len(emptyPayload)) + `"}`
}

// benchCall is one timed operation.
type benchCall func(ctx context.Context) error

func (sc *scenario) benchOp(s *session, op string, payload int) (benchCall, error) {
	data := payloadData(payload)
	key := fmt.Sprintf("bench/p%d", payload)
	call := func(operation, path, body string, wantData bool) benchCall {
		return func(ctx context.Context) error {
			resp, perr, err := s.request(ctx, operation, path, body)
			if e := expectNoError(perr, err); e != nil {
				return fmt.Errorf("%s %s: %v", operation, path, e)
			}
			if wantData && (resp == nil || len(resp.Data) < payload) {
				return fmt.Errorf("%s %s: response shorter than the %d-byte payload", operation, path, payload)
			}
			return nil
		}
	}
	switch op {
	case "echo":
		return call("update", "echo", data, true), nil
	case "write":
		return call("update", key, data, false), nil
	case "read":
		// The key must exist: write it once.
		ctx, cancel := context.WithTimeout(context.Background(), sc.timeout)
		defer cancel()
		if err := call("update", key, data, false)(ctx); err != nil {
			return nil, err
		}
		return call("read", key, "", true), nil
	}
	return nil, fmt.Errorf("unknown bench op %q", op)
}

func (sc *scenario) timeCalls(call benchCall, warmup, samples int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, samples)
	for i := 0; i < warmup+samples; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), sc.timeout)
		start := time.Now()
		err := call(ctx)
		took := time.Since(start)
		cancel()
		if err != nil {
			return nil, err
		}
		if i >= warmup {
			out = append(out, took)
		}
	}
	return out, nil
}

func (sc *scenario) throughput(call benchCall, callers int, d time.Duration) (int64, float64, error) {
	var calls int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				ctx, cancel := context.WithTimeout(context.Background(), sc.timeout)
				err := call(ctx)
				cancel()
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				atomic.AddInt64(&calls, 1)
			}
		}()
	}
	wg.Wait()
	return calls, time.Since(start).Seconds(), firstErr
}

func (sc *scenario) bench(b benchOptions) (*benchReport, error) {
	report := &benchReport{
		Host:       "go-plugin v1.0.1 client (examples/goplugin/host)",
		Plugin:     filepath.Base(sc.opts.pluginPath),
		AutoMTLS:   sc.opts.autoMTLS,
		GoVersion:  runtime.Version(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Notes: "payload_bytes = length of the request data JSON ({\"value\":\"xx...\"}); " +
			"echo = pb.Backend/HandleRequest that returns its data (no storage); " +
			"write/read = HandleRequest plus one brokered pb.Storage Put/Get back to the host",
	}

	var launches []time.Duration
	for i := 0; i < b.launches; i++ {
		start := time.Now()
		s, err := launch(sc.opts)
		if err != nil {
			return nil, fmt.Errorf("launch %d: %v", i, err)
		}
		err = s.ping()
		took := time.Since(start)
		s.close()
		if err != nil {
			return nil, fmt.Errorf("launch %d: first call: %v", i, err)
		}
		launches = append(launches, took)
	}
	report.LaunchToFirstCall = summarize(launches)
	report.LaunchIncludesSHA256 = sc.opts.pluginSHA256 != nil

	s, err := launch(sc.opts)
	if err != nil {
		return nil, err
	}
	defer s.close()
	ctx, cancel := context.WithTimeout(context.Background(), sc.timeout)
	defer cancel()
	if err := s.setup(ctx, map[string]string{"plugin_name": "bench", "plugin_type": "secret"}); err != nil {
		return nil, err
	}
	if err := s.initialize(ctx); err != nil {
		return nil, err
	}
	if report.IdleRSSKiB, err = s.rssKiB(); err != nil {
		return nil, err
	}
	if report.IdleMemory, err = s.memory(); err != nil {
		return nil, err
	}
	report.HostCPUs = cpusAllowed("self")
	report.PluginCPUs = cpusAllowed(strconv.Itoa(s.pid))

	ops := []string{"write", "read"}
	throughputOp := "read"
	if sc.goPlugin {
		ops = []string{"echo", "write", "read"}
		throughputOp = "echo"
	}
	for _, payload := range b.payloads {
		for _, op := range ops {
			call, err := sc.benchOp(s, op, payload)
			if err != nil {
				return nil, err
			}
			samples, err := sc.timeCalls(call, b.warmup, b.samples)
			if err != nil {
				return nil, err
			}
			report.Latency = append(report.Latency, latencyResult{Op: op, PayloadBytes: payload, durationStats: summarize(samples)})
		}
	}
	smallest := b.payloads[0]
	for _, callers := range b.callers {
		call, err := sc.benchOp(s, throughputOp, smallest)
		if err != nil {
			return nil, err
		}
		calls, seconds, err := sc.throughput(call, callers, b.duration)
		if err != nil {
			return nil, err
		}
		report.Throughput = append(report.Throughput, throughputResult{
			Op: throughputOp, PayloadBytes: smallest, Callers: callers, Calls: calls,
			Seconds: seconds, CallsPerSec: float64(calls) / seconds,
		})
	}
	if report.LoadedRSSKiB, err = s.rssKiB(); err != nil {
		return nil, err
	}
	return report, nil
}
