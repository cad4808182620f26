#!/usr/bin/env bash
# An active-active pair (README "Two instances behind nginx", BENCHMARKS.md "An active-active
# pair"): two tributary instances with the same feeds.toml (each its own store and port)
# behind nginx configured by deploy/pair/nginx.conf, readers through nginx, one instance
# killed (SIGKILL) in the middle of the load and restarted. Checks:
#   - no reader request fails or gets anything but 200/304, before, during or after failover;
#   - no entry id twice in one document, nor twice in one walk through the pages (RFC 5005
#     next links; successive pages come from either instance), none missing (each walk sees
#     exactly the ids one instance publishes);
#   - both instances serve every document byte for byte with the same ETag, and a reader's
#     If-None-Match is answered 304 whichever instance gets it;
#   - the killed instance, restarted, rejoins (nginx sends it requests again) and still
#     serves the same bytes.
# Prints a PASS/FAIL summary with counts; exits non-zero on failure.
#
#   bash bench/pair.sh          # SOURCES=12 ENTRIES=25 READERS=8 DURATION=15 (seconds) by default
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nginx >/dev/null || apt-get install -y -q nginx-light >/dev/null
cargo build --release --locked --quiet
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/tributary"
SOURCES=${SOURCES:-12}
ENTRIES=${ENTRIES:-25}
READERS=${READERS:-8}
DURATION=${DURATION:-15}
T=$(mktemp -d)
PIDS=()
cleanup() {
    [ -f "$T/nginx.pid" ] && kill "$(cat "$T/nginx.pid")" 2>/dev/null || true
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
healthy() { curl -fs "http://127.0.0.1:$1/healthz" > /dev/null; }
FAILS=()
fail() { FAILS+=("$1"); echo "FAIL: $1"; }

# The origin: a static web server over a folder of RSS feeds, each with a lastBuildDate;
# source 0 also has an entry without a date of its own.
mkdir -p "$T/www"
python3 - "$T/www" "$SOURCES" "$ENTRIES" <<'PY'
import sys, email.utils
www, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for s in range(n):
    items = []
    for i in range(m):
        when = email.utils.formatdate(1_750_000_000 + i * 3600 + s * 60, usegmt=True)
        items.append(f"<item><guid>https://s{s}.example/{i}</guid><title>Post {i} of source {s}</title>"
                     f"<link>https://s{s}.example/{i}</link><pubDate>{when}</pubDate>"
                     f"<description>&lt;p&gt;Entry {i} of source {s}.&lt;/p&gt;</description></item>")
    if s == 0:
        items.append("<item><guid>https://s0.example/undated</guid><title>Undated</title>"
                     "<link>https://s0.example/undated</link></item>")
    built = email.utils.formatdate(1_750_000_000 + m * 3600, usegmt=True)
    open(f"{www}/{s}.xml", "w").write(
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Source {s}</title>'
        f"<link>https://s{s}.example/</link><description>Source {s}</description>"
        f"<lastBuildDate>{built}</lastBuildDate>{''.join(reversed(items))}</channel></rss>")
PY
OPORT=$(free_port)
python3 -m http.server "$OPORT" --bind 127.0.0.1 --directory "$T/www" > "$T/origin.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$OPORT/0.xml" > /dev/null && break; sleep 0.1; done

# One feeds.toml for both; only [server] listen differs between the copies (on two machines
# they would be one file). base_url is nginx's address: self and next links lead there.
# Each store is `store` under the instance's own $STATE_DIRECTORY.
APORT=$(free_port)
BPORT=$(free_port)
NPORT=$(free_port)
{
    printf '[server]\nlisten = "LISTEN"\nbase_url = "http://127.0.0.1:%s"\n' "$NPORT"
    printf '[store]\npath = "store"\n[publish]\ntitle = "Pair"\nmax_items = 20\n'
    printf '[websub]\nsubscribe = false\n\n'
    for i in $(seq 0 $((SOURCES - 1))); do
        printf '[[source]]\nname = "s%d"\nurl = "http://127.0.0.1:%s/%d.xml"\ninterval = "1h"\ntags = ["t%d"]\n\n' \
            "$i" "$OPORT" "$i" $((i % 3))
    done
} > "$T/feeds.toml"
mkdir -p "$T/a" "$T/b"
sed "s/LISTEN/127.0.0.1:$APORT/" "$T/feeds.toml" > "$T/a/feeds.toml"
sed "s/LISTEN/127.0.0.1:$BPORT/" "$T/feeds.toml" > "$T/b/feeds.toml"
echo "feeds.toml: $SOURCES sources x $ENTRIES entries (+1 undated), tags t0..t2, max_items 20;"
echo "the two copies differ only in:"
diff "$T/a/feeds.toml" "$T/b/feeds.toml" | sed 's/^/    /' || true

start() { # start a|b: the instance in its own folder, its log appended
    STATE_DIRECTORY="$T/$1" RUST_LOG=warn "$BIN" run --config "$T/$1/feeds.toml" >> "$T/$1/run.log" 2>&1 &
    echo $! > "$T/$1/pid"
    PIDS+=($!)
    disown $!  # its SIGKILL below is no news for the shell to print
}
# A first, B once A has polled everything: they poll at different moments.
polled() { # polled PORT: every source has stored a poll
    curl -fs "http://127.0.0.1:$1/healthz" | python3 -c '
import json, sys
h = json.load(sys.stdin)
sys.exit(0 if all(s["last_success"] for s in h["sources"]) else 1)' 2>/dev/null
}
start a
for _ in $(seq 300); do polled "$APORT" && break; sleep 0.1; done
start b
for _ in $(seq 300); do polled "$BPORT" && break; sleep 0.1; done
polled "$APORT" && polled "$BPORT" || { fail "the instances did not poll every source"; exit 1; }

# nginx: the repository's config, templated with the ports, in a minimal main config.
sed -e "s/__TRIBUTARY_A__/127.0.0.1:$APORT/g" -e "s/__TRIBUTARY_B__/127.0.0.1:$BPORT/g" \
    -e "s/__LISTEN__/127.0.0.1:$NPORT/" -e "s/__SERVER_NAME__/localhost/" \
    deploy/pair/nginx.conf > "$T/pair.conf"
if sed 's/#.*//' "$T/pair.conf" | grep -q '__[A-Z_]*__'; then fail "a placeholder is left in the nginx config"; exit 1; fi
cat > "$T/nginx.conf" <<NGINX
worker_processes 2;
pid $T/nginx.pid;
error_log $T/nginx-error.log;
events { worker_connections 1024; }
http {
    log_format pair '\$msec|\$status|\$upstream_addr|\$upstream_status';
    access_log $T/access.log pair;
    client_body_temp_path $T/tmp-body;
    proxy_temp_path $T/tmp-proxy;
    include $T/pair.conf;
}
NGINX
nginx -t -q -c "$T/nginx.conf" -p "$T"
nginx -c "$T/nginx.conf" -p "$T"
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$NPORT/healthz" > /dev/null && break; sleep 0.1; done

# Both instances publish the same bytes with the same ETags.
DOCS="/feed.atom /feed.rss /feed.json /tags/t1.atom /tags/t1.rss /tags/t1.json /sources/s0.atom /sources/s0.json /feed.json?limit=5 /tags/t1.json?limit=1000"
same_bytes() { # same_bytes WHEN: compares every document of DOCS on A and B
    local differ=0 d
    for d in $DOCS; do
        curl -fsD "$T/ha" -o "$T/ba" "http://127.0.0.1:$APORT$d" || { differ=$((differ + 1)); continue; }
        curl -fsD "$T/hb" -o "$T/bb" "http://127.0.0.1:$BPORT$d" || { differ=$((differ + 1)); continue; }
        ea=$(tr -d '\r' < "$T/ha" | awk -F': ' 'tolower($1)=="etag"{print $2}')
        eb=$(tr -d '\r' < "$T/hb" | awk -F': ' 'tolower($1)=="etag"{print $2}')
        if ! cmp -s "$T/ba" "$T/bb" || [ -z "$ea" ] || [ "$ea" != "$eb" ]; then
            differ=$((differ + 1))
            echo "    $d differs: ETag $ea vs $eb"
        fi
    done
    echo "$1: $(echo "$DOCS" | wc -w) documents compared on A and B, $differ differ"
    [ "$differ" = 0 ] || fail "$1: $differ documents differ between the instances"
}
same_bytes "before the load"

# What one instance publishes: every id of the combined feed and of the tag feed.
ids() { curl -fs "http://127.0.0.1:$1$2?limit=1000" | python3 -c 'import json,sys; print("\n".join(i["id"] for i in json.load(sys.stdin)["items"]))'; }
ids "$APORT" /feed.json > "$T/expect-feed"
ids "$APORT" /tags/t1.json > "$T/expect-tag"
cmp -s "$T/expect-feed" <(ids "$BPORT" /feed.json) || fail "the instances publish different ids"
echo "one instance publishes $(wc -l < "$T/expect-feed") entries in /feed.json, $(wc -l < "$T/expect-tag") in /tags/t1.json"

# The load, with A killed at a third of it and restarted at half of it.
python3 bench/pair-readers.py --base "http://127.0.0.1:$NPORT" --tag t1 \
    --expect-feed "$T/expect-feed" --expect-tag "$T/expect-tag" \
    --readers "$READERS" --seconds "$DURATION" > "$T/readers.json" &
READERS_PID=$!
sleep "$(python3 -c "print($DURATION / 3)")"
KILLED_AT=$(date +%s.%N)
kill -KILL "$(cat "$T/a/pid")"
echo "A killed (SIGKILL) at $(python3 -c "print(round($DURATION / 3, 1))") s into the load"
sleep "$(python3 -c "print($DURATION / 6)")"
RESTARTED_AT=$(date +%s.%N)
start a
for _ in $(seq 100); do healthy "$APORT" && break; sleep 0.1; done
READY_AT=$(date +%s.%N)
echo "A restarted at $(python3 -c "print(round($DURATION / 2, 1))") s, serving again after $(python3 -c "print(round($READY_AT - $RESTARTED_AT, 2))") s"
wait "$READERS_PID"

# Which instance answered, before the kill, while A was down, and after A was back.
python3 - "$T/access.log" "127.0.0.1:$APORT" "127.0.0.1:$BPORT" "$KILLED_AT" "$RESTARTED_AT" "$READY_AT" > "$T/phases.json" <<'PY'
import json, sys
log, a, b, killed, restarted, ready = sys.argv[1], sys.argv[2], sys.argv[3], *map(float, sys.argv[4:])
phases = {p: {"requests": 0, "by_a": 0, "by_b": 0, "retried": 0, "not_ok": 0}
          for p in ("before", "a_down", "a_back")}
rejoined = None
for line in open(log):
    t, status, addrs, _ = line.rstrip("\n").split("|", 3)
    t = float(t)
    phase = "before" if t < killed else "a_down" if t < ready else "a_back"
    p = phases[phase]
    p["requests"] += 1
    last = addrs.split(", ")[-1]  # the instance that answered (after any retries)
    p["by_a"] += last == a
    p["by_b"] += last == b
    p["retried"] += ", " in addrs
    p["not_ok"] += status not in ("200", "304")
    if phase == "a_back" and last == a and (rejoined is None or t < rejoined):
        rejoined = t
phases["rejoined_after"] = None if rejoined is None else round(rejoined - ready, 2)
json.dump(phases, sys.stdout)
PY
same_bytes "after A's restart"

python3 - "$T/readers.json" "$T/phases.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
ph = json.load(open(sys.argv[2]))
g = lambda k: c.get(k, 0)
print(f"readers: {g('requests')} requests ({g('status_200')} x 200, {g('status_304')} x 304), "
      f"{g('errors')} failed; {g('walks')} walks through every page ({g('pages')} pages, "
      f"{g('ids_seen')} ids), {g('walks_broken')} broken")
print(f"  ids twice in one document: {g('duplicates_in_document')}, twice in one walk: "
      f"{g('duplicates_across_pages')}, missing: {g('missing')}, unexpected: {g('unexpected')}")
print(f"  If-None-Match answered 304: {g('conditional_304')} of {g('conditional')} "
      f"(ETag not recognised: {g('etag_mismatch')})")
for name, label in (("before", "before the kill"), ("a_down", "from the kill to A's restart"), ("a_back", "A back")):
    p = ph[name]
    print(f"nginx, {label}: {p['requests']} requests, answered by A {p['by_a']}, by B {p['by_b']}, "
          f"retried on the other {p['retried']}, not 200/304 {p['not_ok']}")
print(f"A answered through nginx again {ph['rejoined_after']} s after its restart "
      f"(nginx retries a failed server after fail_timeout)")
for e in c.get("first_errors", []):
    print(f"  {e}")
bad = []
for k in ("errors", "walks_broken", "duplicates_in_document", "duplicates_across_pages",
          "missing", "unexpected", "etag_mismatch"):
    if g(k):
        bad.append(f"{k} {g(k)}")
if not g("walks") or not g("conditional"):
    bad.append("no complete walk or conditional request")
if any(ph[p]["not_ok"] for p in ("before", "a_down", "a_back")):
    bad.append("nginx answered other than 200/304")
if not ph["before"]["by_a"] or not ph["before"]["by_b"]:
    bad.append("both instances did not serve before the kill")
if not ph["a_down"]["by_b"]:
    bad.append("B did not serve while A was down")
if not ph["a_back"]["by_a"]:
    bad.append("A did not rejoin after its restart")
open(sys.argv[1] + ".bad", "w").write("".join(f"{b}\n" for b in bad))
PY
while IFS= read -r line; do [ -n "$line" ] && fail "$line"; done < "$T/readers.json.bad"
if [ ${#FAILS[@]} -eq 0 ]; then
    echo "PASS"
else
    echo "FAIL (${#FAILS[@]} checks)"
    exit 1
fi
