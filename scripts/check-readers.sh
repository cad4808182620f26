#!/usr/bin/env bash
# Checks that real feed readers read tributary's published feeds correctly: tributary polls
# every fixture in tests/fixtures (served over local HTTP, as real sources would be), then
# Python feedparser, xmllint and newsboat read every kind of feed `tributary run` publishes
# (combined, per tag, named, per source, a search; Atom and RSS).
# Run from CI after `cargo test`: bash scripts/check-readers.sh (installs what it needs).
# Also opens the river (/) and the status page (/status) in headless Chromium: every link of
# ours on the rendered pages works; and checks every HTML view with scripts/check-pages.sh
# (screenshots under target/pages, no console errors or CSP violations, axe-core's
# accessibility check, phone width).
# Last line: "readers: N passed, M failed"; exit status 1 if anything failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "  ok    $*"; }
fail() { FAILED=$((FAILED + 1)); echo "  FAIL  $*"; }
summary() {
  if [[ $FAILED -gt 0 && -n ${TMP:-} ]]; then echo "(config, logs and feed bodies kept in $TMP)"; fi
  echo "readers: $PASSED passed, $FAILED failed"
}
# A failure that stops the run (nothing after it could be checked).
die() { fail "$*"; echo "check-readers: giving up: $*" >&2; summary; exit 1; }
# `check DESCRIPTION COMMAND...`: one check that passes when the command does.
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

echo "== installing readers (only what is missing)"
if ! python3 -c 'import feedparser' 2>/dev/null; then
  # Debian's own python3 refuses plain `pip install` (PEP 668); CI is a throwaway root
  # machine, so retry with --break-system-packages rather than fail.
  export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
  python3 -m pip install --quiet feedparser==6.0.14 ||
    python3 -m pip install --quiet --break-system-packages feedparser==6.0.14 ||
    die "cannot install feedparser==6.0.14 with pip"
  python3 -c 'import feedparser' || die "feedparser installed but cannot be imported"
fi
if ! command -v newsboat >/dev/null || ! command -v sqlite3 >/dev/null || ! command -v xmllint >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq newsboat sqlite3 libxml2-utils >/dev/null; } ||
    die "cannot install newsboat sqlite3 libxml2-utils with apt-get"
fi

if ! command -v chromium >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } ||
    die "cannot install chromium with apt-get"
fi

