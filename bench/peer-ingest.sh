#!/usr/bin/env bash
# Ingest against feedparser (BENCHMARKS.md, "Against the peers"): the same 1.6 MB podcast
# feed (730 entries) parsed by Python feedparser and ingested by tributary, in one run.
#
#   bash bench/peer-ingest.sh [FEED]
#
# FEED defaults to the corpus's rss-parser-js/test/input/giantbomb-podcast.rss
# ($CORPUS, default ../shared/corpus: a real podcast feed, 1,618,297 bytes, 730 entries,
# each with HTML show notes).
# - feedparser: feedparser.parse() on the file's bytes, timed in-process
#   (bench/peer/feedparser_parse.py; it sanitises HTML and resolves relative URLs).
# - tributary: examples/bench_ingest.rs --file, in-process: the bare parser, and parse +
#   normalise (sanitising every entry's HTML) + dedup + store into a fresh store, flushed.
# - tributary's real poll path: `tributary once` polling the file from a local nginx into a
#   fresh store (one source): the poll's own time as `once` prints it (10 ms steps), and
#   the whole process (start, store open, fetch, poll, flush, exit).
# Each side reports the median of RUNS runs (default 9); ROUNDS (default 3) alternates the
# sides and the table shows the median of the rounds' medians.
# BENCH_INGEST_BIN and TRIBUTARY_BIN use those binaries instead of building release ones;
# PEER_VENV places the Python venv (bench/peer/venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FEED=${1:-${CORPUS:-../shared/corpus}/rss-parser-js/test/input/giantbomb-podcast.rss}
RUNS=${RUNS:-9}
ROUNDS=${ROUNDS:-3}
[ -f "$FEED" ] || { echo "peer-ingest: no feed at $FEED" >&2; exit 1; }
command -v nginx >/dev/null || { apt-get install -y -q nginx-light >/dev/null; }
source bench/lib.sh
release_bin TRIBUTARY_BIN bin tributary
release_bin BENCH_INGEST_BIN example bench_ingest
PY=$(bash bench/peer/venv.sh)
T=$(mktemp -d /tmp/peer-ingest.XXXXXX)
NPID=""
cleanup() {
    if [ -n "$NPID" ]; then kill "$NPID" 2>/dev/null || true; wait "$NPID" 2>/dev/null || true; fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "peer-ingest: $*" >&2; exit 1; }
# bench_ingest's stores are temporary directories: keep them in $T.
export TMPDIR=$T

# nginx serves the file for `tributary once`.
chmod 755 "$T"
mkdir -m 755 "$T/www"
cp "$FEED" "$T/www/feed.xml"
chmod 644 "$T/www/feed.xml"
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$T/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $T/nginx.pid;
error_log $T/nginx-error.log;
events { worker_connections 64; }
http {
    access_log off;
    types { application/rss+xml xml; }
    server { listen 127.0.0.1:$PORT; root $T/www; }
}
NGINX
nginx -c "$T/nginx.conf" -p "$T" 2>> "$T/nginx-error.log" &
NPID=$!
URL="http://127.0.0.1:$PORT/feed.xml"
for _ in $(seq 100); do curl -fs -o /dev/null "$URL" && break; sleep 0.05; done
cmp -s <(curl -fs "$URL") "$FEED" || { cat "$T/nginx-error.log" >&2; fail "nginx does not serve the feed"; }

# One `tributary once` of the file into a fresh store: prints "whole-process-seconds
# poll-seconds new-entries".
once_run() {
    rm -rf "$T/once"
    mkdir "$T/once"
    printf '[server]\nlisten = "127.0.0.1:0"\n[store]\npath = "%s/once/store"\n[[source]]\nname = "podcast"\nurl = "%s"\n' \
        "$T" "$URL" > "$T/once/feeds.toml"
    local start end
    start=$(date +%s%N)
    "$TRIBUTARY_BIN" once --config "$T/once/feeds.toml" > "$T/once/out" 2> "$T/once/err" ||
        { cat "$T/once/err" >&2; fail "tributary once failed"; }
    end=$(date +%s%N)
    grep -q '^1 sources polled, 0 failed' "$T/once/out" || fail "tributary once: $(cat "$T/once/out")"
    awk -v wall=$(((end - start) / 1000)) '/ ok /{for(i=1;i<NF;i++) if($i=="new") n=$(i+1); t=$NF; sub(/s$/,"",t);
        printf "%.6f %s %d\n", wall / 1e6, t, n}' "$T/once/out"
}

