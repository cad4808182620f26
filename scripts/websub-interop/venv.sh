#!/usr/bin/env bash
# Makes (or reuses) a venv with flask-websub and its pinned dependencies from PyPI
# (requirements.txt beside this script), checks the harness against itself (selfcheck.py),
# and prints the venv's python on stdout, for TRIBUTARY_WEBSUB_PYTHON:
#
#   export TRIBUTARY_WEBSUB_PYTHON=$(bash scripts/websub-interop/venv.sh)
#   cargo test --locked --test websub_interop
#
# The venv goes in $WEBSUB_VENV, default ${CARGO_TARGET_DIR:-target}/websub-venv; it is
# rebuilt when requirements.txt changes. Everything else goes to stderr.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
HERE=$PWD
TARGET=${CARGO_TARGET_DIR:-$(cd ../.. && pwd)/target}
[[ $TARGET == /* ]] || TARGET="$HERE/$TARGET"
VENV=${WEBSUB_VENV:-$TARGET/websub-venv}
STAMP="$VENV/requirements.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
{
  if ! cmp -s requirements.txt "$STAMP" 2>/dev/null || [[ ! -x $VENV/bin/python ]]; then
    echo "websub-interop: making $VENV"
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      # Debian's python3 leaves venv (ensurepip) to a package of its own.
      export DEBIAN_FRONTEND=noninteractive
      { apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; } ||
        { echo "websub-interop: cannot make a venv (install python3-venv)"; exit 1; }
      rm -rf "$VENV"
      python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install --quiet --no-deps -r requirements.txt
    "$VENV/bin/pip" check
    cp requirements.txt "$STAMP"
  fi
  "$VENV/bin/python" selfcheck.py 2>"$VENV/selfcheck.log" ||
    { cat "$VENV/selfcheck.log"; echo "websub-interop: the harness fails against itself"; exit 1; }
} >&2
echo "$VENV/bin/python"
