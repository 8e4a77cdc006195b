#!/usr/bin/env bash
# The HTTP server benchmark of issue 13 (SRV), side by side in one run:
#
#   bazel run -c opt //benchmarks/server:server_http_benchmark [-- OPTIONS]
#
# wrk (Debian) at 32 connections against four workloads, each in a fresh server process:
#   nginx        nginx (Debian nginx-light, our own config in a temp dir, loopback) serving a
#                64-byte static JSON file: the floor
#   kv-read      GET  /v1/secret/bench/read on `bulwark server -dev` (built-in kv, X-Vault-Token)
#   kv-write     POST /v1/secret/bench/write, a 45-byte JSON body (overwrites one key)
#   kv-write-audit  kv-write with a file audit device enabled (sys/audit), writing to a file in
#                the run's directory: the audit device's cost (docs/performance.md, Security)
#   plugin-read  GET  /v1/ext/bench/read where ext/ is //examples/kv:kv_plugin, registered in the
#                catalog with its SHA-256 over the HTTP API (the bulwark CLI) and mounted
# Rounds are interleaved: odd rounds run the workloads in the order above, even rounds in reverse,
# so nginx and kv-read (whose ratio is a goal) always run back to back and take turns going
# first. Each run is a warm-up (answers checked one by one) and a timed run. It prints every
# round, then per workload the median [min-max] of requests/s, of p50/p99 latency and of the
# server's CPU time per request (its worker or plugin processes included, from /proc), the ratio
# kv-read / nginx per round, and whether the issue's goals are met. docs/performance.md records
# the figures ("Server (HTTP)").
#
# Options:
#   --rounds=N          rounds (default 3)
#   --duration=S        seconds per timed run (default 10)
#   --warmup=S          seconds of warm-up before each timed run (default 2)
#   --connections=N     wrk connections (default 32)
#   --wrk-threads=N     wrk threads (default 2, wrk's own default; the machine has 2 cores)
#   --nginx-workers=N   nginx worker_processes (default "auto": one per core, Debian's default)
#   --workloads=a,b     a subset of nginx,kv-read,kv-write,plugin-read,kv-write-audit
#   --quick             one round, 1 s warm-up, 1 s run: proves every workload answers (the
#                       sh_test); all answers are counted one by one, no figure is judged
#   --record=FILE       also write the summary table, with the ratio and goal lines as notes, as
#                       a table record (bulwark-benchmark-table/1) for docs/performance.md
#                       (conformance/benchmark/perf_tables.py); relative to where bazel run
#                       was started
#
# Exit status: 0 when every workload answered every request with 2xx (no socket errors or
# timeouts either) and made at least one request; 1 otherwise, or when a server cannot start.
# The goals are reported, never asserted.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

[ $# -ge 3 ] || { echo "usage: $0 BULWARK KV_PLUGIN WRK_LUA [TABLE_RECORD_PY] [OPTIONS]" >&2; exit 2; }
# Runfiles-relative paths become absolute before anything changes directory.
bulwark=$(readlink -f "$1")
kv_plugin=$(readlink -f "$2")
lua_script=$(readlink -f "$3")
shift 3
table_record=""
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
  table_record=$(readlink -f "$1")
  shift
fi
record=""

rounds=3
duration=10
warmup=2
connections=32
wrk_threads=2
nginx_workers=auto
workloads_csv=nginx,kv-read,kv-write,plugin-read
quick=0
while [ $# -gt 0 ]; do
  arg="$1"
  shift
  case "$arg" in
    --*=*) name="${arg%%=*}" value="${arg#*=}" ;;
    --quick | --help | -h) name="$arg" value="" ;;
    --*)
      name="$arg"
      [ $# -gt 0 ] || { echo "$name needs a value" >&2; exit 2; }
      value="$1"
      shift
      ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
  case "$name" in
    --rounds) rounds="$value" ;;
    --duration) duration="$value" ;;
    --warmup) warmup="$value" ;;
    --connections) connections="$value" ;;
    --wrk-threads) wrk_threads="$value" ;;
    --nginx-workers) nginx_workers="$value" ;;
    --workloads) workloads_csv="$value" ;;
    --quick) quick=1 ;;
    --record) record="$value" ;;
    --help | -h) usage; exit 0 ;;
    *) echo "unknown option: $name (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$quick" = 1 ]; then
  rounds=1 duration=1 warmup=1
