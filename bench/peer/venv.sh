#!/usr/bin/env bash
# Makes (or reuses) a venv with the peers of bench/peer-cycle.sh and bench/peer-ingest.sh:
# the Python `reader` library and feedparser, pinned in requirements.txt beside this
# script (installed from PyPI with --no-deps, then `pip check`). Prints the venv's python
# on stdout:
#
#   PY=$(bash bench/peer/venv.sh)
#
# The venv goes in $PEER_VENV, default ${CARGO_TARGET_DIR:-target}/peer-venv; it is rebuilt
# when requirements.txt changes. Everything else goes to stderr.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
HERE=$PWD
TARGET=${CARGO_TARGET_DIR:-$(cd ../.. && pwd)/target}
[[ $TARGET == /* ]] || TARGET="$HERE/../../$TARGET"
VENV=${PEER_VENV:-$TARGET/peer-venv}
STAMP="$VENV/requirements.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
{
  if ! cmp -s requirements.txt "$STAMP" 2>/dev/null || [[ ! -x $VENV/bin/python ]]; then
    echo "peer venv: making $VENV"
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      # Debian's python3 leaves venv (ensurepip) to a package of its own.
      export DEBIAN_FRONTEND=noninteractive
      { apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; } ||
        { echo "peer venv: cannot make a venv (install python3-venv)"; exit 1; }
      rm -rf "$VENV"
      python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install --quiet --no-deps -r requirements.txt
    "$VENV/bin/pip" check
    cp requirements.txt "$STAMP"
  fi
  # add_feed loads reader's parsers (its own copy of feedparser among them); no network.
  "$VENV/bin/python" -c '
import feedparser, reader
reader.make_reader(":memory:").add_feed("http://127.0.0.1/feed.xml")
print("peer venv: reader", reader.__version__, "feedparser", feedparser.__version__)' ||
    { echo "peer venv: reader or feedparser does not work"; exit 1; }
} >&2
echo "$VENV/bin/python"
