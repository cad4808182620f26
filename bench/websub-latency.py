"""Latency from an origin publishing an entry to that entry in tributary's /feed.atom, and to
a subscriber of tributary's hub, with push (WebSub) and with polling (BENCHMARKS.md,
"Real time"). Run by bench/websub-latency.sh, which builds tributary and the venv.

    python bench/websub-latency.py TRIBUTARY_BINARY [--push N] [--poll N] [--interval S]

Everything runs on 127.0.0.1 with the real binary (`tributary run`):
- an origin (here, in Python) serving two feeds: `push.atom`, whose `Link` header names a
  flask-websub hub (scripts/websub-interop/hub.py), and `poll.atom`, which names no hub;
- tributary, with a source for each: `push` (interval 1h: only the hub brings its entries)
  and `poll` (interval S seconds, the normal polling path);
- a flask-websub subscriber (scripts/websub-interop/subscriber.py) subscribed to
  tributary's hub for `/feed.atom`, checking each delivery's signature.

Push: the origin gains an entry and publishes to its hub (`hub.mode=publish`); measured
from just before the publish request. Poll: the origin gains an entry at a random moment
of the poll interval; measured from that moment. For each: until the entry is in
`/feed.atom` (read every 5 ms), and until the subscriber has it (the time it printed).
Prints Markdown rows: min, median, max over the runs.
"""

import argparse
import http.server
import json
import os
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "websub-interop")


class Lines:
    """A process's stdout as JSON lines, read by a thread."""

    def __init__(self, proc):
        self.q = queue.Queue()
        self.seen = []

        def pump():
            for line in proc.stdout:
                try:
                    self.q.put(json.loads(line))
                except ValueError:
                    pass
        threading.Thread(target=pump, daemon=True).start()

    def wait(self, pred, timeout=30, what="line"):
        for i, line in enumerate(self.seen):
            if pred(line):
                return self.seen.pop(i)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.q.get(timeout=max(0.0, deadline - time.time()))
            except queue.Empty:
                break
            if line.get("event") == "error":
                sys.exit(f"websub-latency: {line}")
            if pred(line):
                return line
            self.seen.append(line)
        sys.exit(f"websub-latency: no {what} within {timeout}s")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def atom(name, titles, hub=None, self_url=None):
    links = ""
    if hub:
        links = f'<link rel="hub" href="{hub}"/><link rel="self" href="{self_url}"/>'
    entries = "".join(
        f"<entry><title>{t}</title><id>urn:{name}:{t}</id><link href=\"https://origin.example/{t}\"/>"
        f"<updated>2026-01-01T00:00:{i % 60:02}Z</updated></entry>" for i, t in enumerate(titles))
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>{name}</title><id>urn:{name}</id><updated>2026-01-01T00:00:00Z</updated>"
            f"{links}{entries}</feed>").encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--push", type=int, default=20, help="push runs")
    ap.add_argument("--poll", type=int, default=10, help="poll runs")
    ap.add_argument("--interval", type=float, default=5.0, help="the poll source's interval, s")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="websub-latency-")
    procs = []
    try:
        run(args, tmp, procs)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
    # Kept when the run failed (sys.exit above), for its logs.
    shutil.rmtree(tmp, ignore_errors=True)


