#!/usr/bin/env bash
# `just bench-watch [SECONDS] [THREADS]`: how many connections a second `watch` keeps up with, against a reference
# measured in the same run. The load is the cheapest connection there is (examples/connload.rs: THREADS loops of
# connect, wait for the server's FIN, close, to a listener in another process that accepts and closes), so the
# generator is not the limit the way wrk + nginx are. Three times for SECONDS (default 30): alone (the reference),
# under tcpdump (what capturing alone costs), then while `watch --port PORT --format json` watches. Reports
# connections/s alone, under tcpdump and watched (and the ratios),
# connections watch reported vs made (must be equal), libpcap drops, trace losses, lookups not made, watch's CPU
# (per thread, its /proc helper, and µs of CPU per connection), its resident memory after 10 s and at the end of
# the run (must not grow) and its peak. Everything it started is stopped and removed on every way out. As root.
#
# `just bench-watch-capacity [SECONDS] [RATE]` (`bench/watch.sh frames [SECONDS] [RATE]`): watch's own ceiling,
# which real connections cannot show on a small machine (each costs the TCP stack tens of µs of CPU, so the load
# stops near what the machine makes, watched or not). examples/frameload.rs writes the six frames of a connection
# straight onto `lo` through a packet socket, RATE connections a second (0, the default: as many as it can), for
# SECONDS (default 20), in a network namespace of its own whose `lo` drops them at its ingress (nftables), after
# the capture saw them and before TCP would answer them. The same three runs and figures; the /proc lookups and the
# kernel's events are not exercised (no socket is behind the frames). The namespace and what runs in it are removed
# on every way out (and those of an earlier run that died).
set -euo pipefail
cd "$(dirname "$0")/.."
frames=""
[ "${1:-}" = frames ] && { frames=1; shift; }
seconds="${1:-$([ -n "$frames" ] && echo 20 || echo 30)}"
threads="${2:-4}"   # connload's loops; with frames, the RATE
rate="${2:-0}"
[ "$(id -u)" -eq 0 ] || { echo "bench-watch: run as root (capture and tracefs)" >&2; exit 1; }
[ "$seconds" -ge 12 ] || { echo "bench-watch: SECONDS must be at least 12 (memory is read at 10 s)" >&2; exit 2; }
bash scripts/deps.sh tcpdump
example=$([ -n "$frames" ] && echo frameload || echo connload)
cargo build --release --quiet --bin tcp-close-watch --example "$example"
bin="$PWD/target/release/tcp-close-watch"
load="$PWD/target/release/examples/$example"

ns=""
if [ -n "$frames" ]; then
  # namespaces of earlier runs whose script is gone
  for old in $(ip netns list 2>/dev/null | awk '/^tcw-bench-[0-9]+/ {print $1}'); do
    kill -0 "${old#tcw-bench-}" 2>/dev/null || ip netns delete "$old" 2>/dev/null || true
  done
  ns="tcw-bench-$$"
