"""Checks the harness itself: flask-websub's subscriber (subscriber.py) against its own hub
(hub.py), with no tributary involved, so a failure of tests/websub_interop.rs is known to be
tributary's side and not the harness's.

    python selfcheck.py

A topic (an Atom feed whose `Link` header names the hub and itself) is served on 127.0.0.1;
subscriber.py discovers it and subscribes; a `hub.mode=publish` makes the hub deliver; the
delivery must arrive signed, with the topic's body. Prints "selfcheck: ok ..." or fails.
"""

import http.server
import json
import queue
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = sys.path[0]
FEED = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>selfcheck</title><id>urn:selfcheck</id>
<updated>2026-01-01T00:00:00Z</updated>
<entry><title>{title}</title><id>urn:selfcheck:{title}</id><updated>2026-01-01T00:00:00Z</updated></entry>
</feed>"""


def lines(proc):
    q = queue.Queue()
    q.seen = []

    def pump():
        for line in proc.stdout:
            q.put(json.loads(line))
    threading.Thread(target=pump, daemon=True).start()
    return q


def wait(q, event, timeout=10):
    """The first `event` line from q (lines before it are kept for a later wait)."""
    for i, line in enumerate(q.seen):
        if line["event"] == event:
            return q.seen.pop(i)
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            sys.exit(f"selfcheck: FAIL: no {event!r} event within {timeout}s")
        try:
            line = q.get(timeout=left)
        except queue.Empty:
            continue
        if line["event"] == "error":
            sys.exit(f"selfcheck: FAIL: {line}")
        if line["event"] == event:
            return line
        q.seen.append(line)


def main():
    procs = []
    state = tempfile.TemporaryDirectory(prefix="websub-selfcheck-")
    try:
        hub = subprocess.Popen([sys.executable, f"{HERE}/hub.py", "--algorithm", "sha256",
                                "--state", state.name],
                               stdout=subprocess.PIPE, text=True)
        procs.append(hub)
        hub_lines = lines(hub)
        hub_url = wait(hub_lines, "ready")["url"]

        title = ["first"]

        class Topic(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = FEED.format(title=title[0]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/atom+xml")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Link", f'<{hub_url}>; rel="hub", <{topic_url}>; rel="self"')
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        topic_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Topic)
        topic_url = f"http://127.0.0.1:{topic_server.server_port}/feed.atom"
        threading.Thread(target=topic_server.serve_forever, daemon=True).start()

        sub = subprocess.Popen([sys.executable, f"{HERE}/subscriber.py", topic_url,
                                "--state", state.name],
                               stdout=subprocess.PIPE, text=True)
        procs.append(sub)
        sub_lines = lines(sub)
        found = wait(sub_lines, "discovered")
        assert found == {**found, "hub": hub_url, "topic": topic_url}, found
        # flask-websub's hub stores the subscription after the verification answered and
        # before its 202: the subscription is active once both are seen.
        wait(sub_lines, "subscribed")
        wait(sub_lines, "requested")

        title[0] = "second"
        published = time.time()
        data = urllib.parse.urlencode({"hub.mode": "publish", "hub.topic": topic_url}).encode()
        with urllib.request.urlopen(hub_url, data=data, timeout=10) as response:
            assert response.status == 202, response.status
        delivery = wait(sub_lines, "delivery")
        assert delivery["signature"].startswith("sha256="), delivery
        assert "<title>second</title>" in delivery["body"], delivery
        print(f"selfcheck: ok (subscribed, delivery signed {delivery['signature'][:7]}..., "
              f"{(delivery['time'] - published) * 1000:.0f} ms after the publish)")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        state.cleanup()


if __name__ == "__main__":
    main()
