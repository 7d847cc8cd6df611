#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, live captures (as root) and the real binary.
# Installs what is missing first (libpcap-dev; tshark for the tests that compare with it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh tshark
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
if [ "$(id -u)" -ne 0 ] && [ -z "${TCW_NO_SKIP:-}" ]; then
  echo "tcp-close-watch: not root: the live-capture tests will print SKIPPED (run with sudo to test them for real)" >&2
fi
cargo test --all-targets 2>&1 | tee "${TCW_TEST_LOG:-/dev/null}"
