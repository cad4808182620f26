#!/usr/bin/env python3
"""Readers for bench/pair.sh: through nginx, in front of two tributary instances.

Each reader loops until its deadline over
  - GET /feed.atom, /feed.json and a tag feed, once without validators and once with the
    ETag it got last (If-None-Match): the answer must be 200 or 304, and since the origin
    does not change during the run, a conditional request must be a 304 whichever
    instance answers it (both give the same document the same ETag);
  - a walk through every page of /feed.json and of the tag feed, following RFC 5005 next
    links (JSON Feed next_url); each page goes to whichever instance nginx picks. A walk
    must see every expected id once: no id twice in one document, none twice across the
    pages of a walk, none missing.
Any request that fails (connection error, timeout, a status other than 200 and 304) counts
as an error. Prints one JSON object with the counts on stdout.

  python3 bench/pair-readers.py --base http://127.0.0.1:PORT --tag TAG \
      --expect-feed ids.txt --expect-tag tag-ids.txt --readers 8 --seconds 15
"""

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse


class Reader:
    def __init__(self, base, counts, lock):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.conn = None
        self.counts = counts
        self.lock = lock

    def count(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def get(self, path, etag=None):
        """One GET on a keep-alive connection; (status, etag, body) or None on an error."""
        headers = {"If-None-Match": etag} if etag else {}
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=20)
            self.conn.request("GET", path, headers=headers)
            r = self.conn.getresponse()
            body = r.read()
            status, tag = r.status, r.getheader("ETag")
        except Exception as e:  # noqa: BLE001: any failure is a failed request
            self.conn = None
            self.count("errors")
            self.note(f"{path}: {e!r}")
            return None
        self.count("requests")
        self.count(f"status_{status}")
        if status not in (200, 304):
            self.count("errors")
            self.note(f"{path}: status {status}")
            return None
        return status, tag, body

    def note(self, what):
        with self.lock:
            notes = self.counts.setdefault("first_errors", [])
            if len(notes) < 10:
                notes.append(f"{time.strftime('%H:%M:%S')} {what}")

    def conditional(self, path, etags):
        """Unconditional, then with the ETag held: 304 expected."""
        r = self.get(path)
        if r is None:
            return
        etags[path] = r[1]
        r = self.get(path, etags[path])
        if r is None:
            return
        self.count("conditional")
        if r[0] == 304:
            self.count("conditional_304")
        else:
            # The document did not change: another ETag means the instances differ.
            self.count("etag_mismatch")
            self.note(f"{path}: If-None-Match {etags[path]} got {r[0]} with ETag {r[1]}")

    def walk(self, path, expected):
        """Every page of a JSON Feed, following next_url; checks each id once, none missing."""
        seen = []
        url = path
        pages = 0
        while url:
            r = self.get(url)
            if r is None:
                self.count("walks_broken")
                return
            doc = json.loads(r[2])
            ids = [item["id"] for item in doc.get("items", [])]
            if len(set(ids)) != len(ids):
                self.count("duplicates_in_document", len(ids) - len(set(ids)))
                self.note(f"{url}: an id twice in one document")
            seen.extend(ids)
            pages += 1
            nxt = doc.get("next_url")
            url = urllib.parse.urlsplit(nxt)._replace(scheme="", netloc="").geturl() if nxt else None
        dup = len(seen) - len(set(seen))
        missing = len(expected - set(seen))
        extra = len(set(seen) - expected)
        self.count("walks")
        self.count("pages", pages)
        self.count("ids_seen", len(seen))
        if dup:
            self.count("duplicates_across_pages", dup)
            self.note(f"{path}: {dup} ids twice in one walk")
        if missing:
            self.count("missing", missing)
            self.note(f"{path}: {missing} ids missing from a walk")
        if extra:
            self.count("unexpected", extra)
            self.note(f"{path}: {extra} ids no single instance publishes")


def run(args, counts, lock, deadline):
    reader = Reader(args.base, counts, lock)
    expect_feed = set(open(args.expect_feed).read().split())
    expect_tag = set(open(args.expect_tag).read().split())
    etags = {}
    while time.monotonic() < deadline:
        for path in ("/feed.atom", "/feed.json", f"/tags/{args.tag}.json"):
            reader.conditional(path, etags)
        reader.walk("/feed.json", expect_feed)
        reader.walk(f"/tags/{args.tag}.json", expect_tag)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--tag", required=True)
    p.add_argument("--expect-feed", required=True)
    p.add_argument("--expect-tag", required=True)
    p.add_argument("--readers", type=int, default=8)
    p.add_argument("--seconds", type=float, default=15)
    args = p.parse_args()
    counts, lock = {}, threading.Lock()
    deadline = time.monotonic() + args.seconds
    threads = [
        threading.Thread(target=run, args=(args, counts, lock, deadline))
        for _ in range(args.readers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    json.dump(counts, sys.stdout)
    print()


if __name__ == "__main__":
    main()
