#!/usr/bin/env bash
# Views benchmark (BENCHMARKS.md, "Every view from an index"): a store of SOURCES x
# PER_SOURCE entries (default 509 x 100 = 50,900, the store of issue 13), then uncached
# renders of every kind of view: the combined feed, a tag, an empty tag, a named feed
# whose patterns match nothing, a sparse one, and one over a source with no entries.
# Prints p50/p99/max per view and the entries each render read (from /metrics).
#
#   bash bench/views.sh [SOURCES PER_SOURCE]
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCES=${1:-509}
PER_SOURCE=${2:-100}
cargo build --release --locked --quiet
cargo build --release --locked --quiet --example bench_store
BIN="$PWD/target/release/tributary"
T=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target/release/examples/bench_store "$T" "$SOURCES" "$PER_SOURCE" "$PORT"
# Every render uncached: the render cache keys on the canonical query, so no parameter
# could get past it; it is turned off instead.
sed -i 's/^\[server\]$/[server]\nrender_cache_mb = 0/' "$T/feeds.toml"
cat >> "$T/feeds.toml" <<'TOML'
[[source]]
name = "quiet"
url = "http://127.0.0.1:9/quiet.xml"
interval = "24h"
tags = ["empty"]

[[feed]]
name = "nothing"
include = ["never mentioned anywhere"]

[[feed]]
name = "sparse"
include = ["^Post 7 of source 1[0-9]$"]

[[feed]]
name = "quiet-only"
sources = ["quiet"]
TOML
RUST_LOG=info,tributary::daemon::supervise=debug "$BIN" run --config "$T/feeds.toml" 2> "$T/run.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$T"' EXIT
until curl -fs "http://127.0.0.1:$PORT/healthz" > /dev/null; do sleep 0.01; done
# The named feeds' indexes are built in the background at the first start over this store.
until grep -q "named feed index built" "$T/run.log" && [ "$(grep -c "named feed index built" "$T/run.log")" -ge 2 ]; do sleep 0.1; done
grep "named feed index built" "$T/run.log" | sed 's/^/  /'
until grep -q "retention pass" "$T/run.log"; do sleep 0.1; done
python3 - 127.0.0.1 "$PORT" <<'PY'
import sys, time, http.client
host, port = sys.argv[1], int(sys.argv[2])
conn = http.client.HTTPConnection(host, port)
def get(p):
    conn.request("GET", p)
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200, (p, r.status)
    return body
def read_so_far():
    for line in get("/metrics").decode().splitlines():
        if line.startswith("tributary_store_entries_read "):
            return int(line.split()[1])
def timed(path, n=200):
    out = []
    before = read_so_far()
    for i in range(n):
        p = path
        t = time.perf_counter()
        get(p)
        out.append((time.perf_counter() - t) * 1000)
    read = (read_so_far() - before) / n
    out.sort()
    return out, read
print("| uncached render | requests | p50 | p99 | max | entries read per render |")
print("|---|---|---|---|---|---|")
for name, path in [
    ("/feed.atom (newest 50 of all)", "/feed.atom"),
    ("/tags/t3.atom (a tenth of the sources)", "/tags/t3.atom"),
    ("/tags/empty.atom (one source, no entries)", "/tags/empty.atom"),
    ("/feeds/nothing.atom (patterns match nothing)", "/feeds/nothing.atom"),
    ("/feeds/sparse.atom (10 of 50,900 match)", "/feeds/sparse.atom"),
    ("/feeds/quiet-only.atom (a source with no entries)", "/feeds/quiet-only.atom"),
]:
    ms, read = timed(path)
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
    print(f"| {name} | {len(ms)} | {p(0.5):.2f} ms | {p(0.99):.2f} ms | {ms[-1]:.2f} ms | {read:.0f} |")
PY
