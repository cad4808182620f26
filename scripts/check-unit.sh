#!/usr/bin/env bash
# The systemd unit: `systemd-analyze verify` (with ExecStart pointed at the binary built
# here, since verify needs it to exist) and the security exposure score, which must be 2.0
# or lower.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --quiet
TARGET=${CARGO_TARGET_DIR:-target}
[[ $TARGET == /* ]] || TARGET="$PWD/$TARGET"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
sed "s|^ExecStart=/usr/bin/tributary|ExecStart=$TARGET/debug/tributary|" \
    systemd/tributary.service > "$T/tributary.service"
systemd-analyze verify "$T/tributary.service"
echo "ok: systemd-analyze verify"
systemd-analyze security --offline=true --threshold=20 "$T/tributary.service" | tail -1
echo "ok: exposure within 2.0"
