"""The feedparser side of bench/peer-ingest.sh: times feedparser.parse() on one file's
bytes, in this process (the bytes read beforehand; interpreter start and import not
counted), and prints one line of JSON: the median of RUNS runs, every run, and the
entries found.

    python feedparser_parse.py FILE RUNS

feedparser.parse() with its defaults: it sanitises every entry's HTML and resolves
relative URLs (sanitize_html, resolve_relative_uris), the counterparts of tributary's
normalising.
"""

import json
import sys
import time
from statistics import median


def main() -> None:
    import feedparser

    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    runs = int(sys.argv[2])
    times = []
    entries = 0
    for _ in range(runs):
        start = time.perf_counter()
        parsed = feedparser.parse(data)
        times.append(time.perf_counter() - start)
        entries = len(parsed.entries)
    print(json.dumps({
        "median": round(median(times), 4),
        "runs": [round(t, 4) for t in times],
        "entries": entries,
        "bozo": bool(parsed.bozo),
        "feedparser": feedparser.__version__,
    }))


if __name__ == "__main__":
    main()
