#!/usr/bin/env bash
# Poll-cycle benchmark (BENCHMARKS.md, "Poll cycle"): N sources served by a local origin
# spread over 50 loopback addresses (127.0.0.2-51), each feed 20 entries / ~20 KB.
# One full cycle is `tributary once` (every source polled once, `concurrency` at a time):
#   1. first cycle: everything new, all stored (and, from issue 19 on, taken into the
#      search index before `once` exits);
#   2. "304": every response 304 Not Modified (the origin honours If-None-Match);
#   3. "200": every response 200 with the same bytes (no validators), so every entry is
#      already stored.
# Wall time, CPU time (user+sys) and peak memory (max RSS) from /usr/bin/time; with more
# than one size, then the growth from each size to the next (item 6 of issue 18: linear).
#
#   bash bench/poll-cycle.sh 1000 10000 50000
#
# TRIBUTARY_BIN and BENCH_ORIGIN_BIN use those binaries instead of building release ones.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: bash bench/poll-cycle.sh N [N...]" >&2; exit 1; }
source bench/lib.sh
release_bin TRIBUTARY_BIN bin tributary
release_bin BENCH_ORIGIN_BIN example bench_origin
BIN=$TRIBUTARY_BIN
ORIGIN=$BENCH_ORIGIN_BIN
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.2", 0)); print(s.getsockname()[1])')}
HOSTS=50
CONCURRENCY=${CONCURRENCY:-64}
PER_HOST=${PER_HOST:-8}
T=""
OPID=""
RESULTS=$(mktemp)
cleanup() {
    if [ -n "$OPID" ]; then kill "$OPID" 2>/dev/null || true; wait "$OPID" 2>/dev/null || true; fi
    [ -z "$T" ] || rm -rf "$T"
    rm -f "$RESULTS"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_origin() { # start_origin MODE
    "$ORIGIN" --hosts $HOSTS --port "$PORT" --mode "$1" > "$T/origin.log" 2>&1 &
    OPID=$!
    for _ in $(seq 100); do grep -q ready "$T/origin.log" && return; sleep 0.1; done
    echo "origin did not start" >&2; cat "$T/origin.log" >&2; exit 1
}
measure() { # measure LABEL: one `once` cycle under /usr/bin/time
    /usr/bin/time -f "%e %U %S %M" -o "$T/time" "$BIN" once --config "$T/feeds.toml" > "$T/once.log" 2>/dev/null
    read -r wall user sys rss < "$T/time"
    failed=$(grep -c FAILED "$T/once.log" || true)
    grep -q "^$N sources polled" "$T/once.log" || { echo "once did not finish: $(tail -1 "$T/once.log")" >&2; exit 1; }
    printf '%s\t%s\t%s\t%s\n' "$N" "$1" "$wall" "$(echo "$user + $sys" | bc)" >> "$RESULTS"
    printf "| %s | %s | %s | %.2f s | %.2f s | %d MB | %s |\n" "$N" "$1" "$CONCURRENCY/$PER_HOST" \
        "$wall" "$(echo "$user + $sys" | bc)" $((rss / 1024)) "$failed"
}

echo "| sources | cycle | concurrency/per_host | wall | CPU (user+sys) | peak RSS | failed |"
echo "|---|---|---|---|---|---|---|"
for N in "$@"; do
    T=$(mktemp -d)
    {
        printf '[server]\nlisten = "127.0.0.1:0"\n[store]\npath = "%s/store"\n' "$T"
        printf '[fetch]\nconcurrency = %d\nper_host = %d\n' "$CONCURRENCY" "$PER_HOST"
        printf '[retention]\nkeep_total = 10000000\n'
        for ((i = 0; i < N; i++)); do
            printf '[[source]]\nname = "s%d"\nurl = "http://127.0.0.%d:%d/feed/%d.xml"\n' \
                "$i" $((2 + i % HOSTS)) "$PORT" "$i"
        done
    } > "$T/feeds.toml"
    start_origin etag
    measure "first, all new"
    measure "304"
    kill "$OPID"; wait "$OPID" 2>/dev/null || true; OPID=""
    start_origin always
    measure "200, all stored"
    kill "$OPID"; wait "$OPID" 2>/dev/null || true; OPID=""
    du -sh "$T/store" | sed 's/^/    store size: /' >&2
    rm -rf "$T"
    T=""
done

# Growth from each size to the next: the ratio of the times against the ratio of sizes.
if [ $# -gt 1 ]; then
    python3 - "$RESULTS" "$@" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    n, cycle, wall, cpu = line.rstrip("\n").split("\t")
    rows[(int(n), cycle)] = (float(wall), float(cpu))
sizes = [int(n) for n in sys.argv[2:]]
steps = list(zip(sizes, sizes[1:]))
print()
print("| cycle | " + " | ".join(f"{a:,} to {b:,} sources ({b / a:g}x)" for a, b in steps) + " |")
print("|---|" + "---|" * len(steps))
for cycle in ("304", "200, all stored"):
    for i, what in ((0, "wall time"), (1, "CPU")):
        cells = [f"{rows[(b, cycle)][i] / rows[(a, cycle)][i]:.1f}x" for a, b in steps]
        print(f"| {cycle.split(',')[0]}, {what} | " + " | ".join(cells) + " |")
PY
fi