def run(args, tmp, procs):
    py = sys.executable
    hub = subprocess.Popen([py, f"{HARNESS}/hub.py", "--state", tmp], stdout=subprocess.PIPE, text=True,
                           stderr=open(f"{tmp}/hub.log", "w"))
    procs.append(hub)
    hub_lines = Lines(hub)
    hub_url = hub_lines.wait(lambda l: l["event"] == "ready", what="hub ready")["url"]

    feeds = {"push": ["push-0"], "poll": ["poll-0"]}
    lock = threading.Lock()

    class Origin(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            name = self.path.strip("/").removesuffix(".atom")
            if name not in feeds:
                self.send_error(404)
                return
            me = f"http://127.0.0.1:{origin.server_port}{self.path}"
            with lock:
                body = atom(name, feeds[name], hub_url if name == "push" else None, me)
            self.send_response(200)
            self.send_header("Content-Type", "application/atom+xml")
            self.send_header("Content-Length", str(len(body)))
            if name == "push":
                self.send_header("Link", f'<{hub_url}>; rel="hub", <{me}>; rel="self"')
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    o = f"http://127.0.0.1:{origin.server_port}"

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = f"{tmp}/feeds.toml"
    with open(config, "w") as f:
        f.write(f'[server]\nlisten = "127.0.0.1:{port}"\nbase_url = "{base}"\n'
                f'[store]\npath = "{tmp}/store"\n'
                f'[fetch]\nallow_networks = ["127.0.0.0/8"]\nmin_interval = "1s"\n'
                f'[[source]]\nname = "push"\nurl = "{o}/push.atom"\ninterval = "1h"\n'
                f'[[source]]\nname = "poll"\nurl = "{o}/poll.atom"\ninterval = "{args.interval}s"\n')
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["RUST_LOG"] = "info"
    tributary = subprocess.Popen([args.binary, "run", "--config", config], env=env,
                                 stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/tributary.log", "w"))
    procs.append(tributary)
    feed = f"{base}/feed.atom"

    def read_feed():
        try:
            with urllib.request.urlopen(feed, timeout=5) as r:
                return r.read().decode()
        except OSError:
            return ""

    def visible(title, timeout=60):
        want = f">{title}<"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if want in read_feed():
                return time.time()
            time.sleep(0.005)
        sys.exit(f"websub-latency: {title} not in {feed} within {timeout}s (logs in {tmp})")

    visible("push-0")
    visible("poll-0")
    if args.push:
        hub_lines.wait(lambda l: l["event"] == "request" and l["mode"] == "subscribe"
                       and l["topic"] == f"{o}/push.atom" and l["status"] == 202,
                       what="tributary's subscription to the flask-websub hub")

    sub = subprocess.Popen([py, f"{HARNESS}/subscriber.py", feed, "--state", tmp], stdout=subprocess.PIPE,
                           text=True, stderr=open(f"{tmp}/subscriber.log", "w"))
    procs.append(sub)
    sub_lines = Lines(sub)
    sub_lines.wait(lambda l: l["event"] == "subscribed", what="the subscriber's verification")
    sub_lines.wait(lambda l: l["event"] == "requested", what="the hub's 202")

    def delivered(title, timeout=60):
        return sub_lines.wait(lambda l: l["event"] == "delivery" and f">{title}<" in l["body"],
                              timeout, what=f"a delivery with {title}")["time"]

    results = {"push": ([], []), "poll": ([], [])}
    for i in range(1, args.push + 1):
        title = f"push-{i}"
        with lock:
            feeds["push"].append(title)
        t0 = time.time()
        data = urllib.parse.urlencode({"hub.mode": "publish", "hub.topic": f"{o}/push.atom"}).encode()
        urllib.request.urlopen(hub_url, data=data, timeout=10).read()
        results["push"][0].append(visible(title) - t0)
        results["push"][1].append(delivered(title) - t0)
        time.sleep(0.05)
    for i in range(1, args.poll + 1):
        title = f"poll-{i}"
        time.sleep(random.uniform(0, args.interval))
        with lock:
            feeds["poll"].append(title)
        t0 = time.time()
        results["poll"][0].append(visible(title, 3 * args.interval + 30) - t0)
        results["poll"][1].append(delivered(title, 3 * args.interval + 30) - t0)
    rejected = [l for l in sub_lines.seen if l.get("event") == "rejected"]
    if rejected:
        sys.exit(f"websub-latency: the subscriber rejected deliveries: {rejected}")

    def ms(xs):
        return " | ".join(f"{x * 1000:,.0f} ms" if x < 10 else f"{x:.2f} s"
                          for x in (min(xs), statistics.median(xs), max(xs)))
    print("| path | to | runs | min | median | max |")
    print("|---|---|---|---|---|---|")
    for kind, label in (("push", "push (origin's hub: flask-websub)"),
                        ("poll", f"poll (interval {args.interval:g} s)")):
        n = len(results[kind][0])
        if not n:
            continue
        print(f"| {label} | `/feed.atom` | {n} | {ms(results[kind][0])} |")
        print(f"| {label} | subscriber of tributary's hub | {n} | {ms(results[kind][1])} |")
    if not results["poll"][0]:
        return
    mean = statistics.mean(results["poll"][0])
    print(f"\npolling: expected wait interval/2 = {args.interval / 2:.2f} s on average, at most "
          f"{args.interval:g} s; measured mean {mean:.2f} s "
          f"({mean / args.interval:.2f} of the interval)")


if __name__ == "__main__":
    main()
