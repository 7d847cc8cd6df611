#!/usr/bin/env bash
# `just bench-watch-capacity [SECONDS] [RATE]`: how many connections a second `watch` itself keeps up with, when
# the machine's TCP stack is not what limits the load. On this 2-CPU machine a real connection costs the kernel
# about 80 µs of CPU, so real loads (bench-watch, `just load`) stop near 20,000 a second under any capture, tcpdump's
# included. Here examples/frameload.rs writes the six frames of a connection straight onto `lo` through a packet
# socket, RATE connections a second (0, the default: as many as it can) for SECONDS (default 20): about a
# microsecond a frame, with no socket behind them. Three times in the same run: alone (the reference), under
# tcpdump -w /dev/null, then while `watch --port PORT --format json` watches. Reports connections/s in each and the
# ratios, connections watch reported vs written (must be equal), libpcap drops, watch's CPU per connection and its
# memory after 10 s and at the end. What it does not measure: the /proc lookups (no process holds these
# connections) and the kernel's events (no socket changes state); bench-watch and `just load` do.
#
# Everything happens in a network namespace of its own, whose `lo` drops the frames at its ingress (nftables), after
# the capture saw them and before TCP would answer them; the namespace and what runs in it are removed on every
# way out (and those of an earlier run that died). As root.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
rate="${2:-0}"
[ "$(id -u)" -eq 0 ] || { echo "bench-watch-capacity: run as root (namespace, capture, tracefs)" >&2; exit 1; }
[ "$seconds" -ge 12 ] || { echo "bench-watch-capacity: SECONDS must be at least 12 (memory is read at 10 s)" >&2; exit 2; }
bash scripts/deps.sh tcpdump
cargo build --release --quiet --bin tcp-close-watch --example frameload
bin="$PWD/target/release/tcp-close-watch"
load="$PWD/target/release/examples/frameload"

# namespaces of earlier runs whose script is gone
for ns in $(ip netns list 2>/dev/null | awk '/^tcw-capacity-[0-9]+/ {print $1}'); do
  kill -0 "${ns#tcw-capacity-}" 2>/dev/null || ip netns delete "$ns" 2>/dev/null || true
