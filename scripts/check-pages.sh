#!/usr/bin/env bash
# Checks tributary's HTML pages in headless Chromium, as a reader's browser would show them:
# for every page and at two widths (desktop 1280x900, phone 390x844) it loads the page, fails
# on any console error, uncaught exception, failed resource or Content-Security-Policy
# violation, runs axe-core's accessibility check (a violation of impact "serious" or
# "critical" fails; "moderate" and "minor" ones are printed as notes), checks the page does
# not scroll sideways, and saves a screenshot (paths printed).
#
#   bash scripts/check-pages.sh BASE_URL [PATH...]      (PATH defaults to /)
#   e.g. bash scripts/check-pages.sh http://127.0.0.1:8080 / /status /tags/all
#
# Run by scripts/check-readers.sh against its running daemon; works standalone against any
# running tributary. Installs only what is missing: Node.js (>= 18) with apt-get, and
# axe-core, pinned, from the npm registry into a temporary folder (its sha512 checked).
# Chromium is driven over the DevTools protocol through a pipe (--remote-debugging-pipe):
# no port, no WebSocket library, no browser download. Screenshots go to
# $CHECK_PAGES_OUT (default: ${CARGO_TARGET_DIR:-target}/pages). Every step is bounded in
# time (the whole run at most ~2 minutes); Chromium is killed at exit.
# Output: "  ok    ..." / "  FAIL  ..." lines and "    note ..." lines; exit status 1 if any
# check failed, 2 on bad usage.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

AXE_VERSION=4.14.1
AXE_INTEGRITY=sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==
TOTAL_SECONDS=${CHECK_PAGES_TIMEOUT:-120}

