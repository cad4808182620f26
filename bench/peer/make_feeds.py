"""Writes the feeds of bench/peer-cycle.sh as static files, so that nginx serves both
tools the very same bytes: DIR/feed/{i}.xml for i in 0..N, each an RSS feed of 20 entries
(about 20 KB), the same as examples/bench_origin.rs serves, plus a channel lastBuildDate.

    python3 make_feeds.py DIR N [BUILD]

BUILD (a number, default 0) only changes the channel's lastBuildDate: files written with
another BUILD differ from these in that one element and nowhere else (entries unchanged).
"""

import os
import sys
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

TEXT = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud "
    "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure "
    "dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. "
    "Excepteur sint occaecat cupidatat non proident. Sunt in culpa qui officia deserunt "
    "mollit anim id est laborum. Curabitur pretium tincidunt lacus, nulla gravida orci a "
    "odio, nullam varius turpis et commodo pharetra, est eros bibendum elit."
)


def feed(i: int, build: int) -> str:
    # lastBuildDate: 2025-03-03 12:00:00 GMT plus BUILD minutes (so every BUILD differs).
    when = datetime(2025, 3, 3, 12, tzinfo=timezone.utc) + timedelta(minutes=build)
    stamp = format_datetime(when, usegmt=True)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Source {i}</title><link>https://source{i}.example/</link>"
        f"<description>Benchmark source {i}</description>"
        f"<lastBuildDate>{stamp}</lastBuildDate>"
    ]
    for n in range(20):
        parts.append(
            f"<item><guid>https://source{i}.example/post/{n}</guid>"
            f"<title>Post {n} of source {i}</title>"
            f"<link>https://source{i}.example/post/{n}</link>"
            f"<pubDate>Mon, 03 Mar 2025 {n % 24:02d}:{i % 60:02d}:00 GMT</pubDate>"
            f"<description>&lt;p&gt;{TEXT}&lt;/p&gt;</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts)


def main() -> None:
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    out, n = sys.argv[1], int(sys.argv[2])
    build = int(sys.argv[3]) if len(sys.argv) == 4 else 0
    os.makedirs(os.path.join(out, "feed"), exist_ok=True)
    for i in range(n):
        path = os.path.join(out, "feed", f"{i}.xml")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(feed(i, build))
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