echo "== building tributary"
cargo build --locked --quiet || die "cargo build failed"
TARGET=${CARGO_TARGET_DIR:-target}
[[ $TARGET == /* ]] || TARGET="$PWD/$TARGET"
BIN="$TARGET/debug/tributary"
[[ -x $BIN ]] || die "no binary at $BIN"

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  # Always stop both servers, even when a check or `set -e` ends the script early.
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $FAILED -eq 0 ]]; then rm -rf "$TMP"; fi
}
trap cleanup EXIT

# A free port: bind port 0 and let the kernel pick (a tiny race before reuse is harmless).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Waits up to ~10s for URL to answer; fails early if the server process PID died.
wait_for() {
  local url=$1 pid=$2
  for _ in $(seq 50); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

echo "== serving tests/fixtures"
FIX_PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory tests/fixtures "$FIX_PORT" >"$TMP/fixtures.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$FIX_PORT/" "${PIDS[-1]}" || die "fixture server did not answer on port $FIX_PORT"

# One source per fixture; the name is the file name without extension, as a slug.
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
CONFIG="$TMP/feeds.toml"
cat >"$CONFIG" <<EOF
[server]
listen = "127.0.0.1:$PORT"
base_url = "$BASE"
[store]
path = "store"
[publish]
max_items = 500
EOF
for f in tests/fixtures/*; do
  [[ -f $f ]] || continue
  file=$(basename "$f")
  slug=$(LC_ALL=C tr '[:upper:]' '[:lower:]' <<<"${file%.*}" | tr -c 'a-z0-9_\n-' '-')
  printf '\n[[source]]\nname = "%s"\nurl = "http://127.0.0.1:%s/%s"\ntags = ["all"]\n' "$slug" "$FIX_PORT" "$file" >>"$CONFIG"
done
# Page sources (issue 16): saved real pages read by selectors, and an API response by
# JSONPath, so their entries are in every combined feed the readers check below.
cat >>"$CONFIG" <<EOF

[[source]]
name = "page-news"
url = "http://127.0.0.1:$FIX_PORT/pages/listing/news-section.html"
kind = "html"
timezone = "Europe/Berlin"
tags = ["all"]
[source.select]
items = ".Listing article"
title = "p.hl-xs"
link = "a@href"
date = "time@datetime"
summary = "p.copy-md"
image = "img@data-src"

[[source]]
name = "page-hn"
url = "http://127.0.0.1:$FIX_PORT/pages/listing/link-aggregator.html"
kind = "html"
tags = ["all"]
[source.select]
items = "tr.athing"
title = ".titleline > a"
date = "span.age@title"
author = "a.hnuser"

[[source]]
name = "page-lwn"
url = "http://127.0.0.1:$FIX_PORT/pages/listing/flat-lwn.html"
kind = "html"
tags = ["all"]
[source.select]
items = "h2.SummaryHL"

[[source]]
name = "api-algolia"
url = "http://127.0.0.1:$FIX_PORT/pages/json/api-hn-algolia.json"
kind = "json"
tags = ["all"]
[source.select]
items = "\$.hits[*]"
EOF
# A named feed taking everything, so every kind of published feed is read below.
printf '\n[[feed]]\nname = "everything"\ntags = ["all"]\ninclude = ["."]\n' >>"$CONFIG"

echo "== tributary once"
if "$BIN" once --config "$CONFIG" >"$TMP/once.log" 2>&1; then pass "tributary once exits 0"; else fail "tributary once exits 0"; fi
sed 's/^/    /' "$TMP/once.log"
if grep -q FAILED "$TMP/once.log"; then fail "tributary once: a source FAILED"; else pass "tributary once: no source FAILED"; fi

echo "== tributary run"
"$BIN" run --config "$CONFIG" >"$TMP/run.log" 2>&1 &
PIDS+=($!)
wait_for "$BASE/healthz" "${PIDS[-1]}" || { sed 's/^/    /' "$TMP/run.log"; die "tributary run did not answer /healthz"; }
TOTAL=$(curl -fsS "$BASE/healthz" | python3 -c 'import json, sys; print(json.load(sys.stdin)["entries"])') ||
  die "cannot read \"entries\" from $BASE/healthz"
echo "    /healthz: $TOTAL entries stored"
check "store holds entries" test "$TOTAL" -gt 0
# The search feeds below need the index to hold what `once` stored: the daemon's indexer
# takes it in within a second or two of the start.
indexed() {
  curl -fsS "$BASE/healthz" | python3 -c 'import json, sys
h = json.load(sys.stdin); s = h["search"]
sys.exit(0 if s["complete"] and s["backlog"] == 0 and s["indexed"] == h["entries"] else 1)'
}
for _ in $(seq 150); do indexed && break; sleep 0.2; done
check "the search index holds every entry" indexed

echo "== feedparser $(python3 -c 'import feedparser; print(feedparser.__version__)')"
# The Python side prints one "ok ..." or "FAIL ..." line per check; tallied below.
python3 - "$BASE" "$TOTAL" >"$TMP/feedparser.out" 2>&1 <<'PY' || echo "FAIL feedparser script crashed" >>"$TMP/feedparser.out"
import sys, feedparser
base, total = sys.argv[1], int(sys.argv[2])
def check(ok, what, detail=""):
    print(("ok   " if ok else "FAIL ") + what + ("" if ok or not detail else f": {detail}"))
# Every kind of published feed: combined, per tag, named, per source (large_rss: 25 entries;
# the page sources: as many as their pages hold), a search (large_rss's entries).
for path, version, ctype, want in [
        ("/feed.atom", "atom10", "application/atom+xml", total),
        ("/feed.rss", "rss20", "application/rss+xml", total),
        ("/tags/all.atom", "atom10", "application/atom+xml", total),
        ("/feeds/everything.rss", "rss20", "application/rss+xml", total),
        ("/sources/large_rss.atom", "atom10", "application/atom+xml", 25),
        ("/sources/page-news.atom", "atom10", "application/atom+xml", 20),
        ("/sources/page-hn.rss", "rss20", "application/rss+xml", 30),
        ("/sources/page-lwn.atom", "atom10", "application/atom+xml", 3),
        ("/sources/api-algolia.rss", "rss20", "application/rss+xml", 4),
        ("/search.atom?q=source%3Alarge_rss", "atom10", "application/atom+xml", 25),
        ("/search.rss?q=source%3Alarge_rss", "rss20", "application/rss+xml", 25)]:
    url = base + path
    d = feedparser.parse(url)
    n = len(d.entries)
    check(d.get("status") == 200, f"{path}: HTTP 200", d.get("status"))
    check(d.bozo == 0, f"{path}: bozo == 0", repr(d.get("bozo_exception")))
    check(d.version == version, f"{path}: version {version}", d.version)
    check(d.headers.get("content-type", "").startswith(ctype), f"{path}: Content-Type {ctype}",
          d.headers.get("content-type"))
    check(n == want, f"{path}: {n} entries == {want} stored")
    ids = [e.get("id", "") for e in d.entries]
    check(all(ids) and len(set(ids)) == n, f"{path}: ids non-empty and unique",
          f"{ids.count('')} empty, {n - len(set(ids))} duplicates")
    bad = lambda f: [e.get("id") for e in d.entries if not f(e)][:3]
    check(not bad(lambda e: e.get("title")), f"{path}: every entry has a title", bad(lambda e: e.get("title")))
    has_link = lambda e: e.get("link", "").startswith("http")
    check(not bad(has_link), f"{path}: every entry has an http(s) link", bad(has_link))
    dated = lambda e: e.get("published_parsed") or e.get("updated_parsed")
    check(not bad(dated), f"{path}: every entry has a parsed date", bad(dated))
    if version == "atom10":
        selfs = [l.get("href") for l in d.feed.get("links", []) if l.get("rel") == "self"]
        check(selfs == [url], f"{path}: self link == {url}", selfs)
PY
while read -r status what; do
  if [[ $status == ok ]]; then pass "$what"; else fail "$what"; fi
done <"$TMP/feedparser.out"

echo "== xmllint"
for path in /feed.atom /feed.rss /tags/all.atom /feeds/everything.rss /sources/large_rss.atom /sources/page-news.atom /sources/page-hn.rss '/search.atom?q=source%3Alarge_rss'; do
  body="$TMP/body${path//\//_}"
  curl -fsS -o "$body" "$BASE$path" || { fail "$path: fetch for xmllint"; continue; }
  check "$path: xmllint --noout (well-formed)" xmllint --noout "$body"
done

echo "== newsboat $(newsboat -v 2>/dev/null | head -1 | cut -d' ' -f2 || true)"
# A throwaway HOME and config, so nothing of the machine's own newsboat setup leaks in;
# TERM=dumb because newsboat wants a terminal type even with -x. One cache per feed:
# newsboat keys items by guid across all feeds of a cache, and both of our feeds carry the
# same ids (rightly: same entries), so with one cache one feed's items would be
# merged into the other's and it would look empty.
NB="$TMP/newsboat"
mkdir -p "$NB/home/.newsboat"
for path in /feed.atom /feed.rss /tags/all.atom /feeds/everything.rss /sources/large_rss.atom /sources/page-hn.rss '/search.rss?q=source%3Alarge_rss'; do
  name=$(tr '/.?%' '____' <<<"${path#/}")
  want=$TOTAL
  case $path in
    /sources/large_rss.atom | /search.rss*) want=25 ;;
    /sources/page-hn.rss) want=30 ;;
  esac
  echo "$BASE$path" >"$NB/urls.$name"
  echo "error-log \"$NB/errors.$name.log\"" >"$NB/config.$name"
  if HOME="$NB/home" TERM=dumb newsboat -u "$NB/urls.$name" -c "$NB/$name.db" -C "$NB/config.$name" \
    -x reload >"$NB/out.$name.log" 2>&1; then pass "$path: newsboat -x reload exits 0"; else fail "$path: newsboat -x reload exits 0"; fi
  sed 's/^/    /' "$NB/out.$name.log" "$NB/errors.$name.log" 2>/dev/null || true
  check "$path: newsboat logged no errors" test ! -s "$NB/errors.$name.log"
  sqlite3 "$NB/$name.db" "select feedurl, count(*) from rss_item group by feedurl" | sed 's/^/    /' || true
  n=$(sqlite3 "$NB/$name.db" "select count(*) from rss_item where feedurl = '$BASE$path'" 2>&1) || true
  check "$path: newsboat stored $n items (want $want)" test "$n" = "$want"
  n=$(sqlite3 "$NB/$name.db" "select count(*) from rss_item where title is null or title = ''" 2>&1) || true
  check "$path: newsboat has no item without a title ($n)" test "$n" = 0
done

echo "== the river (/) and the status page (/status) in headless Chromium $(chromium --version 2>/dev/null | awk '{print $2}')"
# The flags keep Chromium off the network (only our loopback server) and out of $HOME.
CHROME=(chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --user-data-dir="$TMP/chrome" --window-size=1280,1000)
# check-pages.sh prints "  ok    ..." / "  FAIL  ..." lines like ours: tallied here. First
# its self-test (it catches each kind of fault), then the pages, each at desktop and phone
# width. PAGES: every HTML view the daemon serves with this config.
PAGES=(/ /status /sources/large_rss /tags/all /feeds/everything /sources/large_rss.html)
pages() {
  local out=$TMP/pages.out status=0 line failed_before=$FAILED
  bash scripts/check-pages.sh "$@" >"$out" 2>&1 || status=$?
  while IFS= read -r line; do
    case $line in
      "  ok    "*) pass "${line#  ok    }" ;;
      "  FAIL  "*) fail "${line#  FAIL  }" ;;
      *) echo "$line" ;;
    esac
  done <"$out"
  if [[ $status -ne 0 && $FAILED -eq $failed_before ]]; then fail "scripts/check-pages.sh $* exited $status"; fi
}
pages --self-test
CHECK_PAGES_OUT="$TARGET/pages" pages "$BASE" "${PAGES[@]}"
# `check_links PAGE DOM SCOPE`: every link on the rendered page answers 200. SCOPE "all"
# fetches every http(s) link (the status page links only our sources, on loopback); "own"
# only those on this server (the river links articles on the internet).
check_links() {
  local page=$1 dom=$2 scope=$3
  python3 - "$BASE$page" "$dom" >"$TMP/links.txt" <<'PY' || fail "cannot read the links of $page"
import sys, html.parser, urllib.parse
base, path = sys.argv[1], sys.argv[2]
class P(html.parser.HTMLParser):
    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href")
        if tag in ("a", "link") and href:
            print(urllib.parse.urljoin(base, href))
P().feed(open(path, encoding="utf-8").read())
PY
  local links=0 broken=0 link code
  while read -r link; do
    case $link in http://*|https://*) ;; *) continue ;; esac
    if [[ $scope == own && $link != "$BASE"/* ]]; then continue; fi
    links=$((links + 1))
    code=$(curl -s -o /dev/null -w '%{http_code}' "$link") || code=000
    if [[ $code != 200 ]]; then broken=$((broken + 1)); echo "    broken link: $link ($code)"; fi
  done <"$TMP/links.txt"
  check "every link on $page answers 200 ($links links, $broken broken)" test "$links" -gt 10 -a "$broken" = 0
}
timeout 60 "${CHROME[@]}" --dump-dom "$BASE/" >"$TMP/river.html" 2>>"$TMP/chrome.log" || true
check "Chromium rendered / (DOM has entries with dates)" grep -q '<time datetime="' "$TMP/river.html"
ARTICLES=$(grep -o '<article' "$TMP/river.html" | wc -l)
check "/ shows entries ($ARTICLES, at most max_items = 500)" test "$ARTICLES" -gt 0 -a "$ARTICLES" -le 500
check "/ advertises the Atom feed for autodiscovery" grep -q 'rel="alternate" type="application/atom+xml"' "$TMP/river.html"
check "/ has no script" bash -c '! grep -qi "<script" "$1"' _ "$TMP/river.html"
check_links / "$TMP/river.html" own
timeout 60 "${CHROME[@]}" --dump-dom "$BASE/status" >"$TMP/dom.html" 2>>"$TMP/chrome.log" || true
check "Chromium rendered /status (DOM has the sources table)" grep -q "<table>" "$TMP/dom.html"
check "/status advertises the Atom feed for autodiscovery" grep -q 'rel="alternate" type="application/atom+xml"' "$TMP/dom.html"
check_links /status "$TMP/dom.html" all

echo "== summary"
echo "    sources: $(grep -c '^\[\[source\]\]' "$CONFIG"), entries stored: $TOTAL"
[[ $FAILED -eq 0 ]] || echo "    some checks failed: see the FAIL lines above"
summary
[[ $FAILED -eq 0 ]]
