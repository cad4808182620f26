#!/usr/bin/env bash
# Poll cycles against the nearest peer (BENCHMARKS.md, "Against the peers"): `tributary once`
# and the Python `reader` library (lemon24/reader; SQLite, conditional GET, dedup), side by
# side in one run, polling the same N feeds from one local nginx, 16 requests in flight each.
#
#   bash bench/peer-cycle.sh            # 1,000 feeds
#   bash bench/peer-cycle.sh 1000 10000 # one table row per size and cycle
#
# The feeds are static files (bench/peer/make_feeds.py: 20 entries, about 16 KB each, the
# bytes examples/bench_origin.rs serves plus a lastBuildDate), so both tools fetch the same
# bytes. nginx listens on $HOSTS loopback addresses (127.0.0.2 ...); feed i is on address
# i mod $HOSTS. The cycles, each run by both tools (alternating which goes first):
#   a. every feed new: fresh stores, every response 200, every entry stored;
#   b. nothing changed: nginx with `etag on`, every response 304;
#   c. nothing changed, the origin ignores validators: no ETag, no Last-Modified,
#      If-Modified-Since ignored; every response 200 with the same bytes (all entries known);
#   d. as c, but the files are rewritten before each run with another channel lastBuildDate,
#      so each response differs from the last only there (entries unchanged).
# Each run is one process under /usr/bin/time (user+sys CPU, peak RSS; wall in ms around it): `tributary
# once` with `concurrency = 16`, `per_host = 16`; for reader, bench/peer/reader_cycle.py,
# which opens its SQLite DB and runs update_feeds_iter(workers=16) (the loop update_feeds()
# runs); its in-process time of that call is shown too. The feeds are added to reader's DB
# before cycle a, untimed. nginx's access log checks every run: N requests, all 200 (a, c,
# d) or all 304 (b); each tool's own counts are checked as well (new entries, failures).
#
# ROUNDS (default 3) repeats the whole sequence with fresh stores; the table shows each
# figure's median. TRIBUTARY_BIN uses that binary instead of building the release one;
# PEER_VENV places the Python venv (bench/peer/venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000)
ROUNDS=${ROUNDS:-3}
HOSTS=${HOSTS:-16}
IN_FLIGHT=16
command -v nginx >/dev/null || { apt-get install -y -q nginx-light >/dev/null; }
[ -x /usr/bin/time ] || { apt-get install -y -q time >/dev/null; }
source bench/lib.sh
release_bin TRIBUTARY_BIN bin tributary
PY=$(bash bench/peer/venv.sh)
DRIVER="$ROOT/bench/peer/reader_cycle.py"
MAKE="$ROOT/bench/peer/make_feeds.py"

