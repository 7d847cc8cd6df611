#!/usr/bin/env bash
# Wall time of `run --mode abrupt` and `run --mode all`, as medians over repeated runs, with references measured in
# the same run: the binary's start-up alone (`--version`) and the pair without capture (`--no-capture`).
# Budgets from the issue: abrupt well under 0.5 s, all under 3 s. Needs capture rights (root).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TCW_BIN:-target/release/tcp-close-watch}
[ -x "$bin" ] || cargo build --release --quiet
n=${BENCH_RUNS:-21}

# median wall time in ms of a command run $1 times
median_ms() {
  local runs=$1; shift
  for _ in $(seq "$runs"); do
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 ))
  done | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1000}'
}

start=$(median_ms "$n" "$bin" --version)
pair=$(median_ms "$n" "$bin" run --mode abrupt --no-capture)
abrupt=$(median_ms "$n" "$bin" run --mode abrupt)
all_runs=$(( (n + 3) / 4 ))
all=$(median_ms "$all_runs" "$bin" run --mode all)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a / b}'; }
printf '%-34s %10s  %s\n' "what (median of runs)" "ms" "ratio"
printf '%-34s %10s  %s\n' "start-up (--version), $n runs" "$start" "1.0 (reference)"
printf '%-34s %10s  %s× start-up\n' "abrupt --no-capture, $n runs" "$pair" "$(ratio "$pair" "$start")"
printf '%-34s %10s  %s× start-up, %s× the pair alone, %s of the 500 ms budget\n' "run --mode abrupt, $n runs" "$abrupt" \
  "$(ratio "$abrupt" "$start")" "$(ratio "$abrupt" "$pair")" "$(awk -v a="$abrupt" 'BEGIN {printf "%.0f%%", a / 5}')"
printf '%-34s %10s  %s× abrupt, %s of the 3 s budget\n' "run --mode all, $all_runs runs" "$all" \
  "$(ratio "$all" "$abrupt")" "$(awk -v a="$all" 'BEGIN {printf "%.0f%%", a / 30}')"
