"""A flask-websub subscriber on 127.0.0.1, for tributary's interop test and latency benchmark.

    python subscriber.py TOPIC_PAGE_URL [--port 0] [--lease 3600] [--state DIR]

This is harness, not a subscriber of ours: flask-websub (pinned in requirements.txt) does
the protocol. It discovers the hub and topic of TOPIC_PAGE_URL (its `discover`: the
response's `Link` headers first, then `<link>`/`<atom:link>` elements with rel="hub" and
rel="self" in the body), subscribes with a random secret, answers the hub's verification,
and checks `X-Hub-Signature` on each delivery (any of sha1, sha256, sha384, sha512).

One change from flask-websub's defaults: it sends a secret only to an https hub (the
Recommendation's SHOULD) and, for an http hub, first tries the same URL over https. The
hubs under test listen on plain http on 127.0.0.1, so the harness lets it treat a loopback
http hub as secure (nothing else changes): otherwise no delivery would be signed.

Prints one JSON line on stdout per event, each with "time" (seconds since the epoch, when
the event happened here):
  {"event": "ready", "callback_prefix": ...}
  {"event": "discovered", "hub": ..., "topic": ...}
  {"event": "requested", "callback_id": ...}          the hub answered 202
  {"event": "subscribed", "topic": ..., "callback_id": ...}     verification answered
  {"event": "denied", "topic": ..., "reason": ...}
  {"event": "delivery", "topic": ..., "signature": "sha512=...", "content_type": ...,
   "link": ..., "body": ...}       a delivery whose signature flask-websub checked and accepted
  {"event": "rejected", "status": ..., "signature": ...}  a delivery it did not accept
  {"event": "error", "message": ...}
Exits 1 after an "error" (discovery or subscription failed).
"""

import argparse
import json
import logging
import os
import secrets
import sys
import tempfile
import threading
import time
import urllib.parse

import flask_websub.subscriber as websub_subscriber
from flask import Flask, g, request
from flask_websub.errors import FlaskWebSubError
from flask_websub.subscriber import (SQLite3SubscriberStorage, SQLite3TempSubscriberStorage,
                                     Subscriber, discover)
from werkzeug.serving import make_server

_lock = threading.Lock()


def emit(**fields):
    line = json.dumps({"time": time.time(), **fields})
    with _lock:
        print(line, flush=True)


def loopback_or_https(url):
    parts = urllib.parse.urlsplit(url)
    return parts.scheme == "https" or parts.hostname in ("127.0.0.1", "localhost", "::1")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("topic_page")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lease", type=int, default=3600, help="hub.lease_seconds to ask for")
    parser.add_argument("--state", help="folder for its SQLite files (default: the system's temp)")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)

    websub_subscriber.is_secure = loopback_or_https
    dir = tempfile.mkdtemp(prefix="websub-subscriber-", dir=args.state)
    subscriber = Subscriber(
        SQLite3SubscriberStorage(os.path.join(dir, "subscriber.sqlite3")),
        SQLite3TempSubscriberStorage(os.path.join(dir, "temp.sqlite3")),
    )
    app = Flask("websub-interop-subscriber")
    app.register_blueprint(subscriber.build_blueprint(url_prefix="/callbacks"))

    @subscriber.add_success_handler
    def on_success(topic, callback_id, mode):
        emit(event="subscribed" if mode == "subscribe" else "unsubscribed", topic=topic,
             callback_id=callback_id)

    @subscriber.add_error_handler
    def on_error(topic, callback_id, reason):
        emit(event="denied", topic=topic, callback_id=callback_id, reason=reason)

    @subscriber.add_listener
    def on_delivery(topic, callback_id, body):
        g.accepted = True
        emit(event="delivery", topic=topic, callback_id=callback_id,
             signature=request.headers.get("X-Hub-Signature"),
             content_type=request.headers.get("Content-Type"),
             link=request.headers.getlist("Link"), bytes=len(body),
             body=body.decode("utf-8", "replace"))

    @app.after_request
    def report_rejected(response):
        if request.method == "POST" and not g.get("accepted"):
            emit(event="rejected", status=response.status_code, path=request.path,
                 signature=request.headers.get("X-Hub-Signature"))
        return response

    server = make_server("127.0.0.1", args.port, app, threaded=True)
    app.config["SERVER_NAME"] = f"127.0.0.1:{server.port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    emit(event="ready", callback_prefix=f"http://127.0.0.1:{server.port}/callbacks/")

    with app.app_context():
        try:
            found = discover(args.topic_page, timeout=5)
            emit(event="discovered", hub=found["hub_url"], topic=found["topic_url"])
            callback_id = subscriber.subscribe(**found, lease_seconds=args.lease,
                                               secret=secrets.token_hex(32))
            emit(event="requested", callback_id=callback_id)
        except (FlaskWebSubError, OSError) as e:
            cause = f" ({e.__cause__})" if e.__cause__ else ""
            emit(event="error", message=f"{type(e).__name__}: {e}{cause}")
            sys.exit(1)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
