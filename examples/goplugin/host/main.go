// A go-plugin v1.0.1 host for Vault-style backend plugins: launches the plugin binary given by
// -plugin with Vault's backend handshake, serves pb.Storage to it over the broker, and either
// runs a scripted key/value scenario (one PASS/FAIL line, exit status 0/1) or, with -bench,
// measures the plugin round trip and prints JSON. The Go side of bulwark's interop tests.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"
)

const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func parseInts(list string) ([]int, error) {
	var out []int
	for _, field := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", field)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(args []string) int {
	flags := flag.NewFlagSet("host", flag.ContinueOnError)
	pluginPath := flags.String("plugin", "", "path of the plugin executable (required)")
	autoMTLS := flags.Bool("automtls", true, "go-plugin AutoMTLS: PLUGIN_CLIENT_CERT to the plugin, its certificate back in the handshake")
	repairBroker := flags.Bool("repair-broker-tls", true,
		"with -automtls, make brokered servers require and verify the plugin's certificate (go-plugin >= #193 behaviour; v1.0.1 accepts any client)")
	kind := flags.String("plugin-kind", "go", "\"go\": the Go example plugin (all checks); \"generic\": any plugin with the same key/value contract")
	checksum := flags.Bool("sha256-check", true, "have go-plugin verify the plugin binary's SHA-256 before every exec, as Vault does (it hashes the whole file: tens of ms for a 13 MB Go binary)")
	startTimeout := flags.Duration("start-timeout", time.Minute, "go-plugin StartTimeout (launch to handshake line)")
	callTimeout := flags.Duration("call-timeout", 10*time.Second, "deadline of each scenario step and of each benchmark call")
	logLevel := flags.String("log-level", "warn", "host log level (trace, debug, info, warn, error); plugin stderr is relayed through it")
	benchMode := flags.Bool("bench", false, "measure instead of running the scenario; prints JSON")
	launches := flags.Int("bench-launches", 10, "launches timed for launch-to-first-call")
	warmup := flags.Int("bench-warmup", 200, "untimed calls before each latency series")
	samples := flags.Int("bench-samples", 2000, "timed calls per latency series")
	duration := flags.Duration("bench-duration", 3*time.Second, "length of each throughput run")
	callers := flags.String("bench-callers", "1,8", "concurrent callers of each throughput run")
	payloads := flags.String("bench-payloads", "64,65536",
		"request data sizes in bytes for the latency series (the first is used for throughput); at least 13")
	pluginCPU := flags.Int("plugin-cpu", -1, "pin the plugin process to this CPU (sched_setaffinity of the launching thread, inherited at fork); -1: not pinned")
	if err := flags.Parse(args); err != nil {
		return exitUsage
	}
	if *pluginPath == "" || flags.NArg() != 0 || (*kind != "go" && *kind != "generic") ||
		*launches < 1 || *samples < 1 || *warmup < 0 || *duration <= 0 {
		fmt.Fprintln(os.Stderr, "usage: host -plugin PATH [-automtls=false] [-plugin-kind go|generic] [-bench ...]; see -help")
		return exitUsage
	}
	callerList, err := parseInts(*callers)
	if err != nil {
		fmt.Fprintf(os.Stderr, "-bench-callers: %v\n", err)
		return exitUsage
	}
	payloadList, err := parseInts(*payloads)
	if err == nil {
		for _, n := range payloadList {
			if n <= len(emptyPayload) {
				err = fmt.Errorf("%d is below the %d-byte minimum", n, len(emptyPayload)+1)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "-bench-payloads: %v\n", err)
		return exitUsage
	}
	path, err := filepath.Abs(*pluginPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "-plugin: %v\n", err)
		return exitUsage
	}
	var sum []byte
	if *checksum {
		if sum, err = fileSHA256(path); err != nil {
			fmt.Printf("FAIL plugin binary: %v\n", err)
			return exitFail
		}
	}

	sc := &scenario{
		opts: sessionOptions{
			pluginPath:      path,
			pluginSHA256:    sum,
			autoMTLS:        *autoMTLS,
			repairBrokerTLS: *repairBroker,
			startTimeout:    *startTimeout,
			pluginCPU:       *pluginCPU,
			logger: hclog.New(&hclog.LoggerOptions{
				Name:   "goplugin-host",
				Level:  hclog.LevelFromString(*logLevel),
				Output: os.Stderr,
			}),
		},
		goPlugin: *kind == "go",
		timeout:  *callTimeout,
	}

	if *benchMode {
		report, err := sc.bench(benchOptions{
			launches: *launches, warmup: *warmup, samples: *samples, duration: *duration,
			callers: callerList, payloads: payloadList,
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench failed: %v\n", err)
			return exitFail
		}
		out, _ := json.MarshalIndent(report, "", "  ")
		fmt.Println(string(out))
		return exitOK
	}

	start := time.Now()
	summary, err := sc.run()
	if err != nil {
		fmt.Printf("FAIL goplugin-host plugin=%s automtls=%t: %v\n", filepath.Base(path), *autoMTLS, err)
		return exitFail
	}
	fmt.Printf("PASS goplugin-host plugin=%s %s ms=%d\n", filepath.Base(path), summary, time.Since(start).Milliseconds())
	return exitOK
}
