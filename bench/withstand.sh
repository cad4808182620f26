#!/usr/bin/env bash
# What the server withstands (BENCHMARKS.md, "Hostile clients"): the release daemon with a
# 200-entry feed and the default [server] settings (max_connections 1024, 32 per address,
# header_timeout 10 s, idle_timeout 60 s, render_cache_mb 32), trusting only 127.0.0.1 as a
# proxy. Then, from 127.0.0.2 to 127.0.0.41 (not trusted):
#   1. IDLE connections that send nothing, then SLOW (slowloris: a header byte every 2 s),
#      held open while a reader on 127.0.0.1 times /healthz and /feed.atom on new connections;
#   2. a cache flood: requests that differ in ignored parameters and in every `limit`, while
#      the daemon's memory (VmRSS, VmHWM) and `tributary_render_cache_bytes` are read.
#
#   bash bench/withstand.sh [IDLE SLOW]      (default 2000 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE=${1:-2000}
SLOW=${2:-2000}
cargo build --release --locked --quiet
BIN="$PWD/target/release/tributary"
T=$(mktemp -d)
ulimit -n "$(ulimit -Hn)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 - "$T/fat.xml" <<'PY'
import sys
items = "".join(
    f"<item><guid>g{i}</guid><title>Post {i}</title><link>https://fat.example/{i}</link>"
    f"<description>{'Lorem ipsum dolor sit amet. ' * 40}</description>"
    f"<pubDate>Mon, 01 Jan 2024 {i % 24:02}:{i % 60:02}:00 GMT</pubDate></item>"
    for i in range(200)
)
open(sys.argv[1], "w").write(
    f'<?xml version="1.0"?><rss version="2.0"><channel><title>Fat</title>'
    f"<link>https://fat.example/</link><description>d</description>{items}</channel></rss>"
)
PY
cat > "$T/feeds.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
trusted_proxies = ["127.0.0.1/32"]

[store]
path = "store"

[[source]]
name = "fat"
url = "file://$T/fat.xml"
TOML
"$BIN" run --config "$T/feeds.toml" 2> "$T/run.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$T"' EXIT
until curl -fs "http://127.0.0.1:$PORT/healthz" | grep -q '"entries":200'; do sleep 0.05; done
python3 - "$PORT" "$PID" "$IDLE" "$SLOW" <<'PY'
import resource, socket, sys, threading, time, http.client
port, pid, idle_n, slow_n = (int(a) for a in sys.argv[1:5])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

def memory():
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            fields[k] = int(v.split()[0]) // 1024
    return f"VmRSS {fields['VmRSS']} MB, VmHWM {fields['VmHWM']} MB"

def metric(name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    for line in c.getresponse().read().decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            yield line

def timed(path, n=40):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        assert r.status == 200, (path, r.status)
        c.close()
        out.append((time.perf_counter() - t) * 1000)
    out.sort()
    p = lambda q: out[min(len(out) - 1, int(q * len(out)))]
    return f"p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {out[-1]:.1f} ms"

def open_flood(n, first_bytes):
    socks, refused = [], 0
    for i in range(n):
        s = socket.socket()
        s.bind((f"127.0.0.{2 + i % 40}", 0))
        try:
            s.connect(("127.0.0.1", port))
            if first_bytes:
                s.send(first_bytes)
            socks.append(s)
        except OSError:
            refused += 1
            s.close()
    return socks, refused

print(f"| moment | /healthz (new connection each) | /feed.atom (new connection each) | daemon memory |")
print(f"|---|---|---|---|")
print(f"| quiet | {timed('/healthz')} | {timed('/feed.atom')} | {memory()} |")
idle, refused = open_flood(idle_n, b"")
print(f"| {idle_n} idle connections from 40 addresses | {timed('/healthz')} | {timed('/feed.atom')} | {memory()} |")
slow, _ = open_flood(slow_n, b"GET /feed.atom HTTP/1.1\r\nHost: x\r\n")
stop = threading.Event()
def trickle():
    while not stop.is_set():
        for s in list(slow):
            try:
                s.send(b"X")
            except OSError:
                slow.remove(s)
        stop.wait(2)
threading.Thread(target=trickle, daemon=True).start()
print(f"| + {slow_n} slowloris connections (a byte every 2 s) | {timed('/healthz')} | {timed('/feed.atom')} | {memory()} |")
stop.set()
for s in idle + slow:
    s.close()
print()
print("connections closed by the daemon during the flood:")
for line in metric("tributary_http_connections_closed_total"):
    print("   ", line)

print()
print("| cache flood (from 127.0.0.2..41, 32 connections) | requests | render_cache_bytes | daemon memory |")
print("|---|---|---|---|")
def flood(paths):
    conns = []
    for i in range(32):
        s = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(f"127.0.0.{2 + i % 40}", 0))
        conns.append(s)
    for i, p in enumerate(paths):
        c = conns[i % len(conns)]
        c.request("GET", p, headers={"Accept-Encoding": "gzip"})
        r = c.getresponse()
        r.read()
        assert r.status == 200, (p, r.status)
    for c in conns:
        c.close()
    return len(paths)
n = flood([f"/sources/fat.atom?limit=1000&bust={i}" for i in range(5000)])
print(f"| `?limit=1000&bust=N` (ignored parameter) | {n} | {list(metric('tributary_render_cache_bytes'))[0].split()[1]} | {memory()} |")
n = flood([f"/{f}?limit={l}" for l in range(1, 1001) for f in ("feed.atom", "feed.rss", "feed.json", "sources/fat.atom")])
print(f"| every `limit` 1..1000 x 4 feeds | {n} | {list(metric('tributary_render_cache_bytes'))[0].split()[1]} | {memory()} |")
PY
