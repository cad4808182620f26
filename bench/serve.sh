#!/usr/bin/env bash
# Serving benchmark (BENCHMARKS.md, "Serving"): requests/s and p99 latency of a warm
# /feed.atom from tributary, against nginx serving the very same bytes as a static file,
# in the same run, with and without If-None-Match. wrk and nginx from Debian
# (apt-get install wrk nginx-light).
#
#   bash bench/serve.sh            # DURATION=10s CONNECTIONS=64 THREADS=2 ROUNDS=3 by default
#
# Each round measures nginx and tributary one after the other, the first alternating by
# round (interleaved), and prints their ratio; the last line gives the median ratios.
# TRIBUTARY_BIN and BENCH_ORIGIN_BIN use those binaries instead of building release ones.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null && command -v nginx >/dev/null || apt-get install -y -q wrk nginx-light >/dev/null
source bench/lib.sh
release_bin TRIBUTARY_BIN bin tributary
release_bin BENCH_ORIGIN_BIN example bench_origin
BIN=$TRIBUTARY_BIN
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
T=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$T"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# A store with 100 sources x 20 entries, from the benchmark origin.
OPORT=$(free_port)
"$BENCH_ORIGIN_BIN" --hosts 4 --port "$OPORT" > "$T/origin.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$T/origin.log" && break; sleep 0.1; done
TPORT=$(free_port)
{
    printf '[server]\nlisten = "127.0.0.1:%s"\n[store]\npath = "%s/store"\n' "$TPORT" "$T"
    for i in $(seq 0 99); do
        printf '[[source]]\nname = "s%d"\nurl = "http://127.0.0.%d:%s/feed/%d.xml"\ninterval = "1h"\n' "$i" $((2 + i % 4)) "$OPORT" "$i"
    done
} > "$T/feeds.toml"
"$BIN" once --config "$T/feeds.toml" > /dev/null 2>&1
"$BIN" run --config "$T/feeds.toml" 2> "$T/run.log" &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$TPORT/healthz" > /dev/null && break; sleep 0.1; done
URL="http://127.0.0.1:$TPORT/feed.atom"
mkdir -p "$T/www"
chmod 755 "$T" "$T/www"
curl -fs "$URL" -o "$T/www/feed.atom"
chmod 644 "$T/www/feed.atom"
ETAG=$(curl -fsI "$URL" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')

# nginx: the same bytes as a static file.
NPORT=$(free_port)
cat > "$T/nginx.conf" <<NGINX
worker_processes auto;
pid $T/nginx.pid;
error_log $T/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    types { application/atom+xml atom; }
    server {
        listen 127.0.0.1:$NPORT;
        root $T/www;
        etag on;
    }
}
NGINX
nginx -c "$T/nginx.conf" -p "$T"
PIDS+=($(cat "$T/nginx.pid" 2>/dev/null || true))
sleep 0.5
NURL="http://127.0.0.1:$NPORT/feed.atom"
NETAG=$(curl -fsI "$NURL" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')

run() { # run LABEL URL [HEADER]: one wrk run; prints requests/s and p99
    local out
    if [ -n "${3:-}" ]; then
        out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "$3" "$2")
    else
        out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$2")
    fi
    local rps p99 errors
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    # wrk counts answers other than 2xx/3xx (a 304 is 3xx) and socket errors.
    errors=$(awk '/Non-2xx/ {n += $5} /Socket errors/ {n += 1} END {print n + 0}' <<<"$out")
    printf "| %s | %s | %s | %s |\n" "$1" "$rps" "$p99" "$errors"
    echo "$rps" > "$T/last"
}
BYTES=$(stat -c %s "$T/www/feed.atom")
echo "feed.atom: $BYTES bytes, 50 entries; wrk -t$THREADS -c$CONNECTIONS -d$DURATION (wrk, nginx and tributary share the machine's cores)"
echo
echo "| round | server, request | requests/s | p99 latency | errors |"
echo "|---|---|---|---|---|"
: > "$T/ratios"
for round in $(seq "$ROUNDS"); do
    for kind in 200 304; do
        if [ "$kind" = 200 ]; then nh=""; th=""; else nh="If-None-Match: $NETAG"; th="If-None-Match: $ETAG"; fi
        label=$([ "$kind" = 200 ] && echo "200" || echo "If-None-Match (304)")
        if [ $((round % 2)) = 1 ]; then
            run "$round | nginx, $label" "$NURL" "$nh"; n=$(cat "$T/last")
            run "$round | tributary, $label" "$URL" "$th"; t=$(cat "$T/last")
        else
            run "$round | tributary, $label" "$URL" "$th"; t=$(cat "$T/last")
            run "$round | nginx, $label" "$NURL" "$nh"; n=$(cat "$T/last")
        fi
        echo "$kind $t $n" >> "$T/ratios"
    done
done
echo
python3 - "$T/ratios" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
for kind in ("200", "304"):
    r = [float(t) / float(n) for k, t, n in rows if k == kind]
    print(f"tributary/nginx, {kind}: rounds " + ", ".join(f"{x:.0%}" for x in r) + f"; median {statistics.median(r):.0%}")
PY
nginx -c "$T/nginx.conf" -p "$T" -s stop 2>/dev/null || true
