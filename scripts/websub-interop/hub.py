"""A flask-websub hub on 127.0.0.1, for tributary's interop test and latency benchmark.

    python hub.py [--port 0] [--algorithm sha512] [--attempts 2] [--state DIR]

This is harness, not a hub of ours: flask-websub (pinned in requirements.txt) does the
protocol. Its hub runs its work as celery tasks; here celery runs them eagerly, in the
request that asked for them (`task_always_eager`, no broker, no worker process). So:
- a subscribe or unsubscribe request is verified (the GET with `hub.challenge` to the
  callback) BEFORE the hub answers 202: a subscriber must be ready for the verification
  while its own request is still open;
- `hub.mode=publish` (PUBLISH_SUPPORTED) with `hub.topic` (or `hub.url`) fetches the topic
  and delivers it to every subscriber before answering 202 (a fat ping: the fetched body,
  the topic's response headers, and `X-Hub-Signature: <algorithm>=<hex>` when the
  subscriber gave a secret). flask-websub refuses to distribute a topic whose response has
  no `Link` header with both `rel="hub"` and `rel="self"`;
- a failed delivery is retried at once (celery ignores the countdown when eager), up to
  `--attempts` times.

Prints one JSON line on stdout when ready: {"event": "ready", "url": "http://127.0.0.1:P/hub"}
one per request it answered: {"event": "request", "mode": ..., "topic": ..., "status": ...},
and one per distribution (a publish), before it delivers:
{"event": "distribute", "topic": ..., "callbacks": [the subscribers' callback URLs]}.
"""

import argparse
import json
import logging
import os
import sys
import tempfile
import time

from celery import Celery
from flask import Flask, request
from flask_websub.hub import Hub, SQLite3HubStorage
from werkzeug.serving import make_server


def emit(**fields):
    print(json.dumps({"time": time.time(), **fields}), flush=True)


class ReportingStorage(SQLite3HubStorage):
    """flask-websub's own SQLite storage, saying whom each distribution goes to."""

    def get_callbacks(self, topic_url):
        callbacks = list(super().get_callbacks(topic_url))
        emit(event="distribute", topic=topic_url, callbacks=[c[0] for c in callbacks])
        yield from callbacks


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--algorithm", default="sha512", choices=["sha1", "sha256", "sha384", "sha512"])
    parser.add_argument("--attempts", type=int, default=2, help="delivery attempts per subscriber")
    parser.add_argument("--state", help="folder for its SQLite files (default: the system's temp)")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)

    app = Flask("websub-interop-hub")
    app.config["PUBLISH_SUPPORTED"] = True
    # The lease bounds the hub allows (flask-websub's defaults: 1 minute, 10 days, 31 days).
    app.config["HUB_MIN_LEASE_SECONDS"] = 60
    celery = Celery("websub-interop-hub")
    celery.conf.task_always_eager = True
    db = os.path.join(tempfile.mkdtemp(prefix="websub-hub-", dir=args.state), "hub.sqlite3")
    hub = Hub(
        ReportingStorage(db),
        celery,
        SIGNATURE_ALGORITHM=args.algorithm,
        MAX_ATTEMPTS=args.attempts - 1,
        BACKOFF_BASE=0.0,
        REQUEST_TIMEOUT=3,
    )

    @app.before_request
    def publish_by_url():
        # The Recommendation leaves the publish request to each hub; many (and tributary's
        # `[publish] hubs`) send `hub.url`, flask-websub reads `hub.topic`. Accept both.
        if request.form.get("hub.mode") == "publish" and "hub.topic" not in request.form:
            form = request.form.copy()
            form["hub.topic"] = request.form.get("hub.url", "")
            request.form = form

    @app.after_request
    def report(response):
        emit(
            event="request",
            mode=request.form.get("hub.mode"),
            topic=request.form.get("hub.topic") or request.form.get("hub.url"),
            callback=request.form.get("hub.callback"),
            status=response.status_code,
        )
        return response

    app.register_blueprint(hub.build_blueprint(url_prefix="/hub"))
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    emit(event="ready", url=f"http://127.0.0.1:{server.port}/hub")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
