#!/usr/bin/env bash
# Build (release) and run tcp-close-watch with the given arguments, installing libpcap-dev first if it is missing.
# Example: bash scripts/run.sh run --mode abrupt
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# a cold release build takes minutes: say so before it starts instead of staying silent (a rebuild after a change
# is quick and quiet)
if [ ! -x target/release/tcp-close-watch ]; then
    echo "building (first time takes a few minutes)…" >&2
fi
cargo build --release --quiet
exec ./target/release/tcp-close-watch "$@"
