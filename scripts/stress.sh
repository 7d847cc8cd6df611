#!/usr/bin/env bash
# Play `run --mode all` many times at once, on a quiet machine and then with CPU hogs, and count what went wrong.
# Usage: bash scripts/stress.sh [CONCURRENT=40] [ROUNDS=5] [HOGS=number of CPUs]   (as root: it captures loopback)
#
# Each run's comparison (CSV, without its warnings column) is held against one played first, alone. A run is
#   a hang              if it is still going after TCW_STRESS_BOUND seconds (default 120) and is killed;
#   a wrong story       if its comparison differs from the reference and it still exited 0 (the kernel's reset
#                       reasons aside: a run that differs only in them is counted apart, as "another kernel's
#                       reason" — the kernel's own word under load, shown, not failed);
#   incomplete, said so if it exited 3 (the timeline may be missing segments: README, "Exit codes");
#   failed, said so     if it exited with another code (a scenario that gave up under load, …);
#   dropping            if libpcap dropped packets of its capture (counted whatever it exited with).
# Fails (exit 1) when there is a hang or a wrong story: both must be 0.
set -euo pipefail
cd "$(dirname "$0")/.."

concurrent=${1:-40}
rounds=${2:-5}
hogs=${3:-$(nproc)}
bound=${TCW_STRESS_BOUND:-120}
bin=${TCW_BIN:-target/release/tcp-close-watch}
[ -x "$bin" ] || { echo "stress: $bin is not built (cargo build --release)" >&2; exit 1; }

work=$(mktemp -d)
hog_pids=()
stop_hogs() {
  for pid in "${hog_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${hog_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  hog_pids=()
}
cleanup() {
  stop_hogs
  rm -rf "$work"
}
trap cleanup EXIT

story() { # the comparison without its last column (the warnings), which says nothing of what happened, and
  # without the names of the kernel's reset reasons (counted apart below: see "reasons")
  sed -e 's/,[^,"]*$//' -e 's/\b\(TCP_[A-Z0-9_]*\|NO_SOCKET\|NOT_SPECIFIED\|INVALID_SYN\|MPTCP_RST_[A-Z0-9_]*\|ERROR\)\b/REASON/g' "$1"
}

reasons() { # the comparison as it is, but for the warnings
  sed 's/,[^,"]*$//' "$1"
}

play() { # OUT_PREFIX: one run, bounded; writes .csv (the story), .err, .rc
  local rc=0
  timeout -k 5 "$bound" "$bin" run --mode all --format csv --color never >"$1.out" 2>"$1.err" || rc=$?
  story "$1.out" >"$1.csv"
  reasons "$1.out" >"$1.reasons"
  echo "$rc" >"$1.rc"
}

if ! "$bin" run --mode all --format csv --color never >"$work/reference.out" 2>"$work/reference.err"; then
  echo "stress: the reference run failed:" >&2
  cat "$work/reference.err" >&2
  exit 1
fi
story "$work/reference.out" >"$work/reference.csv"
reasons "$work/reference.out" >"$work/reference.reasons"
if [ -s "$work/reference.err" ]; then
  echo "stress: the reference run was not clean (played alone, it must be):" >&2
  cat "$work/reference.err" >&2
  exit 1
fi

total_hangs=0
total_wrong=0
phase() { # NAME HOGS
  local name=$1 n_hogs=$2 dir="$work/$1"
  mkdir -p "$dir"
  for _ in $(seq 1 "$n_hogs"); do
    (while :; do :; done) &
    hog_pids+=($!)
  done
  local began=$SECONDS
  for r in $(seq 1 "$rounds"); do
    local pids=()
    for i in $(seq 1 "$concurrent"); do
      play "$dir/$r-$i" &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
  done
  local took=$((SECONDS - began))
  stop_hogs
  local runs=0 hangs=0 wrong=0 incomplete=0 failed=0 dropping=0 dropped=0 first_wrong="" first_failed=""
  local other_reason=0 first_reason=""
  for rcfile in "$dir"/*.rc; do
    local run=${rcfile%.rc} rc
    rc=$(cat "$rcfile")
    runs=$((runs + 1))
    local d
    d=$({ grep -o 'libpcap reports [0-9]* dropped' "$run.err" || true; } | awk '{s += $3} END {print s + 0}')
    if [ "$d" -gt 0 ]; then dropping=$((dropping + 1)); dropped=$((dropped + d)); fi
    case $rc in
      0)
        if ! cmp -s "$run.csv" "$work/reference.csv"; then
          wrong=$((wrong + 1))
          [ -n "$first_wrong" ] || first_wrong=$run
        elif ! cmp -s "$run.reasons" "$work/reference.reasons"; then
          other_reason=$((other_reason + 1))
          [ -n "$first_reason" ] || first_reason=$run
        fi
        ;;
      124 | 137) hangs=$((hangs + 1)) ;;
      3) incomplete=$((incomplete + 1)) ;;
      *)
        failed=$((failed + 1))
        [ -n "$first_failed" ] || first_failed=$run
        ;;
    esac
  done
  echo "$name: $runs runs of \`run --mode all\` ($concurrent at once x $rounds rounds, $n_hogs CPU hogs) in ${took} s"
  printf '  %-44s %5d  (must be 0)\n' "hangs (killed after ${bound} s)" "$hangs"
  printf '  %-44s %5d  (must be 0)\n' "wrong stories with exit 0" "$wrong"
  printf '  %-44s %5d\n' "incomplete, said so (exit 3)" "$incomplete"
  printf '  %-44s %5d\n' "failed, said so (other exit codes)" "$failed"
  printf '  %-44s %5d  (%d packets)\n' "runs whose capture dropped packets" "$dropping" "$dropped"
  printf '  %-44s %5d  (what the kernel said; not counted as wrong)\n' "same story, another kernel's reason" "$other_reason"
  if [ -n "$first_wrong" ]; then
    echo "  first wrong story ($first_wrong), against the reference:"
    diff "$work/reference.csv" "$first_wrong.csv" | sed 's/^/    /' || true
  fi
  if [ -n "$first_reason" ]; then
    echo "  first other reason ($first_reason), against the reference:"
    diff "$work/reference.reasons" "$first_reason.reasons" | sed 's/^/    /' || true
  fi
  if [ -n "$first_failed" ]; then
    echo "  first failure: exit $(cat "$first_failed.rc"): $(tail -n 1 "$first_failed.err")"
  fi
  total_hangs=$((total_hangs + hangs))
  total_wrong=$((total_wrong + wrong))
}

phase quiet 0
phase loaded "$hogs"
if [ $((total_hangs + total_wrong)) -gt 0 ]; then
  echo "stress: FAILED: $total_hangs hang(s), $total_wrong wrong story(ies) with exit 0" >&2
  exit 1
fi
echo "stress: no hang, no wrong story with exit 0"
