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
# Each side reports the median of RUNS runs (default 9); ROUNDS (default 3) alternates the
# two sides and the table shows the median of the rounds' medians.
# BENCH_INGEST_BIN uses that bench_ingest binary instead of building it; PEER_VENV places
# the Python venv (bench/peer/venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FEED=${1:-${CORPUS:-../shared/corpus}/rss-parser-js/test/input/giantbomb-podcast.rss}
RUNS=${RUNS:-9}
ROUNDS=${ROUNDS:-3}
[ -f "$FEED" ] || { echo "peer-ingest: no feed at $FEED" >&2; exit 1; }
if [ -z "${BENCH_INGEST_BIN:-}" ]; then
    cargo build --release --locked --quiet --example bench_ingest
    BENCH_INGEST_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/bench_ingest"
fi
[ -x "$BENCH_INGEST_BIN" ] || { echo "peer-ingest: no bench_ingest at $BENCH_INGEST_BIN" >&2; exit 1; }
PY=$(bash bench/peer/venv.sh)
T=$(mktemp -d /tmp/peer-ingest.XXXXXX)
trap 'rm -rf "$T"' EXIT
# bench_ingest's stores are temporary directories: keep them in $T.
export TMPDIR=$T

for ((round = 1; round <= ROUNDS; round++)); do
    run_fp() { "$PY" bench/peer/feedparser_parse.py "$FEED" "$RUNS" > "$T/fp.$round.json"; }
    run_tr() { "$BENCH_INGEST_BIN" --file "$FEED" --runs "$RUNS" > "$T/tr.$round.md"; }
    if ((round % 2)); then run_fp; run_tr; else run_tr; run_fp; fi
    echo "    round $round: feedparser $(cut -c1-40 "$T/fp.$round.json")..., tributary $(grep -c '^| ' "$T/tr.$round.md") rows" >&2
done

"$PY" - "$T" "$ROUNDS" "$RUNS" "$FEED" <<'PY'
import json, os, sys
from statistics import median

tmp, rounds, runs, feed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
size = os.path.getsize(feed)
fp, parse, ingest = [], [], []
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
if len(parse) != rounds or len(ingest) != rounds:
    raise SystemExit("peer-ingest: bench_ingest printed no times")
if not (fp_entries == parse_entries == stored):
    raise SystemExit(f"peer-ingest: entries differ: feedparser {fp_entries}, "
                     f"tributary's parser {parse_entries}, stored {stored}")
f, p, i = median(fp), median(parse), median(ingest)
mb = size / 1e6
print(f"{os.path.basename(feed)}: {size:,} bytes, {stored} entries; each time the median "
      f"of {rounds} round(s) of the median of {runs} runs, in-process")
print()
print("| tool | what | time | MB/s | feedparser / this |")
print("|---|---|---|---|---|")
print(f"| feedparser {version} | feedparser.parse (sanitises, resolves URLs) | {f:.3f} s | {mb / f:.1f} | 1.0x |")
print(f"| tributary | parser alone | {p:.3f} s | {mb / p:.1f} | {f / p:.1f}x |")
print(f"| tributary | parse + normalise + sanitise + store (fresh store) | {i:.3f} s | {mb / i:.1f} | **{f / i:.1f}x** |")
PY
