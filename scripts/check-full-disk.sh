#!/usr/bin/env bash
# A real full disk under the real daemon: the store on a 24 MB tmpfs, filled to the last
# byte by another process while tributary runs.
#
#   1. With [store] min_free_mb = 1, polls refuse to store (the guard) and say why; the
#      feeds are still served.
#   2. With min_free_mb = 0 (reloaded by SIGHUP), a poll runs into ENOSPC: sled stops, the
#      store releases its reserve file, reopens, and the feeds are still served.
#   3. With space freed, polls store again; SIGTERM exits 0; `tributary verify` finds the
#      store consistent.
#
# Needs to mount a tmpfs: root, or a kernel that allows unprivileged user namespaces. It
# runs in a private mount namespace (unshare), so nothing is left mounted.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${INSIDE_NAMESPACE:-}" != 1 ]; then
    cargo build --locked --quiet
    if unshare --mount --propagation private true 2>/dev/null; then
        exec env INSIDE_NAMESPACE=1 unshare --mount --propagation private "$0"
    elif unshare --user --map-root-user --mount true 2>/dev/null; then
        exec env INSIDE_NAMESPACE=1 unshare --user --map-root-user --mount "$0"
    else
        echo "check-full-disk: cannot make a mount namespace here (not root, no user namespaces)" >&2
        exit 1
    fi
fi

TARGET=${CARGO_TARGET_DIR:-target}
[[ $TARGET == /* ]] || TARGET="$PWD/$TARGET"
BIN="$TARGET/debug/tributary"
T="$(mktemp -d)"
mkdir "$T/disk"
mount -t tmpfs -o size=24m tmpfs "$T/disk"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"

feed() { # feed ROUND COUNT SIZE: COUNT entries of SIZE bytes each
    python3 - "$@" > "$T/feed.xml.new" <<'EOF'
import sys
r, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
items = "".join(f"<item><guid>{r}-{i}</guid><title>round {r} item {i}</title><description>{'z' * size}</description></item>" for i in range(n))
print(f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>http://t.example/</link><description>d</description>{items}</channel></rss>')
EOF
    mv "$T/feed.xml.new" "$T/feed.xml"
}
config() { # config MIN_FREE_MB
    cat > "$T/feeds.toml" <<EOF
[server]
listen = "127.0.0.1:$PORT"
[store]
path = "$T/disk/store"
min_free_mb = $1
[retention]
keep_per_source = 100000
[[source]]
name = "t"
url = "file://$T/feed.xml"
interval = "1s"
EOF
}
count() { # entries the combined feed serves (asserts 200)
    python3 - "$BASE/feed.atom?limit=1000" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1]) as r:
    assert r.status == 200, r.status
    print(r.read().decode().count("<entry>"))
EOF
}
wait_log() { # wait_log PATTERN: until the daemon's log has it (at most 30 s)
    for _ in $(seq 300); do grep -q -- "$1" "$T/log" && return 0; sleep 0.1; done
    echo "check-full-disk: the log never said: $1" >&2; tail -20 "$T/log" >&2; exit 1
}
fail() { echo "check-full-disk: $*" >&2; tail -20 "$T/log" >&2; exit 1; }

feed a 50 1000
config 1
"$BIN" run --config "$T/feeds.toml" 2> "$T/log" &
PID=$!
trap 'kill -9 $PID 2>/dev/null || true' EXIT
wait_log "new=50"
[ "$(count)" = 50 ] || fail "expected 50 entries served"
echo "ok: 50 entries stored and served"

# 1. Another process fills the disk; the guard refuses the next poll's writes.
dd if=/dev/zero of="$T/disk/filler" bs=1M status=none 2>/dev/null || true
feed b 200 8000
wait_log "is full"
grep -q "min_free_mb is 1 MB" "$T/log" || fail "the guard's message names min_free_mb"
[ "$(count)" = 50 ] || fail "still serving the 50 entries"
echo "ok: guard: 'disk ... is full' logged, 50 entries still served"

# 2. Guard off: the write runs into ENOSPC; the store reopens; still serving.
config 0
kill -HUP $PID
wait_log "config reloaded"
feed c 300 8000
wait_log "reopening the store"
wait_log "no space left on device): this poll was not stored"
n=$(count)
[ "$n" -ge 50 ] || fail "still serving after ENOSPC (got $n)"
echo "ok: ENOSPC: store reopened, $n entries still served"

# 3. Space back: polls store again.
rm -f "$T/disk/filler"
config 1
kill -HUP $PID
feed d 20 100
wait_log "new=20"
n=$(count)
[ "$n" -ge 70 ] || fail "new entries stored after space came back (got $n)"
echo "ok: space back: new entries stored, $n served"

kill -TERM $PID
wait $PID || fail "exit status $? after SIGTERM"
trap - EXIT
"$BIN" verify --config "$T/feeds.toml" || fail "the store is not consistent"
echo "ok: clean stop, store consistent"
umount "$T/disk"
rm -rf "$T"
