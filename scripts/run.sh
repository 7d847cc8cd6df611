#!/usr/bin/env bash
# Build (release) and run tcp-close-watch with the given arguments, installing libpcap-dev first if it is missing.
# Example: bash scripts/run.sh run --mode abrupt
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# a cold release build takes minutes: say so instead of staying silent (an up-to-date one is quick and quiet)
if ! cargo build --release --quiet --offline 2>/dev/null; then
    echo "building (first time takes a few minutes)…" >&2
    cargo build --release --quiet
fi
exec ./target/release/tcp-close-watch "$@"
