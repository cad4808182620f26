#!/usr/bin/env bash
# WebSub latency benchmark (BENCHMARKS.md, "Real time"): origin publishes an entry -> the
# entry in tributary's /feed.atom, and -> delivered to a flask-websub subscriber of
# tributary's hub; with push (the origin's hub is flask-websub's) and with polling.
#
#   bash bench/websub-latency.sh [--push 20] [--poll 10] [--interval 5]
#
# PROFILE=debug uses a debug build (default: release).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-target}
[[ $TARGET == /* ]] || TARGET="$PWD/$TARGET"
if [[ $PROFILE == release ]]; then cargo build --release --locked --quiet; else cargo build --locked --quiet; fi
PYTHON=$(bash scripts/websub-interop/venv.sh)
exec "$PYTHON" bench/websub-latency.py "$TARGET/$PROFILE/tributary" "$@"
