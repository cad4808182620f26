#!/usr/bin/env bash
# Big-store benchmark (BENCHMARKS.md, "A big store"): SOURCES x PER_SOURCE entries
# (default 10,000 x 100 = 1,000,000), then the daemon over it: time from start to
# serving (/healthz answers, which follows READY), memory then and after the start-up
# retention pass, uncached render latency of the combined
# feed and of per-source feeds (every request a new query, so none is served from the
# render cache), disk size, and the daemon's peak memory; then, with wrk installed, 15 s
# of 64 connections rendering uncached feeds at once (throughput and peak memory).
#
#   bash bench/big-store.sh [SOURCES PER_SOURCE]
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCES=${1:-10000}
PER_SOURCE=${2:-100}
# TRIBUTARY_BIN and BENCH_STORE_BIN use those binaries instead of building release ones.
source bench/lib.sh
release_bin TRIBUTARY_BIN bin tributary
release_bin BENCH_STORE_BIN example bench_store
BIN=$TRIBUTARY_BIN
T=${BENCH_DIR:-$(mktemp -d)}
PID=""
# A store made here (no BENCH_DIR) is 2.8 GB at a million entries: removed at the end,
# also when the fill or a step fails.
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    if [ -z "${BENCH_DIR:-}" ]; then rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ ! -e "$T/store/db" ]; then
    "$BENCH_STORE_BIN" "$T" "$SOURCES" "$PER_SOURCE" "$PORT"
else
    sed -i "s/^listen = .*/listen = \"127.0.0.1:$PORT\"/" "$T/feeds.toml"
fi
# Every render uncached: the render cache keys on the canonical query, so no parameter
# gets past it; it is turned off instead.
grep -q '^render_cache_mb = 0' "$T/feeds.toml" || sed -i 's/^\[server\]$/[server]\nrender_cache_mb = 0/' "$T/feeds.toml"
# Allocated disk per entry (du counts allocated blocks; the 8 MB reserve file is left out).
python3 - "$T/store" "$((SOURCES * PER_SOURCE))" <<'PY'
import os, sys
store, entries = sys.argv[1], int(sys.argv[2])
total = sum(os.stat(os.path.join(d, f)).st_blocks * 512 for d, _, fs in os.walk(store) for f in fs if f != "tributary.reserve")
print(f"store on disk: {total / 1e9:.2f} GB allocated, {total / entries:.0f} bytes per entry")
PY
start=$(date +%s.%N)
RUST_LOG=info,tributary::daemon::supervise=debug "$BIN" run --config "$T/feeds.toml" 2> "$T/run.log" &
PID=$!
until curl -fs "http://127.0.0.1:$PORT/healthz" > /dev/null; do sleep 0.01; done
ready=$(date +%s.%N)
echo "start to serving: $(python3 -c "print(f'{$ready - $start:.3f} s')")"
echo "daemon memory at ready: $(awk '/VmHWM|VmRSS/ {printf "%s %d MB  ", $1, $2/1024}' /proc/$PID/status)"
# The retention pass at start (nothing to prune here) is over before renders are timed.
until grep -q "retention pass" "$T/run.log"; do sleep 0.1; done
echo "daemon memory after the start-up retention pass: $(awk '/VmHWM|VmRSS/ {printf "%s %d MB  ", $1, $2/1024}' /proc/$PID/status)"
python3 - 127.0.0.1 "$PORT" "$SOURCES" <<'PY'
import sys, time, http.client
host, port, sources = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# One persistent connection, so the times are the daemon's (plus well under 0.1 ms of
# client), not TCP set-up.
conn = http.client.HTTPConnection(host, port)
def timed(paths):
    out = []
    for p in paths:
        t = time.perf_counter()
        conn.request("GET", p)
        r = conn.getresponse()
        r.read()
        out.append((time.perf_counter() - t) * 1000)
        assert r.status == 200, (p, r.status)
    out.sort()
    return out
def report(name, ms):
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
    print(f"| {name} | {len(ms)} | {p(0.5):.2f} ms | {p(0.99):.2f} ms | {ms[-1]:.2f} ms |")
print("| uncached render | requests | p50 | p99 | max |")
print("|---|---|---|---|---|")
# The render cache is off (above), so every request renders.
report("/feed.atom (the newest 50 of all)", timed([f"/feed.atom?nocache={i}" for i in range(500)]))
report("/sources/sK.atom (a different source each)", timed([f"/sources/s{(i * 37) % sources}.atom" for i in range(800)]))
report("/feed.json (the newest 50 of all)", timed([f"/feed.json?nocache={i}" for i in range(500)]))
report("/feed.atom?limit=200 (the newest 200)", timed([f"/feed.atom?limit=200&nocache={i}" for i in range(200)]))
PY
echo "daemon memory after the renders: $(awk '/VmHWM|VmRSS/ {printf "%s %d MB  ", $1, $2/1024}' /proc/$PID/status)"
# Then 64 connections of uncached renders at once for 15 s (wrk, when installed): four in
# five a different source's feed, one in five the combined feed. Throughput and the
# daemon's peak memory under concurrent reads of the store.
if command -v wrk > /dev/null; then
    # Each wrk thread has its own Lua state: numbered in setup, each walks its own part of
    # the sequence, so the two do not ask for the same sources in step.
    cat > "$T/uncached.lua" <<LUA
local threads = 0
setup = function(thread)
  thread:set("id", threads)
  threads = threads + 1
end
local n = nil
request = function()
  if n == nil then n = id * 1000003 end
  n = n + 1
  local s = (n * 7919) % $SOURCES
  if n % 5 == 0 then return wrk.format("GET", "/feed.atom?n=" .. n) end
  return wrk.format("GET", "/sources/s" .. s .. ".atom")
end
LUA
    echo "64 connections of uncached renders for 15 s (wrk -t2 -c64):"
    wrk -t2 -c64 -d15s -s "$T/uncached.lua" "http://127.0.0.1:$PORT/" > "$T/wrk.txt"
    grep -E "Latency|Requests/sec" "$T/wrk.txt" | sed 's/^/    /'
    if grep -qE "Non-2xx|Socket errors" "$T/wrk.txt"; then
        echo "big-store: failed answers under load:" >&2
        cat "$T/wrk.txt" >&2
        exit 1
    fi
    echo "daemon memory after them: $(awk '/VmHWM|VmRSS/ {printf "%s %d MB  ", $1, $2/1024}' /proc/$PID/status)"
fi
