"""The `reader` side of bench/peer-cycle.sh: the Python reader library (lemon24/reader)
polling the benchmark's feeds, one process per step so that /usr/bin/time sees each
cycle on its own.

    python reader_cycle.py add DB URLS       # add every URL of the file URLS (one a line)
    python reader_cycle.py update DB WORKERS # one cycle: update every feed once

`update` calls reader's update_feeds_iter(workers=WORKERS, scheduled=False), the loop
that update_feeds() runs (it also gives each feed's result): every feed is retrieved
(with If-None-Match / If-Modified-Since from the previous cycle, which reader stores),
parsed and its entries compared and stored in the SQLite DB. It prints one line of JSON:
the time update_feeds_iter took in this process, the number of feeds updated (200), not
modified (304, or unchanged: reader yields None), failed, and the entries new, modified
and unmodified, so the caller can check that every feed was really fetched.
"""

import json
import sys
import time


def main() -> None:
    from reader import make_reader
    from reader.types import UpdatedFeed

    if len(sys.argv) != 4 or sys.argv[1] not in ("add", "update"):
        raise SystemExit(__doc__)
    step, db, arg = sys.argv[1:]
    reader = make_reader(db)
    if step == "add":
        with open(arg, encoding="utf-8") as f:
            urls = [line.strip() for line in f if line.strip()]
        for url in urls:
            reader.add_feed(url, exist_ok=True)
        print(json.dumps({"feeds": len(urls)}))
        return
    workers = int(arg)
    counts = dict(updated=0, not_modified=0, failed=0, new=0, modified=0, unmodified=0)
    errors = []
    start = time.perf_counter()
    for result in reader.update_feeds_iter(workers=workers, scheduled=False):
        value = result.value
        if value is None:
            counts["not_modified"] += 1
        elif isinstance(value, UpdatedFeed):
            counts["updated"] += 1
            counts["new"] += value.new
            counts["modified"] += value.modified
            counts["unmodified"] += value.unmodified
        else:
            counts["failed"] += 1
            if len(errors) < 3:
                errors.append(f"{result.url}: {value!r}")
    seconds = time.perf_counter() - start
    reader.close()
    print(json.dumps({"seconds": round(seconds, 4), **counts, "errors": errors}))


if __name__ == "__main__":
    main()