fi
for v in rounds duration warmup connections wrk_threads; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "--${v//_/-} must be a positive integer" >&2; exit 2; }
done
[ "$connections" -ge "$wrk_threads" ] || { echo "--connections must be >= --wrk-threads" >&2; exit 2; }
IFS=, read -r -a workloads <<<"$workloads_csv"
for w in "${workloads[@]}"; do
  case "$w" in nginx | kv-read | kv-write | plugin-read | kv-write-audit) ;; *) echo "unknown workload: $w" >&2; exit 2 ;; esac
done

# Tools: wrk and nginx from Debian (tools/setup installs both); nginx lives in /usr/sbin.
wrk=$(command -v wrk || true)
nginx=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
[ -n "$wrk" ] || { echo "wrk not found: run tools/setup" >&2; exit 1; }
[ -n "$nginx" ] || { echo "nginx not found: run tools/setup" >&2; exit 1; }

# A short private directory (bulwark's plugin sockets live in its own /tmp dir, but keep ours
# short too); removed at exit together with every process this script started.
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/bwhttp.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

token="bench-root-token"
# The secret the reads fetch and the body the writes send (45 bytes).
secret_value="0123456789abcdef0123456789abcdef"
write_body="{\"value\":\"$secret_value\",\"n\":\"1\"}"

log() { echo "$*" >&2; }

# stop_process PID SIGNAL: signals one process this script started, waits up to 15 s for it,
# then kills it.
stop_process() {
  local pid="$1" sig="$2" i
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kept=()
  for i in "${pids[@]}"; do [ "$i" = "$pid" ] || kept+=("$i"); done
  pids=("${kept[@]+"${kept[@]}"}")
}

# http_get_ok PORT PATH: a GET of PATH on 127.0.0.1:PORT is answered 200 within 2 s.
http_get_ok() {
  local status=""
  status=$({ exec 3<>"/dev/tcp/127.0.0.1/$1" &&
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3 &&
    read -r -t 2 line <&3 && echo "$line"; } 2>/dev/null) || return 1
  [[ "$status" == "HTTP/1.1 200"* ]]
}

# --- nginx -------------------------------------------------------------------------------------
# start_nginx DIR: writes the config and the 64-byte file and starts nginx in the foreground
# (daemon off, so $! is the master). Sets server_pid and target_url.
start_nginx() {
  local dir="$1" port
  mkdir -p "$dir/www/v1" "$dir/tmp"
  # 64 bytes exactly, a JSON object shaped like a small secret.
  printf '{"data":{"value":"0123456789abcdef0123456789abcdef"},"n":"1234"}' >"$dir/www/v1/static.json"
  [ "$(stat -c %s "$dir/www/v1/static.json")" = 64 ] || { log "static file is not 64 bytes"; exit 1; }
  chmod -R a+rX "$dir"
  for _ in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 40000))
    {
      # Workers drop to "nobody" when the master is root; keep them as the current user instead
      # so that they can read a file under a private temp dir.
      [ "$(id -u)" = 0 ] && echo "user root;"
      cat <<EOF
worker_processes $nginx_workers;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  # wrk keeps its 32 connections for the whole run; nginx's default closes one every 1000
  # requests, bulwark never does.
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  default_type application/json;
  server {
    listen 127.0.0.1:$port;
    root $dir/www;
  }
}
EOF
    } >"$dir/nginx.conf"
    "$nginx" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g "daemon off;" \
      >"$dir/nginx.out" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    # Ready once nginx has written its pid file (after it bound the port; when the port is taken
    # it retries for a few seconds, then exits) and answers the file: a bare connect could reach
    # whoever else holds the port.
    local i
    for ((i = 0; i < 200; i++)); do
      if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
      if [ "$(cat "$dir/nginx.pid" 2>/dev/null)" = "$server_pid" ] && http_get_ok "$port" /v1/static.json; then
        target_url="http://127.0.0.1:$port/v1/static.json"
        return 0
      fi
      sleep 0.05
    done
    stop_process "$server_pid" TERM
    if ! grep -q "Address already in use" "$dir/error.log" "$dir/nginx.out" 2>/dev/null; then
      log "nginx did not start:"
      cat "$dir/nginx.out" "$dir/error.log" >&2 2>/dev/null || true
      exit 1
    fi
  done
  log "nginx found no free port"
  exit 1
}