SELF_TEST=
if [[ ${1:-} == --self-test && $# -eq 1 ]]; then
  SELF_TEST=1
elif [[ $# -lt 1 || $1 != http*://* ]]; then
  echo "usage: bash scripts/check-pages.sh BASE_URL [PATH...]" >&2
  echo "       bash scripts/check-pages.sh --self-test" >&2
  exit 2
else
  BASE=${1%/}
  shift
  PAGES=("$@")
  [[ ${#PAGES[@]} -gt 0 ]] || PAGES=(/)
fi

fail_early() { echo "  FAIL  $*"; echo "check-pages: giving up: $*" >&2; exit 1; }

TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
  # The Node side kills Chromium itself; this catches the case where Node was killed.
  if [[ -s $TMP/chromium.pid ]]; then kill -KILL -- "-$(cat "$TMP/chromium.pid")" 2>/dev/null || true; fi
  if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

node_ok() { command -v node >/dev/null && node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)'; }
if ! node_ok; then
  export DEBIAN_FRONTEND=noninteractive
  { timeout 300 apt-get update -qq && timeout 300 apt-get install -y -qq nodejs >/dev/null; } ||
    fail_early "cannot install nodejs with apt-get"
  node_ok || fail_early "node >= 18 is needed, apt-get installed $(node --version 2>/dev/null || echo none)"
fi
if ! command -v chromium >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  { timeout 300 apt-get update -qq && timeout 300 apt-get install -y -qq chromium >/dev/null; } ||
    fail_early "cannot install chromium with apt-get"
fi

# axe-core straight from the npm registry (no npm needed), checked against its published
# integrity hash, so the exact pinned file is what runs.
curl -fsS --max-time 60 -o "$TMP/axe.tgz" "https://registry.npmjs.org/axe-core/-/axe-core-$AXE_VERSION.tgz" ||
  fail_early "cannot download axe-core $AXE_VERSION from registry.npmjs.org"
node -e '
  const [file, want] = process.argv.slice(1);
  const got = "sha512-" + require("crypto").createHash("sha512").update(require("fs").readFileSync(file)).digest("base64");
  if (got !== want) { console.error(`axe-core tarball: ${got}, want ${want}`); process.exit(1); }
' "$TMP/axe.tgz" "$AXE_INTEGRITY" || fail_early "axe-core $AXE_VERSION: integrity check failed"
tar -xzf "$TMP/axe.tgz" -C "$TMP" package/axe.min.js || fail_early "axe-core $AXE_VERSION: no package/axe.min.js"

OUT=${CHECK_PAGES_OUT:-${CARGO_TARGET_DIR:-target}/pages}
[[ -z $SELF_TEST ]] || OUT=$TMP/shots
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

echo "    $(chromium --version 2>/dev/null | head -1), node $(node --version), axe-core $AXE_VERSION"
cat >"$TMP/check-pages.cjs" <<'JS'
// Drives Chromium over the DevTools protocol on fds 3 (to Chromium) and 4 (from it):
// JSON messages ended by a NUL byte (--remote-debugging-pipe).
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const path = require("path");

const [tmp, outDir, base, ...pages] = process.argv.slice(2);
const STEP_MS = 20000; // any single DevTools command or page load
const VIEWPORTS = [
  { name: "desktop", width: 1280, height: 900, deviceScaleFactor: 1, mobile: false },
  { name: "phone", width: 390, height: 844, deviceScaleFactor: 2, mobile: true },
];
const MAX_SHOT_HEIGHT = 3000; // CSS pixels: the top of a long page is enough to look at

let failed = 0;
const ok = (what) => console.log(`  ok    ${what}`);
const fail = (what) => { failed++; console.log(`  FAIL  ${what}`); };
const note = (what) => console.log(`    ${what}`);

const chrome = spawn("chromium", [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-extensions", "--mute-audio", "--hide-scrollbars",
  `--user-data-dir=${path.join(tmp, "profile")}`, "--remote-debugging-pipe", "about:blank",
], { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"], detached: true });
fs.writeFileSync(path.join(tmp, "chromium.pid"), String(chrome.pid));
let chromeLog = "";
chrome.stderr.on("data", (d) => { chromeLog = (chromeLog + d).slice(-4000); });
let chromeExited = false;
chrome.on("exit", () => { chromeExited = true; });
function killChrome() {
  if (!chromeExited) { try { process.kill(-chrome.pid, "SIGKILL"); } catch (_) { /* gone */ } }
}
process.on("exit", killChrome);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => process.exit(1));

// --- the protocol: commands with ids and a timeout each; events to listeners.
let nextId = 1;
const waiting = new Map();
const listeners = new Set();
let buffered = "";
chrome.stdio[4].on("data", (chunk) => {
  buffered += chunk.toString("utf8");
  let end;
  while ((end = buffered.indexOf("\0")) >= 0) {
    const msg = JSON.parse(buffered.slice(0, end));
    buffered = buffered.slice(end + 1);
    if (msg.id && waiting.has(msg.id)) {
      const w = waiting.get(msg.id);
      waiting.delete(msg.id);
      clearTimeout(w.timer);
      if (msg.error) w.reject(new Error(`${w.method}: ${msg.error.message}`));
      else w.resolve(msg.result);
    } else if (msg.method) {
      for (const l of listeners) l(msg);
    }
  }
});
chrome.stdio[4].on("end", () => {
  for (const w of waiting.values()) w.reject(new Error(`Chromium closed the pipe during ${w.method}`));
  waiting.clear();
});
function send(method, params = {}, sessionId = undefined, ms = STEP_MS) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { waiting.delete(id); reject(new Error(`${method}: no answer in ${ms / 1000}s`)); }, ms);
    waiting.set(id, { resolve, reject, timer, method });
    chrome.stdio[3].write(JSON.stringify({ id, method, params, sessionId }) + "\0");
  });
}
function waitEvent(sessionId, method, ms = STEP_MS) {
  return new Promise((resolve, reject) => {
    const l = (msg) => {
      if (msg.sessionId === sessionId && msg.method === method) {
        listeners.delete(l); clearTimeout(timer); resolve(msg.params);
      }
    };
    const timer = setTimeout(() => { listeners.delete(l); reject(new Error(`no ${method} in ${ms / 1000}s`)); }, ms);
    listeners.add(l);
  });
}

// Problems the page itself reports while loading and running: console errors, uncaught
// exceptions, failed loads (reported by Chromium as console errors), CSP violations.
function watchProblems(sessionId, problems) {
  listeners.add((msg) => {
    if (msg.sessionId !== sessionId) return;
    const p = msg.params;
    if (msg.method === "Runtime.exceptionThrown") {
      const d = p.exceptionDetails;
      const text = ((d.exception && d.exception.description) || d.text).split("\n")[0];
      problems.push(`uncaught exception: ${text}${d.url ? ` (${d.url}:${d.lineNumber + 1})` : ""}`);
    } else if (msg.method === "Runtime.consoleAPICalled" && (p.type === "error" || p.type === "assert")) {
      problems.push(`console.${p.type}: ${p.args.map((a) => a.value ?? a.description ?? "").join(" ")}`);
    } else if (msg.method === "Log.entryAdded" && p.entry.level === "error") {
      // Chromium asks for /favicon.ico on its own, whatever the page says: not the page's error.
      if (p.entry.source === "network" && /^https?:\/\/[^/]+\/favicon\.ico$/.test(p.entry.url || "")) return;
      // Images and media inside entries come from the feeds' own sites, which the machine
      // running this check may not reach: only what our own server serves must load.
      if (p.entry.source === "network" && p.entry.url && !p.entry.url.startsWith(base)) return;
      problems.push(`${p.entry.source} error: ${p.entry.text}${p.entry.url ? ` (${p.entry.url})` : ""}`);
    } else if (msg.method === "Network.responseReceived" && p.type === "Document" && p.response.status !== 200) {
      problems.push(`HTTP ${p.response.status} for ${p.response.url}`);
    }
  });
}
// Recorded in the page before any of its own code runs (scripts added this way are not
// subject to the page's CSP); read back after the load.
const CSP_LISTENER = `
  window.__cspViolations = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
      (e.sourceFile ? " at " + e.sourceFile + ":" + e.lineNumber : ""));
  });`;

async function evaluate(sessionId, expression, ms = STEP_MS) {
  const r = await send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true }, sessionId, ms);
  if (r.exceptionDetails) {
    const d = r.exceptionDetails;
    throw new Error((d.exception && d.exception.description) || d.text);
  }
  return r.result.value;
}

function fileName(page, viewport) {
  const slug = page.replace(/^\/+|\/+$/g, "").replace(/[^A-Za-z0-9_.-]+/g, "-") || "home";
  return path.join(outDir, `${slug}-${viewport.name}.png`);
}

async function checkPage(page, viewport, axeSource) {
  const label = `${page} (${viewport.name} ${viewport.width}px)`;
  const { targetId } = await send("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  const problems = [];
  try {
    watchProblems(sessionId, problems);
    for (const domain of ["Page", "Runtime", "Log", "Network"]) await send(`${domain}.enable`, {}, sessionId);
    await send("Page.addScriptToEvaluateOnNewDocument", { source: CSP_LISTENER }, sessionId);
    await send("Emulation.setDeviceMetricsOverride", {
      width: viewport.width, height: viewport.height,
      deviceScaleFactor: viewport.deviceScaleFactor, mobile: viewport.mobile,
    }, sessionId);
    const loaded = waitEvent(sessionId, "Page.loadEventFired");
    loaded.catch(() => {}); // awaited below unless the navigation itself fails
    const nav = await send("Page.navigate", { url: base + page }, sessionId);
    if (nav.errorText) { fail(`${label}: loads (${nav.errorText})`); return; }
    await loaded;
    // Fonts and layout settled before the screenshot and the contrast checks.
    await evaluate(sessionId, "document.fonts.ready.then(() => new Promise((r) => requestAnimationFrame(() => r(true))))");

    // Screenshot: the page's top, up to MAX_SHOT_HEIGHT CSS pixels.
    const metrics = await send("Page.getLayoutMetrics", {}, sessionId);
    const size = metrics.cssContentSize || metrics.contentSize;
    const shot = await send("Page.captureScreenshot", {
      format: "png", captureBeyondViewport: true,
      clip: { x: 0, y: 0, width: viewport.width, height: Math.min(Math.ceil(size.height), MAX_SHOT_HEIGHT), scale: 1 },
    }, sessionId);
    const file = fileName(page, viewport);
    fs.writeFileSync(file, Buffer.from(shot.data, "base64"));
    if (fs.statSync(file).size > 2000) ok(`${label}: screenshot ${file}`);
    else fail(`${label}: screenshot ${file} is nearly empty`);

    // Nothing wider than the screen: a reader on a phone must not scroll sideways.
    const wide = await evaluate(sessionId, `(() => {
      const w = document.documentElement.clientWidth;
      if (document.documentElement.scrollWidth <= w) return null;
      const culprits = [...document.querySelectorAll("body *")]
        .filter((e) => e.getBoundingClientRect().right > w + 1)
        .filter((e) => !e.parentElement || e.parentElement.getBoundingClientRect().right <= w + 1)
        .slice(0, 3).map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + String(e.className).split(" ").join(".") : ""));
      return document.documentElement.scrollWidth + "px wide (" + culprits.join(", ") + ")";
    })()`);
    if (wide) fail(`${label}: fits the screen width: ${wide}`);
    else ok(`${label}: fits the screen width`);

    // axe-core, injected through the protocol (the page's CSP does not apply to it). The
    // entries' own HTML (".content": sanitised, but written by each feed's author, e.g. an
    // image without alt text) is left out: what is checked is the page tributary makes.
    await evaluate(sessionId, axeSource);
    const result = JSON.parse(await evaluate(sessionId, `axe.run({ exclude: [[".content"]] }, { resultTypes: ["violations"] })
      .then((r) => JSON.stringify(r.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
        nodes: v.nodes.map((n) => n.target.join(" ")),
      }))))`, 60000));
    const serious = result.filter((v) => v.impact === "serious" || v.impact === "critical");
    for (const v of result) {
      const where = v.nodes.slice(0, 5).join(" | ") + (v.nodes.length > 5 ? ` | ... (${v.nodes.length} in all)` : "");
      const line = `axe ${v.impact} ${v.id}: ${v.help} (${v.helpUrl})\n        at ${where}`;
      if (serious.includes(v)) console.log(`        ${line}`);
      else note(`note: ${line}`);
    }
    if (serious.length === 0) ok(`${label}: axe-core: no serious or critical violations (${result.length} lesser)`);
    else fail(`${label}: axe-core: ${serious.length} serious or critical violation(s) (above)`);

    const csp = await evaluate(sessionId, "window.__cspViolations || []");
    for (const c of csp) problems.push(`CSP violation: ${c}`);
    for (const p of problems) console.log(`        ${p}`);
    if (problems.length === 0) ok(`${label}: no console errors, exceptions or CSP violations`);
    else fail(`${label}: ${problems.length} console error(s), exception(s) or CSP violation(s) (above)`);
  } finally {
    await send("Target.closeTarget", { targetId }).catch(() => {});
  }
}

(async () => {
  const axeSource = fs.readFileSync(path.join(tmp, "package", "axe.min.js"), "utf8");
  try {
    await send("Browser.getVersion", {}, undefined, 30000);
  } catch (e) {
    fail(`Chromium answers over the DevTools pipe (${e.message})`);
    console.log(chromeLog.replace(/^/gm, "    "));
    process.exit(1);
  }
  for (const page of pages) {
    for (const viewport of VIEWPORTS) {
      try {
        await checkPage(page, viewport, axeSource);
      } catch (e) {
        fail(`${page} (${viewport.name}): ${e.message}`);
        if (chromeExited) { console.log(chromeLog.replace(/^/gm, "    ")); process.exit(1); }
      }
    }
  }
  await send("Browser.close", {}, undefined, 5000).catch(() => {});
  process.exit(failed ? 1 : 0);
})();
JS

# The checks on BASE_URL and PAGES; prints their lines, returns 1 if any failed.
run_checks() {
  local status=0
  timeout -k 5 "$TOTAL_SECONDS" node "$TMP/check-pages.cjs" "$TMP" "$OUT" "$BASE" "${PAGES[@]}" || status=$?
  if [[ $status -eq 124 || $status -eq 137 ]]; then
    echo "  FAIL  the page checks finished within ${TOTAL_SECONDS}s"
  fi
  return $((status == 0 ? 0 : 1))
}

if [[ -z $SELF_TEST ]]; then
  run_checks || exit 1
  exit 0
fi

# --self-test: the checker itself, on pages made to pass or to fail one way each, served
# with the Content-Security-Policy tributary sends (except /bad, whose inline script must
# run): a clean page passes (so axe-core runs under that CSP), and each fault is caught.
cat >"$TMP/server.py" <<'PY'
import http.server, sys
CSP = "default-src 'none'; style-src 'unsafe-inline'"
HEAD = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Self-test</title>'
        '<style>body{font:16px sans-serif;color:#222;background:#fff}</style></head><body><main><h1>Self-test</h1>')
PAGES = {
    "/clean": (True, '<p>A clean page, <a href="/clean">a link</a>.</p>'),
    "/inline": (True, '<p>Inline script under CSP.</p><script>document.title = "ran"</script><button></button>'),
    "/bad": (False, '<img src="/missing.png"><script>console.error("boom"); throw new Error("kaboom")</script>'),
    "/wide": (True, '<div style="width:1000px">Too wide for a phone.</div>'),
}
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        csp, body = PAGES.get(self.path, (True, None))
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        if csp:
            self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        self.wfile.write((HEAD + body + "</main></body></html>" if body else "not found").encode())
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()
PY
python3 "$TMP/server.py" "$TMP/server.port" &
SERVER_PID=$!
for _ in $(seq 50); do [[ -s $TMP/server.port ]] && break; sleep 0.1; done
[[ -s $TMP/server.port ]] || fail_early "self-test: the test server did not start"
BASE="http://127.0.0.1:$(cat "$TMP/server.port")"
PAGES=(/clean /inline /bad /wide)
run_checks >"$TMP/self-test.out" 2>&1 || true

FAILED=0
expect() { # expect DESCRIPTION EXTENDED-REGEX: a line of the run above matches
  if grep -Eq -- "$2" "$TMP/self-test.out"; then echo "  ok    self-test: $1"; else FAILED=1; echo "  FAIL  self-test: $1"; fi
}
if grep -q '^  FAIL  /clean' "$TMP/self-test.out"; then FAILED=1; echo "  FAIL  self-test: a clean page under CSP passes"
else expect "a clean page under CSP passes (axe-core runs there)" '^  ok    /clean \(phone 390px\): axe-core: no serious'; fi
expect "an inline script blocked by CSP fails" '^  FAIL  /inline \(desktop.*CSP'
expect "the CSP violation is named" 'CSP violation: script-src-elem blocked inline'
expect "axe-core under CSP finds a button without a name" 'axe critical button-name'
expect "console.error fails" 'console.error: boom'
expect "an uncaught exception fails" 'uncaught exception: Error: kaboom'
expect "a failed resource load fails" 'Failed to load resource.*404.*/missing.png'
expect "an image without alt text fails axe-core" 'axe critical image-alt'
expect "a page wider than a phone fails" '^  FAIL  /wide \(phone 390px\): fits the screen width: 10[0-9][0-9]px wide \(div\)'
expect "the same page fits a desktop" '^  ok    /wide \(desktop 1280px\): fits the screen width'
expect "screenshots are taken" '^  ok    /clean \(phone 390px\): screenshot .*/clean-phone.png'
# The run itself only when something in it was not as expected.
if [[ $FAILED -ne 0 ]]; then sed 's/^/    | /' "$TMP/self-test.out"; fi
exit $FAILED
