#!/usr/bin/env bash
# Wall time of `run --mode abrupt` and `run --mode all`, as medians over repeated runs, with references measured in
# the same run: the binary's start-up alone (`--version`), the pair without capture (`--no-capture --no-kernel`),
# and each run with the kernel's evidence (tracefs) and without it (`--no-kernel`), interleaved.
# Budgets: abrupt under 100 ms and all under 1 s with the kernel's evidence on. Needs root (capture and tracefs).
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
pair=$(median_ms "$n" "$bin" run --mode abrupt --no-capture --no-kernel)
abrupt=$(median_ms "$n" "$bin" run --mode abrupt)
abrupt_nk=$(median_ms "$n" "$bin" run --mode abrupt --no-kernel)
all_runs=$(( (n + 3) / 4 ))
all=$(median_ms "$all_runs" "$bin" run --mode all)
all_nk=$(median_ms "$all_runs" "$bin" run --mode all --no-kernel)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a / b}'; }
printf '%-34s %10s  %s\n' "what (median of runs)" "ms" "ratio"
printf '%-34s %10s  %s\n' "start-up (--version), $n runs" "$start" "1.0 (reference)"
printf '%-34s %10s  %s× start-up\n' "abrupt, no capture, no kernel" "$pair" "$(ratio "$pair" "$start")"
printf '%-34s %10s  %s× start-up, %s× the pair alone\n' "run --mode abrupt --no-kernel" "$abrupt_nk" \
  "$(ratio "$abrupt_nk" "$start")" "$(ratio "$abrupt_nk" "$pair")"
printf '%-34s %10s  %s× without the kernel, %s of the 100 ms budget\n' "run --mode abrupt (kernel on)" "$abrupt" \
  "$(ratio "$abrupt" "$abrupt_nk")" "$(awk -v a="$abrupt" 'BEGIN {printf "%.0f%%", a}')"
printf '%-34s %10s  %s× abrupt without the kernel\n' "run --mode all --no-kernel" "$all_nk" \
  "$(ratio "$all_nk" "$abrupt_nk")"
printf '%-34s %10s  %s× without the kernel, %s of the 1 s budget\n' "run --mode all (kernel on)" "$all" \
  "$(ratio "$all" "$all_nk")" "$(awk -v a="$all" 'BEGIN {printf "%.0f%%", a / 10}')"
