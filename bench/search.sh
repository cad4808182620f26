#!/usr/bin/env bash
# Search benchmark (BENCHMARKS.md, "Search"): a store of SOURCES x PER_SOURCE entries
# (default 10,000 x 100 = 1,000,000) filled by bench_store, then the daemon over it:
#   1. the search index built from the store (a store that had none: the rebuild), its
#      time, and the daemon's memory before, during and after (RssAnon is the heap, what
#      the daemon holds; VmHWM the peak resident set, mapped index files included); then,
#      once every source's feed was read (the store's cache in use), the memory at rest and
#      during and after a `tributary reindex` under the daemon;
#   2. the index's size on disk against the store's (after a clean stop);
#   3. uncached query latency (the render cache is off) of /search.json, per kind of
#      query and overall, each request a different query.
# With BASE_BIN (a build without search), the same daemon memory (at ready, and after
# reading every source's feed) is first measured with it over the same store, for the
# difference.
#
#   bash bench/search.sh [SOURCES PER_SOURCE]
#
# TRIBUTARY_BIN and BENCH_STORE_BIN use those binaries instead of building release ones;
# BENCH_DIR keeps the filled store there (and reuses it); KEEP_INDEX=1 then keeps its search
# index too (no rebuild: only the queries and the disk are measured again).
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCES=${1:-10000}
PER_SOURCE=${2:-100}
source bench/lib.sh
release_bin TRIBUTARY_BIN bin tributary
release_bin BENCH_STORE_BIN example bench_store
BIN=$TRIBUTARY_BIN
T=${BENCH_DIR:-$(mktemp -d)}
PID=""
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
grep -q '^render_cache_mb = 0' "$T/feeds.toml" || sed -i 's/^\[server\]$/[server]\nrender_cache_mb = 0/' "$T/feeds.toml"
mem() { awk '/VmHWM|RssAnon|VmRSS/ {printf "%s %d MB  ", $1, $2/1024}' "/proc/$1/status"; }
anon() { awk '/RssAnon/ {print int($2/1024)}' "/proc/$1/status"; }
serve() { # serve BIN: starts the daemon, waits until it answers
    RUST_LOG=info,tributary::daemon::supervise=debug "$1" run --config "$T/feeds.toml" 2>> "$T/run.log" &
    PID=$!
    until curl -fs "http://127.0.0.1:$PORT/healthz" > /dev/null; do sleep 0.01; done
    until grep -q "retention pass" "$T/run.log"; do sleep 0.1; done
}
stop() {
    kill -TERM "$PID"; wait "$PID" || true; PID=""
    : > "$T/run.log"
}
warm() { # reads every source's feed once (the store's page cache as a daemon's in use)
    python3 - "$PORT" "$SOURCES" <<'PY'
import sys, http.client
port, sources = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port)
for s in range(sources):
    conn.request("GET", f"/sources/s{s}.json?limit=100")
    r = conn.getresponse()
    r.read()
    assert r.status == 200, r.status
PY
    sleep 3
}
built() { # waits until the index is complete, sampling RssAnon every 0.25 s into $peak
    peak=0
    until curl -fs "http://127.0.0.1:$PORT/healthz" | python3 -c 'import json,sys; s=json.load(sys.stdin)["search"]; sys.exit(0 if s["complete"] and s["backlog"] == 0 else 1)'; do
        a=$(anon "$PID"); [ "$a" -gt "$peak" ] && peak=$a
        sleep 0.25
    done
}
if [ -n "${BASE_BIN:-}" ]; then
    serve "$BASE_BIN"
    sleep 5
    echo "without search ($BASE_BIN), at ready: $(mem "$PID")"
    warm
    echo "without search, after reading every source's feed: $(mem "$PID")"
    stop
fi
[ -n "${KEEP_INDEX:-}" ] || rm -rf "$T/store/search"
start=$(date +%s.%N)
serve "$BIN"
echo "at ready: $(mem "$PID")"
built
done_at=$(date +%s.%N)
echo "index built from the store in $(python3 -c "print(f'{$done_at - $start:.1f} s')"): $(curl -fs "http://127.0.0.1:$PORT/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["search"])')"
echo "RssAnon peak while indexing (sampled every 0.25 s): $peak MB"
sleep 5
echo "after indexing: $(mem "$PID")"
warm
echo "after reading every source's feed: $(mem "$PID")"
if [ -z "${KEEP_INDEX:-}" ]; then
    start=$(date +%s.%N)
    "$BIN" reindex --config "$T/feeds.toml"
    until grep -q "rebuild asked for" "$T/run.log"; do sleep 0.1; done
    built
    done_at=$(date +%s.%N)
    echo "tributary reindex under the daemon: $(python3 -c "print(f'{$done_at - $start:.1f} s')"), RssAnon peak $peak MB"
    sleep 5
    echo "after the reindex: $(mem "$PID")"
