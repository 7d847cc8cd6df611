#!/usr/bin/env bash
# Benchmark `tcp-close-watch analyze` against tcptrace, tshark and tcpdump on synthetic captures of 100k and 1M
# connections (written to /tmp, never to the repository). Prints wall time, time relative to tcptrace and peak
# memory (maximum resident set size) of each. Needs: tcptrace, tshark, tcpdump, GNU time (/usr/bin/time).
#
#   bash bench/analyze.sh            # both sizes
#   SIZES=100000 bash bench/analyze.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SIZES="${SIZES:-100000 1000000}"
OUT="${BENCH_DIR:-/tmp}"
for tool in tcptrace tshark tcpdump /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install tcptrace tshark tcpdump time)" >&2; exit 1; }
done

cargo build --release --quiet --bin tcp-close-watch --example synth
BIN=target/release/tcp-close-watch
SYNTH=target/release/examples/synth

# measure CMD...: prints "seconds max_rss_kb". The capture is read once first: tcptrace's gigabytes can push it
# out of the page cache, and every tool should be timed on a cached file.
measure() {
    cat "$f" >/dev/null
    local log
    log="$(mktemp)"
    /usr/bin/time -v "$@" >/dev/null 2>"$log" || true
    local wall rss
    wall="$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')"
    rss="$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")"
    rm -f "$log"
    echo "$wall $rss"
}

# median3 CMD...: "seconds max_rss_kb" of the median of three runs (by time). Runs under a second are at the
# mercy of a noisy VM; tcptrace, tshark and tcpdump take seconds to minutes and run once.
median3() {
    { measure "$@"; measure "$@"; measure "$@"; } | sort -n | sed -n 2p
}

printf '%-12s %-38s %10s %10s %12s\n' "file" "tool" "seconds" "vs tcptrace" "peak MB"
for n in $SIZES; do
    f="$OUT/tcw-synth-$n.pcap"
    [ -s "$f" ] || "$SYNTH" --connections "$n" "$f" 2>/dev/null
    size_mb=$(( $(stat -c %s "$f") / 1000000 ))
    label="${n}c/${size_mb}MB"
    read -r t_ref m_ref < <(measure tcptrace -n "$f")
    rows=("tcptrace -n|$t_ref|$m_ref")
    read -r t m < <(median3 "$BIN" analyze "$f")
    rows+=("tcp-close-watch analyze|$t|$m")
    read -r t m < <(median3 "$BIN" analyze "$f" --format json)
    rows+=("tcp-close-watch analyze --format json|$t|$m")
    if [ "$n" -le 200000 ]; then
        read -r t m < <(measure tshark -r "$f" -q -z conv,tcp)
        rows+=("tshark -q -z conv,tcp|$t|$m")
        read -r t m < <(measure sh -c "tcpdump -n -r '$f' > /dev/null 2>&1")
        rows+=("tcpdump -n -r|$t|$m")
    else
        rows+=("tshark -q -z conv,tcp|skipped|(4x tcptrace's time; minutes)")
        rows+=("tcpdump -n -r|skipped|(slows down with many connections)")
    fi
    for row in "${rows[@]}"; do
        IFS='|' read -r tool t m <<<"$row"
        if [ "$t" = "skipped" ]; then
            printf '%-12s %-38s %10s %10s %12s\n' "$label" "$tool" "skipped" "-" "$m"
        else
            ratio="$(awk -v a="$t" -v b="$t_ref" 'BEGIN { if (a > 0) printf "%.1fx", b / a; else print "-" }')"
            printf '%-12s %-38s %10s %10s %12d\n' "$label" "$tool" "$t" "$ratio" "$((m / 1024))"
        fi
    done
done
echo "(vs tcptrace: how many times faster than tcptrace; peak MB: maximum resident set size)"
