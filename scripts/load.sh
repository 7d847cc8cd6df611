#!/usr/bin/env bash
# `just load`: can `watch` keep up with a real load? nginx on loopback answers wrk, which sends
# `Connection: close` so every request is a whole connection, for SECONDS (default 30) while `watch` watches the
# port. Reports connections per second completed by wrk and seen by watch (they must match), libpcap drops and
# trace-buffer losses, process lookups not made, and watch's CPU time and peak memory. Everything it started
# (nginx, wrk, watch, the temporary folder) is stopped and removed on every way out. As root.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
connections="${2:-64}"
[ "$(id -u)" -eq 0 ] || { echo "load: run as root (capture and tracefs)" >&2; exit 1; }
bash scripts/deps.sh nginx wrk
cargo build --release --quiet
bin="$PWD/target/release/tcp-close-watch"

dir=$(mktemp -d /tmp/tcw-load.XXXXXX)
nginx_pid="" watch_pid=""
cleanup() {
  [ -n "$watch_pid" ] && kill -INT "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null || true
  if [ -f "$dir/nginx.pid" ]; then kill -QUIT "$(cat "$dir/nginx.pid")" 2>/dev/null || true; fi
  sleep 0.5
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # stop here (the EXIT trap cleans up), not go on to the next step

# a port the kernel chose, free a moment ago
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir; uwsgi_temp_path $dir; scgi_temp_path $dir;
  keepalive_timeout 0;
  server { listen 127.0.0.1:$port; location / { return 200 "ok\n"; } }
}
EOF
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
nginx -c "$dir/nginx.conf" -p "$dir"
sleep 0.3
# the reference, measured in the same run: the same load with nothing watching
wrk -t2 -c"$connections" -d"${seconds}s" -H "Connection: close" "http://127.0.0.1:$port/" >"$dir/wrk-alone.txt"

"$bin" watch --port "$port" --format json --color never -o "$dir/watch.json" 2>"$dir/watch.err" &
watch_pid=$!
for _ in $(seq 100); do grep -q watching "$dir/watch.err" 2>/dev/null && break; sleep 0.1; done
grep -q watching "$dir/watch.err" || { cat "$dir/watch.err" >&2; exit 1; }
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$watch_pid/stat"; }
cpu0=$(cpu)

wrk -t2 -c"$connections" -d"${seconds}s" -H "Connection: close" "http://127.0.0.1:$port/" >"$dir/wrk.txt"
sleep 1   # the last connections settle and are reported
cpu1=$(cpu)
peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$watch_pid/status")
helper=$(pgrep -P "$watch_pid" -x tcw-procmap || true)
helper_cpu=$( [ -n "$helper" ] && awk -v hz="$ticks" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$helper/stat" || echo 0)
threads=$(for t in /proc/"$watch_pid"/task/*; do
  printf '%s=%.1fs ' "$(cat "$t/comm")" "$(awk -v hz="$ticks" '{print ($14 + $15) / hz}' "$t/stat")"
done)
kill -INT "$watch_pid"
wait "$watch_pid" || true
watch_pid=""

requests=$(awk '/requests in/ {print $1}' "$dir/wrk.txt")
alone=$(awk '/requests in/ {print $1}' "$dir/wrk-alone.txt")
errors=$(awk '/Socket errors/ {print}' "$dir/wrk.txt")
echo "load: watch's threads' CPU time: $threads; its /proc helper (tcw-procmap): ${helper_cpu}s"
echo "load: $(nproc) CPUs; load average before the run: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine)"
python3 - "$dir/watch.json" "$requests" "$seconds" "$(( (cpu1 - cpu0) ))" "$ticks" "$peak_kb" "$errors" "$alone" <<'EOF'
import json, sys
path, requests, seconds, cpu_ticks, ticks, peak_kb, errors, alone = sys.argv[1:9]
seen = 0
named = {"a": 0, "b": 0}
inferred = {"a": 0, "b": 0}
unnamed = {"a": {}, "b": {}}
totals = None
for line in open(path):
    o = json.loads(line)
    if o.get("kind") == "watched":
        seen += 1
        for side, p in (o.get("processes") or {}).items():
            if p and not p.startswith("?"):
                named[side] += 1
                inferred[side] += "inferred" in p
            else:
                why = p or "null"
                unnamed[side][why] = unnamed[side].get(why, 0) + 1
    elif o.get("kind") == "watch_totals":
        totals = o
requests, seconds = int(requests), float(seconds)
def hl(n):
    return f"{n} <-- NOT ZERO" if n else f"{n}"
alone = int(alone)
print(f"wrk alone          {alone} connections ({alone / seconds:,.0f}/s)  (the reference: nothing watching)")
print(f"wrk under watch    {requests} connections ({requests / seconds:,.0f}/s) = {requests / alone:.2f} of the reference  {errors}")
print(f"watch reported     {seen} connections ({seen / seconds:,.0f}/s) — {seen - requests:+d} vs wrk "
      f"(wrk does not count the requests in flight when it stops)")
print(f"  process named: client {named['a']}, server {named['b']} (of {seen}; of these by the listener of the "
      f"port, inferred: {inferred['a']}, {inferred['b']}); "
      f"lookups not made: {totals['lookups_refused']}")
for side, who in (("a", "client"), ("b", "server")):
    top = sorted(unnamed[side].items(), key=lambda kv: -kv[1])[:3]
    if top:
        print(f"  {who} not named: " + "; ".join(f"{n} {w}" for w, n in top))
print(f"libpcap drops      {hl(totals['pcap_drops'])}")
print(f"trace losses       {hl(totals['trace_lost'] or 0)}")
cpu = int(cpu_ticks) / int(ticks)
print(f"watch CPU          {cpu:.1f} s over {seconds:.0f} s ({100 * cpu / seconds:.0f}% of one core)")
print(f"watch peak memory  {int(peak_kb) / 1024:.1f} MiB")
EOF