run_fp() { "$PY" bench/peer/feedparser_parse.py "$FEED" "$RUNS" > "$T/fp.$round.json"; }
run_tr() {
    "$BENCH_INGEST_BIN" --file "$FEED" --runs "$RUNS" > "$T/tr.$round.md"
    for ((run = 0; run < RUNS; run++)); do once_run; done > "$T/once.$round.txt"
}
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for ((round = 1; round <= ROUNDS; round++)); do
    if ((round % 2)); then run_fp; run_tr; else run_tr; run_fp; fi
    echo "    round $round: feedparser $(cut -c1-40 "$T/fp.$round.json")..., tributary $(grep -c '^| ' "$T/tr.$round.md") rows" >&2
done

echo "Load average (1, 5, 15 min) at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)."
"$PY" - "$T" "$ROUNDS" "$RUNS" "$FEED" <<'PY'
import json, os, sys
from statistics import median

tmp, rounds, runs, feed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
size = os.path.getsize(feed)
fp, parse, ingest, once_wall, once_poll = [], [], [], [], []
fp_entries = parse_entries = stored = None
version = None
for r in range(1, rounds + 1):
    j = json.load(open(f"{tmp}/fp.{r}.json"))
    fp.append(j["median"])
    fp_entries, version = j["entries"], j["feedparser"]
    for line in open(f"{tmp}/tr.{r}.md"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[3].endswith(" s"):
            continue
        seconds = float(cells[3][:-2])
        entries = int(cells[2].split(",")[-1].split()[0])
        if cells[1] == "parser alone":
            parse.append(seconds)
            parse_entries = entries
        elif cells[1].startswith("parse + normalise"):
            ingest.append(seconds)
            stored = entries
    runs_once = [line.split() for line in open(f"{tmp}/once.{r}.txt")]
    if len(runs_once) != int(runs) or any(int(n) != stored for _, _, n in runs_once):
        raise SystemExit(f"peer-ingest: tributary once did not store {stored} entries each run: {runs_once}")
    once_wall.append(median(float(w) for w, _, _ in runs_once))
    once_poll.append(median(float(p) for _, p, _ in runs_once))
if len(parse) != rounds or len(ingest) != rounds:
    raise SystemExit("peer-ingest: bench_ingest printed no times")
if not (fp_entries == parse_entries == stored):
    raise SystemExit(f"peer-ingest: entries differ: feedparser {fp_entries}, "
                     f"tributary's parser {parse_entries}, stored {stored}")
f, p, i = median(fp), median(parse), median(ingest)
mb = size / 1e6
print(f"{os.path.basename(feed)}: {size:,} bytes, {stored} entries; each time the median "
      f"of {rounds} round(s) of the median of {runs} runs; in-process but for the `once` rows")
print()
print("| tool | what | time | MB/s | feedparser / this |")
print("|---|---|---|---|---|")
print(f"| feedparser {version} | feedparser.parse (sanitises, resolves URLs) | {f:.3f} s | {mb / f:.1f} | 1.0x |")
print(f"| tributary | parser alone | {p:.3f} s | {mb / p:.1f} | {f / p:.1f}x |")
print(f"| tributary | parse + normalise + sanitise + store (fresh store) | {i:.3f} s | {mb / i:.1f} | **{f / i:.1f}x** |")
o, w = median(once_poll), median(once_wall)
print(f"| tributary | `once`, the poll's own time as printed (fetch from nginx, then as above) | {o:.2f} s | {mb / o:.1f} | {f / o:.1f}x |")
print(f"| tributary | `once`, the whole process (start, store open, poll, flush, exit) | {w:.3f} s | {mb / w:.1f} | {f / w:.1f}x |")
PY