# --- bulwark -----------------------------------------------------------------------------------
# start_bulwark DIR: `bulwark server -dev` on a free loopback port with kv_plugin in its plugin
# directory. Sets server_pid and bulwark_addr.
start_bulwark() {
  local dir="$1" i
  mkdir -p "$dir/plugins" "$dir/home"
  cp "$kv_plugin" "$dir/plugins/kv_plugin"
  chmod 755 "$dir/plugins/kv_plugin"
  "$bulwark" server -dev -dev-listen-address=127.0.0.1:0 -dev-root-token-id="$token" \
    -dev-plugin-dir="$dir/plugins" >"$dir/server.out" 2>"$dir/server.err" &
  server_pid=$!
  pids+=("$server_pid")
  for ((i = 0; i < 600; i++)); do
    if grep -q '^==> bulwark server started!' "$dir/server.out" 2>/dev/null; then
      bulwark_addr=$(sed -n 's/^ *Api Address: *//p' "$dir/server.out" | head -n 1)
      [ -n "$bulwark_addr" ] && return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  log "bulwark server did not start:"
  cat "$dir/server.out" "$dir/server.err" >&2 2>/dev/null || true
  exit 1
}

# cli DIR ARGS...: the bulwark CLI against the running server (Vault's HTTP API over libcurl).
cli() {
  local dir="$1"
  shift
  if ! env -i PATH="$PATH" HOME="$dir/home" VAULT_ADDR="$bulwark_addr" VAULT_TOKEN="$token" \
    "$bulwark" "$@" >"$dir/cli.out" 2>&1; then
    log "bulwark $* failed:"
    cat "$dir/cli.out" >&2
    exit 1
  fi
}

# cpu_ticks PID: CPU time (user + system, in clock ticks) of PID and of its child processes (the
# nginx workers, bulwark's plugin), read from /proc.
cpu_ticks() {
  local pid="$1" total=0 p stat kids
  kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
  for p in "$pid" $kids; do
    stat=$(cat /proc/"$p"/stat 2>/dev/null) || continue
    stat="${stat##*) }" # fields after the command name, which may hold spaces
    total=$((total + $(cut -d' ' -f12 <<<"$stat") + $(cut -d' ' -f13 <<<"$stat")))
  done
  echo "$total"
}
clock_ticks=$(getconf CLK_TCK)

# --- one run -----------------------------------------------------------------------------------
# run_wrk URL SECONDS COUNT_STATUS METHOD BODY: prints wrk's BENCH line.
run_wrk() {
  local url="$1" seconds="$2" count="$3" method="$4" body="$5" out
  local -a headers=()
  [[ "$url" == */v1/static.json ]] || headers=(-H "X-Vault-Token: $token")
  out=$(BENCH_METHOD="$method" BENCH_BODY="$body" BENCH_COUNT_STATUS="$count" \
    "$wrk" -t"$wrk_threads" -c"$connections" -d"${seconds}s" --timeout 10s --latency \
    -s "$lua_script" "${headers[@]}" "$url" 2>&1) || { log "wrk failed: $out"; exit 1; }
  local line
  line=$(grep '^BENCH ' <<<"$out" | tail -n 1)
  [ -n "$line" ] || { log "wrk printed no BENCH line: $out"; exit 1; }
  echo "${line#BENCH }"
}