T=$(mktemp -d /tmp/peer-cycle.XXXXXX)
NPID=""
cleanup() {
    if [ -n "$NPID" ]; then kill "$NPID" 2>/dev/null || true; wait "$NPID" 2>/dev/null || true; fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 755 "$T"
fail() { echo "peer-cycle: $*" >&2; exit 1; }
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.2", 0)); print(s.getsockname()[1])')

# nginx in the foreground (our child, so it is stopped on exit), one config per mode.
nginx_conf() { # nginx_conf MODE ROOT_DIR
    {
        printf 'daemon off;\nworker_processes auto;\npid %s/nginx.pid;\nerror_log %s/nginx-error.log;\n' "$T" "$T"
        printf 'events { worker_connections 4096; }\nhttp {\n'
        printf '    log_format st "$status";\n    access_log %s/access.log st;\n' "$T"
        printf '    sendfile on;\n    tcp_nopush on;\n    keepalive_requests 100000;\n'
        printf '    types { application/rss+xml xml; }\n'
        printf '    server {\n'
        for ((h = 0; h < HOSTS; h++)); do printf '        listen 127.0.0.%d:%d;\n' $((2 + h)) "$PORT"; done
        printf '        root %s;\n' "$2"
        if [ "$1" = etag ]; then
            printf '        etag on;\n'
        else
            # No validators at all, and a conditional request is answered in full.
            printf '        etag off;\n        if_modified_since off;\n        add_header Last-Modified "";\n'
        fi
        printf '    }\n}\n'
    } > "$T/nginx.conf"
}
start_nginx() { # start_nginx MODE ROOT_DIR: (re)start nginx and check it behaves as MODE
    if [ -n "$NPID" ]; then kill "$NPID"; wait "$NPID" 2>/dev/null || true; NPID=""; fi
    nginx_conf "$1" "$2"
    nginx -c "$T/nginx.conf" -p "$T" 2>> "$T/nginx-error.log" &
    NPID=$!
    local url="http://127.0.0.$((1 + HOSTS)):$PORT/feed/0.xml" headers code
    for _ in $(seq 100); do curl -fs -o /dev/null "$url" && break; sleep 0.05; done
    headers=$(curl -fsI "$url" | tr -d '\r') || { cat "$T/nginx-error.log" >&2; fail "nginx does not answer"; }
    if [ "$1" = etag ]; then
        grep -qi '^etag:' <<<"$headers" || fail "nginx sends no ETag in etag mode"
        code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $(awk -F': ' 'tolower($1)=="etag"{print $2}' <<<"$headers")" "$url")
        [ "$code" = 304 ] || fail "nginx answers $code, not 304, to its own ETag"
    else
        ! grep -qi '^\(etag\|last-modified\):' <<<"$headers" || fail "nginx sends a validator in plain mode: $headers"
        code=$(curl -s -o /dev/null -w '%{http_code}' -H 'If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT' "$url")
        [ "$code" = 200 ] || fail "nginx answers $code, not 200, to If-Modified-Since in plain mode"
    fi
    : > "$T/access.log"
}
# Checks the access log since the last call: N requests, all with status $1.
check_log() { # check_log STATUS WHO
    local total ok
    total=$(wc -l < "$T/access.log")
    ok=$(grep -c "^$1\$" "$T/access.log" || true)
    [ "$total" -eq "$N" ] && [ "$ok" -eq "$N" ] ||
        fail "$2: nginx saw $total requests, $ok of them $1 (expected $N, all $1)"
    : > "$T/access.log"
}
timed() { # timed OUT CMD...: runs CMD under /usr/bin/time; prints "wall cpu rss_kb"
    # Wall time in ms from the clock around it (/usr/bin/time's own is in steps of 10 ms,
    # a tenth of a 304 cycle); CPU and peak RSS from /usr/bin/time.
    local out=$1
    shift
    # EPOCHREALTIME (bash 5) without its decimal mark: microseconds, no fork, no locale.
    local t0 t1
    t0=${EPOCHREALTIME/[.,]/}
    /usr/bin/time -f "%e %U %S %M" -o "$T/time" "$@" > "$out" 2> "$out.err" ||
        { cat "$out.err" >&2; fail "$* failed"; }
    t1=${EPOCHREALTIME/[.,]/}
    local wall user sys rss us
    read -r wall user sys rss < <(tail -1 "$T/time")
    us=$((t1 - t0))
    wall=$((us / 1000000)).$(printf '%03d' $(((us / 1000) % 1000)))
    echo "$wall $(echo "$user + $sys" | bc) $rss"
}
run_reader() { # run_reader CYCLE STATUS
    local m inproc
    m=$(timed "$T/reader.json" "$PY" "$DRIVER" update "$R/reader.sqlite" "$IN_FLIGHT")
    check_log "$2" "reader, cycle $1"
    "$PY" - "$T/reader.json" "$1" "$N" <<'PY' || fail "reader, cycle $1: counts wrong: $(cat "$T/reader.json")"
import json, sys
r = json.load(open(sys.argv[1])); cycle = sys.argv[2]; n = int(sys.argv[3])
assert r["failed"] == 0, r["errors"]
assert r["updated"] + r["not_modified"] == n
if cycle == "a": assert r["updated"] == n and r["new"] == 20 * n
elif cycle == "b": assert r["not_modified"] == n
else: assert r["new"] == 0 and r["modified"] == 0
PY
    inproc=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$T/reader.json")
    printf '%s\t%s\t%s\treader\t%s\t%s\n' "$N" "$ROUND" "$1" "$m" "$inproc" | tr ' ' '\t' >> "$T/results.tsv"
}
run_tributary() { # run_tributary CYCLE STATUS
    local m counts
    m=$(timed "$T/once.log" "$TRIBUTARY_BIN" once --config "$R/feeds.toml")
    check_log "$2" "tributary, cycle $1"
    # Per-source lines: "name ok 200 ... new N updated N unchanged N" or "... not modified".
    counts=$(awk '/ FAILED /{f++} /not modified/{nm++} / ok /{for(i=1;i<NF;i++){if($i=="new")n+=$(i+1); if($i=="updated")u+=$(i+1)}}
        END{printf "%d %d %d %d", f, nm, n, u}' "$T/once.log")
    read -r failed notmod new updated <<<"$counts"
    grep -q "^$N sources polled, 0 failed" "$T/once.log" && [ "$failed" -eq 0 ] ||
        fail "tributary, cycle $1: $(tail -1 "$T/once.log")"
    case $1 in
        a) [ "$new" -eq $((20 * N)) ] || fail "tributary, cycle a: $new new entries, not $((20 * N))" ;;
        b) [ "$notmod" -eq "$N" ] || fail "tributary, cycle b: $notmod not modified, not $N" ;;
        *) [ "$new" -eq 0 ] || fail "tributary, cycle $1: $new new entries, not 0" ;;
    esac
    [ "$updated" -eq 0 ] || echo "    tributary, cycle $1: $updated entries counted updated" >&2
    printf '%s\t%s\t%s\ttributary\t%s\t-\n' "$N" "$ROUND" "$1" "$m" | tr ' ' '\t' >> "$T/results.tsv"
}
both() { # both CYCLE STATUS: each tool once, the first alternating by round
    if [ "$1" = d ]; then "$PY" "$MAKE" "$T/www-d" "$N" $((++BUILD)); fi
    if ((ROUND % 2)); then run_reader "$1" "$2"; else run_tributary "$1" "$2"; fi
    if [ "$1" = d ]; then "$PY" "$MAKE" "$T/www-d" "$N" $((++BUILD)); fi
    if ((ROUND % 2)); then run_tributary "$1" "$2"; else run_reader "$1" "$2"; fi
    echo "    $N feeds, round $ROUND, cycle $1: $(tail -2 "$T/results.tsv" | cut -f4,5 | tr '\t\n' '  ')" >&2
}

