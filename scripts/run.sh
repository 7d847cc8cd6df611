#!/usr/bin/env bash
# Build (release) and run tcp-close-watch with the given arguments, installing libpcap-dev first if it is missing.
# Example: bash scripts/run.sh run --mode abrupt
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --quiet
exec ./target/release/tcp-close-watch "$@"