# field LINE NAME: the value of NAME=... in a BENCH line.
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# answered_ok LINE: every answer 2xx (when counted), no wrk error, at least one request.
answered_ok() {
  local line="$1" f
  [ "$(field "$line" requests)" -gt 0 ] || return 1
  for f in status_errors connect_errors read_errors write_errors timeouts; do
    [ "$(field "$line" "$f")" = 0 ] || return 1
  done
  local n
  n=$(field "$line" non2xx)
  [ "$n" = 0 ] || [ "$n" = -1 ]
}

failures=0
results="$work/results.txt" # round workload BENCH-fields
: >"$results"

# run_workload ROUND NAME: a fresh server, the warm-up (answers counted) and the timed run.
run_workload() {
  local round="$1" name="$2" dir="$work/r$1-$2" url method=GET body=""
  mkdir -p "$dir"
  case "$name" in
    nginx)
      start_nginx "$dir"
      url="$target_url"
      ;;
    kv-read | kv-write | kv-write-audit)
      start_bulwark "$dir"
      cli "$dir" write secret/bench/read "value=$secret_value"
      if [ "$name" = kv-write-audit ]; then
        printf '{"type":"file","options":{"file_path":"%s"}}' "$dir/audit.log" >"$dir/audit.json"
        cli "$dir" write sys/audit/file "@$dir/audit.json"
      fi
      if [ "$name" = kv-read ]; then
        url="$bulwark_addr/v1/secret/bench/read"
      else
        url="$bulwark_addr/v1/secret/bench/write" method=POST body="$write_body"
      fi
      ;;
    plugin-read)
      start_bulwark "$dir"
      local sha
      sha=$(sha256sum "$dir/plugins/kv_plugin" | cut -d' ' -f1)
      cli "$dir" plugin register -sha256="$sha" -command=kv_plugin secret bench-kv
      cli "$dir" secrets enable -path=ext bench-kv
      cli "$dir" write ext/bench/read "value=$secret_value"
      url="$bulwark_addr/v1/ext/bench/read"
      ;;
  esac
  local warm timed cpu_before cpu_after load
  load=$(cut -d' ' -f1 /proc/loadavg)
  warm=$(run_wrk "$url" "$warmup" 1 "$method" "$body")
  local count=0
  [ "$quick" = 1 ] && count=1
  cpu_before=$(cpu_ticks "$server_pid")
  timed=$(run_wrk "$url" "$duration" "$count" "$method" "$body")
  cpu_after=$(cpu_ticks "$server_pid")
  stop_process "$server_pid" TERM
  # Server CPU (with its workers or plugin) per request over the timed run, in microseconds.
  timed="$timed cpu_us_per_req=$(awk -v d=$((cpu_after - cpu_before)) -v hz="$clock_ticks" \
    -v n="$(field "$timed" requests)" 'BEGIN { printf "%.1f", (n > 0 ? d * 1e6 / hz / n : 0) }')"
  local ok=yes
  if ! answered_ok "$warm" || ! answered_ok "$timed"; then
    ok=NO
    failures=$((failures + 1))
    log "workload $name, round $round: not every request answered 2xx"
    log "  warm-up: $warm"
    log "  timed:   $timed"
    tail -n 20 "$dir/server.err" "$dir/error.log" >&2 2>/dev/null || true
  fi
  echo "$round $name $timed" >>"$results"
  printf '  %-12s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  server CPU %6.1f us/req  (%s requests, warm-up %s, non-2xx %s, answers ok: %s, load %s)\n' \
    "$name" "$(field "$timed" rps)" "$(awk "BEGIN{print $(field "$timed" p50_us)/1000}")" \
    "$(awk "BEGIN{print $(field "$timed" p99_us)/1000}")" "$(field "$timed" cpu_us_per_req)" \
    "$(field "$timed" requests)" "$(field "$warm" requests)" "$(field "$warm" non2xx)" "$ok" "$load"
}