fi
dir=$(mktemp -d /tmp/tcw-bench-watch.XXXXXX)
server_pid="" watch_pid="" tcpdump_pid=""
cleanup() {
  [ -n "$tcpdump_pid" ] && kill "$tcpdump_pid" 2>/dev/null || true
  [ -n "$watch_pid" ] && kill -INT "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  if [ -n "$ns" ]; then
    # what watch started (its trace instance's remover) ends on its own once watch has; anything still running
    # in the namespace a moment later is killed, then the namespace removed
    for _ in $(seq 20); do [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break; sleep 0.1; done
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns delete "$ns" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # stop here (the EXIT trap cleans up), not go on to the next step

# `in` runs a command where the load is (`ip netns exec` itself, so that a background one's $! is its own)
if [ -n "$frames" ]; then
  in=(ip netns exec "$ns")
  port=47000
  ip netns add "$ns"
  "${in[@]}" ip link set lo up
  "${in[@]}" nft -f - <<EOF
table netdev tcw {
  chain in { type filter hook ingress device lo priority 0; tcp sport $port drop; tcp dport $port drop; }
}
EOF
  run_load() { "${in[@]}" "$load" "$port" "$rate" "$seconds"; }
else
  in=()
  "$load" serve >"$dir/port" &
  server_pid=$!
  for _ in $(seq 50); do [ -s "$dir/port" ] && break; sleep 0.1; done
  port=$(cat "$dir/port")
  run_load() { "$load" connect "$port" "$threads" "$seconds"; }
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
tw_before=$(nstat -az TcpExtTCPTimeWaitOverflow 2>/dev/null | awk '/TcpExt/ {print $2}' || echo "?")

# the reference: the same load, nothing watching
run_load >"$dir/alone.txt"

# a second reference: what capturing alone costs the load (tcpdump writing the same frames nowhere, with watch's
# snap length and ring), so watch's own cost can be told from the kernel's copying of every frame
"${in[@]}" tcpdump -q -i lo -s 512 -B 65536 -w /dev/null "tcp port $port" 2>"$dir/tcpdump.err" &
tcpdump_pid=$!
sleep 1
run_load >"$dir/tcpdump.txt"
kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null || true
tcpdump_pid=""

"${in[@]}" "$bin" watch --port "$port" --format json --color never -o "$dir/watch.json" 2>"$dir/watch.err" &
watch_pid=$!
for _ in $(seq 100); do grep -q watching "$dir/watch.err" 2>/dev/null && break; sleep 0.1; done
grep -q watching "$dir/watch.err" || { cat "$dir/watch.err" >&2; exit 1; }
helper=$(pgrep -P "$watch_pid" -x tcw-procmap || true)
ticks=$(getconf CLK_TCK)
cpu_of() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$watch_pid/status"; }
cpu0=$(( $(cpu_of "$watch_pid") + $(cpu_of "$helper") ))

run_load >"$dir/watched.txt" &
load_pid=$!
sleep 10
rss10=$(rss)
wait "$load_pid"
rss_end=$(rss)
sleep 1   # the last connections settle (0.4 s) and are reported
cpu1=$(( $(cpu_of "$watch_pid") + $(cpu_of "$helper") ))
peak=$(awk '/VmHWM/ {print $2}' "/proc/$watch_pid/status")
per_thread=$(for t in /proc/"$watch_pid"/task/*; do
  printf '%s %.2fs, ' "$(cat "$t/comm")" "$(awk -v hz="$ticks" '{print ($14 + $15) / hz}' "$t/stat")"
done)
helper_cpu=$(awk -v hz="$ticks" -v t="$(cpu_of "$helper")" 'BEGIN {printf "%.2f", t / hz}')
kill -INT "$watch_pid"
wait "$watch_pid" || true
watch_pid=""
tw_after=$(nstat -az TcpExtTCPTimeWaitOverflow 2>/dev/null | awk '/TcpExt/ {print $2}' || echo "?")

echo "bench-watch: $(nproc) CPUs; load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench-watch: watch's CPU by thread: ${per_thread}tcw-procmap ${helper_cpu}s"
load_said="connload connect, $threads threads"
[ -n "$frames" ] && load_said="frameload, $([ "$rate" = 0 ] && echo 'as fast as it writes' || echo "$rate/s"), on lo in a namespace of its own"
python3 - "$dir" "$seconds" "$load_said" "$((cpu1 - cpu0))" "$ticks" "$rss10" "$rss_end" "$peak" "$tw_before" "$tw_after" <<'EOF'
import json, sys
d, seconds, load_said, cpu_ticks, ticks, rss10, rss_end, peak, tw0, tw1 = sys.argv[1:11]
def counts(name):
    c = dict(kv.split("=", 1) for kv in open(f"{d}/{name}").read().split())
    # frameload says connections (written) where connload says connects (made)
    c.setdefault("connects", c.get("connections"))
    c.setdefault("errors", "0")
    c.setdefault("error_kinds", "-")
    return c
alone, watched, tcpdump = counts("alone.txt"), counts("watched.txt"), counts("tcpdump.txt")
seen, named, totals, histories = 0, {"a": 0, "b": 0}, None, {}
for line in open(f"{d}/watch.json"):
    o = json.loads(line)
    if o.get("kind") == "watched":
        seen += 1
        histories[o["history"]] = histories.get(o["history"], 0) + 1
        for side, p in (o.get("processes") or {}).items():
            named[side] += bool(p) and not p.startswith("?")
    elif o.get("kind") == "watch_totals":
        totals = o
def rate(c):
    return int(c["connects"]) / float(c["seconds"])
made = int(watched["connects"])
hl = lambda n: f"{n}  <-- NOT ZERO" if n else "0"
print(f"load: {load_said}, {seconds} s; errors alone {alone['errors']} "
      f"({alone['error_kinds']}), watched {watched['errors']} ({watched['error_kinds']})")
print(f"connections/s alone      {rate(alone):9,.0f}   (the reference)")
print(f"connections/s tcpdump    {rate(tcpdump):9,.0f}   = {rate(tcpdump) / rate(alone):.2f} of the reference "
      f"(capturing alone: tcpdump -w /dev/null)")
print(f"connections/s watched    {rate(watched):9,.0f}   = {rate(watched) / rate(alone):.2f} of the reference, "
      f"{rate(watched) / rate(tcpdump):.2f} of tcpdump's")
print(f"connections made         {made:9}   watch reported {seen} ({seen - made:+d}"
      f"{'' if seen == made else '  <-- NOT EQUAL'})")
if seen != made:
    print("  histories: " + ", ".join(f"{h} {n}" for h, n in sorted(histories.items(), key=lambda kv: -kv[1])))
print(f"  process named          client {named['a']}, server {named['b']}; lookups not made: "
      f"{totals['lookups_refused']}")
print(f"libpcap drops            {hl(totals['pcap_drops'])}")
print(f"trace losses             {hl(totals['trace_lost'] or 0)}")
cpu = int(cpu_ticks) / int(ticks)
print(f"watch CPU                {cpu:.1f} s over the run ({100 * cpu / float(watched['seconds']):.0f}% of one "
      f"core), {1e6 * cpu / max(seen, 1):.0f} µs per connection (watch and its /proc helper)")
grow = int(rss_end) / int(rss10)
print(f"watch memory             {int(rss10) / 1024:.1f} MiB after 10 s, {int(rss_end) / 1024:.1f} MiB at "
      f"{seconds} s (x{grow:.2f}{'  <-- GREW' if grow > 1.1 else ''}); peak {int(peak) / 1024:.1f} MiB")
if tw0 != "?" and tw1 != "?" and int(tw1) > int(tw0):
    print(f"note: the kernel's TIME_WAIT table overflowed {int(tw1) - int(tw0)} times during the runs "
          f"(net.ipv4.tcp_max_tw_buckets): those connections ended without their TIME_WAIT")
goal = rate(watched) >= 20000 and seen == made and not totals['pcap_drops'] and not (totals['trace_lost'] or 0)
print(f"goal (20,000/s watched, every connection seen, no drop): {'reached' if goal else 'NOT reached'}")
EOF