fi
python3 - 127.0.0.1 "$PORT" "$SOURCES" <<'PY'
import sys, time, http.client, json, re, random, urllib.parse
host, port, sources = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conn = http.client.HTTPConnection(host, port)
def get(path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200, (path, r.status, body[:200])
    return body
# The words of some entries, as the queries' material.
texts = []
for s in range(0, sources, max(1, sources // 40)):
    for item in json.loads(get(f"/sources/s{s}.json?limit=5"))["items"]:
        texts.append(re.sub(r"<[^>]+>", " ", item.get("content_html", "")).replace(".", " ").split())
counts = {}
for t in texts:
    for w in t:
        counts[w] = counts.get(w, 0) + 1
ranked = sorted(counts, key=lambda w: -counts[w])
common, rare = ranked[:30], [w for w in ranked if counts[w] == 1] or ranked[-30:]
rnd = random.Random(7)
def phrase(n):
    t = rnd.choice(texts)
    i = rnd.randrange(0, max(1, len(t) - n))
    return '"' + " ".join(t[i:i + n]) + '"'
kinds = {
    "one common word": lambda: rnd.choice(common),
    "one rare word": lambda: rnd.choice(rare),
    "two words": lambda: f"{rnd.choice(common)} {rnd.choice(rare)}",
    "phrase of two": lambda: phrase(2),
    "phrase of three": lambda: phrase(3),
    "a OR b": lambda: f"{rnd.choice(rare)} OR {rnd.choice(rare)}",
    "exclusion": lambda: f"{rnd.choice(common)} -{rnd.choice(common)}",
    "title: phrase": lambda: f'title:"post {rnd.randrange(100)}"',
    "tag: and word": lambda: f"tag:t{rnd.randrange(10)} {rnd.choice(common)}",
    "source: and word": lambda: f"source:s{rnd.randrange(sources)} {rnd.choice(common)}",
    "date range and word": lambda: f"{rnd.choice(common)} after:2025-01-0{rnd.randrange(1, 9)}",
    "relevance, two words": lambda: (f"{rnd.choice(common)} {rnd.choice(rare)}", "relevance"),
    "relevance, phrase": lambda: (phrase(2), "relevance"),
}
everything = []
print("| query (uncached) | requests | p50 | p99 | max |")
print("|---|---|---|---|---|")
for name, make in kinds.items():
    ms = []
    for i in range(60):
        q = make()
        sort = None
        if isinstance(q, tuple):
            q, sort = q
        params = {"q": q}
        if sort:
            params["sort"] = sort
        path = "/search.json?" + urllib.parse.urlencode(params)
        t = time.perf_counter()
        get(path)
        ms.append((time.perf_counter() - t) * 1000)
    ms.sort()
    everything += ms
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
    print(f"| {name} | {len(ms)} | {p(0.5):.1f} ms | {p(0.99):.1f} ms | {ms[-1]:.1f} ms |")
everything.sort()
p = lambda q: everything[min(len(everything) - 1, int(q * len(everything)))]
print(f"| **all** | {len(everything)} | {p(0.5):.1f} ms | {p(0.99):.1f} ms | {everything[-1]:.1f} ms |")
# Hostile queries: as costly as the syntax allows (32 terms of the commonest words). They
# are not in the p99 above; what counts is that each ends within the time bound, answered
# (200) or refused as too slow (503).
def status(path):
    conn.request("GET", path)
    r = conn.getresponse()
    r.read()
    assert r.status in (200, 503), (path, r.status)
    return r.status
hostile = {
    "32 common words ORed": lambda: (" OR ".join(rnd.sample(common, 30) + rnd.sample(rare, 2)), None),
    "16 common words": lambda: (" ".join(rnd.sample(common, 16)), None),
    "phrase of 8 common words": lambda: ('"' + " ".join(rnd.choices(common, k=8)) + '"', None),
    "phrase of 32 words, one entry's": lambda: (phrase(32)[:1000].rsplit(" ", 1)[0] + '"', None),
    "relevance, 32 common words ORed": lambda: (" OR ".join(rnd.sample(common, 30) + rnd.sample(rare, 2)), "relevance"),
}
print()
print("| hostile query (uncached) | requests | 503 | p50 | max |")
print("|---|---|---|---|---|")
for name, make in hostile.items():
    ms, refused = [], 0
    for i in range(20):
        q, sort = make()
        params = {"q": q}
        if sort:
            params["sort"] = sort
        t = time.perf_counter()
        refused += status("/search.json?" + urllib.parse.urlencode(params)) == 503
        ms.append((time.perf_counter() - t) * 1000)
    ms.sort()
    print(f"| {name} | {len(ms)} | {refused} | {ms[len(ms) // 2]:.1f} ms | {ms[-1]:.1f} ms |")
PY
echo "after the queries: $(mem "$PID")"
stop
python3 - "$T/store" <<'PY'
import os, sys
store = sys.argv[1]
def size(root, skip=()):
    return sum(os.stat(os.path.join(d, f)).st_blocks * 512 for d, _, fs in os.walk(root)
               if not any(os.path.join(d, "").startswith(os.path.join(store, s, "")) for s in skip)
               for f in fs if f != "tributary.reserve")
index, whole = size(os.path.join(store, "search")), size(store)
print(f"on disk: store {(whole - index) / 1e9:.2f} GB, index {index / 1e9:.2f} GB ({100 * index / (whole - index):.0f}% of the store)")
PY
