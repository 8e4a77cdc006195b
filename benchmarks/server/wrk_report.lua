-- wrk script for server_http_benchmark.sh. Everything comes from the environment so that one
-- script serves every workload:
--   BENCH_METHOD        request method (default GET)
--   BENCH_BODY          request body, sent as application/json (default none)
--   BENCH_COUNT_STATUS  "1": count every answer outside 200-299 exactly, in a response() hook.
--                       That hook makes wrk parse each answer and call Lua per request, which
--                       costs client CPU, so the timed runs leave it off and rely on wrk's own
--                       count (status >= 400); warm-ups and --quick turn it on.
-- done() prints one line, "BENCH key=value ...", that the shell script reads: exact percentiles
-- from wrk's latency histogram (microseconds), requests, duration and every error count.
-- Static requests (no request() hook) keep wrk on its fast path: the request is built once.

local method = os.getenv("BENCH_METHOD")
if method ~= nil and method ~= "" then
  wrk.method = method
end
local body = os.getenv("BENCH_BODY")
if body ~= nil and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

local counting = os.getenv("BENCH_COUNT_STATUS") == "1"
local threads = {}

-- Runs in the main Lua state once per wrk thread; done() reads each thread's counter.
function setup(thread)
  table.insert(threads, thread)
end

if counting then
  non2xx = 0  -- a global of each thread's own Lua state
  function response(status, headers, body)
    if status < 200 or status > 299 then
      non2xx = non2xx + 1
    end
  end
end

function done(summary, latency, requests)
  local bad = -1  -- not counted
  if counting then
    bad = 0
    for _, thread in ipairs(threads) do
      bad = bad + thread:get("non2xx")
    end
  end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "mean_us=%.1f status_errors=%d non2xx=%d connect_errors=%d read_errors=%d " ..
    "write_errors=%d timeouts=%d bytes=%d\n",
    summary.requests, summary.duration, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, e.status, bad, e.connect, e.read, e.write, e.timeout, summary.bytes))
end
