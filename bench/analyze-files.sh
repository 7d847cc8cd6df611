#!/usr/bin/env bash
# Several files at once: `analyze a b c d` (read a core each) against the same files read one after another (one
# `analyze` each), measured in the same run. Prints the ratio. Usage: bash bench/analyze-files.sh [FILES] [CONNS] [FILTER]
# (FILTER: a --filter expression given to both, e.g. 'tcp[tcpflags] & tcp-rst != 0')
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-4}
conns=${2:-200000}
filter=()
if [ -n "${3:-}" ]; then filter=(--filter "$3"); fi
cargo build --release --quiet --example synth
cargo build --release --quiet
bin=target/release/tcp-close-watch
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
files=()
for i in $(seq 1 "$n"); do
  target/release/examples/synth --connections "$conns" "$dir/f$i.pcap" 2>/dev/null
  files+=("$dir/f$i.pcap")
done
now() { date +%s.%N; }
t0=$(now); "$bin" analyze "${filter[@]}" "${files[@]}" --format csv -o "$dir/together.csv"; t1=$(now)
for f in "${files[@]}"; do "$bin" analyze "${filter[@]}" "$f" --format csv; done > "$dir/apart.csv"; t2=$(now)
together=$(echo "$t1 - $t0" | bc -l); apart=$(echo "$t2 - $t1" | bc -l)
# the same rows either way (one header line apart: several files share one)
cmp <(grep -v '^file,' "$dir/together.csv") <(grep -v '^file,' "$dir/apart.csv") >/dev/null \
  || { echo "outputs differ" >&2; exit 1; }
printf '%d files of %d connections on %d cores%s: together %.2f s, one after another %.2f s: %.2fx\n' \
  "$n" "$conns" "$(nproc)" "${3:+ (--filter '$3')}" "$together" "$apart" "$(echo "$apart / $together" | bc -l)"