build_mode="unknown"
case "$bulwark" in
  */k8-opt/*) build_mode=opt ;;
  */k8-fastbuild/*) build_mode=fastbuild ;;
  */k8-dbg/*) build_mode=dbg ;;
esac
echo "server_http_benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), kernel $(uname -r)"
echo "  bulwark build: $build_mode; $("$wrk" -v 2>&1 | head -n 1 | cut -d' ' -f1-2); $("$nginx" -v 2>&1)"
echo "  wrk: $connections connections, $wrk_threads threads, ${warmup} s warm-up + ${duration} s per run; nginx worker_processes $nginx_workers; $rounds round(s)"
echo "  load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$build_mode" != opt ] && [ "$quick" = 0 ]; then
  echo "  WARNING: bulwark is not an -c opt build; run: bazel run -c opt //benchmarks/server:server_http_benchmark"
fi

n=${#workloads[@]}
for ((r = 1; r <= rounds; r++)); do
  echo "round $r (load $(cut -d' ' -f1 /proc/loadavg))"
  for ((i = 0; i < n; i++)); do
    if ((r % 2)); then j=$i; else j=$((n - 1 - i)); fi
    run_workload "$r" "${workloads[$j]}"
  done
done
echo "  load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- summary -----------------------------------------------------------------------------------
# Medians and ranges over rounds; the kv-read / nginx ratio is taken per round (the two ran a
# few seconds apart) and summarised the same way.
echo
echo "summary: median [min-max] over $rounds round(s)"
summary=$(awk -v quick="$quick" '
  function kv(s, name,   i, n, parts, p) {
    n = split(s, parts, " ")
    for (i = 1; i <= n; i++) { split(parts[i], p, "="); if (p[1] == name) return p[2] + 0 }
    return ""
  }
  function sortn(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  }
  function median(a, n) { sortn(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  function thousands(x,   s, out) {
    s = sprintf("%.0f", x); out = ""
    while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
    return s out
  }
  # stat(name, field, scale, fmt): "median [min-max]" of one field over the rounds.
  function stat(w, f, scale, fmt,   a, n, r, lo, hi, m) {
    n = 0
    for (r = 1; r <= rounds; r++) if ((w, r) in line) a[++n] = kv(line[w, r], f) / scale
    if (n == 0) return "-"
    m = median(a, n); lo = a[1]; hi = a[n]
    if (fmt == "k") return sprintf("%s [%s-%s]", thousands(m), thousands(lo), thousands(hi))
    return sprintf(fmt " [" fmt "-" fmt "]", m, lo, hi)
  }
  {
    r = $1; w = $2; $1 = ""; $2 = ""; line[w, r] = $0
    if (r > rounds) rounds = r
    if (!(w in seen)) { seen[w] = 1; order[++nw] = w }
  }
  END {
    label["nginx"] = "nginx, static 64-byte JSON (floor)"
    label["kv-read"] = "built-in kv read (GET)"
    label["kv-write"] = "built-in kv write (POST)"
    label["kv-write-audit"] = "built-in kv write, file audit device enabled"
    label["plugin-read"] = "external C++ plugin read (GET)"
    nc = split("nginx kv-read kv-write plugin-read kv-write-audit", canon, " ")
    print "| workload | requests/s | p50 latency (ms) | p99 latency (ms) | server CPU per request (us) |"
    print "| --- | --- | --- | --- | --- |"
    for (i = 1; i <= nc; i++) {
      w = canon[i]
      if (!(w in seen)) continue
      printf "| %s | %s | %s | %s | %s |\n", label[w], stat(w, "rps", 1, "k"), stat(w, "p50_us", 1000, "%.2f"), stat(w, "p99_us", 1000, "%.2f"), stat(w, "cpu_us_per_req", 1, "%.0f")
    }
    print ""
    for (r = 1; r <= rounds; r++) {
      printf "round %d:", r
      for (i = 1; i <= nc; i++) {
        w = canon[i]
        if ((w, r) in line) printf "  %s %s req/s p99 %.2f ms;", w, thousands(kv(line[w, r], "rps")), kv(line[w, r], "p99_us") / 1000
      }
      print ""
    }
    if (("nginx" in seen) && ("kv-read" in seen)) {
      n = 0
      for (r = 1; r <= rounds; r++)
        if (("nginx", r) in line && ("kv-read", r) in line) {
          ratio[++n] = kv(line["kv-read", r], "rps") / kv(line["nginx", r], "rps")
          per = per sprintf(" %.3f", ratio[n])
        }
      m = median(ratio, n)
      printf "\nratio kv-read / nginx requests/s: %.2fx [%.2f-%.2f] (per round:%s)\n", m, ratio[1], ratio[n], per
      if (!quick) printf "goal kv-read >= 0.3x nginx: %s\n", (m >= 0.3 ? "met" : "NOT met")
    }
    if (("kv-write" in seen) && ("kv-write-audit" in seen)) {
      n = 0; per = ""
      for (r = 1; r <= rounds; r++)
        if (("kv-write", r) in line && ("kv-write-audit", r) in line) {
          ar[++n] = kv(line["kv-write-audit", r], "p50_us") / kv(line["kv-write", r], "p50_us") - 1
          per = per sprintf(" %+.1f%%", ar[n] * 100)
        }
      m = median(ar, n)
      printf "\naudit device cost, kv-write-audit p50 / kv-write p50 - 1: %+.1f%% [%+.1f%% to %+.1f%%] (per round:%s)\n", m * 100, ar[1] * 100, ar[n] * 100, per
      if (!quick) printf "goal audit device <= 15%% of a kv write'"'"'s latency: %s\n", (m <= 0.15 ? "met" : "NOT met")
    }
    if (!quick) {
      for (i = 2; i <= 4; i++) {
        w = canon[i]
        if (!(w in seen)) continue
        n = 0
        for (r = 1; r <= rounds; r++) if ((w, r) in line) p[++n] = kv(line[w, r], "p99_us") / 1000
        m = median(p, n)
        printf "goal p99 <= 5 ms, %s: %s (median %.2f ms, worst round %.2f ms)\n", w, (m <= 5 ? "met" : "NOT met"), m, p[n]
      }
    }
  }
' "$results")
printf '%s\n' "$summary"
if [ -n "$record" ]; then
  [ -n "$table_record" ] || { echo "--record needs table_record.py (the BUILD passes it)" >&2; exit 2; }
  printf '%s\n' "$summary" | /usr/bin/python3 "$table_record" --out="$record" \
    --benchmark=server_http_benchmark --build="$build_mode" --notes-from-text \
    --command="bazel run -c $([ "$build_mode" = fastbuild ] && echo fastbuild || echo opt) //benchmarks/server:server_http_benchmark -- --rounds=$rounds --duration=$duration --warmup=$warmup --connections=$connections --workloads=$workloads_csv$([ "$quick" = 1 ] && echo ' --quick')" \
    --note="median [min-max] over $rounds round(s), each workload in a fresh server process; wrk $connections connections, $wrk_threads threads" ||
    exit 2
fi

if [ "$failures" -gt 0 ]; then
  echo "FAIL: $failures run(s) had answers other than 2xx, socket errors or no requests"
  exit 1
fi
echo "every workload answered every request with 2xx"