done
ns="tcw-capacity-$$"
dir=$(mktemp -d /tmp/tcw-bench-capacity.XXXXXX)
watch_pid="" tcpdump_pid=""
cleanup() {
  [ -n "$tcpdump_pid" ] && kill "$tcpdump_pid" 2>/dev/null || true
  [ -n "$watch_pid" ] && kill -INT "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null || true
  # what watch started (its trace instance's remover) ends on its own once watch has; anything still running in
  # the namespace a moment later is killed, then the namespace removed
  for _ in $(seq 20); do [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break; sleep 0.1; done
  for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  ip netns delete "$ns" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # stop here (the EXIT trap cleans up), not go on to the next step

port=47000
# (processes that run in the background are started with `ip netns exec` itself, so that $! is theirs)
in_ns() { ip netns exec "$ns" "$@"; }
ip netns add "$ns"
in_ns ip link set lo up
in_ns nft -f - <<EOF
table netdev tcw {
  chain in { type filter hook ingress device lo priority 0; tcp sport $port drop; tcp dport $port drop; }
}
EOF
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

in_ns "$load" "$port" "$rate" "$seconds" >"$dir/alone.txt"

ip netns exec "$ns" tcpdump -q -i lo -s 512 -B 65536 -w /dev/null "tcp port $port" 2>"$dir/tcpdump.err" &
tcpdump_pid=$!
sleep 1
in_ns "$load" "$port" "$rate" "$seconds" >"$dir/tcpdump.txt"
kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null || true
tcpdump_pid=""

ip netns exec "$ns" "$bin" watch --port "$port" --format json --color never -o "$dir/watch.json" 2>"$dir/watch.err" &
watch_pid=$!
for _ in $(seq 100); do grep -q watching "$dir/watch.err" 2>/dev/null && break; sleep 0.1; done
grep -q watching "$dir/watch.err" || { cat "$dir/watch.err" >&2; exit 1; }
ticks=$(getconf CLK_TCK)
cpu_of() { awk '{print $14 + $15}' "/proc/$watch_pid/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$watch_pid/status"; }
cpu0=$(cpu_of)
in_ns "$load" "$port" "$rate" "$seconds" >"$dir/watched.txt" &
load_pid=$!
sleep 10
rss10=$(rss)
wait "$load_pid"
rss_end=$(rss)
sleep 1   # the last connections settle (0.4 s) and are reported
cpu1=$(cpu_of)
peak=$(awk '/VmHWM/ {print $2}' "/proc/$watch_pid/status")
kill -INT "$watch_pid"
wait "$watch_pid" || true
watch_pid=""

echo "bench-watch-capacity: $(nproc) CPUs; load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$dir" "$seconds" "$rate" "$((cpu1 - cpu0))" "$ticks" "$rss10" "$rss_end" "$peak" <<'EOF'
import json, sys
d, seconds, rate, cpu_ticks, ticks, rss10, rss_end, peak = sys.argv[1:9]
def counts(name):
    return dict(kv.split("=", 1) for kv in open(f"{d}/{name}").read().split())
alone, watched, tcpdump = counts("alone.txt"), counts("watched.txt"), counts("tcpdump.txt")
seen, totals, histories = 0, None, {}
for line in open(f"{d}/watch.json"):
    o = json.loads(line)
    if o.get("kind") == "watched":
        seen += 1
        histories[o["history"]] = histories.get(o["history"], 0) + 1
    elif o.get("kind") == "watch_totals":
        totals = o
def per_s(c):
    return int(c["connections"]) / float(c["seconds"])
written = int(watched["connections"])
hl = lambda n: f"{n}  <-- NOT ZERO" if n else "0"
print(f"load: frameload, {'as fast as it writes' if rate == '0' else rate + '/s'}, {seconds} s; 6 frames a "
      f"connection, on lo in a namespace of its own")
print(f"connections/s alone      {per_s(alone):9,.0f}   (the reference: frames written, nothing capturing)")
print(f"connections/s tcpdump    {per_s(tcpdump):9,.0f}   = {per_s(tcpdump) / per_s(alone):.2f} of the reference "
      f"(tcpdump -w /dev/null)")
print(f"connections/s watched    {per_s(watched):9,.0f}   = {per_s(watched) / per_s(alone):.2f} of the reference, "
      f"{per_s(watched) / per_s(tcpdump):.2f} of tcpdump's")
print(f"connections written      {written:9}   watch reported {seen} ({seen - written:+d}"
      f"{'' if seen == written else '  <-- NOT EQUAL'})")
if seen != written:
    print("  histories: " + ", ".join(f"{h} {n}" for h, n in sorted(histories.items(), key=lambda kv: -kv[1])))
print(f"libpcap drops            {hl(totals['pcap_drops'])}")
cpu = int(cpu_ticks) / int(ticks)
print(f"watch CPU                {cpu:.1f} s over the run ({100 * cpu / float(watched['seconds']):.0f}% of one "
      f"core), {1e6 * cpu / max(seen, 1):.1f} µs per connection")
grow = int(rss_end) / int(rss10)
print(f"watch memory             {int(rss10) / 1024:.1f} MiB after 10 s, {int(rss_end) / 1024:.1f} MiB at "
      f"{seconds} s (x{grow:.2f}{'  <-- GREW' if grow > 1.1 else ''}); peak {int(peak) / 1024:.1f} MiB")
kept = per_s(watched) >= 20000 and seen == written and not totals['pcap_drops']
print(f"watch kept up with {per_s(watched):,.0f} connections/s, every one seen, no drop: {'yes' if kept else 'NO'}"
      f"{'' if kept or per_s(watched) >= 20000 else ' (fewer than 20,000/s were written)'}")
EOF