: > "$T/results.tsv"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for N in "${SIZES[@]}"; do
    rm -rf "$T/www" "$T/www-d"
    "$PY" "$MAKE" "$T/www" "$N" 0
    BUILD=0
    chmod -R a+rX "$T/www"
    for ((i = 0; i < N; i++)); do
        echo "http://127.0.0.$((2 + i % HOSTS)):$PORT/feed/$i.xml"
    done > "$T/urls"
    BYTES=$(stat -c %s "$T/www/feed/0.xml")
    echo "$N feeds of $BYTES bytes, 20 entries each, on $HOSTS addresses; $ROUNDS rounds" >&2
    for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
        R="$T/round"
        rm -rf "$R"
        mkdir -p "$R"
        {
            printf '[server]\nlisten = "127.0.0.1:0"\n[store]\npath = "%s/store"\n' "$R"
            printf '[fetch]\nconcurrency = %d\nper_host = %d\n' "$IN_FLIGHT" "$IN_FLIGHT"
            printf '[retention]\nkeep_total = 100000000\n'
            awk '{printf "[[source]]\nname = \"s%d\"\nurl = \"%s\"\n", NR - 1, $0}' "$T/urls"
        } > "$R/feeds.toml"
        "$PY" "$DRIVER" add "$R/reader.sqlite" "$T/urls" > /dev/null
        start_nginx etag "$T/www"
        both a 200
        both b 304
        start_nginx plain "$T/www"
        both c 200
        "$PY" "$MAKE" "$T/www-d" "$N" 0
        chmod -R a+rX "$T/www-d"
        start_nginx plain "$T/www-d"
        both d 200
    done
done
kill "$NPID"
wait "$NPID" 2>/dev/null || true
NPID=""

# The table: the median over rounds of each figure.
echo "Load average (1, 5, 15 min) at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)."
"$PY" - "$T/results.tsv" "$ROUNDS" "$IN_FLIGHT" <<'PY'
import sys
from collections import defaultdict
from statistics import median

rows = defaultdict(list)
for line in open(sys.argv[1]):
    n, _round, cycle, tool, wall, cpu, rss, inproc = line.rstrip("\n").split("\t")
    rows[(int(n), cycle, tool)].append((float(wall), float(cpu), int(rss), inproc))
names = {
    "a": "every feed new (200, all stored)",
    "b": "nothing changed, 304",
    "c": "nothing changed, origin ignores validators (200, all entries known)",
    "d": "as c, but each body differs in lastBuildDate (entries unchanged)",
}
rounds, flight = sys.argv[2], sys.argv[3]
print(f"Median of {rounds} round(s); {flight} requests in flight each; wall and CPU (user+sys) "
      "of the whole process, peak RSS; reader's update_feeds_iter alone in brackets.")
print()
print("| feeds | cycle | reader wall | tributary wall | ratio | reader CPU | tributary CPU | ratio | reader peak RSS | tributary peak RSS |")
print("|---|---|---|---|---|---|---|---|---|---|")
for n, cycle in sorted({(n, c) for n, c, _ in rows}):
    r, t = rows[(n, cycle, "reader")], rows[(n, cycle, "tributary")]
    rw, tw = median(x[0] for x in r), median(x[0] for x in t)
    rc, tc = median(x[1] for x in r), median(x[1] for x in t)
    rr, tr = median(x[2] for x in r), median(x[2] for x in t)
    inproc = median(float(x[3]) for x in r)
    print(f"| {n:,} | {names[cycle]} | {rw:.2f} s ({inproc:.2f} s) | {tw:.3f} s | {rw / tw:.1f}x "
          f"| {rc:.2f} s | {tc:.2f} s | {rc / tc:.1f}x | {rr / 1024:.0f} MB | {tr / 1024:.0f} MB |")
PY
