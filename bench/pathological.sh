#!/usr/bin/env bash
# Pathological documents (BENCHMARKS.md, "Pathological documents"): every document of the
# catalogue in tests/support/pathological.rs, each as big as the default body cap allows,
# timed stage by stage (parse, normalise, store encoding) and as two whole polls through
# app::once against a loopback origin (the second of the unchanged document).
#
#   bash bench/pathological.sh [NAME-FILTER [SCALE]]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet --example pathological
"${CARGO_TARGET_DIR:-target}/release/examples/pathological" "${1:-}" "${2:-1.0}"
